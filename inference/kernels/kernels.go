// Package kernels holds shrink's float32 hot loops: dot products, matrix-vector
// and matrix-matrix products, and the element-wise steps of a transformer
// layer. Every function is single-threaded; callers split work across cores by
// passing sub-slices.
//
// On amd64, Dot, MatVec, MatMul, Axpy, StreamRead, Softmax and SwiGLU run in
// assembly (AVX-512 when the CPU has AVX-512F/BW/VL, else AVX2+FMA), and so
// do Add, RoPE (pair layout) and Transpose with AVX-512, chosen once at
// start-up; everywhere else, under the purego build tag, and for the other
// element-wise kernels, the plain Go loops in kernels_generic.go run.
// The products sum in a different order from the Go loops, so the two agree
// only to float32 rounding (well within 1e-5 of sum|a[i]*b[i]|); the other
// kernels repeat the Go loops' operations exactly and give the same bits. Each
// variant is deterministic, and its results do not depend on how a caller
// splits rows or tokens: every MatVec row equals Dot on that row to the bit,
// and MatMul gives the same bits for any split (though not the same bits as
// MatVec).
package kernels

// Features names the kernel variant in use: "avx512", "avx2+fma" or "generic".
func Features() string { return implNames[impl] }

// The kernel variants, in order of preference.
const (
	implGeneric = iota
	implAVX2
	implAVX512
)

var implNames = [...]string{implGeneric: "generic", implAVX2: "avx2+fma", implAVX512: "avx512"}

// impl is the variant the exported functions dispatch to. It is set once by
// init in kernels_amd64.go; tests lower it to compare variants.
var impl = implGeneric

// Dot returns the sum of a[i]*b[i] for i < len(a). It panics if len(b) < len(a).
func Dot(a, b []float32) float32 {
	return dot(a, b[:len(a)])
}

// MatVec sets out[r] = Dot(w[r*cols:(r+1)*cols], x) for r < len(out), where w
// is a row-major [len(out), cols] matrix. It panics if w or x is too short.
func MatVec(out, w, x []float32, cols int) {
	if len(out) == 0 {
		return
	}
	matVec(out, w[:len(out)*cols], x[:cols], cols)
}

// MatVecT sets out[j] = Σ_r x[r]*w[r*cols+j] for j < cols and r < len(x):
// the product of the transpose of a row-major [len(x), cols] matrix with x,
// summed row by row in order. Attention weighs the rows of values this way.
// It panics if out or w is too short.
func MatVecT(out, w, x []float32, cols int) {
	if cols <= 0 {
		return
	}
	matVecT(out[:cols], w[:len(x)*cols], x, cols)
}

// MatMul sets out[t*ldo+r] = Dot(x[t*cols:(t+1)*cols], w[r*cols:(r+1)*cols])
// for t < n and r < rows: Y = X·Wᵀ for row-major X [n, cols] and W [rows, cols],
// with Y's rows ldo >= rows apart. It panics if a slice is too short or ldo < rows.
func MatMul(out []float32, ldo int, x, w []float32, n, rows, cols int) {
	if n <= 0 || rows <= 0 {
		return
	}
	if ldo < rows {
		panic("kernels: MatMul: ldo < rows")
	}
	matMul(out[:(n-1)*ldo+rows], ldo, x[:n*cols], w[:rows*cols], n, rows, cols)
}

// Transpose sets dst[j*ldd+i] = src[i*lds+j] for i < rows and j < cols: the
// rows of src, lds floats apart, become the columns of dst, whose rows are
// ldd floats apart. It panics if a slice is too short.
func Transpose(dst []float32, ldd int, src []float32, lds, rows, cols int) {
	if rows <= 0 || cols <= 0 {
		return
	}
	transpose(dst[:(cols-1)*ldd+rows], ldd, src[:(rows-1)*lds+cols], lds, rows, cols)
}

