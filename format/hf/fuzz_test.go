package hf

import "testing"

// FuzzTokenizer feeds arbitrary tokenizer.json and tokenizer_config.json
// contents to the tokenizer parser: it must never panic, and whatever it
// accepts must be self-consistent.
func FuzzTokenizer(f *testing.F) {
	f.Add([]byte(`{"added_tokens":[{"id":0,"content":"<unk>","special":true}],"pre_tokenizer":{"type":"Metaspace","prepend_scheme":"first"},`+
		`"model":{"type":"BPE","byte_fallback":true,"unk_token":"<unk>","vocab":{"<unk>":0,"a":1,"b":2,"ab":3},"merges":["a b"]}}`),
		[]byte(`{"bos_token":{"content":"<unk>"},"add_bos_token":false}`))
	f.Add([]byte(`{"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"x"}},{"type":"ByteLevel"}]},`+
		`"post_processor":{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"b"}},{"Sequence":{"id":"A"}}]},`+
		`"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":[["a","b"]]}}`), []byte(`{"eos_token":null}`))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":-1},"merges":[]}}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, tj, tc []byte) {
		files := map[string][]byte{"tokenizer.json": tj, "tokenizer_config.json": tc}
		tok, err := parseTokenizer(files, 16, configFile{})
		if err != nil || tok.Tokens == nil {
			return
		}
		n := len(tok.Tokens)
		if len(tok.Types) != n || (tok.Scores != nil && len(tok.Scores) != n) {
			t.Fatalf("%d tokens, %d types, %d scores", n, len(tok.Types), len(tok.Scores))
		}
		for _, id := range []int{tok.BOS, tok.EOS, tok.UNK, tok.PAD} {
			if id < -1 || id >= n {
				t.Fatalf("special id %d out of range", id)
			}
		}
		if tok.Kind == "llama" || tok.Kind == "gpt2" {
			// Whatever was read can be written, unless tokens repeat or are not UTF-8.
			_, _, _ = generateTokenizer(tok, 0)
		}
	})
}
