package lm

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/inference/tokenizer"
	"github.com/shrinkml/shrink/model"
)

// sampleText writes n sentences of seeded random words, with code-like
// lines mixed in, as a stand-in for a training corpus.
func sampleText(n int, seed uint64) string {
	words := strings.Fields(`the a small model learns to predict the next token from the ones before it
and every step of training moves its weights a little way down the gradient of the loss while
a tokenizer cuts text into pieces it has seen often enough to earn a token of their own`)
	r := rand.New(rand.NewPCG(seed, 1))
	var b strings.Builder
	for i := range n {
		if i%5 == 4 {
			b.WriteString("func f(x int) int {\n\tif x > 0 {\n\t\treturn x\n\t}\n\treturn -x\n}\n")
			continue
		}
		for j := range 4 + r.IntN(10) {
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[r.IntN(len(words))])
		}
		b.WriteString(".\n")
	}
	return b.String()
}

func TestTrainTokenizer(t *testing.T) {
	text := sampleText(600, 1)
	tok, err := TrainTokenizer(text, 400)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok.Tokens) != 400 || tok.Tokens[0] != "<unk>" || tok.Tokens[1] != "<s>" || tok.Tokens[2] != "</s>" ||
		tok.Tokens[3] != "<0x00>" || tok.Tokens[258] != "<0xFF>" || tok.Tokens[259] != "\u2581" || !tok.AddBOS || !tok.AddSpacePrefix || tok.Kind != "llama" {
		t.Fatalf("layout: %d tokens, %q ... %+v", len(tok.Tokens), tok.Tokens[:4], tok.AddBOS)
	}
	for i := MinVocab - 1; i < len(tok.Tokens); i++ {
		if tok.Types[i] != model.TokenNormal || (i > MinVocab-1 && !(tok.Scores[i] < tok.Scores[i-1])) {
			t.Fatalf("token %d %q: type %d, score %g after %g", i, tok.Tokens[i], tok.Types[i], tok.Scores[i], tok.Scores[i-1])
		}
	}
	t.Logf("first pieces: %q", tok.Tokens[MinVocab:MinVocab+12])
	enc, err := tokenizer.New(tok)
	if err != nil {
		t.Fatal(err)
	}
	ids := enc.Encode(text, true)
	if got := enc.DecodeAll(ids); got != text {
		t.Fatalf("the training text does not survive encoding: %q...", got[:min(len(got), 200)])
	}
	ratio := float64(len(ids)) / float64(len(text))
	t.Logf("%d bytes -> %d tokens (%.2f tokens per byte)", len(text), len(ids), ratio)
	if ratio > 0.35 {
		t.Errorf("%.2f tokens per byte; the vocabulary hardly compresses", ratio)
	}
	for _, s := range []string{sampleText(50, 2), "héllo wörld — 日本語 😀 a\x00b\t\r\n", "  two leading spaces", "<s> <0x41> </s>", "x"} {
		if got := enc.DecodeAll(enc.Encode(s, true)); got != s {
			t.Errorf("%q decodes as %q", s, got)
		}
	}

	again, err := TrainTokenizer(text, 400)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again.Tokens, tok.Tokens) || !slices.Equal(again.Scores, tok.Scores) {
		t.Error("two runs on the same text give different vocabularies")
	}
}

// TestTrainTokenizerEdges covers the rules for pieces that would spell
// special tokens, invalid UTF-8 and text that runs out of pairs.
func TestTrainTokenizerEdges(t *testing.T) {
	text := strings.Repeat("<s></s><0x0A>\xff\xfe ", 50)
	tok, err := TrainTokenizer(text, 300)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok.Tokens) >= 300 {
		t.Errorf("%d tokens from a text of a few distinct pairs", len(tok.Tokens))
	}
	enc, err := tokenizer.New(tok) // rejects duplicate tokens
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range tok.Tokens[MinVocab:] {
		if strings.ContainsAny(p, "\xff\xfe") {
			t.Errorf("piece %q holds an invalid byte", p)
		}
	}
	if got := enc.DecodeAll(enc.Encode(text, true)); got != text {
		t.Errorf("round trip: %q", got)
	}
	if _, err := TrainTokenizer("abc", 100); err == nil || !strings.Contains(err.Error(), "at least 260") {
		t.Errorf("vocab 100: %v", err)
	}
	if _, err := TrainTokenizer("", 300); err == nil {
		t.Error("empty text: no error")
	}
}
