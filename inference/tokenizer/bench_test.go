package tokenizer

import (
	"os"
	"testing"

	"github.com/shrinkml/shrink/internal/shareddata"
)

// BenchmarkEncodeTinyStories encodes the whole TinyStories file as one string,
// as the perplexity protocol does, with tok512 (llama kind).
func BenchmarkEncodeTinyStories(b *testing.B) {
	tk, _ := newTok512(b)
	data, err := os.ReadFile(shareddata.Path(b, shareddata.TinyStoriesVal))
	if err != nil {
		b.Fatal(err)
	}
	text := string(data)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		tk.Encode(text, true)
	}
}

// BenchmarkEncodeGPT2TinyStories encodes the whole TinyStories file with the
// GPT-2 subset vocabulary of testdata (gpt2 kind, GPT-2 pre-tokenizer).
func BenchmarkEncodeGPT2TinyStories(b *testing.B) {
	for _, pre := range []string{"gpt-2", "llama-bpe"} {
		b.Run(pre, func(b *testing.B) {
			tk := newGPT2Subset(b, pre)
			data, err := os.ReadFile(shareddata.Path(b, shareddata.TinyStoriesVal))
			if err != nil {
				b.Fatal(err)
			}
			text := string(data)
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				tk.Encode(text, false)
			}
		})
	}
}
