package hf

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/shrinkml/shrink/internal/shareddata"
	"github.com/shrinkml/shrink/model"
)

// readTok512 parses llama2.c's tokenizer file (int32 max_len, then per token a
// float32 score, an int32 length and the bytes) into a SentencePiece-style
// tokenizer with GGUF's conventions.
func readTok512(t *testing.T) *model.Tokenizer {
	t.Helper()
	raw, err := os.ReadFile(shareddata.Path(t, shareddata.Tok512Bin))
	if err != nil {
		t.Fatal(err)
	}
	tok := &model.Tokenizer{Kind: "llama", BOS: 1, EOS: 2, UNK: 0, PAD: -1, AddBOS: true, AddSpacePrefix: true}
	for off := 4; off < len(raw); {
		score := math.Float32frombits(binary.LittleEndian.Uint32(raw[off:]))
		n := int(binary.LittleEndian.Uint32(raw[off+4:]))
		s := string(raw[off+8 : off+8+n])
		off += 8 + n
		id := len(tok.Tokens)
		typ := model.TokenNormal
		switch {
		case id == 0:
			typ = model.TokenUnknown
		case id == 1:
			s, typ = "<s>", model.TokenControl
		case id == 2:
			s, typ = "</s>", model.TokenControl
		case id >= 3 && id <= 258:
			typ = model.TokenByte
		default:
			s = strings.ReplaceAll(s, " ", "▁")
		}
		tok.Tokens = append(tok.Tokens, s)
		tok.Scores = append(tok.Scores, score)
		tok.Types = append(tok.Types, typ)
	}
	if len(tok.Tokens) != 512 {
		t.Fatalf("%d tokens in tok512.bin", len(tok.Tokens))
	}
	return tok
}

func tok512Model(t *testing.T) *model.Model {
	cfg := tinyLlama()
	cfg.VocabSize = 512
	cfg.TiedEmbeddings = true
	m := randomModel(t, cfg, model.F32, 20)
	m.Tokenizer = readTok512(t)
	return m
}

// TestTok512RoundTrip writes the real llama2.c vocabulary as a generated
// tokenizer.json and checks that loading it gives the same tokenizer back.
func TestTok512RoundTrip(t *testing.T) {
	m := tok512Model(t)
	want := m.Tokenizer
	got, dir := saveLoad(t, m, SaveOptions{})
	tok := got.Tokenizer
	if tok.Kind != "llama" || !reflect.DeepEqual(tok.Tokens, want.Tokens) || !reflect.DeepEqual(tok.Types, want.Types) {
		t.Fatalf("kind %q; tokens or types differ", tok.Kind)
	}
	if tok.BOS != 1 || tok.EOS != 2 || tok.UNK != 0 || tok.PAD != -1 || !tok.AddBOS || tok.AddEOS || !tok.AddSpacePrefix {
		t.Errorf("special tokens or flags: %+v", *tok)
	}
	// The order of the scores among normal tokens must be the original one; for
	// a SentencePiece BPE vocabulary like this one, the values come back too.
	order := func(scores []float32) []int {
		var ids []int
		for id := range scores {
			if want.Types[id] == model.TokenNormal {
				ids = append(ids, id)
			}
		}
		sort.SliceStable(ids, func(i, j int) bool { return scores[ids[i]] > scores[ids[j]] })
		return ids
	}
	if !reflect.DeepEqual(order(tok.Scores), order(want.Scores)) {
		t.Error("score order differs")
	}
	for id := range want.Scores {
		if tok.Scores[id] != want.Scores[id] {
			t.Errorf("token %d %q: score %g, want %g", id, want.Tokens[id], tok.Scores[id], want.Scores[id])
			break
		}
	}
	// Carried on: saving the loaded model writes the same tokenizer files.
	files := dirFiles(t, dir)
	_, dir2 := saveLoad(t, got, SaveOptions{})
	files2 := dirFiles(t, dir2)
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json"} {
		if string(files[name]) != string(files2[name]) {
			t.Errorf("%s changed on the second save", name)
		}
	}
	var tc map[string]any
	json.Unmarshal(files["tokenizer_config.json"], &tc)
	if tc["bos_token"] != "<s>" || tc["add_bos_token"] != true || tc["tokenizer_class"] != "LlamaTokenizerFast" {
		t.Errorf("tokenizer_config.json %v", tc)
	}
}

