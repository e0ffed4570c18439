//go:build !amd64 || purego

package kernels

func halfToFloat(dst []float32, src []uint16) { halfToFloatGeneric(dst, src) }
func floatToHalf(dst []uint16, src []float32) { floatToHalfGeneric(dst, src) }
