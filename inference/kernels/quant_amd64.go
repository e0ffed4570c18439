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

// qScratch is a kernel call's working memory (Q4_0 VNNI needs none; the
// Q8_0 quad VNNI kernel uses only w and p). Each half of s holds, for a
// chunk of eight blocks of the current group of four rows and input row,
// s[r][j] = d_w(r,j)*d_x(j): the blocks use one half while the pass fills
// the other for the next chunk. o[r] holds the eight lanes of
// Σ_b d_w(r,b)*c_x(b) (m(r,b)*c_x(b) for Q4_1) of the AVX2 routines (the
// VNNI ones keep o in registers and their final factor k in o[0][0]), and
// k constants of the passes.
type qScratch struct {
	s [2][4][8]float32
	o [4][8]float32
	k [4][8]uint32
	w [4][16]float32 // Q8_0 quad VNNI: d_w of the current quad of each row, lane l of block l%4
	p [4][64]byte    // Q8_0 quad VNNI: its byte permutes, then 0x80 bytes
}

// qArgs are the operands of a kernel call, read by field offset (go_asm.h).
// The kernel sets out[t*ldo + 4g + r] to the product of row 4g+r with input
// row t for g < groups, r < 4 and t < n; weight rows are rb bytes apart (rb
// 0 repeats one row four times) and hold nb blocks. Byte strides: ldo
// between output rows, qs between input rows of q (Q4_0 VNNI: of
// Q8Acts.xq, which q then points at; Q8_0 quad VNNI: of Q8Acts.x8), ss
// between those of d and c. The g* and t* fields are the kernel's cursors.
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
// VNNI routines take eight blocks a 512-bit register (Q4_0), four (Q4_1,
// Q8_0 quads) or two (Q8_0), and need AVX-512 VNNI, VBMI (byte permutes),
// BW and GFNI; the AVX2 ones take one block at a time. Q8_0 has two VNNI
// routines, qmmQ8_0VNNI for fewer than q80QuadMin input rows and
// qmmQ8_0QuadVNNI (qDotQ80Lanes's order) for more.
//
//go:noescape
func qmmQ8_0VNNI(a *qArgs)

//go:noescape
func qmmQ8_0QuadVNNI(a *qArgs)

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

