package tokenizer

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/shrinkml/shrink/internal/shareddata"
)

// spmFixture is testdata/spm_tok512.json, written by make_spm_fixture.py from
// the official SentencePiece library encoding with a ModelProto built from
// tok512.bin.
type spmFixture struct {
	TextSHA256     string `json:"text_sha256"`
	WholeFileCount int    `json:"whole_file_tokens_with_bos"`
	Tricky         []struct {
		Text string `json:"text"`
		IDs  []int  `json:"ids"`
	} `json:"tricky"`
	Lines []struct {
		Line   int    `json:"line"`
		SHA256 string `json:"sha256"`
		IDs    []int  `json:"ids"`
	} `json:"lines"`
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestLlamaMatchesSentencePiece compares Encode, token for token, with the
// encodings the SentencePiece library made of hand-made strings and of a
// sample of TinyStories lines.
func TestLlamaMatchesSentencePiece(t *testing.T) {
	tk, _ := newTok512(t)
	var fx spmFixture
	readJSON(t, "spm_tok512.json", &fx)
	for _, c := range fx.Tricky {
		if got := tk.Encode(c.Text, false); !equalInts(got, c.IDs) {
			t.Errorf("Encode(%q) = %v, SentencePiece gives %v", c.Text, got, c.IDs)
		}
		if got := tk.Encode(c.Text, true); len(got) == 0 || got[0] != 1 || !equalInts(got[1:], c.IDs) {
			t.Errorf("Encode(%q, BOS) = %v, want BOS then %v", c.Text, got, c.IDs)
		}
	}
	lines := sharedLines(t, shareddata.TinyStoriesVal)
	for _, c := range fx.Lines {
		if c.Line >= len(lines) || sha256Hex(lines[c.Line]) != c.SHA256 {
			t.Fatalf("TinyStories line %d differs from the one the fixture was made from", c.Line)
		}
		if got := tk.Encode(lines[c.Line], false); !equalInts(got, c.IDs) {
			t.Errorf("line %d %q:\n got %v\nwant %v", c.Line, lines[c.Line], got, c.IDs)
		}
	}
}

// TestLlamaWholeFileCount pins the token count of the perplexity protocol's
// input: BOS plus the whole TinyStories file encoded as one string. The number
// is SentencePiece's (written in the fixture by make_spm_fixture.py).
func TestLlamaWholeFileCount(t *testing.T) {
	const want = 393019
	tk, _ := newTok512(t)
	var fx spmFixture
	readJSON(t, "spm_tok512.json", &fx)
	if fx.WholeFileCount != want {
		t.Fatalf("fixture says %d tokens, test pins %d", fx.WholeFileCount, want)
	}
	data, err := os.ReadFile(shareddata.Path(t, shareddata.TinyStoriesVal))
	if err != nil {
		t.Fatal(err)
	}
	if sha256Hex(string(data)) != fx.TextSHA256 {
		t.Fatal("TinyStories file differs from the one the fixture was made from")
	}
	ids := tk.Encode(string(data), true)
	if len(ids) != want {
		t.Errorf("whole file: %d tokens, want %d", len(ids), want)
	}
	if got := tk.DecodeAll(ids); got != string(data) {
		t.Errorf("whole file does not round-trip")
	}
}

// llama2cEncode is llama2.c's run.c encode, O(n²), kept as a second reference:
// it works on the raw strings of tok512.bin (spaces as ' '), maps each UTF-8
// character (up to 4 bytes, continuation bytes glued to what precedes) to its
// token or, when absent, to byte tokens before any merging, then merges the
// best-scoring pair until none is left.
func llama2cEncode(vocab []string, scores []float32, text string, bos bool) []int {
	lookup := make(map[string]int, len(vocab))
	for i, s := range vocab {
		lookup[s] = i
	}
	var tokens []int
	if bos {
		tokens = append(tokens, 1)
	}
	if text != "" {
		tokens = append(tokens, lookup[" "])
	}
	var buf []byte
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c&0xC0 != 0x80 {
			buf = buf[:0]
		}
		buf = append(buf, c)
		if i+1 < len(text) && text[i+1]&0xC0 == 0x80 && len(buf) < 4 {
			continue
		}
		if id, ok := lookup[string(buf)]; ok {
			tokens = append(tokens, id)
		} else {
			for _, b := range buf {
				tokens = append(tokens, int(b)+3)
			}
		}
		buf = buf[:0]
	}
	for {
		best, bestID, bestIdx := float32(-1e10), -1, -1
		for i := 0; i+1 < len(tokens); i++ {
			if id, ok := lookup[vocab[tokens[i]]+vocab[tokens[i+1]]]; ok && scores[id] > best {
				best, bestID, bestIdx = scores[id], id, i
			}
		}
		if bestIdx < 0 {
			return tokens
		}
		tokens[bestIdx] = bestID
		tokens = append(tokens[:bestIdx+1], tokens[bestIdx+2:]...)
	}
}

