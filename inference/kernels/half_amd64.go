//go:build amd64 && !purego

package kernels

// The conversions of half_amd64.s: VCVTPH2PS and VCVTPS2PH (rounding to
// nearest even) on 16 values a 512-bit register with a masked tail, or 8 a
// 256-bit one (F16C) with the tail left to the generic loop. n is the
// number of values.
//
//go:noescape
func halfToFloatAVX512(dst *float32, src *uint16, n int)

//go:noescape
func floatToHalfAVX512(dst *uint16, src *float32, n int)

//go:noescape
func halfToFloatF16C(dst *float32, src *uint16, n int)

//go:noescape
func floatToHalfF16C(dst *uint16, src *float32, n int)

func halfToFloat(dst []float32, src []uint16) {
	n := len(src)
	switch {
	case n == 0:
	case impl == implAVX512:
		halfToFloatAVX512(&dst[0], &src[0], n)
	case impl == implAVX2 && hasF16C && n >= 8:
		m := n &^ 7
		halfToFloatF16C(&dst[0], &src[0], m)
		halfToFloatGeneric(dst[m:n], src[m:])
	default:
		halfToFloatGeneric(dst, src)
	}
}

func floatToHalf(dst []uint16, src []float32) {
	n := len(src)
	switch {
	case n == 0:
	case impl == implAVX512:
		floatToHalfAVX512(&dst[0], &src[0], n)
	case impl == implAVX2 && hasF16C && n >= 8:
		m := n &^ 7
		floatToHalfF16C(&dst[0], &src[0], m)
		floatToHalfGeneric(dst[m:n], src[m:])
	default:
		floatToHalfGeneric(dst, src)
	}
}

// matVec8F16AVX512, dotF16AVX512 and matVecTF16AVX512 (kernels_amd64.s) are
// matVec8AVX512, dotAVX512 and matVecTAVX512 for rows of halves, converting
// as they load: the same sums of the same float32 values.
//
//go:noescape
func matVec8F16AVX512(out *float32, w *uint16, x *float32, groups, cols, lane int)

//go:noescape
func dotF16AVX512(a *uint16, b *float32, n int) float32

//go:noescape
func matVecTF16AVX512(out *float32, w *uint16, x *float32, rows, cols int)

// matVec4F16AVX2, dotF16AVX2 and matVecTF16AVX2 (kernels_amd64.s) are the
// same for AVX2 with F16C, for rows of a multiple of 8 halves (no masked
// tail).
//
//go:noescape
func matVec4F16AVX2(out *float32, w *uint16, x *float32, groups, cols, lane int)

//go:noescape
func dotF16AVX2(a *uint16, b *float32, n int) float32

//go:noescape
func matVecTF16AVX2(out *float32, w *uint16, x *float32, rows, cols int)

// fusedF16 reports whether the kernels convert rows of cols halves as they
// load them: AVX-512 always, AVX2 (with F16C) for cols a multiple of 8.
func fusedF16(cols int) bool {
	return impl == implAVX512 || impl == implAVX2 && hasF16C && cols%8 == 0
}

// matVecF16 runs the eight-lane (AVX-512) or four-lane (AVX2) kernel over
// the first rows, as matVec does, and the one-row one over the rest: every
// row gets dot's bits, as in matVec.
func matVecF16(out []float32, w []uint16, x []float32, cols int, scratch []float32) {
	if cols == 0 || !fusedF16(cols) {
		convertedMatVecF16(out, w, x, cols, scratch)
		return
	}
	r := 0
	if impl == implAVX512 {
		if g := len(out) / 8; g > 0 {
			matVec8F16AVX512(&out[0], &w[0], &x[0], g, cols, g)
			r = 8 * g
		}
		for ; r < len(out); r++ {
			out[r] = dotF16AVX512(&w[r*cols], &x[0], cols)
		}
		return
	}
	if g := len(out) / 4; g > 0 {
		matVec4F16AVX2(&out[0], &w[0], &x[0], g, cols, g)
		r = 4 * g
	}
	for ; r < len(out); r++ {
		out[r] = dotF16AVX2(&w[r*cols], &x[0], cols)
	}
}

func matVecTF16(out []float32, w []uint16, x []float32, cols int, scratch []float32) {
	switch {
	case len(x) == 0 || !fusedF16(cols):
		convertedMatVecTF16(out, w, x, cols, scratch)
	case impl == implAVX512:
		matVecTF16AVX512(&out[0], &w[0], &x[0], len(x), cols)
	default:
		matVecTF16AVX2(&out[0], &w[0], &x[0], len(x), cols)
	}
}
