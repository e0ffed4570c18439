package model

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The INT types are shrink's own layouts of the int8 and int4 schemes, whose
// files (compressed-tensors) keep scales apart from the codes; in memory each
// row keeps its scales beside its codes, as GGUF's blocks do:
//
//	INT8_CH    a row is its fp16 scale s, then cols int8 codes q: w = s·q.
//	INT4_Gn    a row is blocks of n weights, each an fp16 scale s, then n/2
//	           bytes of 4-bit codes u, 16 bytes per 32 weights, whose low
//	           nibbles are weights 0..15 and high nibbles 16..31 (Q4_0's
//	           order): w = s·(u − 8).
//	INT4_Gn_ASYM  as INT4_Gn with a zero-point byte z after the scale:
//	           w = s·(u − z).
//
// The codes u are compressed-tensors' signed codes plus 8, and z its zero
// point plus 8, so a group's 4-bit values copy across unchanged.

// Dequantize decodes n elements of type d from src into dst[:n] as float32.
// src must hold exactly the bytes of those elements; n must be a whole number
// of blocks for block types, and whole rows for Int8Ch, whose number follows
// from the two lengths (each row adds its 2-byte scale to its n/rows bytes).
func Dequantize(dst []float32, d DType, src []byte) error {
	be, bb := d.BlockElems(), d.BlockBytes()
	if be == 0 {
		return fmt.Errorf("cannot decode dtype %s", d)
	}
	if d == Int8Ch {
		return dequantInt8Ch(dst, src)
	}
	if len(dst)%be != 0 || len(src) != len(dst)/be*bb {
		return fmt.Errorf("%s: %d bytes do not hold %d elements", d, len(src), len(dst))
	}
	switch d {
	case Int4G32, Int4G64, Int4G128, Int4G32Asym, Int4G64Asym, Int4G128Asym:
		for b := 0; b < len(dst)/be; b++ {
			dequantInt4(dst[b*be:(b+1)*be], src[b*bb:(b+1)*bb])
		}
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

// dequantInt8Ch decodes whole INT8_CH rows; see Dequantize.
func dequantInt8Ch(dst []float32, src []byte) error {
	extra := len(src) - len(dst)
	rows := extra / 2
	if extra < 0 || extra%2 != 0 || (rows == 0) != (len(dst) == 0) || (rows > 0 && len(dst)%rows != 0) {
		return fmt.Errorf("%s: %d bytes do not hold %d elements in whole rows", Int8Ch, len(src), len(dst))
	}
	if rows == 0 {
		return nil
	}
	cols := len(dst) / rows
	for r := 0; r < rows; r++ {
		row := src[r*(cols+2) : (r+1)*(cols+2)]
		scale := F16ToF32(binary.LittleEndian.Uint16(row))
		q := row[2:]
		out := dst[r*cols : (r+1)*cols]
		for j := range out {
			out[j] = float32(int8(q[j])) * scale
		}
	}
	return nil
}

// dequantInt4 decodes one block of an INT4 type, sized by len(y); the block's
// length tells a zero-point byte is there.
func dequantInt4(y []float32, blk []byte) {
	scale := F16ToF32(binary.LittleEndian.Uint16(blk))
	zero, q := 8, blk[2:]
	if len(blk) == 3+len(y)/2 {
		zero, q = int(blk[2]), blk[3:]
	}
	for k := 0; k < len(y)/32; k++ {
		sub, out := q[16*k:16*k+16], y[32*k:32*k+32]
		for j, v := range sub {
			// Exact: an integer below 2^8 times an fp16 value fits float32's mantissa.
			out[j] = float32(int(v&0xf)-zero) * scale
			out[j+16] = float32(int(v>>4)-zero) * scale
		}
	}
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
