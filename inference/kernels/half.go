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

// MatVecF16 is MatVec for a matrix of IEEE halves: out[r] gets the bits
// MatVec gives for row r converted to float32. The AVX-512 kernels, and the
// AVX2 ones for cols a multiple of 8, convert each vector as they load it;
// otherwise w is converted into scratch first, which must then hold
// len(out)*cols floats. It panics if w, x or scratch is too short.
func MatVecF16(out []float32, w []uint16, x []float32, cols int, scratch []float32) {
	if len(out) == 0 {
		return
	}
	matVecF16(out, w[:len(out)*cols], x[:cols], cols, scratch)
}

// MatVecTF16 is MatVecT for a matrix of IEEE halves: out gets the bits
// MatVecT gives for w converted to float32, with scratch as for MatVecF16
// (len(x)*cols floats). It panics if out, w or scratch is too short.
func MatVecTF16(out []float32, w []uint16, x []float32, cols int, scratch []float32) {
	if cols <= 0 {
		return
	}
	matVecTF16(out[:cols], w[:len(x)*cols], x, cols, scratch)
}

// convertedMatVecF16 and convertedMatVecTF16 convert w into scratch and run
// the float32 kernel on it.
func convertedMatVecF16(out []float32, w []uint16, x []float32, cols int, scratch []float32) {
	f := scratch[:len(w)]
	halfToFloat(f, w)
	matVec(out, f, x, cols)
}

func convertedMatVecTF16(out []float32, w []uint16, x []float32, cols int, scratch []float32) {
	f := scratch[:len(w)]
	halfToFloat(f, w)
	matVecT(out, f, x, cols)
}