// TestTok512EncodesIdentically encodes real text with llama2.c's algorithm
// (merge the adjacent pair whose result has the highest score) on the original
// scores, and with Hugging Face's BPE algorithm (merge the adjacent pair of
// lowest rank) on the merges of the generated tokenizer.json; the tokens must
// be the same.
func TestTok512EncodesIdentically(t *testing.T) {
	m := tok512Model(t)
	dir := filepath.Join(t.TempDir(), "out")
	if err := Save(dir, m, SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tj struct {
		Model struct {
			Vocab  map[string]int `json:"vocab"`
			Merges []string       `json:"merges"`
		} `json:"model"`
	}
	if err := json.Unmarshal(raw, &tj); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(shareddata.Path(t, shareddata.TinyStoriesVal))
	if err != nil {
		t.Fatal(err)
	}
	tok := m.Tokenizer
	index := map[string]int{}
	for id, s := range tok.Tokens {
		index[s] = id
	}
	type pair struct{ l, r int }
	rank := map[pair]int{}
	for r, mg := range tj.Model.Merges {
		a, b, _ := strings.Cut(mg, " ")
		rank[pair{tj.Model.Vocab[a], tj.Model.Vocab[b]}] = r
	}
	symbols := func(s string) []int {
		var ids []int
		for _, c := range s {
			if id, ok := index[string(c)]; ok {
				ids = append(ids, id)
				continue
			}
			var buf [4]byte
			for _, b := range buf[:utf8.EncodeRune(buf[:], c)] {
				ids = append(ids, 3+int(b))
			}
		}
		return ids
	}
	spm := func(s string) []int {
		ids := symbols(s)
		for {
			best, bestScore := -1, float32(-1e30)
			for i := 0; i+1 < len(ids); i++ {
				if id, ok := index[tok.Tokens[ids[i]]+tok.Tokens[ids[i+1]]]; ok && tok.Scores[id] > bestScore {
					best, bestScore = i, tok.Scores[id]
				}
			}
			if best < 0 {
				return ids
			}
			ids[best] = index[tok.Tokens[ids[best]]+tok.Tokens[ids[best+1]]]
			ids = append(ids[:best+1], ids[best+2:]...)
		}
	}
	bpe := func(s string) []int {
		ids := symbols(s)
		for {
			best, bestRank := -1, math.MaxInt
			for i := 0; i+1 < len(ids); i++ {
				if r, ok := rank[pair{ids[i], ids[i+1]}]; ok && r < bestRank {
					best, bestRank = i, r
				}
			}
			if best < 0 {
				return ids
			}
			ids[best] = tj.Model.Vocab[tok.Tokens[ids[best]]+tok.Tokens[ids[best+1]]]
			ids = append(ids[:best+1], ids[best+2:]...)
		}
	}
	lines := strings.Split(string(text), "\n")
	if len(lines) > 400 {
		lines = lines[:400]
	}
	n := 0
	for _, line := range lines {
		if line == "" {
			continue
		}
		s := "▁" + strings.ReplaceAll(line, " ", "▁")
		a, b := spm(s), bpe(s)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("line %q:\nllama2.c %v\nHF BPE   %v", line, a, b)
		}
		n += len(a)
	}
	if n < 10000 {
		t.Errorf("only %d tokens compared", n)
	}
}

