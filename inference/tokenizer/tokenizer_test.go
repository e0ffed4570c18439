package tokenizer

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/model"
)

func TestNewErrors(t *testing.T) {
	llama := func(edit func(mt *model.Tokenizer)) *model.Tokenizer {
		mt := tinyLlamaVocab()
		edit(mt)
		return mt
	}
	gpt2 := func(edit func(mt *model.Tokenizer)) *model.Tokenizer {
		mt := gpt2Subset(t, "gpt-2")
		edit(mt)
		return mt
	}
	tests := []struct {
		name string
		mt   *model.Tokenizer
		want string
	}{
		{"nil", nil, "tokenizer: no vocabulary"},
		{"empty", &model.Tokenizer{Kind: "llama"}, "tokenizer: empty vocabulary"},
		{"kind", llama(func(mt *model.Tokenizer) { mt.Kind = "wordpiece" }), `unsupported kind "wordpiece"`},
		{"types length", llama(func(mt *model.Tokenizer) { mt.Types = mt.Types[:3] }), "3 token types for"},
		{"bad type", llama(func(mt *model.Tokenizer) { mt.Types[300] = 9 }), "unknown type 9"},
		{"scores length", llama(func(mt *model.Tokenizer) { mt.Scores = nil }), "0 scores for"},
		{"nan score", llama(func(mt *model.Tokenizer) { mt.Scores[260] = float32(math.NaN()) }), "score is NaN"},
		{"bos range", llama(func(mt *model.Tokenizer) { mt.BOS = 100000 }), "BOS id 100000 out of range"},
		{"eos range", llama(func(mt *model.Tokenizer) { mt.EOS = -5 }), "EOS id -5 out of range"},
		{"add bos", llama(func(mt *model.Tokenizer) { mt.BOS = -1 }), "AddBOS is set but there is no BOS token"},
		{"add eos", llama(func(mt *model.Tokenizer) { mt.EOS, mt.AddEOS = -1, true }), "AddEOS is set but there is no EOS token"},
		{"duplicate", llama(func(mt *model.Tokenizer) { mt.Tokens[300] = mt.Tokens[301] }), "duplicate token"},
		{"no byte", llama(func(mt *model.Tokenizer) { mt.Tokens[3+0x41] = "<byte41>"; mt.UNK = -1 }),
			"no byte token <0x41> and no unknown token"},
		{"pre", gpt2(func(mt *model.Tokenizer) { mt.Pre = "falcon" }), `unsupported pre-tokenizer "falcon"`},
		{"gpt2 byte", gpt2(func(mt *model.Tokenizer) { mt.Tokens[0] = "<nope>" }), "for byte 0x21 and no unknown token"},
		{"merge form", gpt2(func(mt *model.Tokenizer) { mt.Merges[0] = "ab" }), "want two tokens separated by one space"},
		{"merge part", gpt2(func(mt *model.Tokenizer) { mt.Merges[0] = "Ġ zzzz" }), `"zzzz" is not in the vocabulary`},
		{"merge result", gpt2(func(mt *model.Tokenizer) { mt.Merges[0] = "Ā ā" }), `"Āā" is not in the vocabulary`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.mt)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "tokenizer: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

// TestNewAcceptsMissingBytesWithUnk checks that a vocabulary without byte
// tokens falls back to the unknown token.
func TestNewAcceptsMissingBytesWithUnk(t *testing.T) {
	mt := tinyLlamaVocab()
	mt.Tokens[3+0xC3] = "<nobyte>"
	tk, err := New(mt)
	if err != nil {
		t.Fatal(err)
	}
	got := tk.Encode("ü", false) // U+00FC is C3 BC, and not a piece
	want := []int{int(tk.mergeable["▁"]), 0, 3 + 0xBC}
	if !equalInts(got, want) {
		t.Errorf("Encode(ü) = %v, want %v", got, want)
	}
}

func tinyTokenizer(t *testing.T, edit func(mt *model.Tokenizer)) *Tokenizer {
	t.Helper()
	mt := tinyLlamaVocab()
	if edit != nil {
		edit(mt)
	}
	tk, err := New(mt)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestEncodeEdges(t *testing.T) {
	tk := tinyTokenizer(t, nil)
	id := func(s string) int { return int(tk.mergeable[s]) }
	tests := []struct {
		name string
		in   string
		bos  bool
		want []int
	}{
		{"empty", "", false, nil},
		{"empty with BOS", "", true, []int{1}},
		{"prefix", "the", false, []int{id("▁the")}},
		{"two words", "the was", true, []int{1, id("▁the"), id("▁was")}},
		{"double space merges", "  a", false, []int{id("▁▁"), id("▁a")}},
		{"byte fallback", "ü", false, []int{id("▁"), 3 + 0xC3, 3 + 0xBC}},
		{"invalid byte", "\xff", false, []int{id("▁"), 3 + 0xFF}},
		{"control text is text", "<s>", false, []int{id("▁"), 3 + '<', id("s"), 3 + '>'}},
	}
	for _, tt := range tests {
		if got := tk.Encode(tt.in, tt.bos); !equalInts(got, tt.want) {
			t.Errorf("%s: Encode(%q, %v) = %v, want %v", tt.name, tt.in, tt.bos, got, tt.want)
		}
	}

	eos := tinyTokenizer(t, func(mt *model.Tokenizer) { mt.AddEOS = true })
	if got := eos.Encode("a", true); got[0] != 1 || got[len(got)-1] != 2 {
		t.Errorf("AddEOS: Encode = %v, want BOS ... EOS", got)
	}
	noPrefix := tinyTokenizer(t, func(mt *model.Tokenizer) { mt.AddSpacePrefix = false })
	if got := noPrefix.Encode("the", false); slices.Contains(got, id("▁the")) {
		t.Errorf("without AddSpacePrefix: Encode(the) = %v", got)
	}
}

// TestUserDefinedTokens checks that user-defined tokens are matched whole in
// text (longest first) and control tokens are not, as llama.cpp does with
// parse_special=false; under the llama kind the text after a user-defined
// token gets a dummy prefix again, also as llama.cpp does.
func TestUserDefinedTokens(t *testing.T) {
	var tool, toolx int
	tk := tinyTokenizer(t, func(mt *model.Tokenizer) {
		tool, toolx = len(mt.Tokens), len(mt.Tokens)+1
		mt.Tokens = append(mt.Tokens, "<tool>", "<tool>x")
		mt.Scores = append(mt.Scores, 0, 0)
		mt.Types = append(mt.Types, model.TokenUserDefined, model.TokenUserDefined)
	})
	ids := tk.Encode("a<tool>b<tool>x<s>", false)
	if !slices.Contains(ids, tool) || !slices.Contains(ids, toolx) || slices.Contains(ids, 1) {
		t.Errorf("Encode = %v, want <tool> (%d) and <tool>x (%d) and no <s>", ids, tool, toolx)
	}
	if got, want := tk.DecodeAll(ids), "a<tool> b<tool>x <s>"; got != want {
		t.Errorf("DecodeAll = %q, want %q", got, want)
	}
	if got := tk.Encode("<tool>", true); !equalInts(got, []int{1, tool}) {
		t.Errorf("Encode(<tool>) = %v", got)
	}

	mt := gpt2Subset(t, "gpt-2")
	ud := len(mt.Tokens)
	mt.Tokens = append(mt.Tokens, "<tool>")
	mt.Types = append(mt.Types, model.TokenUserDefined)
	g, err := New(mt)
	if err != nil {
		t.Fatal(err)
	}
	s := "call <tool> now"
	ids = g.Encode(s, false)
	if !slices.Contains(ids, ud) || g.DecodeAll(ids) != s {
		t.Errorf("gpt2: Encode(%q) = %v, decodes to %q", s, ids, g.DecodeAll(ids))
	}
}

func TestDecode(t *testing.T) {
	tk := tinyTokenizer(t, nil)
	the := int(tk.mergeable["▁the"])
	tests := []struct {
		name     string
		prev, id int
		want     string
	}{
		{"after BOS", 1, the, "the"},
		{"mid text", the, the, " the"},
		{"at start without BOS", -1, the, " the"},
		{"byte token", the, 3 + 0x0A, "\n"},
		{"byte token after BOS keeps its byte", 1, 3 + ' ', " "},
		{"control", the, 2, ""},
		{"unknown", the, 0, ""},
		{"out of range", the, 1 << 20, ""},
		{"negative", the, -3, ""},
	}
	for _, tt := range tests {
		if got := string(tk.Decode(tt.prev, tt.id)); got != tt.want {
			t.Errorf("%s: Decode(%d, %d) = %q, want %q", tt.name, tt.prev, tt.id, got, tt.want)
		}
	}
	if got := tk.DecodeAll([]int{1, the, the, 2, -1, 99999}); got != "the the" {
		t.Errorf("DecodeAll = %q", got)
	}
	// The returned bytes are the caller's.
	b := tk.Decode(the, the)
	b[0] = 'X'
	if got := string(tk.Decode(the, the)); got != " the" {
		t.Errorf("Decode result aliases internal state: %q", got)
	}
	if tk.BOS() != 1 || tk.EOS() != 2 || tk.VocabSize() != len(tinyLlamaVocab().Tokens) {
		t.Errorf("BOS %d EOS %d VocabSize %d", tk.BOS(), tk.EOS(), tk.VocabSize())
	}
}

// TestSegmentsMatchWholeMerge checks the cut into independent segments
// (pieceBigrams) against merging the whole string with one heap.
func TestSegmentsMatchWholeMerge(t *testing.T) {
	tk := tinyTokenizer(t, nil)
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range 5000 {
		s := strings.ReplaceAll(" "+randomString(rng, i%2 == 0), " ", spaceMark)
		var w spmWork
		whole := tk.mergeSegment(s, &w, nil)
		if got := tk.mergeLlama(s, nil); !equalInts(got, whole) {
			t.Fatalf("%q: segmented %v, whole %v", s, got, whole)
		}
	}
}

// TestScoreKey checks that scoreKey keeps the order of float32 scores.
func TestScoreKey(t *testing.T) {
	vals := []float32{float32(math.Inf(-1)), -1e30, -252, -1, -1e-30, 0, 1e-30, 1, 3.5, 1e30, float32(math.Inf(1))}
	for i := 1; i < len(vals); i++ {
		if scoreKey(vals[i-1]) >= scoreKey(vals[i]) {
			t.Errorf("scoreKey(%g) >= scoreKey(%g)", vals[i-1], vals[i])
		}
	}
	if scoreKey(float32(math.Copysign(0, -1))) != scoreKey(0) {
		t.Error("scoreKey(-0) != scoreKey(0)")
	}
}

// TestLlamaLinearish encodes a long text of one repeated character, the worst
// case for a quadratic merge loop.
func TestLlamaLinearish(t *testing.T) {
	tk := tinyTokenizer(t, nil)
	s := strings.Repeat(" ", 300000)
	if got := tk.DecodeAll(tk.Encode(s, true)); got != s {
		t.Fatal("long run of spaces does not round-trip")
	}
}
