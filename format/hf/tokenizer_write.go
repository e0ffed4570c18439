package hf

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/shrinkml/shrink/model"
)

// generateTokenizer writes tokenizer.json and tokenizer_config.json for a
// tokenizer that came without them (from llama2.c or GGUF).
func generateTokenizer(tok *model.Tokenizer, ctx int) (tokenizerJSON, configJSON []byte, err error) {
	n := len(tok.Tokens)
	if len(tok.Types) != 0 && len(tok.Types) != n {
		return nil, nil, fmt.Errorf("tokenizer has %d types for %d tokens", len(tok.Types), n)
	}
	if len(tok.Scores) != 0 && len(tok.Scores) != n {
		return nil, nil, fmt.Errorf("tokenizer has %d scores for %d tokens", len(tok.Scores), n)
	}
	index := make(map[string]int, n)
	for id, s := range tok.Tokens {
		if !utf8.ValidString(s) {
			return nil, nil, fmt.Errorf("token %d %q is not valid UTF-8, which tokenizer.json cannot hold", id, s)
		}
		if prev, dup := index[s]; dup {
			return nil, nil, fmt.Errorf("token %q is both id %d and id %d, which tokenizer.json cannot hold", s, prev, id)
		}
		index[s] = id
	}
	name := func(id int) any {
		if id < 0 || id >= n {
			return nil
		}
		return tok.Tokens[id]
	}
	for _, sp := range []struct {
		what string
		id   int
	}{{"BOS", tok.BOS}, {"EOS", tok.EOS}, {"UNK", tok.UNK}, {"PAD", tok.PAD}} {
		if sp.id >= n {
			return nil, nil, fmt.Errorf("%s id %d is beyond the %d tokens", sp.what, sp.id, n)
		}
	}

	var added []any
	for id := range tok.Tokens {
		t := tok.TypeOf(id)
		if id != tok.UNK && t != model.TokenControl && t != model.TokenUserDefined {
			continue
		}
		added = append(added, obj{
			{"id", id}, {"content", tok.Tokens[id]}, {"single_word", false}, {"lstrip", false},
			{"rstrip", false}, {"normalized", false}, {"special", t != model.TokenUserDefined},
		})
	}
	vocab := make(obj, n)
	for id, s := range tok.Tokens {
		vocab[id] = kv{s, id}
	}

	var pre, dec, merges any
	var byteFallback bool
	switch tok.Kind {
	case "llama":
		byteFallback = true
		scheme := "never"
		if tok.AddSpacePrefix {
			scheme = "first"
		}
		pre = obj{{"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", scheme}, {"split", false}}
		steps := []any{
			obj{{"type", "Replace"}, {"pattern", obj{{"String", "▁"}}}, {"content", " "}},
			obj{{"type", "ByteFallback"}},
			obj{{"type", "Fuse"}},
		}
		if tok.AddSpacePrefix {
			steps = append(steps, obj{{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}})
		}
		dec = obj{{"type", "Sequence"}, {"decoders", steps}}
		merges = mergeList(llamaMerges(tok, index))
	case "gpt2":
		pairs := make([][2]string, len(tok.Merges))
		for i, m := range tok.Merges {
			a, b, ok := strings.Cut(m, " ")
			if !ok || strings.Contains(b, " ") {
				return nil, nil, fmt.Errorf("merge %d %q is not two tokens separated by a space", i, m)
			}
			pairs[i] = [2]string{a, b}
		}
		pre = bytePre(tok.Pre)
		dec = obj{{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}
		merges = mergeList(pairs)
	default:
		return nil, nil, fmt.Errorf("cannot write a tokenizer.json for tokenizer kind %q (shrink writes llama and gpt2)", tok.Kind)
	}

	var post any
	if (tok.AddBOS && tok.BOS >= 0) || (tok.AddEOS && tok.EOS >= 0) {
		post = template(tok)
	}
	tj := obj{
		{"version", "1.0"},
		{"truncation", nil},
		{"padding", nil},
		{"added_tokens", added},
		{"normalizer", nil},
		{"pre_tokenizer", pre},
		{"post_processor", post},
		{"decoder", dec},
		{"model", obj{
			{"type", "BPE"}, {"dropout", nil}, {"unk_token", name(tok.UNK)},
			{"continuing_subword_prefix", nil}, {"end_of_word_suffix", nil},
			{"fuse_unk", byteFallback}, {"byte_fallback", byteFallback}, {"ignore_merges", false},
			{"vocab", vocab}, {"merges", merges},
		}},
	}
	if tokenizerJSON, err = marshalIndent(tj); err != nil {
		return nil, nil, err
	}
	class := "PreTrainedTokenizerFast"
	if tok.Kind == "llama" {
		class = "LlamaTokenizerFast"
	}
	tc := obj{
		{"add_bos_token", tok.AddBOS},
		{"add_eos_token", tok.AddEOS},
		{"bos_token", name(tok.BOS)},
		{"clean_up_tokenization_spaces", false},
		{"eos_token", name(tok.EOS)},
	}
	if tok.Kind == "llama" {
		tc = append(tc, kv{"legacy", false})
	}
	if ctx > 0 {
		tc = append(tc, kv{"model_max_length", ctx})
	}
	tc = append(tc, kv{"pad_token", name(tok.PAD)}, kv{"tokenizer_class", class}, kv{"unk_token", name(tok.UNK)})
	if configJSON, err = marshalIndent(tc); err != nil {
		return nil, nil, err
	}
	return tokenizerJSON, configJSON, nil
}

// mergeList renders merges as "a b" strings, or as [a, b] pairs when a token
// holds a space.
func mergeList(pairs [][2]string) []any {
	spaced := false
	for _, p := range pairs {
		spaced = spaced || strings.Contains(p[0], " ") || strings.Contains(p[1], " ")
	}
	out := make([]any, len(pairs))
	for i, p := range pairs {
		if spaced {
			out[i] = []string{p[0], p[1]}
		} else {
			out[i] = p[0] + " " + p[1]
		}
	}
	return out
}

// llamaMerges derives BPE merges from a SentencePiece-style vocabulary the way
// transformers' SentencePieceExtractor does: for every normal piece p and every
// split of p into two normal pieces left+right (at character boundaries), emit
// (left, right); order by p's score descending, then p's id, left's id and
// right's id ascending.
func llamaMerges(tok *model.Tokenizer, index map[string]int) [][2]string {
	normal := func(id int) bool { return tok.TypeOf(id) == model.TokenNormal }
	score := func(id int) float32 {
		if id < len(tok.Scores) {
			return tok.Scores[id]
		}
		return 0
	}
	type merge struct{ p, l, r int }
	var ms []merge
	for p, s := range tok.Tokens {
		if !normal(p) {
			continue
		}
		for i := range s {
			if i == 0 {
				continue
			}
			l, lok := index[s[:i]]
			r, rok := index[s[i:]]
			if lok && rok && normal(l) && normal(r) {
				ms = append(ms, merge{p, l, r})
			}
		}
	}
	sort.Slice(ms, func(i, j int) bool {
		a, b := ms[i], ms[j]
		if sa, sb := score(a.p), score(b.p); sa != sb {
			return sa > sb
		}
		if a.p != b.p {
			return a.p < b.p
		}
		if a.l != b.l {
			return a.l < b.l
		}
		return a.r < b.r
	})
	out := make([][2]string, len(ms))
	for i, m := range ms {
		out[i] = [2]string{tok.Tokens[m.l], tok.Tokens[m.r]}
	}
	return out
}

// bytePre is the pre-tokenizer of a byte-level vocabulary named by GGUF's
// tokenizer.ggml.pre; unknown names get GPT-2's.
func bytePre(pre string) any {
	split := func(re string) any {
		return obj{{"type", "Sequence"}, {"pretokenizers", []any{
			obj{{"type", "Split"}, {"pattern", obj{{"Regex", re}}}, {"behavior", "Isolated"}, {"invert", false}},
			obj{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}},
		}}}
	}
	switch pre {
	case "llama-bpe":
		return split(llama3Regex)
	case "qwen2":
		return split(qwen2Regex)
	case "smollm":
		return obj{{"type", "Sequence"}, {"pretokenizers", []any{
			obj{{"type", "Digits"}, {"individual_digits", true}},
			obj{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}},
		}}}
	}
	return obj{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}
}

