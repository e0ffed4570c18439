//go:build amd64 && !purego

package kernels

import (
	"math"

	"golang.org/x/sys/cpu"
)

// The kernels of the int formats in quant_int_amd64.s: kernels for eight
// weight rows at a time and every quantized input row, for AVX-512 VNNI
// (qVariant's qVNNI, with GFNI; all formats) and for AVX2 with F16C (int4);
// and AVX2 row kernels for one or four weight rows and one input row, which
// take I8Ch without VNNI and the rows left over. Each computes qDotIntSeq
// with the same float32 steps in the same order, so it gives its bits (and
// qDotInt's, but for the lane formats); the integer block sums are vector
// instructions, exact. With VNNI, I4G32 takes Q4_0's kernel instead, with
// qDotQ40Lanes's bits, and the other int4 formats in rows of whole chunks
// of four blocks the lane kernels, four rows at a time, with qDotI4Lanes's.

// dotI8ChAVX2 is qDotIntSeq for an I8Ch row: Σ_b float32(Σ_i w_i*q_i) *
// (s*d[b]) over nb blocks, w pointing at the row's codes (after its scale s).
//
//go:noescape
func dotI8ChAVX2(w *byte, q *int8, d *float32, s float32, nb int) float32

// dotI4SymAVX2 is qDotIntSeq for a row of groups groups of a symmetric int4
// format: per blocks of 32 per group, gb bytes a group.
//
//go:noescape
func dotI4SymAVX2(w *byte, q *int8, d *float32, groups, per, gb int) float32

// dotI4AsymAVX2 is qDotIntSeq for a row of an asymmetric int4 format, whose
// groups add m*c[b] after each block.
//
//go:noescape
func dotI4AsymAVX2(w *byte, q *int8, d, c *float32, groups, per, gb int) float32

// dotI8Ch4AVX2, dotI4Sym4AVX2 and dotI4Asym4AVX2 are the row kernels for
// four rows rb bytes apart at once, w pointing at the first row's start;
// they write the four products to out, each with the bits the one-row
// kernel gives its row.
//
//go:noescape
func dotI8Ch4AVX2(w *byte, rb int, q *int8, d *float32, nb int, out *[4]float32)

//go:noescape
func dotI4Sym4AVX2(w *byte, rb int, q *int8, d *float32, groups, per, gb int, out *[4]float32)

//go:noescape
func dotI4Asym4AVX2(w *byte, rb int, q *int8, d, c *float32, groups, per, gb int, out *[4]float32)

// hasIntVNNI reports whether the CPU has what the VNNI int kernels use
// beyond qVNNI's needs: GFNI, whose affine byte map unpacks nibbles.
var hasIntVNNI = hasVNNI && cpu.X86.HasAVX512GFNI

// qiArgs are the operands of a VNNI int kernel call, read by field offset
// (go_asm.h). The kernel sets out[t*ldo + 8g + r] (ldo in bytes) to the
// product of weight row 8g+r with input row t for g < n8, r < 8 and t < n.
// Weight rows are rb bytes apart and hold groups groups of per blocks, each
// group a header (scale, zero point) and its codes; I8Ch is one group of nb
// blocks. Input row t's codes are at q + t*cols (the blocks run straight on
// into the next row); its d, c and s follow those of row t-1 after dpad
// bytes of padding (Q8Acts.stride - nb entries).
type qiArgs struct {
	out    *float32
	ldo    int
	w      *byte
	rb     int
	n8     int
	q      *int8
	d      *float32
	c      *float32
	s      *int32
	dpad   int
	n      int
	groups int
	per    int
	xi     *int8 // the lane kernels' inputs (Q8Acts.xi), in place of q, d, c and s

	// The cursors are uintptrs, not pointers: they run past the ends of
	// the slices, where the garbage collector must not follow them.
	gw   uintptr
	gout uintptr
	gn   int
	tout uintptr
}

// qmmI8ChVNNI, qmmI4SymVNNI and qmmI4AsymVNNI compute the products that
// qiArgs describe for I8Ch, a symmetric int4 and an asymmetric int4 format,
// eight weight rows at a time, with qDotIntSeq's float32 steps in its order in
// each row's lane: each block's integer sum is exact (VPDPBUSD on unsigned
// weight bytes, less an offset times the block's Σq), so every row gets
// qDotIntSeq's bits.
//
//go:noescape
func qmmI8ChVNNI(a *qiArgs)

//go:noescape
func qmmI4SymVNNI(a *qiArgs)

