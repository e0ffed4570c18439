package kernels

import "github.com/shrinkml/shrink/model"

func halfToFloatGeneric(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			h |= 0x200 // a NaN comes out quiet, as VCVTPH2PS makes it
		}
		dst[i] = f16ToF32(h)
	}
}

func floatToHalfGeneric(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = model.F32ToF16(v)
	}
}