// template is a TemplateProcessing post-processor that adds BOS and/or EOS.
func template(tok *model.Tokenizer) any {
	bos, eos := tok.AddBOS && tok.BOS >= 0, tok.AddEOS && tok.EOS >= 0
	special := func(id, typeID int) any {
		return obj{{"SpecialToken", obj{{"id", tok.Tokens[id]}, {"type_id", typeID}}}}
	}
	seq := func(name string, typeID int) any {
		return obj{{"Sequence", obj{{"id", name}, {"type_id", typeID}}}}
	}
	var single, pair []any
	for i, name := range []string{"A", "B"} {
		var part []any
		if bos {
			part = append(part, special(tok.BOS, i))
		}
		part = append(part, seq(name, i))
		if eos {
			part = append(part, special(tok.EOS, i))
		}
		if i == 0 {
			single = part
		}
		pair = append(pair, part...)
	}
	var specials obj
	add := func(id int) {
		for _, s := range specials {
			if s.k == tok.Tokens[id] {
				return
			}
		}
		specials = append(specials, kv{tok.Tokens[id], obj{{"id", tok.Tokens[id]}, {"ids", []int{id}}, {"tokens", []string{tok.Tokens[id]}}}})
	}
	if bos {
		add(tok.BOS)
	}
	if eos {
		add(tok.EOS)
	}
	return obj{{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", specials}}
}