//go:noescape
func qmmI4AsymVNNI(a *qiArgs)

// qmmI4SymAVX2 and qmmI4AsymAVX2 are qmmI4SymVNNI and qmmI4AsymVNNI for
// AVX2 with F16C: the same products, with qDotIntSeq's bits.
//
//go:noescape
func qmmI4SymAVX2(a *qiArgs)

//go:noescape
func qmmI4AsymAVX2(a *qiArgs)

// qmmI4G128SymVNNI and qmmI4G128AsymVNNI compute qDotI4Lanes for I4G128
// and I4G128Asym (the lane kernels), four weight rows at a time (n8 counts groups of four,
// rb 0 repeats one row) against every input row, reading the inputs from
// xi (Q8Acts.xi, a row's chunks straight after the last row's): each row's
// sixteen lanes are qDotI4Lanes's, so every row gets its bits.
//
//go:noescape
func qmmI4G128SymVNNI(a *qiArgs)

//go:noescape
func qmmI4G128AsymVNNI(a *qiArgs)

// qmmI4G64SymVNNI, qmmI4G64AsymVNNI and qmmI4G32AsymVNNI are the lane
// kernels of I4G64, I4G64Asym and I4G32Asym, for rows of whole chunks of
// four blocks.
//
//go:noescape
func qmmI4G64SymVNNI(a *qiArgs)

//go:noescape
func qmmI4G64AsymVNNI(a *qiArgs)

//go:noescape
func qmmI4G32AsymVNNI(a *qiArgs)

// xiChunk is the size of a chunk of four blocks in Q8Acts.xi: the inputs
// 0-15 of each block (16 bytes a block), then its inputs 16-31, then the
// sixteen dwords whose high words hold -Σq of the lanes' blocks in the
// first lane of each block (0 elsewhere), then the lanes' d_x (block l/4).
const xiChunk = 256

// arrangeI4 fills x.xi (nb/4 whole chunks a row) once after each Quantize.
func arrangeI4(x *Q8Acts) {
	if x.xiDone.Load() {
		return
	}
	x.xiMu.Lock()
	defer x.xiMu.Unlock()
	if x.xiDone.Load() {
		return
	}
	nc := x.nb / 4
	x.xi = grow(x.xi, max(1, x.n*nc*xiChunk))
	for t := 0; t < x.n; t++ {
		q, d, s := x.q[t*x.cols:(t+1)*x.cols], x.d[t*x.stride:], x.s[t*x.stride:]
		for c := 0; c < nc; c++ {
			ch := x.xi[(t*nc+c)*xiChunk:][:xiChunk]
			for k := 0; k < 4; k++ {
				b := 4*c + k
				copy(ch[16*k:16*k+16], q[b*QBlock:b*QBlock+16])
				copy(ch[64+16*k:64+16*k+16], q[b*QBlock+16:b*QBlock+32])
				putU32(ch[128+16*k:], uint32(-s[b])<<16)
				putU32(ch[132+16*k:], 0)
				putU32(ch[136+16*k:], 0)
				putU32(ch[140+16*k:], 0)
				db := math.Float32bits(d[b])
				for i := 0; i < 4; i++ {
					putU32(ch[192+16*k+4*i:], db)
				}
			}
		}
	}
	x.xiDone.Store(true)
}

// qmmI4Lanes calls f's lane kernel (directly, so that a does not escape).
func qmmI4Lanes(f QFormat, a *qiArgs) {
	switch f {
	case I4G128:
		qmmI4G128SymVNNI(a)
	case I4G128Asym:
		qmmI4G128AsymVNNI(a)
	case I4G64:
		qmmI4G64SymVNNI(a)
	case I4G64Asym:
		qmmI4G64AsymVNNI(a)
	default:
		qmmI4G32AsymVNNI(a)
	}
}

// qMatMulI4Lanes runs the lane kernels: whole groups of four rows, then
// each leftover row as a group of one row repeated, through a small buffer.
func qMatMulI4Lanes(f QFormat, out []float32, ldo int, w []byte, rows int, x *Q8Acts) {
	arrangeI4(x)
	rb := f.RowBytes(x.cols)
	xis := x.nb / 4 * xiChunk
	a := qiArgs{ldo: 4 * ldo, rb: rb, n8: rows / 4, xi: &x.xi[0], n: x.n, groups: x.nb / 4}
	if a.n8 > 0 {
		a.out, a.w = &out[0], &w[0]
		qmmI4Lanes(f, &a)
	}
	var tmp [4 * qTailTokens]float32
	for r := a.n8 * 4; r < rows; r++ {
		for t0 := 0; t0 < x.n; t0 += qTailTokens {
			nt := min(qTailTokens, x.n-t0)
			t := a
			t.out, t.ldo, t.w, t.rb, t.n8, t.n = &tmp[0], 16, &w[r*rb], 0, 1, nt
			t.xi = &x.xi[t0*xis]
			qmmI4Lanes(f, &t)
			for i := 0; i < nt; i++ {
				out[(t0+i)*ldo+r] = tmp[4*i]
			}
		}
	}
}

