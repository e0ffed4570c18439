package quantize

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/shrinkml/shrink/model"
)

// ErrNotFinite is wrapped by errors for a NaN or an infinity in the input: no
// block type can hold one, and llama.cpp would silently write garbage.
var ErrNotFinite = errors.New("not a finite number")

// ErrScaleRange is wrapped by errors for a block whose scale (or Q4_1 minimum)
// does not fit in fp16, which would decode as infinities.
var ErrScaleRange = errors.New("scale out of fp16 range")

// The block quantizers below reproduce llama.cpp's reference quantizers
// (quantize_row_*_ref in ggml-quants.c) byte for byte: float32 arithmetic,
// the scale stored as fp16 rounded to nearest even, and the same rounding of
// every weight. Products are wrapped in float32() where the C code rounds
// them, so that Go never fuses one with the following addition into an FMA.
// Slicing each block to its exact length up front lets the compiler drop the
// bounds checks in the inner loops.

// RowQ8_0 encodes src, a whole number of 32-weight blocks, into dst as Q8_0
// (34 bytes a block), as llama.cpp's quantize_row_q8_0_ref does.
func RowQ8_0(dst []byte, src []float32) error {
	if err := checkRow(model.Q8_0, dst, src); err != nil {
		return err
	}
	for b := 0; b < len(src)/32; b++ {
		x := src[b*32 : b*32+32 : b*32+32]
		y := dst[b*34 : b*34+34 : b*34+34]
		var amax float32
		for j, v := range x {
			if !finite(v) {
				return notFinite(b*32+j, v)
			}
			amax = max(amax, abs32(v))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		if err := putScale(y, d, b); err != nil {
			return err
		}
		q := y[2:34:34]
		for j, v := range x {
			q[j] = roundCode(v * id)
		}
	}
	return nil
}

// RowQ4_0 encodes src, a whole number of 32-weight blocks, into dst as Q4_0
// (18 bytes a block), as llama.cpp's quantize_row_q4_0_ref does: the scale is
// the signed value of largest magnitude (the first one, on ties) divided by -8.
func RowQ4_0(dst []byte, src []float32) error {
	if err := checkRow(model.Q4_0, dst, src); err != nil {
		return err
	}
	for b := 0; b < len(src)/32; b++ {
		x := src[b*32 : b*32+32 : b*32+32]
		y := dst[b*18 : b*18+18 : b*18+18]
		var amax, m float32
		for j, v := range x {
			if !finite(v) {
				return notFinite(b*32+j, v)
			}
			if a := abs32(v); amax < a {
				amax, m = a, v
			}
		}
		d := m / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		if err := putScale(y, d, b); err != nil {
			return err
		}
		lo, hi, q := x[:16:16], x[16:32:32], y[2:18:18]
		for j := range q {
			x0 := float32(lo[j] * id)
			x1 := float32(hi[j] * id)
			q[j] = nibble(x0+8.5) | nibble(x1+8.5)<<4
		}
	}
	return nil
}

// RowQ4_1 encodes src, a whole number of 32-weight blocks, into dst as Q4_1
// (20 bytes a block), as llama.cpp's quantize_row_q4_1_ref does: the block's
// minimum is stored beside a scale of (max-min)/15.
func RowQ4_1(dst []byte, src []float32) error {
	if err := checkRow(model.Q4_1, dst, src); err != nil {
		return err
	}
	for b := 0; b < len(src)/32; b++ {
		x := src[b*32 : b*32+32 : b*32+32]
		y := dst[b*20 : b*20+20 : b*20+20]
		lo, hi := float32(math.MaxFloat32), float32(-math.MaxFloat32)
		for j, v := range x {
			if !finite(v) {
				return notFinite(b*32+j, v)
			}
			if v < lo {
				lo = v
			}
			if v > hi {
				hi = v
			}
		}
		d := (hi - lo) / 15
		var id float32
		if d != 0 {
			id = 1 / d
		}
		if err := putScale(y, d, b); err != nil {
			return err
		}
		if err := putScale(y[2:], lo, b); err != nil {
			return err
		}
		xl, xh, q := x[:16:16], x[16:32:32], y[4:20:20]
		for j := range q {
			x0 := float32((xl[j] - lo) * id)
			x1 := float32((xh[j] - lo) * id)
			q[j] = nibble(x0+0.5) | nibble(x1+0.5)<<4
		}
	}
	return nil
}

// checkRow verifies that src is whole blocks and dst exactly their size.
func checkRow(d model.DType, dst []byte, src []float32) error {
	be, bb := d.BlockElems(), d.BlockBytes()
	if len(src)%be != 0 {
		return fmt.Errorf("%s: %d weights are not a whole number of %d-weight blocks", d, len(src), be)
	}
	if len(dst) != len(src)/be*bb {
		return fmt.Errorf("%s: %d weights need %d bytes, the buffer has %d", d, len(src), len(src)/be*bb, len(dst))
	}
	return nil
}

// putScale stores v as little-endian fp16 at the start of y.
func putScale(y []byte, v float32, block int) error {
	h := model.F32ToF16(v)
	if h&0x7fff == 0x7c00 {
		return fmt.Errorf("block %d: %g: %w", block, v, ErrScaleRange)
	}
	binary.LittleEndian.PutUint16(y, h)
	return nil
}

func notFinite(i int, v float32) error {
	return fmt.Errorf("element %d is %v: %w", i, v, ErrNotFinite)
}

func finite(v float32) bool { return math.Float32bits(v)&0x7f800000 != 0x7f800000 }

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// roundCode is the C assignment int8_t q = roundf(v): rounded to nearest with
// halfway cases away from zero, then converted as cvtt does and cut to a byte.
func roundCode(v float32) byte {
	if !(v > -2147483648 && v < 2147483648) {
		return 0 // the low byte of cvtt's 0x80000000
	}
	t := int32(v)
	// Taking the integer part away is exact, so f is the exact fraction.
	if f := v - float32(t); f >= 0.5 {
		t++
	} else if f <= -0.5 {
		t--
	}
	return byte(t)
}

// cvtt converts like x86's cvttss2si, which the C casts compile to: toward
// zero, and 0x80000000 for NaN or anything out of int32 range. Finite weights
// never get there; only a block whose scale is below float32's normal range
// (an fp16 scale of zero, so it decodes as zeros anyway) makes 1/d infinite.
func cvtt(v float32) int32 {
	if v > -2147483648 && v < 2147483648 {
		return int32(v)
	}
	return math.MinInt32
}

// nibble is the C expression MIN(15, (int8_t)v) stored in a uint8_t.
func nibble(v float32) byte { return byte(min(15, int8(cvtt(v)))) }
