package inference

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/inference/tokenizer"
)

// TestGeneratePrompt prefills a prompt in one batch. The prompt is the start
// of the greedy story, so the continuation must be the rest of that story:
// the batched prefill must leave the cache as the one-token steps did.
func TestGeneratePrompt(t *testing.T) {
	m := loadStories(t)
	tok, err := tokenizer.New(m.Tokenizer)
	if err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile(filepath.Join("testdata", "stories260K_greedy.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, prompt := range []string{"Once upon a time", "Once upon a time, there was a little girl named Lily."} {
		for _, threads := range []int{1, 2} {
			l := newTestLlama(t, m, threads)
			var text bytes.Buffer
			st, err := Generate(l, tok, prompt, 60, Greedy(), func(p []byte) { text.Write(p) })
			if err != nil {
				t.Fatal(err)
			}
			want := strings.TrimPrefix(string(golden), prompt)
			if !strings.HasPrefix(want, text.String()) || text.Len() < 100 {
				t.Fatalf("threads %d: %q continues as\n%q\nwant a prefix of\n%q", threads, prompt, text.String(), want)
			}
			if st.PrefillTokens != len(tok.Encode(prompt, true)) || st.Generated != 60 || st.DecodeTokens != 59 {
				t.Errorf("threads %d: stats %+v", threads, st)
			}
			if st.PrefillRate() <= 0 || st.DecodeRate() <= 0 {
				t.Errorf("threads %d: rates %g, %g", threads, st.PrefillRate(), st.DecodeRate())
			}
		}
	}
}

// TestGenerateStops covers the early stops: n, the context, and n = 0.
func TestGenerateStops(t *testing.T) {
	m := loadStories(t)
	tok, err := tokenizer.New(m.Tokenizer)
	if err != nil {
		t.Fatal(err)
	}
	l := newTestLlama(t, m, 1)
	var pieces int
	st, err := Generate(l, tok, "", 5, Greedy(), func([]byte) { pieces++ })
	if err != nil || st.Generated != 5 || pieces != 5 {
		t.Fatalf("n=5: %+v, %d pieces, %v", st, pieces, err)
	}
	st, err = Generate(l, tok, "", 0, Greedy(), nil)
	if err != nil || st.Generated != 0 || st.PrefillTokens != 0 {
		t.Fatalf("n=0: %+v, %v", st, err)
	}
	// More than the 512-token context: stops when the cache is full.
	hot, err := NewSampler(SamplerOptions{Temperature: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	st, err = Generate(l, tok, "", 10000, hot, nil)
	if err != nil || st.Generated > m.Config.ContextLength || st.DecodeTokens >= m.Config.ContextLength {
		t.Fatalf("n=10000: %+v, %v", st, err)
	}
	long := strings.Repeat("a b ", 600)
	if _, err := Generate(l, tok, long, 5, Greedy(), nil); err == nil || !strings.Contains(err.Error(), "longer than the context") {
		t.Fatalf("long prompt: error %v", err)
	}
}
