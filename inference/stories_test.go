package inference

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/format/llama2c"
	"github.com/shrinkml/shrink/inference/tokenizer"
	"github.com/shrinkml/shrink/internal/shareddata"
	"github.com/shrinkml/shrink/model"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// readmePrefix is the start of the greedy stories260K sample in llama2.c's
// doc/stories260K.md, as quoted in the shared data README.
const readmePrefix = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. " +
	"One day, she saw a big, red ball. She wanted to play with it, but it was too high."

func loadStories(t testing.TB) *model.Model {
	t.Helper()
	m, err := llama2c.Load(shareddata.Path(t, shareddata.Stories260KBin))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// storiesFixture is testdata/stories260K.json, written by make_fixtures.py
// from an independent float64 NumPy forward pass.
type storiesFixture struct {
	Tokens       []int       `json:"tokens"`
	Positions    []int       `json:"positions"`
	Logits       [][]float64 `json:"logits"`
	GreedyTokens []int       `json:"greedy_tokens"`
	GreedyText   string      `json:"greedy_text"`
}

func readStoriesFixture(t testing.TB) *storiesFixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "stories260K.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f storiesFixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("testdata/stories260K.json: %v", err)
	}
	if len(f.Positions) != len(f.Logits) || len(f.GreedyTokens) == 0 {
		t.Fatalf("testdata/stories260K.json: malformed fixture")
	}
	return &f
}

// TestStories260KLogits compares prefill and decode logits with NumPy's.
func TestStories260KLogits(t *testing.T) {
	m := loadStories(t)
	f := readStoriesFixture(t)
	V := m.Config.VocabSize
	for _, threads := range []int{1, 2} {
		l := newTestLlama(t, m, threads)
		s := l.NewState(0)
		all := make([]float32, len(f.Tokens)*V)
		if err := l.Forward(s, f.Tokens, all); err != nil {
			t.Fatal(err)
		}
		s.Reset()
		one := make([]float32, V)
		decoded := make([]float32, 0, len(all))
		for _, tok := range f.Tokens {
			if err := l.Forward(s, []int{tok}, one); err != nil {
				t.Fatal(err)
			}
			decoded = append(decoded, one...)
		}
		for i, p := range f.Positions {
			compareLogits(t, fmt.Sprintf("threads %d prefill pos %d", threads, p), all[p*V:(p+1)*V], f.Logits[i], 1e-4)
			compareLogits(t, fmt.Sprintf("threads %d decode pos %d", threads, p), decoded[p*V:(p+1)*V], f.Logits[i], 1e-4)
		}
	}
}

// TestStories260KGreedyTokens follows NumPy's greedy continuation of BOS
// token by token, without the tokenizer.
func TestStories260KGreedyTokens(t *testing.T) {
	m := loadStories(t)
	f := readStoriesFixture(t)
	l := newTestLlama(t, m, 0)
	s := l.NewState(0)
	logits := make([]float32, m.Config.VocabSize)
	sampler := Greedy()
	tok := 1
	for i, want := range f.GreedyTokens {
		if err := l.Forward(s, []int{tok}, logits); err != nil {
			t.Fatal(err)
		}
		if got := sampler.Sample(logits); got != want {
			t.Fatalf("greedy token %d is %d, NumPy's is %d", i, got, want)
		}
		tok = want
	}
}

// TestStories260KGenerate is llama2.c's run.c -t 0 -n 256 on stories260K: the
// text must start with the sample quoted in the data README, equal NumPy's
// greedy text, and equal the golden file.
func TestStories260KGenerate(t *testing.T) {
	m := loadStories(t)
	if m.Tokenizer == nil {
		t.Fatal("stories260K: tok512.bin was not attached")
	}
	tok, err := tokenizer.New(m.Tokenizer)
	if err != nil {
		t.Fatal(err)
	}
	f := readStoriesFixture(t)
	for _, threads := range []int{1, 2} {
		l := newTestLlama(t, m, threads)
		var text bytes.Buffer
		st, err := Generate(l, tok, "", 256, Greedy(), func(piece []byte) { text.Write(piece) })
		if err != nil {
			t.Fatal(err)
		}
		got := text.String()
		if !strings.HasPrefix(got, readmePrefix) {
			t.Fatalf("threads %d: generated text starts %q, want %q", threads, got[:min(len(got), len(readmePrefix))], readmePrefix)
		}
		if got != f.GreedyText {
			t.Fatalf("threads %d: generated\n%s\nNumPy's greedy text is\n%s", threads, got, f.GreedyText)
		}
		if st.Generated != 256 || st.PrefillTokens != 1 || st.DecodeTokens != 255 {
			t.Errorf("threads %d: stats %+v, want 256 generated from 1 prompt token in 255 decode steps", threads, st)
		}
		golden := filepath.Join("testdata", "stories260K_greedy.txt")
		if *update {
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Fatalf("threads %d: generated\n%s\nthe golden file holds\n%s", threads, got, want)
		}
	}
}
