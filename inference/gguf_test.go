package inference

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/format/gguf"
	"github.com/shrinkml/shrink/inference/tokenizer"
	"github.com/shrinkml/shrink/internal/shareddata"
)

// TestGGUFVariants runs llama.cpp's GGUF files of stories260K. The F32 files
// must reproduce NumPy's logits; quantized files must match the float64
// reference run on the same weights with the activations of their Q8_0,
// Q4_0 and Q4_1 matrices quantized to int8 blocks as the engine does (the
// other dtypes dequantized), stay close to the F32 logits, and still tell
// the story's first sentence. It logs how far the quantized activations move
// the logits from the reference on the dequantized weights.
func TestGGUFVariants(t *testing.T) {
	f := readStoriesFixture(t)
	golden, err := os.ReadFile(filepath.Join("testdata", "stories260K_greedy.txt"))
	if err != nil {
		t.Fatal(err)
	}
	firstSentence := "Once upon a time, there was a little girl named Lily."
	tests := []struct {
		file string
		// drift bounds |logit - F32 logit| relative to the largest F32 logit.
		drift float64
		// exact is the number of leading greedy bytes that must equal the F32 story.
		exact int
	}{
		{"stories260K-F32.gguf", 1e-4, len(golden)},
		{"stories260K-pad192-F32.gguf", 1e-4, len(golden)},
		// Q8_0 weights alone drift 0.012; int8 activations (as llama.cpp's
		// Q8_0 products quantize them too) move the logits 0.018 more.
		{"stories260K-pad192-Q8_0-pure.gguf", 0.03, len(firstSentence)},
		{"stories260K-pad192-Q4_1-pure.gguf", 0.3, len(firstSentence)},
		{"stories260K-pad192-Q4_0-pure.gguf", 0.3, len(firstSentence)},
		{"stories260K-pad192-Q4_0.gguf", 0.3, len(firstSentence)},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			m, err := gguf.Load(shareddata.Path(t, "gguf/"+tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			l := newTestLlama(t, m, 2)
			V := m.Config.VocabSize
			all := make([]float32, len(f.Tokens)*V)
			if err := l.Forward(l.NewState(0), f.Tokens, all); err != nil {
				t.Fatal(err)
			}
			ref := newQuantRefModel(t, m).forward(f.Tokens)
			float := newRefModel(t, m).forward(f.Tokens)
			var moved float64 // largest |logit - float reference| relative to its largest logit
			for i, p := range f.Positions {
				compareLogits(t, fmt.Sprintf("pos %d vs reference on the same weights", p), all[p*V:(p+1)*V], ref[p], 1e-4)
				compareLogits(t, fmt.Sprintf("pos %d vs NumPy's F32 logits", p), all[p*V:(p+1)*V], f.Logits[i], tc.drift)
				moved = max(moved, relDiff(all[p*V:(p+1)*V], float[p]))
			}
			t.Logf("logits vs the float reference on the same weights: max |diff| %.2g of the largest logit", moved)
			tok, err := tokenizer.New(m.Tokenizer)
			if err != nil {
				t.Fatal(err)
			}
			var text bytes.Buffer
			if _, err := Generate(l, tok, "", 256, Greedy(), func(p []byte) { text.Write(p) }); err != nil {
				t.Fatal(err)
			}
			if want := string(golden[:tc.exact]); !strings.HasPrefix(text.String(), want) {
				t.Fatalf("greedy text\n%s\ndoes not start with\n%s", text.String(), want)
			}
		})
	}
}
