package lm

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchConfig is the shape of the demo model: vocab 512, dim 64, 4 layers,
// 4 heads, 2 kv heads, hidden 192, context 128.
var benchConfig = Config{Dim: 64, Layers: 4, Heads: 4, KVHeads: 2, Hidden: 192, Vocab: 512, Context: 128,
	RopeTheta: 10000, NormEps: 1e-5}

func benchTokens(n, vocab int) []int {
	r := rand.New(rand.NewPCG(1, 2))
	toks := make([]int, n)
	for i := range toks {
		toks[i] = r.IntN(vocab)
	}
	return toks
}

// BenchmarkStep measures training steps (forward, backward, AdamW) of 16
// sequences of 128 tokens; tokens/s counts the predicted tokens.
func BenchmarkStep(b *testing.B) {
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			m, _ := New(benchConfig, 1)
			opts := DefaultOptions()
			opts.Batch, opts.Steps, opts.Threads = 16, 1, threads
			opts, err := opts.resolve(m, 1<<16)
			if err != nil {
				b.Fatal(err)
			}
			tokens := benchTokens(1<<16, benchConfig.Vocab)
			tr := newTrainer(m, opts, threads)
			starts := make([]int, opts.Batch)
			for i := range starts {
				starts[i] = i * 1000
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := tr.step(tokens, starts, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*opts.Batch*opts.Context)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// BenchmarkForward measures the forward pass alone over the same batch, on
// one thread, for comparison with BenchmarkStep.
func BenchmarkForward(b *testing.B) {
	m, _ := New(benchConfig, 1)
	w := newWorker(m, 16, 128, false)
	copy(w.tokens, benchTokens(16*128, benchConfig.Vocab))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.forward(16, 128)
	}
	b.ReportMetric(float64(b.N*16*128)/b.Elapsed().Seconds(), "tokens/s")
}
