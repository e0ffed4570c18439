package quantize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/shrinkml/shrink/model"
)

// block32 builds a 32-weight block from f(j).
func block32(f func(j int) float32) []float32 {
	x := make([]float32, 32)
	for j := range x {
		x[j] = f(j)
	}
	return x
}

// withAt returns a copy of x with x[i] = v.
func withAt(x []float32, i int, v float32) []float32 {
	y := append([]float32(nil), x...)
	y[i] = v
	return y
}

// packQ8 is a Q8_0 block: fp16 scale, then the codes.
func packQ8(scale uint16, q func(j int) int) []byte {
	b := binary.LittleEndian.AppendUint16(nil, scale)
	for j := 0; j < 32; j++ {
		b = append(b, byte(int8(q(j))))
	}
	return b
}

// packQ4 is a Q4_0 (or, with a minimum, Q4_1) block: the fp16 header, then
// element j in the low nibble and element j+16 in the high nibble of byte j.
func packQ4(header []uint16, q func(j int) int) []byte {
	var b []byte
	for _, h := range header {
		b = binary.LittleEndian.AppendUint16(b, h)
	}
	for j := 0; j < 16; j++ {
		b = append(b, byte(q(j))|byte(q(j+16))<<4)
	}
	return b
}

func repeat(n int) func(int) int { return func(int) int { return n } }

// 2^-20, whose fp16 is the subnormal 0x0010.
var tiny = float32(math.Ldexp(1, -20))

func TestRowQ8_0(t *testing.T) {
	ints := block32(func(j int) float32 { return float32(j - 16) }) // -16..15
	for _, c := range []struct {
		name string
		x    []float32
		want []byte
	}{
		{"all zeros", make([]float32, 32), packQ8(0, repeat(0))},
		// d = 1/127 rounds to fp16 0x2008; every weight is the top code.
		{"all equal", block32(func(int) float32 { return 1 }), packQ8(0x2008, repeat(127))},
		{"one outlier", withAt(ints, 7, 127), packQ8(0x3c00, func(j int) int {
			if j == 7 {
				return 127
			}
			return j - 16
		})},
		// -254 is the largest magnitude: d = 2, q = x/2.
		{"negative max", block32(func(j int) float32 { return float32(2*(j-16)) - 228*b2f(j == 3) }),
			packQ8(0x4000, func(j int) int { return j - 16 - 114*b2i(j == 3) })},
		// With d = 1, x.5 rounds away from zero, as C's roundf does (Go's
		// RoundToEven would give 2, 0, -2).
		{"ties away from zero", withAt(block32(func(j int) float32 { return []float32{2.5, 0.5, -0.5, -2.5, 1.5}[j%5] }), 31, -127),
			packQ8(0x3c00, func(j int) int {
				if j == 31 {
					return -127
				}
				return []int{3, 1, -1, -3, 2}[j%5]
			})},
		// d = 2^-20 is an fp16 subnormal, stored exactly.
		{"subnormal scale", block32(func(j int) float32 { return float32(j*8-127) * tiny }), packQ8(0x0010, func(j int) int { return j*8 - 127 })},
		// d = 2.5 * 2^-24 sits halfway between two fp16 subnormals: to even, 2.
		{"subnormal scale tie", withAt(make([]float32, 32), 0, float32(317.5*math.Ldexp(1, -24))), packQ8(0x0002, func(j int) int { return 127 * b2i(j == 0) })},
		// d is a float32 subnormal, so 1/d is infinite; x86 llama.cpp writes
		// code 0 (cvttss2si of NaN or Inf), and the fp16 scale is 0 anyway.
		{"float32 subnormal scale", withAt(make([]float32, 32), 4, 1e-40), packQ8(0, repeat(0))},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := make([]byte, 34)
			if err := RowQ8_0(got, c.x); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.want) {
				t.Errorf("got  % x\nwant % x", got, c.want)
			}
		})
	}
}

