package hf

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/shrinkml/shrink/model"
)

// TokenizerFiles are the files of a model folder that Load carries through, byte
// for byte, in Tokenizer.Files and Save writes back.
var TokenizerFiles = []string{
	"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
	"generation_config.json", "added_tokens.json", "vocab.json", "merges.txt", "chat_template.jinja",
}

// Pre-tokenizer regular expressions of byte-level vocabularies, as in their
// tokenizer.json files; they name GGUF's tokenizer.ggml.pre.
const (
	llama3Regex = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	qwen2Regex  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

var (
	byteTokenRE = regexp.MustCompile(`^<0x[0-9A-F]{2}>$`)
	padTokenRE  = regexp.MustCompile(`^\[PAD([0-9]+)\]$`)
)

// padToken names vocabulary slots that no token fills, as llama.cpp's converter does.
func padToken(id int) string { return "[PAD" + strconv.Itoa(id) + "]" }

type hfAddedToken struct {
	ID      int    `json:"id"`
	Content string `json:"content"`
	Special bool   `json:"special"`
}

type hfTokenizerJSON struct {
	AddedTokens   []hfAddedToken  `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         struct {
		Type         string            `json:"type"`
		UnkToken     *string           `json:"unk_token"`
		ByteFallback bool              `json:"byte_fallback"`
		Vocab        json.RawMessage   `json:"vocab"`
		Merges       []json.RawMessage `json:"merges"`
	} `json:"model"`
}

// component is one normalizer, pre-tokenizer, post-processor or decoder.
type component map[string]any

func (c component) typ() string { s, _ := c["type"].(string); return s }

func (c component) str(k string) string { s, _ := c[k].(string); return s }

// components flattens a (possibly nested) Sequence into its parts.
func components(raw json.RawMessage) []component {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return nil
	}
	var out []component
	var walk func(v any)
	walk = func(v any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		c := component(m)
		if c.typ() == "Sequence" {
			for _, key := range []string{"normalizers", "pretokenizers", "decoders", "processors"} {
				if list, ok := m[key].([]any); ok {
					for _, e := range list {
						walk(e)
					}
				}
			}
			return
		}
		out = append(out, c)
	}
	walk(v)
	return out
}

// tokenConfig is the part of tokenizer_config.json and config.json that names
// special tokens.
type tokenConfig struct {
	raw map[string]json.RawMessage
}

// token returns the content of a special token entry ("bos_token": "<s>" or
// {"content": "<s>", ...}); present is false when the key is absent, and
// content is "" when it is null.
func (tc tokenConfig) token(key string) (content string, present bool) {
	v, ok := tc.raw[key]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s, true
	}
	var d struct {
		Content string `json:"content"`
	}
	if json.Unmarshal(v, &d) == nil {
		return d.Content, true
	}
	return "", true
}

func (tc tokenConfig) flag(key string) (value, present bool) {
	v, ok := tc.raw[key]
	if !ok || json.Unmarshal(v, &value) != nil {
		return false, false
	}
	return value, true
}

// parseTokenizer fills a Tokenizer from the carried files. Only BPE
// tokenizer.json files are interpreted; for anything else (no tokenizer.json,
// a Unigram or WordPiece model) the tokenizer holds the files only and Kind is
// empty. vocabSize pads the vocabulary to the embedding's rows; cfg is
// config.json, for bos_token_id and eos_token_id.
func parseTokenizer(files map[string][]byte, vocabSize int, cfg configFile) (*model.Tokenizer, error) {
	tok := &model.Tokenizer{Files: files, BOS: -1, EOS: -1, UNK: -1, PAD: -1}
	raw, ok := files["tokenizer.json"]
	if !ok {
		return tok, nil
	}
	var tj hfTokenizerJSON
	if err := json.Unmarshal(raw, &tj); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %v", err)
	}
	if t := tj.Model.Type; t != "BPE" && !(t == "" && tj.Model.Merges != nil) {
		return tok, nil
	}
	var vocab map[string]int
	if err := json.Unmarshal(tj.Model.Vocab, &vocab); err != nil {
		return nil, fmt.Errorf("tokenizer.json: model.vocab is not an object of token ids: %v", err)
	}

	// Size the vocabulary: the largest id, padded up to the embedding rows.
	size := 0
	for _, id := range vocab {
		size = max(size, id+1)
	}
	for _, at := range tj.AddedTokens {
		size = max(size, at.ID+1)
	}
	limit := max(vocabSize, len(vocab)+len(tj.AddedTokens))
	if size > limit {
		return nil, fmt.Errorf("tokenizer.json: token id %d is beyond the vocabulary size %d", size-1, limit)
	}
	size = max(size, vocabSize)
	tok.Tokens = make([]string, size)
	filled := make([]bool, size)
	for s, id := range vocab {
		if id < 0 {
			return nil, fmt.Errorf("tokenizer.json: token %q has the negative id %d", s, id)
		}
		if filled[id] {
			return nil, fmt.Errorf("tokenizer.json: id %d is both %q and %q", id, tok.Tokens[id], s)
		}
		tok.Tokens[id], filled[id] = s, true
	}
	added := map[int]hfAddedToken{}
	for _, at := range tj.AddedTokens {
		if at.ID < 0 {
			return nil, fmt.Errorf("tokenizer.json: added token %q has the negative id %d", at.Content, at.ID)
		}
		if filled[at.ID] && tok.Tokens[at.ID] != at.Content {
			return nil, fmt.Errorf("tokenizer.json: id %d is %q in the vocabulary and %q in added_tokens", at.ID, tok.Tokens[at.ID], at.Content)
		}
		tok.Tokens[at.ID], filled[at.ID] = at.Content, true
		added[at.ID] = at
	}
	for id := range tok.Tokens {
		if !filled[id] {
			tok.Tokens[id] = padToken(id)
		}
	}
	index := make(map[string]int, size)
	for id := len(tok.Tokens) - 1; id >= 0; id-- {
		index[tok.Tokens[id]] = id
	}
	lookup := func(s string) int {
		if id, ok := index[s]; ok {
			return id
		}
		return -1
	}

	// Kind and settings from the pipeline components.
	norms, pres, posts, decs := components(tj.Normalizer), components(tj.PreTokenizer), components(tj.PostProcessor), components(tj.Decoder)
	llamaLike, byteLevel := tj.Model.ByteFallback, false
	for _, c := range norms {
		switch {
		case c.typ() == "Prepend" && c.str("prepend") == "▁":
			llamaLike, tok.AddSpacePrefix = true, true
		case c.typ() == "Replace" && c.str("content") == "▁":
			llamaLike = true
		}
	}
	for _, c := range pres {
		switch c.typ() {
		case "Metaspace":
			llamaLike = true
			switch c.str("prepend_scheme") {
			case "first", "always":
				tok.AddSpacePrefix = true
			case "never":
			default:
				if b, ok := c["add_prefix_space"].(bool); ok && b {
					tok.AddSpacePrefix = true
				}
			}
		case "ByteLevel":
			byteLevel = true
		}
	}
	for _, c := range decs {
		switch c.typ() {
		case "ByteFallback", "Metaspace":
			llamaLike = true
		case "ByteLevel":
			byteLevel = true
		}
	}
	switch {
	case llamaLike:
		tok.Kind = "llama"
	case byteLevel:
		tok.Kind = "gpt2"
		tok.Pre = preName(pres)
	}

	merges := make([][2]string, len(tj.Model.Merges))
	for i, m := range tj.Model.Merges {
		var s string
		var pair []string
		switch {
		case json.Unmarshal(m, &s) == nil:
			a, b, ok := strings.Cut(s, " ")
			if !ok || strings.Contains(b, " ") {
				return nil, fmt.Errorf("tokenizer.json: merge %d %q is not two tokens separated by a space", i, s)
			}
			merges[i] = [2]string{a, b}
		case json.Unmarshal(m, &pair) == nil && len(pair) == 2:
			merges[i] = [2]string{pair[0], pair[1]}
		default:
			return nil, fmt.Errorf("tokenizer.json: merge %d is %s, not a pair of tokens", i, m)
		}
	}

	// Special tokens: tokenizer_config.json first, then config.json, then the
	// usual names.
	tc := tokenConfig{raw: map[string]json.RawMessage{}}
	if b, ok := files["tokenizer_config.json"]; ok {
		if err := json.Unmarshal(b, &tc.raw); err != nil {
			return nil, fmt.Errorf("tokenizer_config.json: %v", err)
		}
	}
	special := func(key, cfgKey string, fallbacks ...string) int {
		if s, ok := tc.token(key); ok {
			if s == "" {
				return -1
			}
			return lookup(s)
		}
		if cfgKey != "" && cfg.has(cfgKey) {
			var id int
			var ids []int
			if json.Unmarshal(cfg[cfgKey], &id) == nil && id >= 0 && id < size {
				return id
			}
			if json.Unmarshal(cfg[cfgKey], &ids) == nil && len(ids) > 0 && ids[0] >= 0 && ids[0] < size {
				return ids[0]
			}
		}
		for _, s := range fallbacks {
			if id := lookup(s); id >= 0 {
				return id
			}
		}
		return -1
	}
	tok.BOS = special("bos_token", "bos_token_id", "<s>", "<|begin_of_text|>")
	tok.EOS = special("eos_token", "eos_token_id", "</s>", "<|end_of_text|>", "<|endoftext|>")
	tok.PAD = special("pad_token", "pad_token_id")
	if tj.Model.UnkToken != nil {
		tok.UNK = lookup(*tj.Model.UnkToken)
	} else {
		tok.UNK = special("unk_token", "")
	}

	// BOS and EOS insertion: tokenizer_config.json, else the post-processor
	// template, else the kind's default.
	firstSpecial, lastSpecial := templateEnds(posts)
	if v, ok := tc.flag("add_bos_token"); ok {
		tok.AddBOS = v
	} else if firstSpecial != "" || lastSpecial != "" {
		tok.AddBOS = tok.BOS >= 0 && firstSpecial == tok.Tokens[tok.BOS]
	} else {
		tok.AddBOS = tok.Kind == "llama"
	}
	if v, ok := tc.flag("add_eos_token"); ok {
		tok.AddEOS = v
	} else {
		tok.AddEOS = tok.EOS >= 0 && lastSpecial == tok.Tokens[tok.EOS]
	}

	// Types.
	tok.Types = make([]model.TokenType, size)
	for id, s := range tok.Tokens {
		at, isAdded := added[id]
		switch {
		case id == tok.UNK:
			tok.Types[id] = model.TokenUnknown
		case !filled[id] || (padTokenRE.MatchString(s) && s == padToken(id) && !isAdded):
			tok.Types[id] = model.TokenUnused
		case tok.Kind == "llama" && byteTokenRE.MatchString(s):
			tok.Types[id] = model.TokenByte
		case isAdded && at.Special:
			tok.Types[id] = model.TokenControl
		case isAdded:
			tok.Types[id] = model.TokenUserDefined
		default:
			tok.Types[id] = model.TokenNormal
		}
	}

	switch tok.Kind {
	case "llama":
		tok.Scores = scoresFromMerges(tok.Tokens, tok.Types, merges, index)
	case "gpt2":
		tok.Merges = make([]string, len(merges))
		for i, m := range merges {
			tok.Merges[i] = m[0] + " " + m[1]
		}
	}
	return tok, nil
}

// scoresFromMerges gives SentencePiece-style scores to a vocabulary from its
// BPE merges, so that merging the adjacent pair whose result scores highest
// (llama.cpp's SPM algorithm) follows the merge ranks:
//
//   - normal and user-defined tokens produced by a merge are ordered by their
//     first merge's rank (ties by id) and scored 0, -1, -2, ... in that order;
//   - normal tokens no merge produces (single characters) continue the count
//     downwards in id order;
//   - byte, control, unknown and unused tokens score 0.
//
// For a vocabulary converted from a SentencePiece BPE model this gives back
// its scores exactly.
func scoresFromMerges(tokens []string, types []model.TokenType, merges [][2]string, index map[string]int) []float32 {
	scores := make([]float32, len(tokens))
	first := make([]int, len(tokens))
	for i := range first {
		first[i] = -1
	}
	for r, m := range merges {
		if id, ok := index[m[0]+m[1]]; ok && first[id] < 0 {
			first[id] = r
		}
	}
	scored := func(id int) bool { return types[id] == model.TokenNormal || types[id] == model.TokenUserDefined }
	var merged []int
	for id := range tokens {
		if first[id] >= 0 && scored(id) {
			merged = append(merged, id)
		}
	}
	sort.Slice(merged, func(i, j int) bool {
		a, b := merged[i], merged[j]
		if first[a] != first[b] {
			return first[a] < first[b]
		}
		return a < b
	})
	next := 0
	for _, id := range merged {
		scores[id] = float32(-next)
		next++
	}
	for id := range tokens {
		if first[id] < 0 && types[id] == model.TokenNormal {
			scores[id] = float32(-next)
			next++
		}
	}
	return scores
}

// templateEnds returns the special tokens at the start and end of a
// TemplateProcessing post-processor's single-sequence template.
func templateEnds(posts []component) (first, last string) {
	for _, c := range posts {
		if c.typ() != "TemplateProcessing" {
			continue
		}
		items, _ := c["single"].([]any)
		name := func(item any) string {
			m, _ := item.(map[string]any)
			st, _ := m["SpecialToken"].(map[string]any)
			s, _ := st["id"].(string)
			return s
		}
		if len(items) > 0 {
			return name(items[0]), name(items[len(items)-1])
		}
	}
	return "", ""
}

// preName recognizes the pre-tokenizers of common byte-level vocabularies and
// returns llama.cpp's name for them (GGUF tokenizer.ggml.pre), or "" when the
// pre-tokenizer is not one it knows.
func preName(pres []component) string {
	switch {
	case len(pres) == 1 && pres[0].typ() == "ByteLevel":
		if b, ok := pres[0]["use_regex"].(bool); !ok || b {
			return "gpt-2"
		}
	case len(pres) == 2 && pres[0].typ() == "Split" && pres[1].typ() == "ByteLevel":
		pat, _ := pres[0]["pattern"].(map[string]any)
		re, _ := pat["Regex"].(string)
		switch re {
		case llama3Regex:
			return "llama-bpe"
		case qwen2Regex:
			return "qwen2"
		}
	case len(pres) == 2 && pres[0].typ() == "Digits" && pres[1].typ() == "ByteLevel":
		if b, _ := pres[0]["individual_digits"].(bool); b {
			return "smollm"
		}
	}
	return ""
}
