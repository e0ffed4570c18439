//go:build amd64 && !purego

package kernels

import (
	"fmt"
	"math"
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

// TestArrangeActs checks the assembly's arrangements of Q8Acts.xq and
// Q8Acts.x8 against the loops of arrangeQ40 and arrangeQ80, for rows of
// whole chunks (quads) and with a last partial one, and that x8 is left
// empty below q80QuadMin rows (decode).
func TestArrangeActs(t *testing.T) {
	if !hasVNNI {
		t.Skip("no AVX-512 VNNI")
	}
	rng := rand.New(rand.NewPCG(61, 62))
	for _, nb := range []int{1, 3, 4, 5, 7, 8, 9, 11, 16, 24, 31} {
		if q80QuadMin > 1 {
			x, _ := randomActs(rng, q80QuadMin-1, nb*QBlock)
			if len(x.x8) != 0 {
				t.Fatalf("nb=%d: %d rows arrange x8", nb, x.n)
			}
		}
		x, _ := randomActs(rng, max(3, q80QuadMin), nb*QBlock)
		for _, tc := range []struct {
			name    string
			got     []int8
			stride  int
			arrange func(dst, q []int8, d []float32, b0 int)
		}{{"xq", x.xq, x.xqs, arrangeQ40}, {"x8", x.x8, x.x8s, arrangeQ80}} {
			if len(tc.got) != x.n*tc.stride || tc.stride == 0 {
				t.Fatalf("nb=%d: len(%s) = %d, stride %d", nb, tc.name, len(tc.got), tc.stride)
			}
			want := make([]int8, len(tc.got))
			for r := 0; r < x.n; r++ {
				tc.arrange(want[r*tc.stride:(r+1)*tc.stride], x.q[r*x.cols:(r+1)*x.cols], x.d[r*x.stride:(r+1)*x.stride], 0)
			}
			for i := range want {
				if tc.got[i] != want[i] {
					t.Fatalf("nb=%d: %s[%d] = %d, want %d", nb, tc.name, i, tc.got[i], want[i])
				}
			}
		}
	}
}

// TestQ80Lanes requires QMatMul to give qDotQ80Lanes's bits for Q8_0 with
// VNNI from q80QuadMin input rows on (the quad kernel), for every row and
// input row, whatever the counts of rows (groups of four and leftovers),
// blocks (whole quads and a last partial one) and input rows (tiles of four
// and single ones; more than qTailTokens for a leftover row's chunks).
func TestQ80Lanes(t *testing.T) {
	if !hasVNNI || !hasF16C || best < implAVX512 {
		t.Skip("no AVX-512 VNNI")
	}
	saved := impl
	defer func() { impl = saved }()
	impl = implAVX512
	rng := rand.New(rand.NewPCG(65, 66))
	for _, s := range qShapes {
		rows, cols := s[0], s[1]
		for _, n := range []int{q80QuadMin, q80QuadMin + 1, q80QuadMin + 2, qTailTokens + 3, 2*qTailTokens + 5} {
			t.Run(fmt.Sprintf("%dx%d/n=%d", rows, cols, n), func(t *testing.T) {
				nb := cols / QBlock
				w := randomBlocks(rng, Q8_0, rows, nb)
				x, _ := randomActs(rng, n, cols)
				ldo := rows + 1
				out := make([]float32, n*ldo)
				QMatMul(Q8_0, out, ldo, w, rows, x)
				for tt := 0; tt < n; tt++ {
					for r := 0; r < rows; r++ {
						want := qDotQ80Lanes(w[r*nb*34:], x.q[tt*cols:], x.d[tt*x.stride:], nb)
						if got := out[tt*ldo+r]; math.Float32bits(got) != math.Float32bits(want) {
							t.Fatalf("token %d row %d = %g, want %g", tt, r, got, want)
						}
					}
				}
			})
		}
	}
}