func TestRowQ4_0(t *testing.T) {
	ramp := block32(func(j int) float32 { return float32(j%16 - 8) }) // -8..7, twice
	for _, c := range []struct {
		name string
		x    []float32
		want []byte
	}{
		// max is +0, and 0/-8 is -0: the scale is fp16 negative zero.
		{"all zeros", make([]float32, 32), packQ4([]uint16{0x8000}, repeat(8))},
		// d = -1/8; every weight is code 0, which decodes as (0-8)*d = 1.
		{"all equal", block32(func(int) float32 { return 1 }), packQ4([]uint16{0xb000}, repeat(0))},
		// -3 * (1/0.375) rounds to -8 in float32, so the codes are 0.
		{"all equal negative", block32(func(int) float32 { return -3 }), packQ4([]uint16{0x3600}, repeat(0))},
		// The first of -8 and the later -8 is the max: d = 1, q = x + 8.
		{"negative max", ramp, packQ4([]uint16{0x3c00}, func(j int) int { return j % 16 })},
		// max = +8 comes first and gives d = -1: q = 8 - x, and the outlier
		// -8 would be 16, clamped to 15 (it decodes as -7).
		{"one outlier clamped", withAt(block32(func(j int) float32 { return float32(8 - j%16) }), 20, -8),
			packQ4([]uint16{0xbc00}, func(j int) int { return j%16 + 11*b2i(j == 20) })},
		// q = trunc(x + 8.5) with d = 1 rounds halves up: 0.5 -> 9, -0.5 -> 8, -2.5 -> 6.
		{"ties", withAt(block32(func(j int) float32 { return []float32{0.5, -0.5, 1.5, -2.5}[j%4] }), 9, -8),
			packQ4([]uint16{0x3c00}, func(j int) int {
				if j == 9 {
					return 0
				}
				return []int{9, 8, 10, 6}[j%4]
			})},
		{"subnormal scale", block32(func(j int) float32 { return float32(j%16-8) * tiny }), packQ4([]uint16{0x0010}, func(j int) int { return j % 16 })},
		{"float32 subnormal scale", withAt(make([]float32, 32), 4, 1e-40), packQ4([]uint16{0x8000}, repeat(0))},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := make([]byte, 18)
			if err := RowQ4_0(got, c.x); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.want) {
				t.Errorf("got  % x\nwant % x", got, c.want)
			}
		})
	}
}

func TestRowQ4_1(t *testing.T) {
	negZero := float32(math.Copysign(0, -1))
	for _, c := range []struct {
		name string
		x    []float32
		want []byte
	}{
		{"all zeros", make([]float32, 32), packQ4([]uint16{0, 0}, repeat(0))},
		{"all negative zeros", block32(func(int) float32 { return negZero }), packQ4([]uint16{0, 0x8000}, repeat(0))},
		// max == min: d = 0 and the minimum carries the value.
		{"all equal", block32(func(int) float32 { return 2 }), packQ4([]uint16{0, 0x4000}, repeat(0))},
		{"ramp", block32(func(j int) float32 { return float32(j % 16) }), packQ4([]uint16{0x3c00, 0}, func(j int) int { return j % 16 })},
		// d = 10, id = 0.1f: 150*0.1f + 0.5 truncates to 15.
		{"one outlier", withAt(make([]float32, 32), 30, 150), packQ4([]uint16{0x4900, 0}, func(j int) int { return 15 * b2i(j == 30) })},
		{"negative max", block32(func(j int) float32 { return float32(j%16 - 16) }), packQ4([]uint16{0x3c00, 0xcc00}, func(j int) int { return j % 16 })},
		// q = trunc((x-min)/d + 0.5) rounds halves up: 2.5 -> 3, 3.5 -> 4.
		{"ties", withAt(withAt(block32(func(j int) float32 { return []float32{2.5, 3.5}[j%2] }), 0, 0), 1, 15),
			packQ4([]uint16{0x3c00, 0}, func(j int) int { return []int{0, 15, 3, 4}[min(j, 2+j%2)] })},
		{"subnormal scale", block32(func(j int) float32 { return float32(j%16) * tiny }), packQ4([]uint16{0x0010, 0}, func(j int) int { return j % 16 })},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := make([]byte, 20)
			if err := RowQ4_1(got, c.x); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.want) {
				t.Errorf("got  % x\nwant % x", got, c.want)
			}
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func b2f(b bool) float32 { return float32(b2i(b)) }

var rowFuncs = []struct {
	name string
	d    model.DType
	f    func([]byte, []float32) error
}{{"Q8_0", model.Q8_0, RowQ8_0}, {"Q4_0", model.Q4_0, RowQ4_0}, {"Q4_1", model.Q4_1, RowQ4_1}}

func TestRowErrors(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	for _, rf := range rowFuncs {
		bb := rf.d.BlockBytes()
		for _, c := range []struct {
			name string
			x    []float32
			dst  int
			want error
		}{
			{"NaN", withAt(make([]float32, 64), 40, nan), 2 * bb, ErrNotFinite},
			{"+Inf", withAt(make([]float32, 32), 0, inf), bb, ErrNotFinite},
			{"-Inf", withAt(make([]float32, 32), 31, -inf), bb, ErrNotFinite},
			// A scale beyond fp16's 65504 would decode as infinities.
			{"huge", withAt(make([]float32, 32), 3, 1e7), bb, ErrScaleRange},
			{"partial block", make([]float32, 40), bb, nil},
			{"short buffer", make([]float32, 32), bb - 1, nil},
		} {
			t.Run(rf.name+"/"+c.name, func(t *testing.T) {
				err := rf.f(make([]byte, c.dst), c.x)
				if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
					t.Fatalf("got %v, want %v", err, c.want)
				}
				t.Log(err)
			})
		}
	}
}

