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
