package quantize

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/shrinkml/shrink/model"
)

// blockScale is how one 32-weight block is stored: the scale (and Q4_1
// minimum), chosen as the RTN row functions choose them with the weights that
// set them pinned to their extreme codes (chooseScale), or searched with
// nothing pinned (see scaleSearch).
type blockScale struct {
	id    float32 // 1/d as RTN computes it (0 when d is 0); 1/stored d when searched
	lo    float32 // Q4_1: the float32 minimum the codes are measured from (the stored one when searched)
	d, m  float32 // the stored fp16 scale and minimum, as float32
	dBits uint16
	mBits uint16
	// pins[k] forces the weight at column pins[k].col of the block to code
	// pins[k].code; col is -1 when unused.
	pins [2]struct{ col, code int }
	// intType is the INT type of an int8 row or int4 group (model.Invalid
	// for GGUF's blocks), and zero its zero point (signed, as RowInt4's).
	intType model.DType
	zero    int
}

// chooseIntScale picks the scale (and zero point) of an int8 row or int4
// group x of the INT type d as RowInt8Ch and RowInt4 do, nothing pinned:
// their codes are rounded against the stored scale, which no later weight
// moves.
func chooseIntScale(d model.DType, x []float32) (blockScale, error) {
	bs := blockScale{intType: d}
	bs.pins[0].col, bs.pins[1].col = -1, -1
	var lo, hi float32
	for _, v := range x {
		lo, hi = min(lo, v), max(hi, v)
	}
	_, asym, _ := Int4Layout(d)
	v := max(-lo, hi) / 7.5
	switch {
	case d == model.Int8Ch:
		v = max(-lo, hi) / 127.5
	case asym:
		v = (hi - lo) / 15
	}
	bs.dBits = model.F32ToF16(v)
	if bs.dBits&0x7fff == 0x7c00 {
		return bs, fmt.Errorf("scale %g: %w", v, ErrScaleRange)
	}
	bs.d = model.F16ToF32(bs.dBits)
	if asym && bs.d != 0 {
		bs.zero = int(max(-8, min(7, math.RoundToEven(float64(-8-lo/bs.d)))))
	}
	return bs, nil
}

// encodeIntBlock writes an int8 row (scale, codes) or an int4 group (scale,
// zero point, nibbles) from its signed codes, in column order.
func encodeIntBlock(d model.DType, y []byte, bs *blockScale, codes []int8) {
	binary.LittleEndian.PutUint16(y, bs.dBits)
	if d == model.Int8Ch {
		for j, c := range codes {
			y[2+j] = byte(c)
		}
		return
	}
	q := y[2:]
	if _, asym, _ := Int4Layout(d); asym {
		y[2], q = byte(bs.zero+8), y[3:]
	}
	for k := 0; k < len(codes)/32; k++ {
		c := codes[32*k : 32*k+32]
		for j := range 16 {
			q[16*k+j] = byte(c[j]+8) | byte(c[j+16]+8)<<4
		}
	}
}

