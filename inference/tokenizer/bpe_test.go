package tokenizer

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// bpeFixture is testdata/bpe_gpt2.json, written by make_bpe_fixture.mjs:
// js-tiktoken's encodings with GPT-2's ranks under three pre-tokenizer
// patterns, each checked there against transformers.js loading a
// tokenizer.json (full vocabulary and the committed subset).
type bpeFixture struct {
	Tricky []bpeCase `json:"tricky"`
	Lines  []bpeCase `json:"lines"`
}

type bpeCase struct {
	Text   string `json:"text"`
	File   string `json:"file"`
	Line   int    `json:"line"`
	SHA256 string `json:"sha256"`
	GPT2   []int  `json:"gpt2"`
	Llama3 []int  `json:"llama3"`
	Qwen2  []int  `json:"qwen2"`
}

// gguf pre-tokenizer names for the fixture's three patterns.
var fixturePres = []struct {
	pre  string
	want func(c bpeCase) []int
}{
	{"gpt-2", func(c bpeCase) []int { return c.GPT2 }},
	{"llama-bpe", func(c bpeCase) []int { return c.Llama3 }},
	{"qwen2", func(c bpeCase) []int { return c.Qwen2 }},
}

func TestGPT2MatchesJavaScript(t *testing.T) {
	var fx bpeFixture
	readJSON(t, "bpe_gpt2.json", &fx)
	for _, p := range fixturePres {
		t.Run(p.pre, func(t *testing.T) {
			tk := newGPT2Subset(t, p.pre)
			for _, c := range fx.Tricky {
				if got := tk.Encode(c.Text, false); !equalInts(got, p.want(c)) {
					t.Errorf("Encode(%q) = %v, JavaScript reference gives %v", c.Text, got, p.want(c))
				}
			}
			files := map[string][]string{}
			for _, c := range fx.Lines {
				lines, ok := files[c.File]
				if !ok {
					lines = sharedLines(t, c.File)
					files[c.File] = lines
				}
				if c.Line >= len(lines) || sha256Hex(lines[c.Line]) != c.SHA256 {
					t.Fatalf("%s line %d differs from the one the fixture was made from", c.File, c.Line)
				}
				if got := tk.Encode(lines[c.Line], false); !equalInts(got, p.want(c)) {
					t.Errorf("%s line %d %q:\n got %v\nwant %v", c.File, c.Line, lines[c.Line], got, p.want(c))
				}
			}
		})
	}
}

// TestPreTokenizersMatchRegex compares the hand-written scanners with V8's
// regex engine running the upstream patterns (testdata/pretok.json), on
// hand-made and seeded random strings.
func TestPreTokenizersMatchRegex(t *testing.T) {
	var fx struct {
		Cases []struct {
			Text   string   `json:"text"`
			GPT2   []string `json:"gpt2"`
			Llama3 []string `json:"llama3"`
			Qwen2  []string `json:"qwen2"`
		} `json:"cases"`
	}
	readJSON(t, "pretok.json", &fx)
	if len(fx.Cases) < 400 {
		t.Fatalf("pretok.json has %d cases", len(fx.Cases))
	}
	for _, c := range fx.Cases {
		for _, p := range []struct {
			pre  preTokenizer
			want []string
		}{{gpt2Pre, c.GPT2}, {llama3Pre, c.Llama3}, {qwen2Pre, c.Qwen2}} {
			if got := splitWith(p.pre, c.Text); !slices.Equal(got, p.want) && !(len(got) == 0 && len(p.want) == 0) {
				t.Errorf("%s split of %q = %q, regex gives %q", p.pre.name, c.Text, got, p.want)
			}
		}
	}
}

func splitWith(p preTokenizer, s string) []string {
	var out []string
	for i := 0; i < len(s); {
		j := p.next(s, i)
		out = append(out, s[i:j])
		i = j
	}
	return out
}

