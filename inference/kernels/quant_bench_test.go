package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// streamGBps measures StreamRead over a buffer of the given size in GB/s,
// the best of five reads: the bandwidth bound of a kernel streaming as many bytes.
func streamGBps(bytes int) float64 {
	buf := make([]float32, bytes/4)
	for i := range buf {
		buf[i] = 1
	}
	best := time.Duration(1 << 62)
	for range 5 {
		start := time.Now()
		sink += StreamRead(buf)
		best = min(best, time.Since(start))
	}
	return float64(bytes) / best.Seconds() / 1e9
}

// BenchmarkQMatVec is decode: one input row through matrices of the
// llama-134m shapes (the 32000-row head is 26 MB in q8_0, far beyond L2).
// MB/s counts the weight bytes; of-stream-bw compares it with StreamRead on
// a buffer of the same size.
func BenchmarkQMatVec(b *testing.B) {
	shapes := [][2]int{{768, 768}, {2048, 768}, {768, 2048}, {32000, 768}}
	benchVariants(b, func(b *testing.B) {
		for _, f := range qFormats {
			for _, s := range shapes {
				rows, cols := s[0], s[1]
				rng := rand.New(rand.NewPCG(uint64(rows), uint64(cols)))
				w := randomBlocks(rng, f, rows, cols/QBlock)
				x, _ := randomActs(rng, 1, cols)
				out := make([]float32, rows)
				b.Run(fmt.Sprintf("%v/%dx%d", f, rows, cols), func(b *testing.B) {
					bw := streamGBps(len(w))
					b.SetBytes(int64(len(w)))
					for b.Loop() {
						QMatMul(f, out, rows, w, rows, x)
					}
					gbps := float64(len(w)) * float64(b.N) / b.Elapsed().Seconds() / 1e9
					b.ReportMetric(gbps/bw, "of-stream-bw")
				})
			}
		}
	})
}

// BenchmarkQMatMul is prefill: 128 input rows through an FFN matrix and a
// square projection. GMAC/s counts n*rows*cols multiply-adds per second.
func BenchmarkQMatMul(b *testing.B) {
	shapes := [][3]int{{128, 2048, 768}, {128, 768, 768}, {128, 768, 2048}, {16, 2048, 768}}
	benchVariants(b, func(b *testing.B) {
		for _, f := range qFormats {
			for _, s := range shapes {
				n, rows, cols := s[0], s[1], s[2]
				rng := rand.New(rand.NewPCG(uint64(rows), uint64(cols)))
				w := randomBlocks(rng, f, rows, cols/QBlock)
				x, _ := randomActs(rng, n, cols)
				out := make([]float32, n*rows)
				b.Run(fmt.Sprintf("%v/%dx%dx%d", f, n, rows, cols), func(b *testing.B) {
					for b.Loop() {
						QMatMul(f, out, rows, w, rows, x)
					}
					b.ReportMetric(float64(n*rows*cols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
				})
			}
		}
	})
}

// BenchmarkQuantize quantizes one decode input and a 128-row prefill chunk.
func BenchmarkQuantize(b *testing.B) {
	for _, s := range [][2]int{{1, 768}, {1, 2048}, {128, 768}} {
		n, cols := s[0], s[1]
		x := randSlice(n * cols)
		var a Q8Acts
		b.Run(fmt.Sprintf("%dx%d", n, cols), func(b *testing.B) {
			b.SetBytes(int64(4 * n * cols))
			for b.Loop() {
				a.Quantize(x, n, cols)
			}
		})
	}
}

// BenchmarkQMatMulDRAM is QMatMul for Q8_0 over 80 matrices of 2048x768
// (134 MB) in turn, so that the weights stream from DRAM as in a whole
// model, for input row counts around q80QuadMin: with a test binary built
// with q80QuadMin = 1 << 30 beside one built as is, it measures where the
// quad kernel stops being slower.
func BenchmarkQMatMulDRAM(b *testing.B) {
	const rows, cols, mats = 2048, 768, 80
	rng := rand.New(rand.NewPCG(rows, cols))
	ws := make([][]byte, mats)
	for i := range ws {
		ws[i] = randomBlocks(rng, Q8_0, rows, cols/QBlock)
	}
	for _, n := range []int{1, 2, 4, 8, 16, 24, 32, 128} {
		x, _ := randomActs(rng, n, cols)
		out := make([]float32, n*rows)
		b.Run(fmt.Sprintf("q8_0/n=%d", n), func(b *testing.B) {
			for b.Loop() {
				for _, w := range ws {
					QMatMul(Q8_0, out, rows, w, rows, x)
				}
			}
			b.ReportMetric(float64(mats*n*rows*cols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}
