//go:build amd64 && !purego

package kernels

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// BenchmarkFMAPeak measures the single-core float32 FMA peak: 16 (AVX-512) or
// 12 (AVX2) independent FMA chains, more than latency times ports, so the loop
// runs at the FMA issue rate. GFLOP/s counts 2 flops per lane per FMA.
// peakData seeds the FMA peak loop with non-zero operands.
var peakData = func() (v [32]float32) {
	for i := range v {
		v[i] = float32(i)*0.001 + 0.5
	}
	return v
}()

func BenchmarkFMAPeak(b *testing.B) {
	const iters = 1 << 20
	if best >= implAVX512 {
		b.Run("avx512", func(b *testing.B) {
			for b.Loop() {
				fmaPeakAVX512(iters, &peakData)
			}
			b.ReportMetric(iters*16*16*2*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
	if best >= implAVX2 {
		b.Run("avx2", func(b *testing.B) {
			for b.Loop() {
				fmaPeakAVX2(iters)
			}
			b.ReportMetric(iters*12*8*2*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// fmaPeakGFLOPS returns the FMA peak of variant v in GFLOP/s: the best of five
// runs of about 10 ms each, measured once per variant and cached.
var fmaPeakGFLOPS = func() func(v int) float64 {
	var mu sync.Mutex
	cache := map[int]float64{}
	return func(v int) float64 {
		mu.Lock()
		defer mu.Unlock()
		if p, ok := cache[v]; ok {
			return p
		}
		const iters = 1 << 15
		best := 0.0
		for range 5 {
			start := time.Now()
			var flops float64
			for range 100 {
				switch v {
				case implAVX512:
					fmaPeakAVX512(iters, &peakData)
					flops += iters * 512
				case implAVX2:
					fmaPeakAVX2(iters)
					flops += iters * 192
				default:
					return 0
				}
			}
			best = max(best, flops/time.Since(start).Seconds()/1e9)
		}
		cache[v] = best
		return best
	}
}()

func init() { peakGFLOPS = fmaPeakGFLOPS }

// TestArrangeQ40 checks the assembly's arrangement of Q8Acts.xq against
// arrangeQ40's loop, for rows of whole chunks and with a last partial one.
func TestArrangeQ40(t *testing.T) {
	if !hasVNNI {
		t.Skip("no AVX-512 VNNI")
	}
	rng := rand.New(rand.NewPCG(61, 62))
	for _, nb := range []int{1, 7, 8, 9, 16, 24, 31} {
		x, _ := randomActs(rng, 3, nb*QBlock)
		want := make([]int8, len(x.xq))
		for r := 0; r < x.n; r++ {
			arrangeQ40(want[r*x.xqs:(r+1)*x.xqs], x.q[r*x.cols:(r+1)*x.cols], x.d[r*x.stride:(r+1)*x.stride], 0)
		}
		for i := range want {
			if x.xq[i] != want[i] {
				t.Fatalf("nb=%d: xq[%d] = %d, want %d", nb, i, x.xq[i], want[i])
			}
		}
	}
}
