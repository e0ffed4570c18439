package kernels

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// Integer kernels for weights stored in GGUF's 32-weight blocks, computed as
// llama.cpp's ggml_vec_dot_q8_0_q8_0, ggml_vec_dot_q4_0_q8_0 and
// ggml_vec_dot_q4_1_q8_1 do: the input is quantized once per product to int8
// blocks of 32 with a float32 scale (Q8Acts), and each weight block meets its
// input block in an integer dot product scaled by d_w*d_x. The loops in
// quant_generic.go define the results; on amd64 the assembly (AVX-512 VNNI,
// VBMI and GFNI when the CPU has them, else AVX2
// with F16C) computes the integer sums exactly and adds the scaled block
// sums in a different order, so the two agree to float32 rounding; Quantize
// gives the same bits everywhere.
// Every output is computed the same way wherever its row falls in a call,
// so results do not depend on how callers split rows or tokens.
//
// The int formats (shrink's int8-per-row and int4-group layouts) run the
// same way against the same Q8Acts, one scale per row or group; their loop
// is qDotInt, and their assembly (quant_int_amd64.s: AVX-512 VNNI when the
// CPU has it, else AVX2 with F16C) keeps its float steps, so it gives
// qDotInt's bits. qDotInt sums I4G32 (whose layout is Q4_0's, and which
// runs on Q4_0's VNNI kernel), and the other int4 formats in rows of whole
// chunks of 128 weights, in sixteen lanes a row as their VNNI kernels do
// (qDotQ40Lanes, qDotI4Lanes), the rest block by block (qDotIntSeq); the
// AVX2 kernels sum every int format block by block, so on CPUs without
// VNNI the lane formats agree with qDotInt to float32 rounding.

// QBlock is the number of weights in a block of every QFormat, and of
// activations in a block of Q8Acts (an int format's groups are whole blocks).
const QBlock = 32

// QFormat is a block layout of quantized weights, as GGUF stores it. Rows
// are whole blocks, each a little-endian fp16 scale d (and, for Q4_1, an fp16
// minimum m) followed by the 32 weights.
type QFormat uint8

const (
	// Q8_0 blocks are 34 bytes: d, then 32 int8 q; weight = q*d.
	Q8_0 QFormat = iota + 1
	// Q4_0 blocks are 18 bytes: d, then 16 bytes whose low nibbles are
	// weights 0..15 and high nibbles weights 16..31; weight = (q-8)*d.
	Q4_0
	// Q4_1 blocks are 20 bytes: d, m, then the nibbles as in Q4_0; weight = q*d + m.
	Q4_1
	// I8Ch rows (shrink's INT8_CH) are one fp16 scale s, then one int8 q
	// per weight; weight = q*s.
	I8Ch
	// I4G32, I4G64 and I4G128 rows (shrink's INT4_G32, ...) are groups of
	// 32, 64 or 128 weights, each an fp16 scale s, then 16 bytes per 32
	// weights of nibbles in Q4_0's order; weight = (q-8)*s.
	I4G32
	I4G64
	I4G128
	// I4G32Asym, I4G64Asym and I4G128Asym groups have a zero-point byte z
	// after s; weight = (q-z)*s.
	I4G32Asym
	I4G64Asym
	I4G128Asym
)

var qFormatNames = [...]string{Q8_0: "q8_0", Q4_0: "q4_0", Q4_1: "q4_1", I8Ch: "int8_ch",
	I4G32: "int4_g32", I4G64: "int4_g64", I4G128: "int4_g128",
	I4G32Asym: "int4_g32_asym", I4G64Asym: "int4_g64_asym", I4G128Asym: "int4_g128_asym"}

func (f QFormat) String() string {
	if f < Q8_0 || f > I4G128Asym {
		return fmt.Sprintf("QFormat(%d)", uint8(f))
	}
	return qFormatNames[f]
}

// Group is the number of weights that share a scale: 32 for GGUF's
// formats, the group size of an int4 one, and 0 (the whole row) for I8Ch.
func (f QFormat) Group() int {
	switch f {
	case I8Ch:
		return 0
	case I4G64, I4G64Asym:
		return 64
	case I4G128, I4G128Asym:
		return 128
	}
	return QBlock
}

// asym reports whether f's groups carry a zero point.
func (f QFormat) asym() bool { return f == I4G32Asym || f == I4G64Asym || f == I4G128Asym }

// intFormat reports whether f is one of the int formats (I8Ch or int4).
func (f QFormat) intFormat() bool { return f == I8Ch || f.int4() }

// lanes reports whether qDotInt sums f's products, in rows of nb blocks,
// in sixteen lanes a row (as the VNNI kernels do) rather than block by
// block (qDotIntSeq): I4G32 always (qDotQ40Lanes), the other int4 formats
// when a row is whole chunks of four blocks (qDotI4Lanes).
func (f QFormat) lanes(nb int) bool {
	return f == I4G32 || f.int4() && nb%4 == 0
}

// int4 reports whether f is one of the int4 group formats.
func (f QFormat) int4() bool { return f >= I4G32 && f <= I4G128Asym }

