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
func matVec8F16AVX512(out *float32, w *uint16, x *float32, groups, cols int)

//go:noescape
func dotF16AVX512(a *uint16, b *float32, n int) float32

//go:noescape
func matVecTF16AVX512(out *float32, w *uint16, x *float32, rows, cols int)

// matVecF16 runs the eight-row kernel over whole groups of rows and the
// one-row one over the rest: every row gets dotAVX512's bits, as in matVec.
func matVecF16(out []float32, w []uint16, x []float32, cols int, scratch []float32) {
	if impl != implAVX512 || cols == 0 {
		convertedMatVecF16(out, w, x, cols, scratch)
		return
	}
	r := 0
	if g := len(out) / 8; g > 0 {
		matVec8F16AVX512(&out[0], &w[0], &x[0], g, cols)
		r = 8 * g
	}
	for ; r < len(out); r++ {
		out[r] = dotF16AVX512(&w[r*cols], &x[0], cols)
	}
}

func matVecTF16(out []float32, w []uint16, x []float32, cols int, scratch []float32) {
	if impl != implAVX512 || len(x) == 0 {
		convertedMatVecTF16(out, w, x, cols, scratch)
		return
	}
	matVecTF16AVX512(&out[0], &w[0], &x[0], len(x), cols)
}
