package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// benchVariants runs f under each variant: "asm" is the best assembly variant,
// "avx2" the AVX2+FMA one when the best is AVX-512, "generic" the Go loops.
func benchVariants(b *testing.B, f func(b *testing.B)) {
	saved := impl
	defer func() { impl = saved }()
	vs := variants()
	for i := len(vs) - 1; i >= 0; i-- {
		v := vs[i]
		name := "generic"
		switch {
		case v == implGeneric:
		case i == len(vs)-1:
			name = "asm"
		default:
			name = "avx2"
		}
		impl = v
		b.Run(name, f)
	}
}

func randSlice(n int) []float32 {
	rng := rand.New(rand.NewPCG(uint64(n), 99))
	s := make([]float32, n)
	for i := range s {
		s[i] = rng.Float32()*2 - 1
	}
	return s
}

var sink float32

// peakGFLOPS, when set (amd64 without purego), returns the FMA peak of a
// variant in GFLOP/s so that BenchmarkMatMul can report its share of it.
var peakGFLOPS func(v int) float64

func BenchmarkDot(b *testing.B) {
	benchVariants(b, func(b *testing.B) {
		for _, n := range []int{64, 128, 768, 4096} {
			x, y := randSlice(n), randSlice(n)
			b.Run(fmt.Sprint(n), func(b *testing.B) {
				b.SetBytes(int64(8 * n))
				for b.Loop() {
					sink += Dot(x, y)
				}
			})
		}
	})
}

// matVecShapes are [rows, cols]: a square projection, an FFN matrix, and a
// 32000-token vocabulary head (98 MB, far beyond L2).
var matVecShapes = [][2]int{{768, 768}, {2048, 768}, {32000, 768}}

func BenchmarkMatVec(b *testing.B) {
	benchVariants(b, func(b *testing.B) {
		for _, s := range matVecShapes {
			rows, cols := s[0], s[1]
			w, x, out := randSlice(rows*cols), randSlice(cols), make([]float32, rows)
			b.Run(fmt.Sprintf("%dx%d", rows, cols), func(b *testing.B) {
				b.SetBytes(int64(4 * rows * cols))
				for b.Loop() {
					MatVec(out, w, x, cols)
				}
			})
		}
	})
}

// BenchmarkMatVecDRAM streams a 256 MB matrix of 768-float rows from memory
// in calls of 64 rows, as decode's threads take their blocks, and reports
// its rate as a fraction of StreamRead's over the same bytes (best of five,
// measured before the loop): the share of the bandwidth bound that the
// kernel's access pattern reaches.
func BenchmarkMatVecDRAM(b *testing.B) {
	const cols, blk = 768, 64
	rows := (256 << 20) / (4 * cols) / blk * blk
	w, x, out := randSlice(rows*cols), randSlice(cols), make([]float32, rows)
	benchVariants(b, func(b *testing.B) {
		bw := streamGBps(4 * len(w))
		b.SetBytes(int64(4 * len(w)))
		for b.Loop() {
			for lo := 0; lo < rows; lo += blk {
				MatVec(out[lo:lo+blk], w[lo*cols:(lo+blk)*cols], x, cols)
			}
		}
		gbps := float64(4*len(w)) * float64(b.N) / b.Elapsed().Seconds() / 1e9
		b.ReportMetric(gbps/bw, "of-stream-bw")
	})
}

// BenchmarkMatVecT is one head of decode attention weighing its cached
// values (160 positions of 64 floats): MatVecT over rows of positions, and
// "dots", a Dot per value dimension over the same values stored transposed.
func BenchmarkMatVecT(b *testing.B) {
	const rows, cols = 160, 64
	w, x, out := randSlice(rows*cols), randSlice(rows), make([]float32, cols)
	wt := make([]float32, rows*cols)
	Transpose(wt, rows, w, cols, rows, cols)
	benchVariants(b, func(b *testing.B) {
		b.Run("matvect", func(b *testing.B) {
			for b.Loop() {
				MatVecT(out, w, x, cols)
			}
		})
		b.Run("dots", func(b *testing.B) {
			for b.Loop() {
				for j := range out {
					out[j] = Dot(x, wt[j*rows:(j+1)*rows])
				}
			}
		})
	})
}

// BenchmarkStreamRead reads buffers the size of the MatVec matrices: its MB/s
// is the bandwidth bound for the MatVec benchmark of the same name.
func BenchmarkStreamRead(b *testing.B) {
	benchVariants(b, func(b *testing.B) {
		for _, s := range matVecShapes {
			buf := randSlice(s[0] * s[1])
			b.Run(fmt.Sprintf("%dx%d", s[0], s[1]), func(b *testing.B) {
				b.SetBytes(int64(4 * len(buf)))
				for b.Loop() {
					sink += StreamRead(buf)
				}
			})
		}
	})
}