// RowBytes is the size of a row of cols weights, which must be a whole
// number of blocks of 32 and of groups.
func (f QFormat) RowBytes(cols int) int {
	switch {
	case f == I8Ch:
		return 2 + cols
	case f.int4():
		g, hdr := f.Group(), 2
		if f.asym() {
			hdr = 3
		}
		return cols / g * (hdr + g/2)
	}
	return cols / QBlock * f.BlockBytes()
}

// BlockBytes is the size of one block of 32 weights of Q8_0, Q4_0 or Q4_1.
func (f QFormat) BlockBytes() int {
	switch f {
	case Q8_0:
		return 34
	case Q4_0:
		return 18
	case Q4_1:
		return 20
	}
	panic("kernels: unknown QFormat " + f.String())
}

// Q8Acts is a batch of activation rows quantized for the integer kernels:
// each block of 32 values becomes int8 values q in [-127, 127] with a float32
// scale d, so that value ≈ q*d, the block's sum of q, and d times that sum.
// Its zero value is empty; Quantize fills it, reusing its memory.
type Q8Acts struct {
	n, cols, nb int
	stride      int       // blocks between the rows of d, c and s: nb rounded up to 8
	q           []int8    // [n][cols]
	d           []float32 // [n][stride] scales; the padding is 0
	c           []float32 // [n][stride] d*Σq: what a constant weight per block (Q4_1's m, an offset) multiplies
	s           []int32   // [n][stride] Σq, exact: the int kernels take offset*Σq off their block sums; the padding is 0
	xq          []int8    // [n][xqs] q and d rearranged for the Q4_0 VNNI kernel (amd64 with VNNI only; see arrangeQ40)
	xqs         int       // bytes between the rows of xq
	x8          []int8    // [n][x8s] q and d rearranged for the Q8_0 quad VNNI kernel (amd64 with VNNI, n >= q80QuadMin only; see arrangeQ80)
	x8s         int       // bytes between the rows of x8

	// xi is q, d and s rearranged for the int4 lane kernels (amd64 with
	// VNNI only; see arrangeI4), made by the first call that needs it
	// after each Quantize, under xiMu; xiDone says it is there.
	xi     []int8
	xiMu   sync.Mutex
	xiDone atomic.Bool
}

// Rows is the number of quantized rows and Cols their length.
func (a *Q8Acts) Rows() int { return a.n }

// Cols is the length of each row.
func (a *Q8Acts) Cols() int { return a.cols }

// Quantize sets a to the n rows of x (row-major [n, cols]; cols a multiple
// of 32), block by block much as llama.cpp's quantize_row_q8_0 does with AVX:
// amax = max |v|, d = amax/127, q = v/d rounded to nearest even (0 when d is
// 0), all in float32. (llama.cpp multiplies by 1/d, which overflows for
// blocks of subnormal values.) It allocates only when a needs more room
// than any earlier call. x must be finite.
func (a *Q8Acts) Quantize(x []float32, n, cols int) {
	if n < 0 || cols < 0 || cols%QBlock != 0 {
		panic(fmt.Sprintf("kernels: Quantize: %d rows of %d columns (want a multiple of %d)", n, cols, QBlock))
	}
	x = x[:n*cols]
	nb := cols / QBlock
	stride := (nb + 7) &^ 7
	a.n, a.cols, a.nb, a.stride = n, cols, nb, stride
	a.q = grow(a.q, n*cols)
	a.d = grow(a.d, n*stride)
	a.c = grow(a.c, n*stride)
	a.s = grow(a.s, n*stride)
	for t := 0; t < n; t++ {
		rs := a.s[t*stride : (t+1)*stride]
		quantRow(a.q[t*cols:(t+1)*cols], a.d[t*stride:(t+1)*stride], a.c[t*stride:(t+1)*stride], rs, x[t*cols:(t+1)*cols])
	}
	arrangeActs(a)
	a.xiDone.Store(false)
}

// grow returns s resliced to n elements, reallocated when its capacity is short.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// QMatMul sets out[t*ldo+r] = Σ_b d_w(r,b)*d_x(t,b)*Σ_i w(r,b,i)*q(t,b,i)
// (plus m(r,b)*d_x(t,b)*Σ_i q(t,b,i) for Q4_1) for t < x.Rows() and r < rows:
// the products of the rows of a matrix of format f, stored in w as rows rows
// of f.RowBytes(x.Cols()) bytes, with every quantized input row. For the int
// formats d_w(r,b) is the scale of the row or group block b is in, and an
// asymmetric group adds m = −z*s times d_x(t,b)*Σ_i q(t,b,i) as Q4_1 does.
// Rows are ldo >= rows floats apart in out. With one input row it is a matrix-vector product; with
// several, each group of weight rows stays in L1 while every input row passes
// by. It panics if a slice is too short.
func QMatMul(f QFormat, out []float32, ldo int, w []byte, rows int, x *Q8Acts) {
	n := x.n
	if n <= 0 || rows <= 0 {
		return
	}
	if ldo < rows {
		panic("kernels: QMatMul: ldo < rows")
	}
	if g := f.Group(); g > 0 && x.cols%g != 0 {
		panic(fmt.Sprintf("kernels: QMatMul: %v rows of %d columns", f, x.cols))
	}
	rb := f.RowBytes(x.cols)
	qMatMul(f, out[:(n-1)*ldo+rows], ldo, w[:rows*rb], rows, x)
}