// TestLlamaMatchesLlama2c compares Encode with llama2.c's algorithm. The two
// agree on valid UTF-8 without U+2581 (the TinyStories lines, the fixture's
// tricky strings and random strings); the cases where they differ by design
// are listed in differ.
func TestLlamaMatchesLlama2c(t *testing.T) {
	tk, raw := newTok512(t)
	mt, _ := readTok512(t)
	check := func(s string) {
		t.Helper()
		got, want := tk.Encode(s, true), llama2cEncode(raw, mt.Scores, s, true)
		if !equalInts(got, want) {
			t.Errorf("Encode(%q) = %v, llama2.c gives %v", s, got, want)
		}
	}
	var fx spmFixture
	readJSON(t, "spm_tok512.json", &fx)
	for _, c := range fx.Tricky {
		if !strings.Contains(c.Text, spaceMark) {
			check(c.Text)
		}
	}
	lines := sharedLines(t, shareddata.TinyStoriesVal)
	step := 3 // every line agrees too; a third keeps the O(n²) reference quick
	if testing.Short() {
		step = 29
	}
	for i := 0; i < len(lines); i += step {
		check(lines[i])
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pool := []string{" ", " ", "a", "b", "e", "t", "h", "n", "d", "T", "é", "ñ", "ü", "日", "😀", "\n", "\t", ".", "'",
		"“", "â", "€", "™", "\u00a0", "\u200a", "<", ">", "s", "0x", "\x00"}
	for range 3000 {
		var sb strings.Builder
		for range rng.IntN(24) {
			sb.WriteString(pool[rng.IntN(len(pool))])
		}
		check(sb.String())
	}

	// Where the two differ by design.
	differ := []struct {
		text, why string
	}{
		{"x\u2581y", "U+2581 in the text is a space to SentencePiece but an unknown character (3 byte tokens) to llama2.c"},
		{"\u00e9\x80", "llama2.c glues a stray continuation byte to the character before it and byte-encodes the group; SentencePiece keeps é and encodes the stray byte alone"},
	}
	for _, d := range differ {
		got, want := tk.Encode(d.text, true), llama2cEncode(raw, mt.Scores, d.text, true)
		t.Logf("%q: ours %v, llama2.c %v (%s)", d.text, got, want, d.why)
	}
	if got, want := tk.Encode("x\u2581y", false), llama2cEncode(raw, mt.Scores, "x\u2581y", false); equalInts(got, want) {
		t.Errorf("expected U+2581 to differ from llama2.c")
	}
	if got, want := tk.Encode("\u00e9\x80", false), llama2cEncode(raw, mt.Scores, "\u00e9\x80", false); equalInts(got, want) {
		t.Errorf("expected a stray continuation byte to differ from llama2.c")
	}
}

// TestLlamaRoundTrip checks DecodeAll(Encode(s)) == s, and the same through
// streaming Decode, on random strings, valid UTF-8 or not, for the in-code
// vocabulary and tok512.
func TestLlamaRoundTrip(t *testing.T) {
	vocabs := map[string]func(t *testing.T) *Tokenizer{
		"tiny": func(t *testing.T) *Tokenizer {
			tk, err := New(tinyLlamaVocab())
			if err != nil {
				t.Fatal(err)
			}
			return tk
		},
		"tok512": func(t *testing.T) *Tokenizer { tk, _ := newTok512(t); return tk },
	}
	for name, mk := range vocabs {
		t.Run(name, func(t *testing.T) {
			tk := mk(t)
			rng := rand.New(rand.NewPCG(3, 4))
			for i := range 5000 {
				s := randomString(rng, i%3 == 0)
				if strings.Contains(s, spaceMark) {
					continue
				}
				checkRoundTrip(t, tk, s)
			}
		})
	}
}

// checkRoundTrip checks that s survives Encode then DecodeAll, with and
// without BOS, and Encode with BOS then streaming Decode.
func checkRoundTrip(t *testing.T, tk *Tokenizer, s string) {
	t.Helper()
	for _, bos := range []bool{false, true} {
		ids := tk.Encode(s, bos)
		if got := tk.DecodeAll(ids); got != s {
			t.Fatalf("DecodeAll(Encode(%q, %v)) = %q (ids %v)", s, bos, got, ids)
		}
		if !bos {
			continue
		}
		var streamed []byte
		prev := -1
		for _, id := range ids {
			streamed = append(streamed, tk.Decode(prev, id)...)
			prev = id
		}
		if string(streamed) != s {
			t.Fatalf("streamed Decode of Encode(%q, true) = %q (ids %v)", s, streamed, ids)
		}
	}
}

// randomString draws a short string of mixed scripts, spaces and control
// characters; with invalid set it may also hold bytes that are not UTF-8.
func randomString(rng *rand.Rand, invalid bool) string {
	pool := []string{" ", " ", "  ", "\n", "\t", "\r", "a", "e", "t", "h", "the", " and", "was", "T", "é", "ñ",
		"日本", "😀", "Ω", "\u00a0", "'", ".", ",", "!", "0", "123", "\u0301", "<s>", "<0x41>", "\x00", "\x7f"}
	var sb strings.Builder
	for range rng.IntN(20) {
		if invalid && rng.IntN(5) == 0 {
			sb.WriteByte(byte(0x80 + rng.IntN(0x80)))
			continue
		}
		sb.WriteString(pool[rng.IntN(len(pool))])
	}
	s := sb.String()
	if !invalid && !utf8.ValidString(s) {
		panic("pool must be valid UTF-8")
	}
	return s
}
