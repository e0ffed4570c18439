package quantize

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/shrinkml/shrink/model"
)

// The int8 and int4 schemes round as compressed-tensors' calculate_qparams
// and quantize do (src/compressed_tensors/quantization/utils/helpers.py and
// lifecycle/forward.py of github.com/vllm-project/compressed-tensors), in
// float32: the range always includes zero; a symmetric scale is
// max|w| / ((qmax−qmin)/2), i.e. /127.5 for int8 and /7.5 for int4, with
// codes clamped to [−128, 127] or [−8, 7]; an asymmetric int4 scale is
// (max−min)/15 with the zero point z = round(−8 − min/s) clamped to [−8, 7].
// Each scale is stored as fp16 first and the codes are rounded (to nearest
// even, as torch.round does) against the stored scale, so they are the best
// codes for the scale a reader sees.

// RowInt8Ch encodes one row src into dst as INT8_CH: its fp16 scale, then
// one int8 code per weight (len(src)+2 bytes).
func RowInt8Ch(dst []byte, src []float32) error {
	if len(dst) != len(src)+2 {
		return fmt.Errorf("%s: %d weights need %d bytes, the buffer has %d", model.Int8Ch, len(src), len(src)+2, len(dst))
	}
	var amax float32
	for j, v := range src {
		if !finite(v) {
			return notFinite(j, v)
		}
		amax = max(amax, abs32(v))
	}
	s, err := storeScale(dst, amax/127.5, 0)
	if err != nil {
		return err
	}
	q := dst[2:]
	for j, v := range src {
		q[j] = byte(int8(code(v, s, 0, -128, 127)))
	}
	return nil
}

// RowInt4 encodes src, a whole number of groups, into dst as d, one of the
// INT4 types (model.Int4G32 to model.Int4G128Asym).
func RowInt4(d model.DType, dst []byte, src []float32) error {
	g, asym, ok := Int4Layout(d)
	if !ok {
		return fmt.Errorf("%s is not an int4 type", d)
	}
	if err := checkRow(d, dst, src); err != nil {
		return err
	}
	bb := d.BlockBytes()
	for b := 0; b < len(src)/g; b++ {
		x := src[b*g : (b+1)*g : (b+1)*g]
		y := dst[b*bb : (b+1)*bb : (b+1)*bb]
		var lo, hi float32 // zero is always in the range
		for j, v := range x {
			if !finite(v) {
				return notFinite(b*g+j, v)
			}
			lo, hi = min(lo, v), max(hi, v)
		}
		zero, codes := 0, y[2:]
		var s float32
		var err error
		if asym {
			if s, err = storeScale(y, (hi-lo)/15, b); err != nil {
				return err
			}
			if s != 0 {
				zero = int(max(-8, min(7, math.RoundToEven(float64(-8-lo/s)))))
			}
			y[2], codes = byte(zero+8), y[3:]
		} else if s, err = storeScale(y, max(-lo, hi)/7.5, b); err != nil {
			return err
		}
		for k := 0; k < g/32; k++ {
			xs, qs := x[32*k:32*k+32], codes[16*k:16*k+16]
			for j := range qs {
				u0 := code(xs[j], s, zero, -8, 7) + 8
				u1 := code(xs[j+16], s, zero, -8, 7) + 8
				qs[j] = byte(u0) | byte(u1)<<4
			}
		}
	}
	return nil
}

// Int4Layout returns the group size of an INT4 type and whether it is
// asymmetric; ok is false for any other type.
func Int4Layout(d model.DType) (group int, asym, ok bool) {
	switch d {
	case model.Int4G32, model.Int4G64, model.Int4G128:
		return d.BlockElems(), false, true
	case model.Int4G32Asym, model.Int4G64Asym, model.Int4G128Asym:
		return d.BlockElems(), true, true
	}
	return 0, false, false
}

// isInt reports whether d is one of the int schemes' types.
func isInt(d model.DType) bool {
	_, _, ok := Int4Layout(d)
	return ok || d == model.Int8Ch
}

// Int4DType is the INT4 type of a group size (32, 64 or 128) and symmetry,
// or model.Invalid for another group size.
func Int4DType(group int, asym bool) model.DType {
	for _, d := range []model.DType{model.Int4G32, model.Int4G64, model.Int4G128,
		model.Int4G32Asym, model.Int4G64Asym, model.Int4G128Asym} {
		if g, a, _ := Int4Layout(d); g == group && a == asym {
			return d
		}
	}
	return model.Invalid
}

// storeScale stores v as fp16 at the start of y and returns the value stored.
func storeScale(y []byte, v float32, block int) (float32, error) {
	h := model.F32ToF16(v)
	if h&0x7fff == 0x7c00 {
		return 0, fmt.Errorf("block %d: %g: %w", block, v, ErrScaleRange)
	}
	binary.LittleEndian.PutUint16(y, h)
	return model.F16ToF32(h), nil
}

// code is round(v/s + zero) clamped to [lo, hi], and zero when s is 0 (a
// group of zeros).
func code(v, s float32, zero, lo, hi int) int { return clampCode(v, s, zero, lo, hi) }

// clampCode is code; a NaN (which only a diverging GPTQ update could make)
// gives the zero point.
func clampCode(v, s float32, zero, lo, hi int) int {
	if s == 0 {
		return zero
	}
	r := math.RoundToEven(float64(v/s + float32(zero)))
	if r != r {
		return zero
	}
	return int(max(float64(lo), min(float64(hi), r)))
}
