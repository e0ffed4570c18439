package quantize_test

import (
	"os"
	"testing"

	"github.com/shrinkml/shrink/evalsuite"
	"github.com/shrinkml/shrink/format"
	"github.com/shrinkml/shrink/inference"
	"github.com/shrinkml/shrink/inference/tokenizer"
	"github.com/shrinkml/shrink/internal/calib"
	"github.com/shrinkml/shrink/internal/shareddata"
	"github.com/shrinkml/shrink/model"
	"github.com/shrinkml/shrink/quantize"
)

// TestAWQStories260K quantizes stories260K-pad192 to Q4_0 with RTN and with
// AWQ, calibrated on the first 400,000 bytes of the TinyStories validation
// text, and scores both on 100,000 bytes after them: AWQ's perplexity must be
// lower (6.058 and 5.979 on the whole rest of the text).
func TestAWQStories260K(t *testing.T) {
	if testing.Short() {
		t.Skip("quantizes and scores stories260K twice")
	}
	src := shareddata.Path(t, "gguf/stories260K-pad192-F32.gguf")
	textPath := shareddata.Path(t, "text/tinystories/tinystories_val_first.txt")
	text, err := os.ReadFile(textPath)
	if err != nil {
		t.Fatal(err)
	}
	const calibBytes, evalBytes = 400000, 100000
	if len(text) < calibBytes+evalBytes {
		t.Fatalf("%s has %d bytes, want %d", textPath, len(text), calibBytes+evalBytes)
	}
	m, _, err := format.Load(src, format.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok, err := tokenizer.New(m.Tokenizer)
	if err != nil {
		t.Fatal(err)
	}
	calibTokens := tok.Encode(string(text[:calibBytes]), false)
	seqs, err := calib.Windows(calibTokens, 32, 512, m.Tokenizer.BOS, 1)
	if err != nil {
		t.Fatal(err)
	}
	evalTokens := tok.Encode(string(text[calibBytes:calibBytes+evalBytes]), true)
	ppl := func(q *model.Model) float64 {
		l, err := inference.NewLlama(q, inference.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		r, err := evalsuite.Perplexity(l, evalTokens, evalsuite.PerplexityOptions{Ctx: 128}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r.Perplexity
	}
	rtn, _, err := quantize.Quantize(m, quantize.Options{Scheme: quantize.Q4_0})
	if err != nil {
		t.Fatal(err)
	}
	awq, rep, err := quantize.Quantize(m, quantize.Options{Scheme: quantize.Q4_0, Method: quantize.AWQ, Calibration: seqs})
	if err != nil {
		t.Fatal(err)
	}
	base, pr, pa := ppl(m), ppl(rtn), ppl(awq)
	t.Logf("perplexity: F32 %.4f, RTN %.4f, AWQ %.4f; %d groups scaled", base, pr, pa, len(rep.AWQ))
	if !(pa < pr) {
		t.Errorf("AWQ's perplexity %.4f is not below RTN's %.4f (F32 %.4f)", pa, pr, base)
	}
}