// TestRoundTrip checks dequantize(quantize(x)) on random blocks of many
// shapes and magnitudes against the theoretical bound: half a step of the
// float32 scale the codes were chosen with (a full step where Q4_0 clamps its
// top code), plus what storing the scale and minimum as fp16 moves each level.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const blocks = 4000
	for _, rf := range rowFuncs {
		t.Run(rf.name, func(t *testing.T) {
			x := make([]float32, 32*blocks)
			for b := 0; b < blocks; b++ {
				mag := math.Pow(10, rng.Float64()*8-5) // 1e-5 .. 1e3
				off := 0.0
				if b%3 == 0 {
					off = rng.NormFloat64() * mag // not centred, which Q4_1 handles
				}
				for j := 0; j < 32; j++ {
					v := rng.NormFloat64()*mag + off
					switch b % 5 {
					case 1:
						v = (rng.Float64()*2 - 1) * mag
					case 2:
						if j == b%32 {
							v *= 40 // an outlier
						}
					case 3:
						v = math.Abs(v) // one-signed
					}
					x[32*b+j] = float32(v)
				}
			}
			q := make([]byte, blocks*rf.d.BlockBytes())
			if err := rf.f(q, x); err != nil {
				t.Fatal(err)
			}
			y := make([]float32, len(x))
			if err := model.Dequantize(y, rf.d, q); err != nil {
				t.Fatal(err)
			}
			var worst float64
			for b := 0; b < blocks; b++ {
				xb, yb := x[32*b:32*b+32], y[32*b:32*b+32]
				blk := q[b*rf.d.BlockBytes():]
				d16 := float64(model.F16ToF32(binary.LittleEndian.Uint16(blk)))
				var d, shift float64
				var m float32 // Q4_0's signed largest weight
				switch rf.d {
				case model.Q8_0:
					for _, v := range xb {
						d = max(d, math.Abs(float64(v))/127)
					}
					shift = 127 * math.Abs(d-d16)
				case model.Q4_0:
					for _, v := range xb {
						if abs32(v) > abs32(m) {
							m = v
						}
					}
					d = float64(abs32(m)) / 8
					shift = 8 * math.Abs(d-math.Abs(d16))
				case model.Q4_1:
					lo, hi := math.Inf(1), math.Inf(-1)
					for _, v := range xb {
						lo, hi = min(lo, float64(v)), max(hi, float64(v))
					}
					d = (hi - lo) / 15
					m16 := float64(model.F16ToF32(binary.LittleEndian.Uint16(blk[2:])))
					shift = 15*math.Abs(d-d16) + math.Abs(lo-m16)
				}
				for j, v := range xb {
					steps := 0.5
					if rf.d == model.Q4_0 && m != 0 {
						// In steps the weights span [-8, 8] but the levels
						// [-8, 7]: beyond 7.5 the top code is clamped.
						steps = max(0.5, -8*float64(v)/float64(m)-7)
					}
					bound := steps*d + shift + 1e-6*(d+math.Abs(float64(v)))
					e := math.Abs(float64(v) - float64(yb[j]))
					if e > bound {
						t.Fatalf("block %d element %d: %g decodes to %g, error %g above the bound %g (d %g, fp16 %g)", b, j, v, yb[j], e, bound, d, d16)
					}
					if d > 0 {
						worst = max(worst, e/bound)
					}
				}
			}
			if worst < 0.9 {
				t.Errorf("the largest error is %.2f of the bound; is the bound tight?", worst)
			}
		})
	}
}

