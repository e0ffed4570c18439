package train

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/shrinkml/shrink/internal/gradcheck"
)

// benchSizes is the Fashion-MNIST teacher the README trains.
var benchSizes = []int{784, 1200, 1200, 10}

// BenchmarkForward times the forward pass a training step contains: one
// batch of 128 through the network on one thread.
func BenchmarkForward(b *testing.B) {
	net, _ := NewNetwork(benchSizes, ReLU, 1)
	x := gradcheck.F32(gradcheck.RandSlice(rand.New(rand.NewPCG(1, 1)), 128*784, 1))
	widest := 1200
	bufs := [2][]float32{make([]float32, 128*widest), make([]float32, 128*widest)}
	out := make([]float32, 128*10)
	b.ResetTimer()
	for range b.N {
		net.forward(out, x, 128, bufs)
	}
	b.ReportMetric(float64(128*b.N)/b.Elapsed().Seconds(), "examples/s")
}

// BenchmarkStep times a whole optimizer step (forward, backward, gradient
// sum, clipping, AdamW) on a batch of 128, on 1 and 2 threads, and with 90%
// of the weights masked: what holding a pruned network's zeros costs.
func BenchmarkStep(b *testing.B) {
	for _, c := range []struct {
		threads int
		masked  bool
	}{{1, false}, {2, false}, {2, true}} {
		name := fmt.Sprintf("threads=%d", c.threads)
		if c.masked {
			name += "/masked=0.9"
		}
		threads := c.threads
		b.Run(name, func(b *testing.B) {
			net, _ := NewNetwork(benchSizes, ReLU, 1)
			if c.masked {
				net.PruneMagnitude(0.9, false)
			}
			rng := rand.New(rand.NewPCG(1, 1))
			d := Data{X: gradcheck.F32(gradcheck.RandSlice(rng, 128*784, 1)), Y: make([]int, 128)}
			idx := make([]int, 128)
			for i := range idx {
				idx[i], d.Y[i] = i, rng.IntN(10)
			}
			opts := DefaultOptions()
			tr := newTrainer(net, opts, threads)
			b.ResetTimer()
			for i := range b.N {
				tr.step(d, idx, i, b.N+1)
			}
			b.ReportMetric(float64(128*b.N)/b.Elapsed().Seconds(), "examples/s")
		})
	}
}