// qKernel runs the routine of format f and variant v on a; quad picks
// qmmQ8_0QuadVNNI over qmmQ8_0VNNI.
func qKernel(f QFormat, v int, quad bool, a *qArgs) {
	switch {
	case quad:
		qmmQ8_0QuadVNNI(a)
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

// q80QuadMin is the fewest input rows (x.n) for which QMatMul runs Q8_0
// with the quad VNNI kernel (qmmQ8_0QuadVNNI) instead of qmmQ8_0VNNI, and
// for which Quantize arranges Q8Acts.x8. The choice goes by the whole x.n,
// never by a call's share of it, so every row and input row of a QMatMul
// takes the same kernel however the rows are split or chunked.
//
// Measured on QMatMul of 2048x768, the quad kernel against the other,
// interleaved, medians of per-round speed ratios: with the weights in L2
// (one matrix again and again, 9 rounds) n=2 1.07x, 3 1.07x, 4 1.49x, 8
// 1.56x, 16 1.48x; streaming them from DRAM (80 such matrices, 134 MB, in
// turn, as a whole model does: BenchmarkQMatMulDRAM; 9 rounds) n=2 0.60x, 4 0.52x, 8 0.80x, 12
// 0.83x, 16 0.95x, 24 1.04x, 32 1.08x, and again n=16 0.94x, 20 1.02x, 24
// 1.08x (9 rounds), 128 1.63x (5 rounds). The quad kernel streams weights
// more slowly, and only enough input rows per group of weight rows hide
// that: the cut is where it is not slower from DRAM.
const q80QuadMin = 24

// qQuad reports whether QMatMul runs format f on n input rows with the
// Q8_0 quad VNNI kernel, whose sums go in another order than those of one
// input row.
func qQuad(f QFormat, n int) bool {
	return f == Q8_0 && qVariant() == qVNNI && n >= q80QuadMin
}

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
	quad := qQuad(f, x.n)
	switch {
	case q40:
		a.q, a.qs = &x.xq[0], x.xqs
	case quad:
		a.q, a.qs = &x.x8[0], x.x8s
	}
	if a.groups > 0 {
		a.out, a.w = &out[0], &w[0]
		qKernel(f, v, quad, &a)
	}
	var tmp [4 * qTailTokens]float32
	for r := a.groups * 4; r < rows; r++ {
		for t0 := 0; t0 < x.n; t0 += qTailTokens {
			nt := min(qTailTokens, x.n-t0)
			t := a
			t.out, t.ldo, t.w, t.rb, t.groups, t.n = &tmp[0], 16, &w[r*rb], 0, 1, nt
			t.q, t.d, t.c = &x.q[t0*x.cols], &x.d[t0*x.stride], &x.c[t0*x.stride]
			switch {
			case q40:
				t.q = &x.xq[t0*x.xqs]
			case quad:
				t.q = &x.x8[t0*x.x8s]
			}
			qKernel(f, v, quad, &t)
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

// arrangeActs fills a.xq, and a.x8 for q80QuadMin rows or more, from a.q
// and a.d when the CPU can run the VNNI kernels (whatever impl is now, so
// that a later change of impl finds them).
func arrangeActs(a *Q8Acts) {
	a.x8, a.x8s = a.x8[:0], 0
	if !hasVNNI {
		a.xq, a.xqs = a.xq[:0], 0
		return
	}
	a.xq, a.xqs = arrangeRows(a, a.xq, 8, q40Chunk, arrangeQ40VNNI, arrangeQ40)
	if a.n >= q80QuadMin {
		a.x8, a.x8s = arrangeRows(a, a.x8, 4, q80Quad, arrangeQ80VNNI, arrangeQ80)
	}
}

// arrangeRows lays out each row of a in dst (grown to fit), in units of
// per blocks of size bytes (the last one padded): the assembly vnni does
// the whole units and loop the rest. It returns dst and the bytes between
// its rows.
func arrangeRows(a *Q8Acts, dst []int8, per, size int, vnni func(dst, q *int8, d *float32, n int),
	loop func(dst, q []int8, d []float32, b0 int)) ([]int8, int) {
	stride := (a.nb + per - 1) / per * size
	dst = grow(dst, a.n*stride)
	nu := a.nb / per
	for t := 0; t < a.n; t++ {
		row, q, d := dst[t*stride:(t+1)*stride], a.q[t*a.cols:(t+1)*a.cols], a.d[t*a.stride:(t+1)*a.stride]
		if nu > 0 {
			vnni(&row[0], &q[0], &d[0], nu)
		}
		loop(row, q, d, nu*per)
	}
	return dst, stride
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

// q80Quad is the size of a quad of four blocks in Q8Acts.x8: the inputs
// that meet the Q8_0 quad VNNI kernel's registers p and q (lane l, byte i:
// q[4(l/4)+i] and q[16+4(l/4)+i] of block l%4), the sixteen int32 lane
// biases and the sixteen float32 lane scales d_x.
const q80Quad = 256

// arrangeQ80VNNI does arrangeQ80 for the first nq whole quads.
//
//go:noescape
func arrangeQ80VNNI(dst, q *int8, d *float32, nq int)

// arrangeQ80 lays out one row of quantized inputs q, with its scales d, for
// the Q8_0 quad VNNI kernel: per quad of four blocks, the inputs that meet p
// (lane l = 4j+k, byte i: q[4j+i] of block k) and q (q[16+4j+i]), the lane
// biases (-128 times the sum of a lane's eight inputs, which turn the sums
// of the unsigned weights u = w+128 times q into those of w times q) and
// the lane scales (d of block l%4). The blocks missing from a last quad
// are zeros. It starts at block b0, a multiple of 4.
func arrangeQ80(dst, q []int8, d []float32, b0 int) {
	nb := len(q) / QBlock
	if nb%4 != 0 {
		clear(dst[nb/4*q80Quad:])
	}
	for c := b0; c < nb; c += 4 {
		ch := dst[c/4*q80Quad:][:q80Quad]
		for k := 0; k < min(4, nb-c); k++ {
			src := q[(c+k)*QBlock:][:QBlock]
			for j := 0; j < 4; j++ {
				l := 4*j + k
				var sum int32
				for i := 0; i < 4; i++ {
					lo, hi := src[4*j+i], src[16+4*j+i]
					ch[4*l+i], ch[64+4*l+i] = lo, hi
					sum += int32(lo) + int32(hi)
				}
				putU32(ch[128+4*l:], uint32(-128*sum))
				putU32(ch[192+4*l:], math.Float32bits(d[c+k]))
			}
		}
	}
}
