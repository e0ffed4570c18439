//go:build !amd64 || purego

package kernels

// Without assembly every kernel is its generic loop.

func dot(a, b []float32) float32           { return dotGeneric(a, b) }
func matVec(out, w, x []float32, cols int) { matVecGeneric(out, w, x, cols) }
func axpy(a float32, x, y []float32)       { axpyGeneric(a, x, y) }
func streamRead(buf []float32) float32     { return streamReadGeneric(buf) }
func matMul(out []float32, ldo int, x, w []float32, n, rows, cols int) {
	matMulGeneric(out, ldo, x, w, n, rows, cols)
}

// variants lists the kernel variants this CPU and build can run.
func variants() []int { return []int{implGeneric} }

func peakFLOPS() float64 { return 0 }