// BenchmarkMatMul reports GFLOP/s (2*n*rows*cols per call); the shapes are a
// 128-token prefill through an FFN and a square projection, a K-blocked
// width, and a short prompt.
func BenchmarkMatMul(b *testing.B) {
	shapes := [][3]int{{128, 2048, 768}, {128, 768, 768}, {128, 768, 2048}, {16, 2048, 768}}
	benchVariants(b, func(b *testing.B) {
		for _, s := range shapes {
			n, rows, cols := s[0], s[1], s[2]
			x, w, out := randSlice(n*cols), randSlice(rows*cols), make([]float32, n*rows)
			b.Run(fmt.Sprintf("%dx%dx%d", n, rows, cols), func(b *testing.B) {
				b.SetBytes(int64(4 * rows * cols))
				for b.Loop() {
					MatMul(out, rows, x, w, n, rows, cols)
				}
				gflops := 2 * float64(n*rows*cols) * float64(b.N) / b.Elapsed().Seconds() / 1e9
				b.ReportMetric(gflops, "GFLOP/s")
				if peakGFLOPS != nil && impl != implGeneric {
					b.ReportMetric(100*gflops/peakGFLOPS(impl), "%peak")
				}
			})
		}
	})
}

func BenchmarkAxpy(b *testing.B) {
	benchVariants(b, func(b *testing.B) {
		for _, n := range []int{768, 4096} {
			x, y := randSlice(n), randSlice(n)
			b.Run(fmt.Sprint(n), func(b *testing.B) {
				b.SetBytes(int64(12 * n))
				for b.Loop() {
					Axpy(1e-3, x, y)
				}
			})
		}
	})
}

// benchElementwise benchmarks a kernel without assembly at several lengths.
func benchElementwise(b *testing.B, lengths []int, bytesPer int, f func(x, y []float32)) {
	for _, n := range lengths {
		x, y := randSlice(n), randSlice(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(bytesPer * n))
			for b.Loop() {
				f(x, y)
			}
		})
	}
}

// BenchmarkExp is e^x over the range softmax and SiLU feed it.
func BenchmarkExp(b *testing.B) {
	benchVariants(b, func(b *testing.B) {
		benchElementwise(b, []int{2048, 32000}, 8, func(x, y []float32) {
			copy(x, y)
			for i := range x {
				x[i] *= 20
			}
			expVec(x)
		})
	})
}

// BenchmarkTranspose moves a chunk of 128 tokens' values into the KV cache's
// layout, a row of positions per dimension.
func BenchmarkTranspose(b *testing.B) {
	const n, dim, ld = 128, 768, 2048
	src, dst := randSlice(n*dim), make([]float32, dim*ld)
	benchVariants(b, func(b *testing.B) {
		b.SetBytes(8 * n * dim)
		for b.Loop() {
			Transpose(dst, ld, src, dim, n, dim)
		}
	})
}

func BenchmarkScale(b *testing.B) {
	benchElementwise(b, []int{768, 4096}, 8, func(x, _ []float32) { Scale(x, 1) })
}

func BenchmarkAdd(b *testing.B) {
	benchVariants(b, func(b *testing.B) {
		benchElementwise(b, []int{768, 4096}, 12, func(x, y []float32) { Add(x, y) })
	})
}

func BenchmarkRMSNorm(b *testing.B) {
	for _, n := range []int{768, 4096} {
		x, w, out := randSlice(n), randSlice(n), make([]float32, n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(12 * n))
			for b.Loop() {
				RMSNorm(out, x, w, 1e-5)
			}
		})
	}
}

func BenchmarkSoftmax(b *testing.B) {
	benchVariants(b, func(b *testing.B) {
		benchElementwise(b, []int{256, 2048, 32000}, 8, func(x, y []float32) {
			copy(x, y)
			Softmax(x)
		})
	})
}

func BenchmarkSwiGLU(b *testing.B) {
	benchVariants(b, func(b *testing.B) {
		benchElementwise(b, []int{2048, 11008}, 12, func(x, y []float32) {
			SwiGLU(x, y)
			copy(x, y) // keep the inputs from decaying to 0
		})
	})
}

func BenchmarkRoPE(b *testing.B) {
	cos, sin := make([]float32, 32), make([]float32, 32)
	for i := range cos { // unit rotations, so repeated calls keep x's scale
		cos[i], sin[i] = float32(math.Cos(float64(i))), float32(math.Sin(float64(i)))
	}
	benchVariants(b, func(b *testing.B) {
		for _, pairs := range []bool{true, false} {
			b.Run(fmt.Sprintf("pairs=%v", pairs), func(b *testing.B) {
				benchElementwise(b, []int{768, 4096}, 8, func(x, _ []float32) { RoPE(x, 64, cos, sin, pairs) })
			})
		}
	})
}

func BenchmarkMaxIndex(b *testing.B) {
	benchElementwise(b, []int{32000, 128256}, 4, func(x, _ []float32) { sink += float32(MaxIndex(x)) })
}