// Axpy sets y[i] += a*x[i] for i < len(x). It panics if len(y) < len(x).
func Axpy(a float32, x, y []float32) {
	axpy(a, x, y[:len(x)])
}

// Scale sets x[i] *= a.
func Scale(x []float32, a float32) {
	scaleGeneric(x, a)
}

// Add sets dst[i] += src[i] for i < len(dst). It panics if len(src) < len(dst).
func Add(dst, src []float32) {
	add(dst, src)
}

// RMSNorm sets out[i] = weight[i] * (s * x[i]) with s = 1/sqrt(ss/n + eps) and
// ss = ((x[0]*x[0] + x[1]*x[1]) + ...) summed left to right in float32, n = len(x):
// the order and rounding of llama2.c's rmsnorm. out may alias x. It panics if
// out or weight is shorter than x.
func RMSNorm(out, x, weight []float32, eps float32) {
	rmsNormGeneric(out, x, weight, eps)
}

// Softmax replaces x with exp(x[i] - max) / sum in place, where max is the
// largest element and sum adds the exponentials in 16 partial sums (element
// i into sum i%16, in order), which are then halved pairwise (sum j adds sum
// j+8, then j+4, j+2, j+1). exp is expf within 1 ulp (see expGeneric); every
// variant gives the same bits.
func Softmax(x []float32) {
	softmax(x, 1)
}

// SoftmaxDiv divides each element of x by d, then runs Softmax: attention
// divides its scores by the square root of the head size this way (as
// llama2.c does; multiplying by the reciprocal rounds differently).
func SoftmaxDiv(x []float32, d float32) {
	softmax(x, d)
}

// SwiGLU sets gate[i] = silu(gate[i]) * up[i] with silu(v) = v * (1 / (1 + exp(-v))),
// exp as in Softmax; every variant gives the same bits. It panics if len(up) < len(gate).
func SwiGLU(gate, up []float32) {
	swiGLU(gate, up[:len(gate)])
}

// RoPE rotates each head of x (len(x) = nheads*headDim) in place by the angles
// whose cosines and sines are cos[i], sin[i] for i < headDim/2: a pair (x0, x1)
// becomes (x0*cos - x1*sin, x0*sin + x1*cos). With pairs the i-th pair of a
// head is (x[2i], x[2i+1]) (llama.cpp and llama2.c layout); without, it is
// (x[i], x[i+headDim/2]) (Hugging Face rotate-half). It panics if headDim is
// not a positive even divisor of len(x) or cos or sin is shorter than headDim/2.
func RoPE(x []float32, headDim int, cos, sin []float32, pairs bool) {
	rope(x, headDim, cos, sin, pairs)
}

// RoPEHalfToPairs rotates heads stored in the rotate-half layout, as RoPE with
// pairs false does, and stores each result head in the pair layout: element i
// of the first half goes to 2i and element i of the second half to 2i+1. The
// rotated values are bit-identical to RoPE's, so a model whose q and k rows are
// in the rotate-half layout gives exactly the attention scores of the same
// model stored in the pair layout.
func RoPEHalfToPairs(x []float32, headDim int, cos, sin []float32) {
	ropeHalfToPairsGeneric(x, headDim, cos, sin)
}

// PeakFLOPS measures one core's float32 FMA peak in flop/s with the vector
// width the kernels use: independent FMA chains and nothing else, best of
// five runs of about 10 ms. It returns 0 for the pure-Go kernels, which have
// no such bound.
func PeakFLOPS() float64 { return peakFLOPS() }

// MaxIndex returns the index of the largest element of x, the first one on
// ties, skipping NaNs; it returns 0 if every element is NaN and -1 if x is empty.
func MaxIndex(x []float32) int {
	return maxIndexGeneric(x)
}

// StreamRead returns the sum of buf, reading it once as fast as the CPU can
// (in assembly, as eight streams at once); timing it measures the memory-read
// bandwidth that bounds MatVec on a matrix of the same size.
func StreamRead(buf []float32) float32 {
	return streamRead(buf)
}
