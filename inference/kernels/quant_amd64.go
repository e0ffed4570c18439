//go:build amd64 && !purego

package kernels

import (
	"math"

	"golang.org/x/sys/cpu"
)

// The integer kernels have their own variants, chosen from impl at each call
// so that tests which set impl exercise them too: with impl at AVX-512 and a
// CPU with AVX-512 VNNI (and VBMI for byte permutes, GFNI for nibble
// shifts, BMI2 for tail masks), VPDPBUSD does each block's byte products; with AVX2 (or AVX-512 without them), VPMADDUBSW and
// VPMADDWD do. Both need F16C for the weight scales.
const (
	qGeneric = iota
	qAVX2
	qVNNI
)

var (
	hasVNNI = cpu.X86.HasAVX512VNNI && cpu.X86.HasAVX512VBMI && cpu.X86.HasAVX512GFNI && cpu.X86.HasBMI2
	hasF16C = cpu.X86.HasF16C
)

func qVariant() int {
	switch {
	case !hasF16C || impl == implGeneric:
		return qGeneric
	case impl == implAVX512 && hasVNNI:
		return qVNNI
	}
	return qAVX2
}

// qIntSeq reports whether the kernels QMatMul runs now compute the int
// format f, in rows of nb blocks, in qDotIntSeq's order where qDotInt has
// another: AVX2's, where VNNI sums in lanes.
func qIntSeq(f QFormat, nb int) bool {
	return f.lanes(nb) && qVariant() == qAVX2
}

// qScratch is a kernel call's working memory (Q4_0 VNNI needs none). Each
// half of s holds, for a chunk of eight blocks of the current group of four
// rows and input row, s[r][j] = d_w(r,j)*d_x(j): the blocks use one half
// while the pass fills the other for the next chunk. o[r] holds the eight
// lanes of Σ_b d_w(r,b)*c_x(b) (m(r,b)*c_x(b) for Q4_1) of the AVX2
// routines (the VNNI ones keep o in registers and their final factor k in
// o[0][0]), and k constants of the passes.
type qScratch struct {
	s [2][4][8]float32
	o [4][8]float32
	k [4][8]uint32
}

// qArgs are the operands of a kernel call, read by field offset (go_asm.h).
// The kernel sets out[t*ldo + 4g + r] to the product of row 4g+r with input
// row t for g < groups, r < 4 and t < n; weight rows are rb bytes apart (rb
// 0 repeats one row four times) and hold nb blocks. Byte strides: ldo
// between output rows, qs between input rows of q (Q4_0 VNNI: of
// Q8Acts.xq, which q then points at), ss between those of d and c. The g*
// and t* fields are the kernel's cursors.
type qArgs struct {
	out    *float32
	ldo    int
	w      *byte
	rb     int
	groups int
	q      *int8
	qs     int
	d      *float32
	c      *float32
	ss     int
	n      int
	nb     int
	sc     *qScratch

	// The cursors are uintptrs, not pointers: they run past the ends of
	// the slices, where the garbage collector must not follow them.
	gout uintptr
	gn   int
	tout uintptr
	tq   uintptr
	td   uintptr
	tc   uintptr
	tn   int
}

// The assembly in quant_amd64.s: one routine per format and variant, each
// setting out[t*ldo+4g+r] (bytes; see qArgs) to what qDotGeneric computes
// for row 4g+r and input row t, with the integer sums exact and the scaled
// sums added in another order (the header of quant_amd64.s gives it). The
// VNNI routines take eight blocks a 512-bit register (Q4_0), four (Q4_1)
// or two (Q8_0), and need AVX-512 VNNI, VBMI (byte permutes), BW and GFNI;
// the AVX2 ones take one block at a time.
//
//go:noescape
func qmmQ8_0VNNI(a *qArgs)

//go:noescape
func qmmQ4_0VNNI(a *qArgs)

//go:noescape
func qmmQ4_1VNNI(a *qArgs)

//go:noescape
func qmmQ8_0AVX2(a *qArgs)

//go:noescape
func qmmQ4_0AVX2(a *qArgs)

//go:noescape
func qmmQ4_1AVX2(a *qArgs)

func qKernel(f QFormat, v int, a *qArgs) {
	switch {
	case v == qVNNI && f == Q8_0:
		qmmQ8_0VNNI(a)
	case v == qVNNI && f == Q4_0:
		qmmQ4_0VNNI(a)
	case v == qVNNI && f == Q4_1:
		qmmQ4_1VNNI(a)
	case f == Q8_0:
		qmmQ8_0AVX2(a)
	case f == Q4_0:
		qmmQ4_0AVX2(a)
	default:
		qmmQ4_1AVX2(a)
	}
}

// quantizeRowAVX2 does quantizeRow for nb blocks with the same float32
// operations (a division per value, rounding to nearest even), so it gives
// the same bits; the caller clears the padding of d, c and s.
//
//go:noescape
func quantizeRowAVX2(q *int8, d, c *float32, s *int32, x *float32, nb int)

func quantRow(q []int8, d, c []float32, s []int32, x []float32) {
	nb := len(x) / QBlock
	if impl == implGeneric || nb == 0 {
		quantizeRow(q, d, c, s, x)
		return
	}
	_, _, _, _ = q[nb*QBlock-1], d[nb-1], c[nb-1], s[nb-1]
	quantizeRowAVX2(&q[0], &d[0], &c[0], &s[0], &x[0], nb)
	clear(d[nb:])
	clear(c[nb:])
	clear(s[nb:])
}

// qTailTokens is how many input rows a leftover weight row takes per call.
const qTailTokens = 64

