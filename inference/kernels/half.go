package kernels

// F16ToF32 sets dst[i] to the value of the IEEE half src[i], exactly (every
// half is a float32). It panics if dst is shorter than src.
func F16ToF32(dst []float32, src []uint16) {
	halfToFloat(dst[:len(src)], src)
}

// F32ToF16 sets dst[i] to src[i] rounded to the nearest IEEE half, ties to
// even: beyond the half range to infinities, NaNs to quiet NaNs keeping the
// sign and the top of the payload, as model.F32ToF16 and the F16C
// instruction VCVTPS2PH do, so every variant gives the same bits. It panics
// if dst is shorter than src.
func F32ToF16(dst []uint16, src []float32) {
	floatToHalf(dst[:len(src)], src)
}