// TestPreTokenizerCases pins splits that follow from the regexes' semantics,
// including inputs a JavaScript reference cannot produce (invalid UTF-8).
func TestPreTokenizerCases(t *testing.T) {
	tests := []struct {
		pre  preTokenizer
		in   string
		want []string
	}{
		{gpt2Pre, "Hello world", []string{"Hello", " world"}},
		{gpt2Pre, "a  b", []string{"a", " ", " b"}},                   // \s+(?!\S) leaves the last space to " b"
		{gpt2Pre, "a   ", []string{"a", "   "}},                       // at the end the whole run
		{gpt2Pre, "a \n b", []string{"a", " \n", " b"}},               // run " \n " before b: all but the last
		{gpt2Pre, "a\n", []string{"a", "\n"}},                         // one space before the end
		{gpt2Pre, "a\nb", []string{"a", "\n", "b"}},                   // a lone space before \S falls to \s+
		{gpt2Pre, "it's IT'S", []string{"it", "'s", " IT", "'", "S"}}, // case-sensitive
		{gpt2Pre, "x 123 !!", []string{"x", " 123", " !!"}},
		{gpt2Pre, "a\xffb", []string{"a", "\xff", "b"}}, // an invalid byte is "other"
		{gpt2Pre, " \xff\xfe", []string{" \xff\xfe"}},
		{llama3Pre, "IT'S we'LL", []string{"IT", "'S", " we", "'LL"}}, // case-insensitive
		{llama3Pre, "1234567", []string{"123", "456", "7"}},
		{qwen2Pre, "123", []string{"1", "2", "3"}},
		{llama3Pre, "a\n\n  b", []string{"a", "\n\n", " ", " b"}},
		{llama3Pre, " \t\n x", []string{" \t\n", " x"}},
		{llama3Pre, "!!\n\nx", []string{"!!\n\n", "x"}},
		{llama3Pre, "\tx", []string{"\tx"}}, // any non-letter-non-digit but CR/LF may lead a word
		{llama3Pre, "\nx", []string{"\n", "x"}},
		{llama3Pre, "\xffx", []string{"\xffx"}},
		{llama3Pre, "  ", []string{"  "}},
		{llama3Pre, "a  1", []string{"a", " ", " ", "1"}},
	}
	for _, tt := range tests {
		if got := splitWith(tt.pre, tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("%s split of %q = %q, want %q", tt.pre.name, tt.in, got, tt.want)
		}
	}
}

// TestGPT2RoundTrip checks DecodeAll(Encode(s)) == s for byte-level BPE on
// random strings, valid UTF-8 or not.
func TestGPT2RoundTrip(t *testing.T) {
	for _, p := range fixturePres {
		tk := newGPT2Subset(t, p.pre)
		rng := rand.New(rand.NewPCG(5, 6))
		for i := range 3000 {
			s := randomString(rng, i%2 == 0)
			if got := tk.DecodeAll(tk.Encode(s, true)); got != s {
				t.Fatalf("%s: DecodeAll(Encode(%q)) = %q", p.pre, s, got)
			}
		}
		// Control tokens in text are plain text.
		s := "a<|endoftext|>b"
		ids := tk.Encode(s, false)
		if slices.Contains(ids, tk.EOS()) {
			t.Errorf("%s: %q encoded the control token: %v", p.pre, s, ids)
		}
		if got := tk.DecodeAll(ids); got != s {
			t.Errorf("%s: round trip of %q = %q", p.pre, s, got)
		}
	}
}

// TestGPT2LongWord checks that one huge pre-token (a run of spaces) is
// encoded in reasonable time and round-trips.
func TestGPT2LongWord(t *testing.T) {
	tk := newGPT2Subset(t, "gpt-2")
	s := "x" + strings.Repeat(" ", 200000) + "y"
	if got := tk.DecodeAll(tk.Encode(s, false)); got != s {
		t.Fatal("long run of spaces does not round-trip")
	}
}
