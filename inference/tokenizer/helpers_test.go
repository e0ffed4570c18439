package tokenizer

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/internal/shareddata"
	"github.com/shrinkml/shrink/internal/testvocab"
	"github.com/shrinkml/shrink/model"
)

// readTok512 parses a llama2.c tokenizer file (int32 max_token_length, then
// per token float32 score, int32 length, bytes) into the GGUF conventions of
// model.Tokenizer, and also returns the raw strings as llama2.c keeps them.
func readTok512(t testing.TB) (*model.Tokenizer, []string) {
	t.Helper()
	data, err := os.ReadFile(shareddata.Path(t, shareddata.Tok512Bin))
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 4 {
		t.Fatalf("tok512.bin: %d bytes is too short", len(data))
	}
	off := 4
	var raw []string
	var scores []float32
	for off < len(data) {
		if off+8 > len(data) {
			t.Fatalf("tok512.bin: truncated entry header at offset %d", off)
		}
		score := math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		n := int(int32(binary.LittleEndian.Uint32(data[off+4:])))
		off += 8
		if n < 0 || off+n > len(data) {
			t.Fatalf("tok512.bin: token %d: bad length %d at offset %d", len(raw), n, off-4)
		}
		raw = append(raw, string(data[off:off+n]))
		scores = append(scores, score)
		off += n
	}
	if len(raw) != 512 {
		t.Fatalf("tok512.bin: %d tokens, want 512", len(raw))
	}
	mt := &model.Tokenizer{
		Kind:   "llama",
		Scores: scores,
		BOS:    1, EOS: 2, UNK: 0, PAD: -1,
		AddBOS:         true,
		AddSpacePrefix: true,
	}
	for id, s := range raw {
		typ := model.TokenNormal
		switch {
		case id == 0:
			typ = model.TokenUnknown
		case id <= 2:
			typ = model.TokenControl
		case id <= 258:
			typ = model.TokenByte
		}
		mt.Tokens = append(mt.Tokens, strings.ReplaceAll(s, " ", spaceMark))
		mt.Types = append(mt.Types, typ)
	}
	return mt, raw
}

func newTok512(t testing.TB) (*Tokenizer, []string) {
	t.Helper()
	mt, raw := readTok512(t)
	tk, err := New(mt)
	if err != nil {
		t.Fatal(err)
	}
	return tk, raw
}

// gpt2Subset loads testdata/gpt2_subset_tokenizer.json (a tokenizer.json made
// by make_bpe_fixture.mjs) as a gpt2-kind vocabulary with pre-tokenizer pre.
func gpt2Subset(t testing.TB, pre string) *model.Tokenizer {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "gpt2_subset_tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	mt, err := testvocab.GPT2Subset(data, pre)
	if err != nil {
		t.Fatal(err)
	}
	return mt
}

func newGPT2Subset(t testing.TB, pre string) *Tokenizer {
	t.Helper()
	tk, err := New(gpt2Subset(t, pre))
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// tinyLlamaVocab builds a small SentencePiece-style vocabulary in code, laid
// out like tok512: <unk>, <s>, </s>, the 256 byte tokens, then pieces with
// falling scores.
func tinyLlamaVocab() *model.Tokenizer {
	mt := &model.Tokenizer{Kind: "llama", BOS: 1, EOS: 2, UNK: 0, PAD: -1, AddBOS: true, AddSpacePrefix: true}
	add := func(s string, score float32, typ model.TokenType) {
		mt.Tokens = append(mt.Tokens, s)
		mt.Scores = append(mt.Scores, score)
		mt.Types = append(mt.Types, typ)
	}
	add("<unk>", 0, model.TokenUnknown)
	add("<s>", 0, model.TokenControl)
	add("</s>", 0, model.TokenControl)
	for b := range 256 {
		add(fmt.Sprintf("<0x%02X>", b), 0, model.TokenByte)
	}
	merges := []string{"▁t", "he", "▁a", "▁the", "in", "nd", "▁and", "er", "▁w", "as", "▁was", "on", "▁s",
		"▁h", "re", "▁to", "it", "ed", "▁b", "▁l", "ll", "ay", "▁o", "ou", "an", "▁f", "▁ti", "me", "▁time",
		"▁▁", "▁▁▁▁", "ét", "日本"}
	for i, m := range merges {
		add(m, -float32(i), model.TokenNormal)
	}
	chars := "▁etaoinshrdlcumwfgypbvkjxqzTOSLIH.,!?'\"-\néñ日本"
	for i, r := range chars {
		add(string(r), -1000-float32(i), model.TokenNormal)
	}
	return mt
}

func readJSON(t testing.TB, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// sharedLines returns the lines of a shared text file.
func sharedLines(t testing.TB, rel string) []string {
	t.Helper()
	data, err := os.ReadFile(shareddata.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(data), "\n")
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
