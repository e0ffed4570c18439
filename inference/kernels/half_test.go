package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/shrinkml/shrink/model"
)

// TestHalfToFloat converts every half, in slices of the test sizes at every
// offset into them, and wants the bits of the scalar conversion and nothing
// written past the destination.
func TestHalfToFloat(t *testing.T) {
	all := make([]uint16, 1<<16)
	for i := range all {
		all[i] = uint16(i)
	}
	eachVariant(t, func(t *testing.T) {
		got := make([]float32, len(all))
		F16ToF32(got, all)
		for i, h := range all {
			if want := halfToFloatRef(h); math.Float32bits(got[i]) != math.Float32bits(want) {
				t.Fatalf("F16ToF32(%#04x) = %#08x, want %#08x", h, math.Float32bits(got[i]), math.Float32bits(want))
			}
		}
		for _, n := range sizes {
			for _, off := range []int{0, 1, 7, 40000} {
				src := all[off : off+n]
				dst := make([]float32, n+20)
				for i := range dst {
					dst[i] = -7
				}
				F16ToF32(dst[1:1+n], src)
				for i, v := range dst {
					want := float32(-7)
					if i >= 1 && i <= n {
						want = halfToFloatRef(src[i-1])
					}
					if math.Float32bits(v) != math.Float32bits(want) {
						t.Fatalf("n=%d off=%d: dst[%d] = %g, want %g", n, off, i, v, want)
					}
				}
			}
		}
	})
}

// halfToFloatRef is the exact value of h, NaNs made quiet as F16C does.
func halfToFloatRef(h uint16) float32 {
	if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
		h |= 0x200
	}
	return model.F16ToF32(h)
}

// TestFloatToHalf rounds the edge cases of the half range and random floats
// of every magnitude, and wants model.F32ToF16's bits from every variant,
// nothing written past the destination, and every half back unchanged from
// its float32 value.
func TestFloatToHalf(t *testing.T) {
	special := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 65504, 65519.99, 65520, -65520, 1e10,
		float32(math.Inf(1)), float32(math.Inf(-1)), 0x1p-14, 0x1p-24, 0x1p-25, 0x1.000002p-25, 0x1.8p-24,
		0x1.8p-23, 0x1p-26, -0x1p-25, 0x1.ffep-15, 1.0009765625, 1.00048828125, 1.000488281251, 2049, 2051,
		float32(math.NaN()), math.Float32frombits(0x7f800001), math.Float32frombits(0xffc12345)}
	rng := rand.New(rand.NewPCG(41, 42))
	src := append([]float32(nil), special...)
	for len(src) < 1<<16 {
		e := rng.IntN(60) - 40
		src = append(src, float32(math.Ldexp(rng.Float64()*2-1, e)))
	}
	for h := range 1 << 16 {
		src = append(src, halfToFloatRef(uint16(h)))
	}
	eachVariant(t, func(t *testing.T) {
		got := make([]uint16, len(src))
		F32ToF16(got, src)
		for i, v := range src {
			want := model.F32ToF16(v)
			if got[i] != want {
				t.Fatalf("F32ToF16(%g = %#08x) = %#04x, want %#04x", v, math.Float32bits(v), got[i], want)
			}
		}
		for h := range 1 << 16 {
			back := got[len(got)-1<<16+h]
			if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
				if back != uint16(h)|0x200 {
					t.Fatalf("NaN %#04x came back as %#04x", h, back)
				}
			} else if back != uint16(h) {
				t.Fatalf("%#04x came back as %#04x", h, back)
			}
		}
		for _, n := range sizes {
			dst := make([]uint16, n+20)
			for i := range dst {
				dst[i] = 0xbeef
			}
			F32ToF16(dst[1:1+n], src[3:3+n])
			for i, v := range dst {
				want := uint16(0xbeef)
				if i >= 1 && i <= n {
					want = model.F32ToF16(src[2+i])
				}
				if v != want {
					t.Fatalf("n=%d: dst[%d] = %#04x, want %#04x", n, i, v, want)
				}
			}
		}
	})
}

// randomHalves returns n halves of random values in [-2, 2) followed, in the
// same backing array, by NaN halves, starting one half into it: a kernel
// that reads past the end of its slice gets NaN.
func randomHalves(rng *rand.Rand, n int) []uint16 {
	buf := make([]uint16, n+40)
	for i := range buf {
		buf[i] = 0x7e00
	}
	s := buf[1 : 1+n]
	for i := range s {
		s[i] = model.F32ToF16(rng.Float32()*4 - 2)
	}
	return s
}

// TestMatVecF16 wants from MatVecF16 and MatVecTF16 the bits that MatVec and
// MatVecT give on the converted matrix, in every variant, for row counts
// around the four- and eight-row groups and columns of the test sizes and
// multiples of 8.
func TestMatVecF16(t *testing.T) {
	eachVariant(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(43, 44))
		for _, rows := range []int{1, 3, 7, 8, 9, 15, 16, 17, 33, 160} {
			// The test sizes, and multiples of 8 (AVX2's fused kernels)
			// that end in one 8-element vector.
			for _, cols := range append(sizes[:len(sizes):len(sizes)], 8, 24, 40, 72, 136) {
				w := randomHalves(rng, rows*cols)
				f := make([]float32, len(w))
				F16ToF32(f, w)
				x := poisoned(rng, cols)
				got, want := make([]float32, rows), make([]float32, rows)
				scratch := make([]float32, len(w))
				MatVecF16(got, w, x, cols, scratch)
				MatVec(want, f, x, cols)
				for r := range got {
					if !sameBits(got[r], want[r]) {
						t.Fatalf("MatVecF16 %dx%d: row %d = %g, MatVec %g", rows, cols, r, got[r], want[r])
					}
				}
				p := poisoned(rng, rows)
				gotT, wantT := make([]float32, cols+1), make([]float32, cols+1)
				gotT[cols], wantT[cols] = 7, 7
				MatVecTF16(gotT[:cols], w, p, cols, scratch)
				MatVecT(wantT[:cols], f, p, cols)
				for j := range gotT {
					if !sameBits(gotT[j], wantT[j]) {
						t.Fatalf("MatVecTF16 %dx%d: out[%d] = %g, MatVecT %g", rows, cols, j, gotT[j], wantT[j])
					}
				}
			}
		}
	})
}
