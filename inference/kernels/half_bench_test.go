package kernels

import (
	"fmt"
	"testing"
)

// BenchmarkHalf converts one attention head's keys as decode does: 160
// positions of 64 (L1-resident), and a whole 12 MB cache's worth (memory).
// MB/s counts the half-precision bytes.
func BenchmarkHalf(b *testing.B) {
	benchVariants(b, func(b *testing.B) {
		for _, n := range []int{160 * 64, 3 << 20} {
			h := make([]uint16, n)
			f := make([]float32, n)
			for i := range f {
				f[i] = float32(i%1000) * 0.01
			}
			b.Run(fmt.Sprintf("F32ToF16/%d", n), func(b *testing.B) {
				b.SetBytes(int64(2 * n))
				for b.Loop() {
					F32ToF16(h, f)
				}
			})
			b.Run(fmt.Sprintf("F16ToF32/%d", n), func(b *testing.B) {
				b.SetBytes(int64(2 * n))
				for b.Loop() {
					F16ToF32(f, h)
				}
			})
		}
	})
}

// BenchmarkMatVecF16 is one decode attention head with 160 cached positions
// of 64 (L1-resident): the scores (MatVec) and the weighted values
// (MatVecT) from float32 rows and from half-precision ones. MB/s counts the
// matrix bytes.
func BenchmarkMatVecF16(b *testing.B) {
	const rows, cols = 160, 64
	f := make([]float32, rows*cols)
	for i := range f {
		f[i] = float32(i%97) * 0.01
	}
	h := make([]uint16, len(f))
	F32ToF16(h, f)
	x, out := make([]float32, rows), make([]float32, rows)
	for i := range x {
		x[i] = 0.01
	}
	scratch := make([]float32, len(f))
	benchVariants(b, func(b *testing.B) {
		b.Run("MatVec/f32", func(b *testing.B) {
			b.SetBytes(int64(4 * len(f)))
			for b.Loop() {
				MatVec(out, f, x[:cols], cols)
			}
		})
		b.Run("MatVec/f16", func(b *testing.B) {
			b.SetBytes(int64(2 * len(h)))
			for b.Loop() {
				MatVecF16(out, h, x[:cols], cols, scratch)
			}
		})
		b.Run("MatVecT/f32", func(b *testing.B) {
			b.SetBytes(int64(4 * len(f)))
			for b.Loop() {
				MatVecT(out[:cols], f, x, cols)
			}
		})
		b.Run("MatVecT/f16", func(b *testing.B) {
			b.SetBytes(int64(2 * len(h)))
			for b.Loop() {
				MatVecTF16(out[:cols], h, x, cols, scratch)
			}
		})
	})
}
