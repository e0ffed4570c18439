package inference

import (
	"fmt"
	"sync"
	"testing"

	"github.com/shrinkml/shrink/model"
)

var (
	benchQuantMu     sync.Mutex
	benchQuantModels = map[model.DType]*model.Model{}
)

// benchQuantModel is the random llama-134m of benchLlamaModel with every
// matrix quantized to dt by round-to-nearest (built once per test binary).
func benchQuantModel(b *testing.B, dt model.DType) *model.Model {
	if dt == model.F32 {
		return benchLlamaModel()
	}
	benchQuantMu.Lock()
	defer benchQuantMu.Unlock()
	if m, ok := benchQuantModels[dt]; ok {
		return m
	}
	m := quantizeModel(b, benchLlamaModel(), dt)
	m.Source = "random llama-134m " + dt.String()
	benchQuantModels[dt] = m
	return m
}

// BenchmarkDecodeQuant is BenchmarkDecode on llama-134m in F32, Q8_0, Q4_0
// and Q4_1: tokens/s, and the weight bytes read per second as a fraction of
// the streaming-read bandwidth of as many threads over as many bytes.
func BenchmarkDecodeQuant(b *testing.B) {
	for _, dt := range []model.DType{model.F32, model.Q8_0, model.Q4_0, model.Q4_1} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads=%d", dt, threads), func(b *testing.B) {
				l, err := NewLlama(benchQuantModel(b, dt), Options{Threads: threads})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				s := l.NewState(256)
				logits := make([]float32, l.vocab)
				tok := []int{1}
				bw := streamBandwidth(threads, l.WeightBytes())
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
}

// BenchmarkPrefillQuant is BenchmarkPrefill (128-token prompts) on the
// quantized llama-134m.
func BenchmarkPrefillQuant(b *testing.B) {
	const n = prefillChunk
	for _, dt := range []model.DType{model.Q8_0, model.Q4_0} {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads=%d", dt, threads), func(b *testing.B) {
				l, err := NewLlama(benchQuantModel(b, dt), Options{Threads: threads})
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
				b.ReportMetric(n*float64(b.N)/b.Elapsed().Seconds(), "tok/s")
			})
		}
	}
}