// halfRef is ggml's portable fp32 -> fp16 conversion (ggml_compute_fp32_to_fp16,
// from the FP16 library), the same rounding as x86's F16C instruction.
func halfRef(f float32) uint16 {
	scaleToInf := math.Float32frombits(0x77800000)
	scaleToZero := math.Float32frombits(0x08800000)
	base := float32(abs32(f)*scaleToInf) * scaleToZero
	w := math.Float32bits(f)
	shl1 := w + w
	sign := w & 0x80000000
	bias := shl1 & 0xff000000
	if bias < 0x71000000 {
		bias = 0x71000000
	}
	base = math.Float32frombits(bias>>1+0x07800000) + base
	bits := math.Float32bits(base)
	exp := bits >> 13 & 0x7c00
	mant := bits & 0x0fff
	if shl1 > 0xff000000 {
		return uint16(sign>>16) | 0x7e00
	}
	return uint16(sign>>16) | uint16(exp+mant)
}

// TestScaleConversion checks model.F32ToF16, which stores every scale,
// against ggml's conversion: every float32 exponent, with mantissas at and
// around each rounding boundary and a stride through the rest; subnormal
// and overflowing results included.
func TestScaleConversion(t *testing.T) {
	check := func(bits uint32) {
		f := math.Float32frombits(bits)
		if f != f {
			return // NaN payloads differ; quantizers reject NaN anyway
		}
		if got, want := model.F32ToF16(f), halfRef(f); got != want {
			t.Fatalf("%g (%#08x): F32ToF16 %#04x, ggml %#04x", f, bits, got, want)
		}
	}
	for exp := uint32(0); exp < 256; exp++ {
		for _, sign := range []uint32{0, 1 << 31} {
			base := sign | exp<<23
			for m := uint32(0); m < 1<<23; m += 4099 {
				check(base | m)
			}
			// Around the boundaries of every fp16 rounding, normal or subnormal.
			for k := uint32(0); k < 1<<23; k += 1 << 10 {
				for _, d := range []uint32{0, 1, 1<<9 - 1, 1 << 9, 1<<9 + 1, 1<<10 - 1} {
					check(base | (k+d)&(1<<23-1))
				}
			}
		}
	}
}

func TestCvtt(t *testing.T) {
	for _, c := range []struct {
		v    float32
		want int32
	}{{2.9, 2}, {-2.9, -2}, {float32(math.NaN()), math.MinInt32}, {float32(math.Inf(-1)), math.MinInt32}, {3e9, math.MinInt32}, {-2147483648, math.MinInt32}} {
		if got := cvtt(c.v); got != c.want {
			t.Errorf("cvtt(%g) = %d, want %d", c.v, got, c.want)
		}
	}
	if got := fmt.Sprint(nibble(16.5), nibble(0.5), nibble(float32(math.Inf(1)))); got != "15 0 0" {
		t.Errorf("nibble: %s", got)
	}
	// roundCode against roundf (math.Round) and cvtt, over every float32 in
	// 0.25 .. 128.5 (all the halfway cases codes can meet) and a stride
	// through the rest.
	check := func(v float32) {
		want := byte(cvtt(float32(math.Round(float64(v)))))
		if got := roundCode(v); got != want {
			t.Fatalf("roundCode(%g) = %d, want %d", v, got, want)
		}
	}
	for bits := uint32(0x3e800000); bits < 0x43008000; bits++ {
		check(math.Float32frombits(bits))
		check(-math.Float32frombits(bits))
	}
	for bits := uint64(0); bits < 1<<32; bits += 65537 {
		check(math.Float32frombits(uint32(bits)))
	}
}