// qMatMulInt is qMatMulGeneric for the int formats on the kernels. With
// VNNI, I4G32 goes to Q4_0's kernel and the other int4 formats, in rows of
// whole chunks of four blocks, to the lane kernels (qMatMulI4Lanes). The
// rest run eight rows at a time against every input row inside the
// assembly (VNNI, or AVX2 for int4); the rows left over (and, with AVX2,
// I8Ch's) four at a time, then one by one. Each group of rows meets every
// input row in turn, so that it stays in L1. Every kernel gives each row
// the bits of its order (qDotInt's, or with AVX2 qDotIntSeq's), so the
// split does not show in the results.
func qMatMulInt(f QFormat, v int, out []float32, ldo int, w []byte, rows int, x *Q8Acts) {
	rb := f.RowBytes(x.cols)
	per := f.Group() / QBlock
	gb := 0
	if f != I8Ch {
		gb = f.RowBytes(f.Group())
	}
	if x.nb == 0 {
		qMatMulGeneric(f, out, ldo, w, rows, x) // no blocks: the kernels loop at least once
		return
	}
	_ = out[(x.n-1)*ldo+rows-1]
	_ = w[rows*rb-1]
	if f.lanes(x.nb) && v == qVNNI && hasIntVNNI {
		if f == I4G32 { // Q4_0's layout and weights, and qDotQ40Lanes is its kernel's order
			qMatMul(Q4_0, out, ldo, w, rows, x)
			return
		}
		qMatMulI4Lanes(f, out, ldo, w, rows, x)
		return
	}
	r0 := 0
	vnni := v == qVNNI && hasIntVNNI
	if rows >= 8 && (vnni || f != I8Ch) {
		a := qiArgs{out: &out[0], ldo: 4 * ldo, w: &w[0], rb: rb, n8: rows / 8, q: &x.q[0],
			d: &x.d[0], c: &x.c[0], s: &x.s[0], dpad: 4 * (x.stride - x.nb), n: x.n,
			groups: 1, per: x.nb}
		if f != I8Ch {
			a.groups, a.per = x.nb/per, per
		}
		switch {
		case f == I8Ch:
			qmmI8ChVNNI(&a)
		case f.asym() && vnni:
			qmmI4AsymVNNI(&a)
		case f.asym():
			qmmI4AsymAVX2(&a)
		case vnni:
			qmmI4SymVNNI(&a)
		default:
			qmmI4SymAVX2(&a)
		}
		r0 = rows / 8 * 8
	}
	var four [4]float32
	for r := r0; r+4 <= rows; r += 4 {
		for t := 0; t < x.n; t++ {
			q, d, c := &x.q[t*x.cols], &x.d[t*x.stride], &x.c[t*x.stride]
			switch {
			case f == I8Ch:
				dotI8Ch4AVX2(&w[r*rb], rb, q, d, x.nb, &four)
			case f.asym():
				dotI4Asym4AVX2(&w[r*rb], rb, q, d, c, x.nb/per, per, gb, &four)
			default:
				dotI4Sym4AVX2(&w[r*rb], rb, q, d, x.nb/per, per, gb, &four)
			}
			copy(out[t*ldo+r:t*ldo+r+4], four[:])
		}
	}
	for r := r0 + (rows-r0)/4*4; r < rows; r++ {
		row := w[r*rb : (r+1)*rb]
		for t := 0; t < x.n; t++ {
			q, d, c := &x.q[t*x.cols], &x.d[t*x.stride], &x.c[t*x.stride]
			var p float32
			switch {
			case f == I8Ch:
				p = dotI8ChAVX2(&row[2], q, d, f16(row), x.nb)
			case f.asym():
				p = dotI4AsymAVX2(&row[0], q, d, c, x.nb/per, per, gb)
			default:
				p = dotI4SymAVX2(&row[0], q, d, x.nb/per, per, gb)
			}
			out[t*ldo+r] = p
		}
	}
}