// chooseScale picks a block's scale from its current weights x (32 values),
// with RowQ8_0, RowQ4_0 and RowQ4_1's float32 arithmetic and tie rules.
//
// The weight that sets the scale (the largest magnitude; for Q4_1 the minimum
// and the maximum) is pinned to the extreme code it would get from RTN. GPTQ
// changes the block's other weights before they are rounded, and the pinned
// one would otherwise drift off its extreme code; pinned, the finished block
// is exactly what the RTN row function writes for its own dequantized values,
// so the block still holds the scale RTN would pick. The pinned weight's error
// is propagated like any other.
func chooseScale(sc Scheme, x []float32) (blockScale, error) {
	var bs blockScale
	bs.pins[0].col, bs.pins[1].col = -1, -1
	var d float32
	switch sc {
	case Q8_0:
		var amax float32
		arg := 0
		for j, v := range x {
			if a := abs32(v); a > amax {
				amax, arg = a, j
			}
		}
		d = amax / 127
		if d != 0 {
			bs.pins[0].col, bs.pins[0].code = arg, 127
			if x[arg] < 0 {
				bs.pins[0].code = -127
			}
		}
	case Q4_0:
		var amax, m float32
		arg := 0
		for j, v := range x {
			if a := abs32(v); amax < a {
				amax, m, arg = a, v, j
			}
		}
		d = m / -8
		if d != 0 {
			bs.pins[0].col, bs.pins[0].code = arg, 0
		}
	case Q4_1:
		lo, hi := float32(math.MaxFloat32), float32(-math.MaxFloat32)
		argLo, argHi := 0, 0
		for j, v := range x {
			if v < lo {
				lo, argLo = v, j
			}
			if v > hi {
				hi, argHi = v, j
			}
		}
		d = (hi - lo) / 15
		bs.lo = lo
		bs.mBits = model.F32ToF16(lo)
		if bs.mBits&0x7fff == 0x7c00 {
			return bs, fmt.Errorf("minimum %g: %w", lo, ErrScaleRange)
		}
		bs.m = model.F16ToF32(bs.mBits)
		if d != 0 {
			bs.pins[0].col, bs.pins[0].code = argLo, 0
			bs.pins[1].col, bs.pins[1].code = argHi, 15
		}
	default:
		return bs, fmt.Errorf("gptq: scheme %q is not a block type", sc)
	}
	if d != 0 {
		bs.id = 1 / d
	}
	bs.dBits = model.F32ToF16(d)
	if bs.dBits&0x7fff == 0x7c00 {
		return bs, fmt.Errorf("scale %g: %w", d, ErrScaleRange)
	}
	bs.d = model.F16ToF32(bs.dBits)
	return bs, nil
}

// quantizeWeight returns the code RTN's rounding gives x under bs, clamped to
// the block's range (GPTQ's updated weights may fall outside the range the
// scale was chosen for), and the value the code decodes to, computed as
// model.Dequantize does. col is x's column in its block.
func quantizeWeight(sc Scheme, bs *blockScale, col int, x float32) (int, float32) {
	if bs.intType != model.Invalid {
		lo, hi := -8, 7
		if bs.intType == model.Int8Ch {
			lo, hi = -128, 127
		}
		code := clampCode(x, bs.d, bs.zero, lo, hi)
		return code, float32(code-bs.zero) * bs.d
	}
	code := -1000
	for _, p := range bs.pins {
		if p.col == col {
			code = p.code
		}
	}
	switch sc {
	case Q8_0:
		if code == -1000 {
			code = roundClamp(float32(x*bs.id), 127)
		}
		return code, float32(code) * bs.d
	case Q4_0:
		if code == -1000 {
			code = truncClamp(float32(x*bs.id) + 8.5)
		}
		return code, float32(code-8) * bs.d
	default: // Q4_1
		if code == -1000 {
			code = truncClamp(float32((x-bs.lo)*bs.id) + 0.5)
		}
		return code, float32(float32(code)*bs.d) + bs.m
	}
}

// roundClamp rounds v to nearest, halfway away from zero (roundCode's rule),
// within [-lim, lim].
func roundClamp(v float32, lim int) int {
	if !(v > -float32(lim)) {
		return -lim
	}
	if !(v < float32(lim)) {
		return lim
	}
	t := int(v)
	if f := v - float32(t); f >= 0.5 {
		t++
	} else if f <= -0.5 {
		t--
	}
	return t
}

// truncClamp is nibble's truncation, kept within [0, 15].
func truncClamp(v float32) int {
	if !(v >= 0) {
		return 0
	}
	if v >= 15 {
		return 15
	}
	return int(v)
}

// encodeBlock writes one block's scale(s) and 32 codes (in column order).
func encodeBlock(sc Scheme, y []byte, bs *blockScale, codes []int8) {
	binary.LittleEndian.PutUint16(y, bs.dBits)
	switch sc {
	case Q8_0:
		for j, c := range codes[:32] {
			y[2+j] = byte(c)
		}
	case Q4_0:
		for j := range 16 {
			y[2+j] = byte(codes[j]) | byte(codes[j+16])<<4
		}
	case Q4_1:
		binary.LittleEndian.PutUint16(y[2:], bs.mBits)
		for j := range 16 {
			y[4+j] = byte(codes[j]) | byte(codes[j+16])<<4
		}
	}
}
