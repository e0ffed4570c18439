package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkQMatVecInt is decode through the int formats at the llama-134m
// shapes (the 32000-row head included), as BenchmarkQMatVec is for GGUF's;
// the generic variant is the pure-Go reference.
func BenchmarkQMatVecInt(b *testing.B) {
	shapes := [][2]int{{768, 768}, {2048, 768}, {768, 2048}, {32000, 768}}
	benchVariants(b, func(b *testing.B) {
		for _, f := range []QFormat{I8Ch, I4G32, I4G64, I4G128, I4G32Asym, I4G64Asym, I4G128Asym} {
			for _, s := range shapes {
				rows, cols := s[0], s[1]
				rng := rand.New(rand.NewPCG(uint64(rows), uint64(cols)))
				w := randomIntRows(rng, f, rows, cols, false)
				x, _ := randomActs(rng, 1, cols)
				out := make([]float32, rows)
				b.Run(fmt.Sprintf("%v/%dx%d", f, rows, cols), func(b *testing.B) {
					b.SetBytes(int64(len(w)))
					for b.Loop() {
						QMatMul(f, out, rows, w, rows, x)
					}
				})
			}
		}
	})
}

// BenchmarkQMatMulInt is prefill: 128 input rows through an FFN matrix.
// GMAC/s counts n*rows*cols multiply-adds per second.
func BenchmarkQMatMulInt(b *testing.B) {
	const n, rows, cols = 128, 2048, 768
	benchVariants(b, func(b *testing.B) {
		for _, f := range []QFormat{I8Ch, I4G32, I4G64, I4G128, I4G32Asym, I4G64Asym, I4G128Asym} {
			rng := rand.New(rand.NewPCG(uint64(rows), uint64(cols)))
			w := randomIntRows(rng, f, rows, cols, false)
			x, _ := randomActs(rng, n, cols)
			out := make([]float32, n*rows)
			b.Run(fmt.Sprintf("%v/%dx%dx%d", f, n, rows, cols), func(b *testing.B) {
				for b.Loop() {
					QMatMul(f, out, rows, w, rows, x)
				}
				b.ReportMetric(float64(n*rows*cols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
			})
		}
	})
}