// qMatMul runs the kernels over whole groups of four rows, then each
// leftover row on its own (as a group of one row repeated, through a small
// buffer), so every row is computed the same way wherever it falls.
func qMatMul(f QFormat, out []float32, ldo int, w []byte, rows int, x *Q8Acts) {
	v := qVariant()
	if f.intFormat() && v != qGeneric {
		qMatMulInt(f, v, out, ldo, w, rows, x)
		return
	}
	if v == qGeneric {
		qMatMulGeneric(f, out, ldo, w, rows, x)
		return
	}
	var sc qScratch
	rb := x.nb * f.BlockBytes()
	a := qArgs{ldo: 4 * ldo, rb: rb, groups: rows / 4, q: &x.q[0], qs: x.cols, d: &x.d[0], c: &x.c[0],
		ss: 4 * x.stride, n: x.n, nb: x.nb, sc: &sc}
	q40 := f == Q4_0 && v == qVNNI
	if q40 {
		a.q, a.qs = &x.xq[0], x.xqs
	}
	if a.groups > 0 {
		a.out, a.w = &out[0], &w[0]
		qKernel(f, v, &a)
	}
	var tmp [4 * qTailTokens]float32
	for r := a.groups * 4; r < rows; r++ {
		for t0 := 0; t0 < x.n; t0 += qTailTokens {
			nt := min(qTailTokens, x.n-t0)
			t := a
			t.out, t.ldo, t.w, t.rb, t.groups, t.n = &tmp[0], 16, &w[r*rb], 0, 1, nt
			t.q, t.d, t.c = &x.q[t0*x.cols], &x.d[t0*x.stride], &x.c[t0*x.stride]
			if q40 {
				t.q = &x.xq[t0*x.xqs]
			}
			qKernel(f, v, &t)
			for i := 0; i < nt; i++ {
				out[(t0+i)*ldo+r] = tmp[4*i]
			}
		}
	}
}

// q40Chunk is the size of a chunk of eight blocks in Q8Acts.xq: the inputs
// that meet the two registers of permuted nibbles (t0, t1) of the Q4_0
// VNNI kernel, for the low nibbles and the high ones (256 bytes), then the
// sixteen int32 lane biases and the sixteen float32 lane scales d_x.
const q40Chunk = 384

// arrangeActs fills a.xq from a.q and a.d when the CPU can run the Q4_0
// VNNI kernel (whatever impl is now, so that a later change of impl finds
// it).
func arrangeActs(a *Q8Acts) {
	if !hasVNNI {
		a.xq, a.xqs = a.xq[:0], 0
		return
	}
	a.xqs = (a.nb + 7) / 8 * q40Chunk
	a.xq = grow(a.xq, a.n*a.xqs)
	nc := a.nb / 8
	for t := 0; t < a.n; t++ {
		dst, q, d := a.xq[t*a.xqs:(t+1)*a.xqs], a.q[t*a.cols:(t+1)*a.cols], a.d[t*a.stride:(t+1)*a.stride]
		if nc > 0 {
			arrangeQ40VNNI(&dst[0], &q[0], &d[0], nc)
		}
		arrangeQ40(dst, q, d, nc*8)
	}
}

// arrangeQ40VNNI does arrangeQ40 for the first nc whole chunks.
//
//go:noescape
func arrangeQ40VNNI(dst, q *int8, d *float32, nc int)

// q40Group is the group of four nibble bytes, 4g to 4g+3, of block b of a
// chunk (b < 8) that dword lane b+8h of the Q4_0 VNNI kernel's register t
// holds: t0 takes groups 2 and 3 and t1 groups 0 and 1, except in blocks 4
// and 7, where they swap, so that each register's permute finds its bytes
// in its two 64-byte loads (see "Q4_0 VNNI" in quant_amd64.s).
func q40Group(t, b, h int) int {
	if (t == 0) != (b == 4 || b == 7) {
		return 2 + h
	}
	return h
}

// arrangeQ40 lays out one row of quantized inputs q, with its scales d, for
// the Q4_0 VNNI kernel: per chunk of eight blocks, the inputs that meet the
// low nibbles of t0 (lane l = b+8h, byte i: q[4g+i] of block b, g =
// q40Group(0, b, h)) and its high ones (q[16+4g+i]), the same for t1, the
// lane biases (-8 times the sum of a lane's sixteen inputs, which turn the
// sums of the unsigned nibbles u = w+8 times q into those of w times q)
// and the lane scales (d of block l%8). The blocks missing from a last
// chunk are zeros. It starts at block b0, a multiple of 8.
func arrangeQ40(dst, q []int8, d []float32, b0 int) {
	nb := len(q) / QBlock
	if nb%8 != 0 {
		clear(dst[nb/8*q40Chunk:])
	}
	for c := b0; c < nb; c += 8 {
		ch := dst[c/8*q40Chunk:][:q40Chunk]
		for b := 0; b < min(8, nb-c); b++ {
			src := q[(c+b)*QBlock:][:QBlock]
			for h := 0; h < 2; h++ {
				l := b + 8*h
				var sum int32
				for t := 0; t < 2; t++ {
					g := q40Group(t, b, h)
					x := ch[128*t:][:128]
					for i := 0; i < 4; i++ {
						lo, hi := src[4*g+i], src[16+4*g+i]
						x[4*l+i], x[64+4*l+i] = lo, hi
						sum += int32(lo) + int32(hi)
					}
				}
				putU32(ch[256+4*l:], uint32(-8*sum))
				putU32(ch[320+4*l:], math.Float32bits(d[c+b]))
			}
		}
	}
}

func putU32(b []int8, v uint32) {
	b[0], b[1], b[2], b[3] = int8(v), int8(v>>8), int8(v>>16), int8(v>>24)
}
