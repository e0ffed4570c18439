//go:build !amd64 || purego

package kernels

// Without assembly every kernel is its generic loop.

func dot(a, b []float32) float32            { return dotGeneric(a, b) }
func matVec(out, w, x []float32, cols int)  { matVecGeneric(out, w, x, cols) }
func axpy(a float32, x, y []float32)        { axpyGeneric(a, x, y) }
func matVecT(out, w, x []float32, cols int) { matVecTGeneric(out, w, x, cols) }
func streamRead(buf []float32) float32      { return streamReadGeneric(buf) }
func softmax(x []float32, d float32)        { softmaxGeneric(x, d) }
func swiGLU(gate, up []float32)             { swiGLUGeneric(gate, up) }
func expVec(x []float32)                    { expVecGeneric(x) }
func add(dst, src []float32)                { addGeneric(dst, src) }
func transpose(dst []float32, ldd int, src []float32, lds, rows, cols int) {
	transposeGeneric(dst, ldd, src, lds, rows, cols)
}
func rope(x []float32, headDim int, cos, sin []float32, pairs bool) {
	ropeGeneric(x, headDim, cos, sin, pairs)
}
func matMul(out []float32, ldo int, x, w []float32, n, rows, cols int) {
	matMulGeneric(out, ldo, x, w, n, rows, cols)
}

// variants lists the kernel variants this CPU and build can run.
func variants() []int { return []int{implGeneric} }

func peakFLOPS() float64 { return 0 }
