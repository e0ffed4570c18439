//go:build !amd64 || purego

package kernels

func halfToFloat(dst []float32, src []uint16) { halfToFloatGeneric(dst, src) }
func floatToHalf(dst []uint16, src []float32) { floatToHalfGeneric(dst, src) }

func matVecF16(out []float32, w []uint16, x []float32, cols int, scratch []float32) {
	convertedMatVecF16(out, w, x, cols, scratch)
}

func matVecTF16(out []float32, w []uint16, x []float32, cols int, scratch []float32) {
	convertedMatVecTF16(out, w, x, cols, scratch)
}
