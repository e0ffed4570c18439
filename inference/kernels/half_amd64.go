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
