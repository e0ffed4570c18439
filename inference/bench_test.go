package inference

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/shrinkml/shrink/inference/kernels"
	"github.com/shrinkml/shrink/model"
)

// llama134M is the shape of a 134M-parameter llama (537 MB of F32).
var llama134M = model.Config{
	Arch: "llama", HiddenSize: 768, IntermediateSize: 2048, NumLayers: 12,
	NumHeads: 12, NumKVHeads: 12, HeadDim: 64, VocabSize: 32000, ContextLength: 2048,
	RMSNormEps: 1e-5, RopeTheta: 10000,
}

var (
	benchOnce  sync.Once
	benchModel *model.Model
)

// benchLlamaModel builds the random llama-134m model once per test binary.
func benchLlamaModel() *model.Model {
	benchOnce.Do(func() {
		m := &model.Model{Config: llama134M, Source: "random llama-134m"}
		x := uint64(0x9e3779b97f4a7c15)
		for _, e := range llama134M.Expected() {
			n := (&model.Tensor{Shape: e.Shape}).Elems()
			data := make([]byte, 4*n)
			scale := float32(1 / math.Sqrt(float64(e.Shape[len(e.Shape)-1])))
			for i := 0; i < n; i++ {
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				v := (float32(x>>40)/float32(1<<24) - 0.5) * 2 * scale
				if len(e.Shape) == 1 {
					v = 1 + v/scale/10
				}
				binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
			}
			m.Tensors = append(m.Tensors, &model.Tensor{Name: e.Name, DType: model.F32, Shape: e.Shape, Data: data})
		}
		benchModel = m
	})
	return benchModel
}

// streamBandwidth measures the read bandwidth of threads goroutines each
// streaming its part of a buffer larger than the weights, in bytes/s (best of 3).
func streamBandwidth(threads int, bytes int64) float64 {
	buf := make([]float32, bytes/4)
	for i := range buf {
		buf[i] = 1
	}
	best := math.Inf(1)
	for range 3 {
		var wg sync.WaitGroup
		start := time.Now()
		for t := range threads {
			lo, hi := len(buf)*t/threads, len(buf)*(t+1)/threads
			wg.Add(1)
			go func() { defer wg.Done(); kernels.StreamRead(buf[lo:hi]) }()
		}
		wg.Wait()
		best = math.Min(best, time.Since(start).Seconds())
	}
	return float64(bytes) / best
}

var bwCache sync.Map

func cachedBandwidth(threads int, bytes int64) float64 {
	if v, ok := bwCache.Load(threads); ok {
		return v.(float64)
	}
	bw := streamBandwidth(threads, bytes)
	bwCache.Store(threads, bw)
	return bw
}

// BenchmarkDecode decodes single tokens at positions 0..255 of a llama-134m.
// It reports tokens/s, the weight bytes read per second, and that as a
// fraction of the streaming-read bandwidth of as many threads.
func BenchmarkDecode(b *testing.B) {
	m := benchLlamaModel()
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			l, err := NewLlama(m, Options{Threads: threads})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			s := l.NewState(256)
			logits := make([]float32, l.vocab)
			tok := []int{1}
			bw := cachedBandwidth(threads, l.WeightBytes())
			b.SetBytes(l.WeightBytes())
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if s.Pos() == s.Cap() {
					s.Reset()
				}
				if err := l.Forward(s, tok, logits); err != nil {
					b.Fatal(err)
				}
				tok[0] = (tok[0]*31 + 7) % l.vocab
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(1/sec, "tok/s")
			b.ReportMetric(float64(l.WeightBytes())/sec/bw, "of-stream-bw")
			b.ReportMetric(bw/1e9, "stream-GB/s")
		})
	}
}

// fmaPeak is one core's float32 FMA peak in flop/s on the development
// machine, as the kernels package's BenchmarkFMAPeak measures it (232 GFLOP/s:
// 2 AVX-512 FMA ports × 16 lanes × 2 flops at about 3.6 GHz). Adjust it
// when benchmarking elsewhere.
const fmaPeak = 232e9

// BenchmarkPrefill runs 128-token prompts through a llama-134m and reports
// tokens/s and the matrix-product flop rate per core as a fraction of the
// FMA peak.
func BenchmarkPrefill(b *testing.B) {
	m := benchLlamaModel()
	const n = prefillChunk
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			l, err := NewLlama(m, Options{Threads: threads})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			s := l.NewState(n)
			logits := make([]float32, l.vocab)
			tokens := randomTokens(n, l.vocab, 1)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s.Reset()
				if err := l.Forward(s, tokens, logits); err != nil {
					b.Fatal(err)
				}
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			// Flops of the matrix products: the layers for every token, the
			// head for the last one only.
			perTok := int64(0)
			for _, L := range l.layers {
				for _, w := range []Weights{L.wq, L.wk, L.wv, L.wo, L.gate, L.up, L.down} {
					perTok += 2 * int64(w.Rows()) * int64(w.Cols())
				}
			}
			flops := float64(perTok*n + 2*int64(l.vocab)*int64(l.dim))
			b.ReportMetric(n/sec, "tok/s")
			b.ReportMetric(flops/sec/1e9, "GFLOP/s")
			b.ReportMetric(flops/sec/float64(threads)/fmaPeak, "of-peak/core")
		})
	}
}

// BenchmarkStories260K is greedy decoding speed on the tiny real model.
func BenchmarkStories260K(b *testing.B) {
	m := loadStories(b)
	l, err := NewLlama(m, Options{Threads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	s := l.NewState(0)
	logits := make([]float32, l.vocab)
	tok := []int{1}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if s.Pos() == s.Cap() {
			s.Reset()
		}
		if err := l.Forward(s, tok, logits); err != nil {
			b.Fatal(err)
		}
		tok[0] = argmax(logits)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
}

// BenchmarkMLP classifies batches of 256 Fashion-MNIST-sized inputs.
func BenchmarkMLP(b *testing.B) {
	sizes := []int{784, 256, 128, 10}
	m := randomMLP(b, &model.Model{Config: model.Config{Arch: "mlp", MLP: &model.MLPConfig{Sizes: sizes, Activation: "relu"}}})
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			c, err := NewMLP(m, Options{Threads: threads})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			x := toF32(randomVec(256*sizes[0], 1))
			out := make([]float32, 256*sizes[3])
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := c.Forward(x, out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(256*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
