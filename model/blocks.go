package model

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Dequantize decodes n elements of type d from src into dst[:n] as float32.
// src must hold exactly the bytes of those elements; n must be a whole number
// of blocks for block types.
func Dequantize(dst []float32, d DType, src []byte) error {
	be, bb := d.BlockElems(), d.BlockBytes()
	if be == 0 {
		return fmt.Errorf("cannot decode dtype %s", d)
	}
	if len(dst)%be != 0 || len(src) != len(dst)/be*bb {
		return fmt.Errorf("%s: %d bytes do not hold %d elements", d, len(src), len(dst))
	}
	switch d {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		DecodeF16(dst, src)
	case BF16:
		DecodeBF16(dst, src)
	case I8:
		for i := range dst {
			dst[i] = float32(int8(src[i]))
		}
	case U8:
		for i := range dst {
			dst[i] = float32(src[i])
		}
	case I32:
		for i := range dst {
			dst[i] = float32(int32(binary.LittleEndian.Uint32(src[4*i:])))
		}
	case Q8_0:
		for b := 0; b < len(dst)/32; b++ {
			blk := src[b*34 : b*34+34]
			scale := F16ToF32(binary.LittleEndian.Uint16(blk))
			out := dst[b*32 : b*32+32]
			for j := range out {
				out[j] = float32(int8(blk[2+j])) * scale
			}
		}
	case Q4_0:
		for b := 0; b < len(dst)/32; b++ {
			blk := src[b*18 : b*18+18]
			scale := F16ToF32(binary.LittleEndian.Uint16(blk))
			out := dst[b*32 : b*32+32]
			for j := 0; j < 16; j++ {
				out[j] = float32(int(blk[2+j]&0xf)-8) * scale
				out[j+16] = float32(int(blk[2+j]>>4)-8) * scale
			}
		}
	case Q4_1:
		for b := 0; b < len(dst)/32; b++ {
			blk := src[b*20 : b*20+20]
			scale := F16ToF32(binary.LittleEndian.Uint16(blk))
			minv := F16ToF32(binary.LittleEndian.Uint16(blk[2:]))
			out := dst[b*32 : b*32+32]
			for j := 0; j < 16; j++ {
				// float32() rounds the product, so no platform fuses it into an FMA.
				out[j] = float32(float32(blk[4+j]&0xf)*scale) + minv
				out[j+16] = float32(float32(blk[4+j]>>4)*scale) + minv
			}
		}
	case Q4_K:
		for b := 0; b < len(dst)/256; b++ {
			dequantQ4K(dst[b*256:b*256+256], src[b*144:b*144+144])
		}
	case Q6_K:
		for b := 0; b < len(dst)/256; b++ {
			dequantQ6K(dst[b*256:b*256+256], src[b*210:b*210+210])
		}
	default:
		return fmt.Errorf("cannot decode dtype %s", d)
	}
	return nil
}

// scaleMinK4 unpacks the j-th 6-bit scale and min of a Q4_K block (ggml's get_scale_min_k4).
func scaleMinK4(j int, q []byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xf | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// dequantQ4K decodes one 256-weight Q4_K super-block: fp16 d, fp16 dmin,
// 12 bytes of packed 6-bit scales and mins, then 128 bytes of nibbles.
func dequantQ4K(y []float32, blk []byte) {
	d := F16ToF32(binary.LittleEndian.Uint16(blk))
	dmin := F16ToF32(binary.LittleEndian.Uint16(blk[2:]))
	scales := blk[4:16]
	q := blk[16:144]
	for j, is := 0, 0; j < 256; j, is = j+64, is+2 {
		// Every product is rounded by an explicit float32(), so that no
		// platform fuses one into an FMA and results match ggml everywhere.
		sc, m := scaleMinK4(is, scales)
		d1, m1 := float32(d*float32(sc)), float32(dmin*float32(m))
		sc, m = scaleMinK4(is+1, scales)
		d2, m2 := float32(d*float32(sc)), float32(dmin*float32(m))
		for l := 0; l < 32; l++ {
			y[j+l] = float32(d1*float32(q[l]&0xf)) - m1
			y[j+32+l] = float32(d2*float32(q[l]>>4)) - m2
		}
		q = q[32:]
	}
}

// dequantQ6K decodes one 256-weight Q6_K super-block: 128 bytes of low nibbles,
// 64 bytes of high 2-bit pairs, 16 int8 scales, then fp16 d.
func dequantQ6K(y []float32, blk []byte) {
	ql := blk[0:128]
	qh := blk[128:192]
	sc := blk[192:208]
	d := F16ToF32(binary.LittleEndian.Uint16(blk[208:]))
	for n := 0; n < 256; n += 128 {
		for l := 0; l < 32; l++ {
			is := l / 16
			q1 := int(ql[l]&0xf|((qh[l]>>0)&3)<<4) - 32
			q2 := int(ql[l+32]&0xf|((qh[l]>>2)&3)<<4) - 32
			q3 := int(ql[l]>>4|((qh[l]>>4)&3)<<4) - 32
			q4 := int(ql[l+32]>>4|((qh[l]>>6)&3)<<4) - 32
			y[n+l] = d * float32(int8(sc[is])) * float32(q1)
			y[n+l+32] = d * float32(int8(sc[is+2])) * float32(q2)
			y[n+l+64] = d * float32(int8(sc[is+4])) * float32(q3)
			y[n+l+96] = d * float32(int8(sc[is+6])) * float32(q4)
		}
		ql = ql[64:]
		qh = qh[32:]
		sc = sc[8:]
	}
}
