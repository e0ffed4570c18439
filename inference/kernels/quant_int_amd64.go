//go:build amd64 && !purego

package kernels

// The row kernels of the int formats in quant_int_amd64.s, for AVX2 (with
// F16C for the group scales). Each is qDotInt for one weight row and one
// quantized input row, with the same float32 steps in the same order, so it
// gives qDotInt's bits; the integer block sums are vector instructions.

// dotI8ChAVX2 is qDotInt for an I8Ch row: Σ_b float32(Σ_i w_i*q_i) *
// (s*d[b]) over nb blocks, w pointing at the row's codes (after its scale s).
//
//go:noescape
func dotI8ChAVX2(w *byte, q *int8, d *float32, s float32, nb int) float32

// dotI4SymAVX2 is qDotInt for a row of groups groups of a symmetric int4
// format: per blocks of 32 per group, gb bytes a group.
//
//go:noescape
func dotI4SymAVX2(w *byte, q *int8, d *float32, groups, per, gb int) float32

// dotI4AsymAVX2 is qDotInt for a row of an asymmetric int4 format, whose
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

// qMatMulInt is qMatMulGeneric for the int formats on the row kernels: four
// rows at a time, then the leftover rows one by one. Each group of rows meets
// every input row in turn, so that it stays in L1.
func qMatMulInt(f QFormat, out []float32, ldo int, w []byte, rows int, x *Q8Acts) {
	rb := f.RowBytes(x.cols)
	per := f.Group() / QBlock
	gb := 0
	if f != I8Ch {
		gb = f.RowBytes(f.Group())
	}
	_ = out[(x.n-1)*ldo+rows-1]
	_ = w[rows*rb-1]
	var four [4]float32
	for r := 0; r+4 <= rows; r += 4 {
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
	for r := rows / 4 * 4; r < rows; r++ {
		row := w[r*rb : (r+1)*rb]
		for t := 0; t < x.n; t++ {
			q, d, c := &x.q[t*x.cols], &x.d[t*x.stride], &x.c[t*x.stride]
			var v float32
			switch {
			case f == I8Ch:
				v = dotI8ChAVX2(&row[2], q, d, f16(row), x.nb)
			case f.asym():
				v = dotI4AsymAVX2(&row[0], q, d, c, x.nb/per, per, gb)
			default:
				v = dotI4SymAVX2(&row[0], q, d, x.nb/per, per, gb)
			}
			out[t*ldo+r] = v
		}
	}
}