// TestGPT2TokenizerRoundTrip writes a byte-level vocabulary with merges (as a
// GGUF gpt2-kind tokenizer holds it) and reads it back.
func TestGPT2TokenizerRoundTrip(t *testing.T) {
	for _, pre := range []string{"llama-bpe", "qwen2", "smollm", "gpt-2"} {
		t.Run(pre, func(t *testing.T) {
			cfg := tinyLlama()
			m := randomModel(t, cfg, model.F32, 21)
			tokens := []string{"a", "b", "Ġ", "ab", "Ġab", "c", "<|begin_of_text|>", "<|end_of_text|>", "<tool>"}
			for len(tokens) < cfg.VocabSize {
				tokens = append(tokens, padToken(len(tokens)))
			}
			types := make([]model.TokenType, len(tokens))
			for i := range types {
				types[i] = model.TokenNormal
				if i > 8 {
					types[i] = model.TokenUnused
				}
			}
			types[6], types[7], types[8] = model.TokenControl, model.TokenControl, model.TokenUserDefined
			m.Tokenizer = &model.Tokenizer{
				Kind: "gpt2", Tokens: tokens, Types: types, Merges: []string{"a b", "Ġ ab"}, Pre: pre,
				BOS: 6, EOS: 7, UNK: -1, PAD: -1, AddBOS: true,
			}
			got, _ := saveLoad(t, m, SaveOptions{})
			tok, want := got.Tokenizer, m.Tokenizer
			if tok.Kind != "gpt2" || tok.Pre != pre || !reflect.DeepEqual(tok.Tokens, want.Tokens) ||
				!reflect.DeepEqual(tok.Types, want.Types) || !reflect.DeepEqual(tok.Merges, want.Merges) {
				t.Errorf("got %+v\nwant %+v", *tok, *want)
			}
			if tok.BOS != 6 || tok.EOS != 7 || tok.UNK != -1 || !tok.AddBOS || tok.AddEOS || tok.AddSpacePrefix || tok.Scores != nil {
				t.Errorf("special tokens or flags: %+v", *tok)
			}
		})
	}
}

// TestLegacyLlamaTokenizer reads a tokenizer.json in the older transformers
// layout (normalizer Prepend + Replace, no pre-tokenizer) with a template
// post-processor and no tokenizer_config.json.
func TestLegacyLlamaTokenizer(t *testing.T) {
	tj := `{
  "added_tokens": [
    {"id": 0, "content": "<unk>", "special": true},
    {"id": 1, "content": "<s>", "special": true},
    {"id": 2, "content": "</s>", "special": true},
    {"id": 9, "content": "<pad>", "special": false}
  ],
  "normalizer": {"type": "Sequence", "normalizers": [
    {"type": "Prepend", "prepend": "▁"},
    {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
  "pre_tokenizer": null,
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}]},
  "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
  "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true,
    "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x0A>": 3, "▁": 4, "t": 5, "h": 6, "▁t": 7, "▁th": 8},
    "merges": [["▁", "t"], ["▁t", "h"], ["t", "h"]]}
}`
	tok, err := parseTokenizer(map[string][]byte{"tokenizer.json": []byte(tj)}, 12, configFile{"bos_token_id": json.RawMessage("1")})
	if err != nil {
		t.Fatal(err)
	}
	want := &model.Tokenizer{
		Kind:   "llama",
		Tokens: []string{"<unk>", "<s>", "</s>", "<0x0A>", "▁", "t", "h", "▁t", "▁th", "<pad>", "[PAD10]", "[PAD11]"},
		Scores: []float32{0, 0, 0, 0, -2, -3, -4, 0, -1, 0, 0, 0},
		Types: []model.TokenType{model.TokenUnknown, model.TokenControl, model.TokenControl, model.TokenByte,
			model.TokenNormal, model.TokenNormal, model.TokenNormal, model.TokenNormal, model.TokenNormal,
			model.TokenUserDefined, model.TokenUnused, model.TokenUnused},
		BOS: 1, EOS: 2, UNK: 0, PAD: -1, AddBOS: true, AddEOS: true, AddSpacePrefix: true,
		Files: tok.Files,
	}
	if !reflect.DeepEqual(tok, want) {
		t.Errorf("got\n%+v\nwant\n%+v", *tok, *want)
	}
}

func TestUnsupportedTokenizerKeepsFiles(t *testing.T) {
	files := map[string][]byte{"tokenizer.json": []byte(`{"model":{"type":"Unigram","vocab":[["a",0.0]]}}`)}
	tok, err := parseTokenizer(files, 32, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Kind != "" || tok.Tokens != nil || tok.Files == nil {
		t.Errorf("%+v", *tok)
	}
}
