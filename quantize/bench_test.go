package quantize

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/shrinkml/shrink/internal/calib"
	"github.com/shrinkml/shrink/model"
)

func benchRow(b *testing.B, d model.DType, f func([]byte, []float32) error) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{32, 4096, 1 << 20} {
		src := make([]float32, n)
		for i := range src {
			src[i] = float32(rng.NormFloat64() * 0.02)
		}
		dst := make([]byte, n/32*d.BlockBytes())
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(4 * n))
			for b.Loop() {
				if err := f(dst, src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkQuantizeQ8_0(b *testing.B) { benchRow(b, model.Q8_0, RowQ8_0) }
func BenchmarkQuantizeQ4_0(b *testing.B) { benchRow(b, model.Q4_0, RowQ4_0) }
func BenchmarkQuantizeQ4_1(b *testing.B) { benchRow(b, model.Q4_1, RowQ4_1) }

// BenchmarkQuantize runs the whole pipeline (decode, quantize, error sums) on
// stories15M's shape, one thread and all of them.
func BenchmarkQuantize(b *testing.B) {
	m, err := model.Synthesize(model.Presets["stories15m"], 1)
	if err != nil {
		b.Fatal(err)
	}
	for _, threads := range []int{1, 0} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			b.SetBytes(m.TensorBytes())
			for b.Loop() {
				if _, _, err := Quantize(m, Options{Scheme: Q4_0, Threads: threads}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGPTQScale measures the scale search GPTQ runs on every block it
// reaches in column order (blocks and int4 groups), against RTN's choice.
func BenchmarkGPTQScale(b *testing.B) {
	const cols, n = 256, 600
	w, x := layerData(1, cols, n, 7)
	h := calib.NewHessian(cols, 1)
	h.Add(x, n)
	f, err := calib.InverseCholesky(h.Sym(), calib.DefaultDamp)
	if err != nil {
		b.Fatal(err)
	}
	raw := f.U.RawTriangular()
	wf := make([]float64, cols)
	for i, v := range w {
		wf[i] = float64(v)
	}
	for _, d := range gptqTypes {
		bw := blockWidth(d)
		b.Run(d.String()+"/absmax", func(b *testing.B) {
			for b.Loop() {
				for blk := 0; blk < cols; blk += bw {
					var err error
					if isInt(d) {
						_, err = chooseIntScale(d, w[blk:blk+bw])
					} else {
						_, err = chooseScale(schemeOf(d), w[blk:blk+bw])
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
		b.Run(d.String()+"/search", func(b *testing.B) {
			var s scaleSearch
			for b.Loop() {
				for blk := 0; blk < cols; blk += bw {
					if _, err := s.gptqScale(d, wf[blk:blk+bw], raw.Data[blk*raw.Stride+blk:], raw.Stride); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
