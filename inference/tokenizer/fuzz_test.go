package tokenizer

import (
	"strings"
	"testing"
)

// FuzzEncode encodes arbitrary strings with a SentencePiece-style vocabulary
// built in code and with the GPT-2 subset of testdata under each
// pre-tokenizer. Encoding must not panic, must give ids in range, must
// round-trip through DecodeAll and streaming Decode, and the segmented merge
// must agree with one merge over the whole string.
func FuzzEncode(f *testing.F) {
	for _, s := range []string{"", " ", "hello world", "  the  was  ", "a\nb\r\n\tc", "ü日本😀", "\xff\xfe\x80",
		"it's IT'S we'LL 1234567", "<s></s><unk><0x41>", "\u2581x", "é\x80", "!!\n\n  x"} {
		f.Add(s)
	}
	llama, err := New(tinyLlamaVocab())
	if err != nil {
		f.Fatal(err)
	}
	toks := map[string]*Tokenizer{"llama": llama}
	for _, pre := range []string{"gpt-2", "llama-bpe", "qwen2"} {
		toks[pre] = newGPT2Subset(f, pre)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for name, tk := range toks {
			ids := tk.Encode(s, true)
			for _, id := range ids {
				if id < 0 || id >= tk.VocabSize() {
					t.Fatalf("%s: Encode(%q) gives id %d outside the vocabulary", name, s, id)
				}
			}
			if name == "llama" && strings.Contains(s, spaceMark) {
				continue // U+2581 in text is a space to SentencePiece
			}
			if got := tk.DecodeAll(ids); got != s {
				t.Fatalf("%s: DecodeAll(Encode(%q)) = %q (ids %v)", name, s, got, ids)
			}
			var streamed []byte
			prev := -1
			for _, id := range ids {
				streamed = append(streamed, tk.Decode(prev, id)...)
				prev = id
			}
			if string(streamed) != s {
				t.Fatalf("%s: streamed Decode of %q = %q", name, s, streamed)
			}
		}
		if s != "" && len(s) < 1<<16 {
			m := strings.ReplaceAll(" "+s, " ", spaceMark)
			var w spmWork
			if got, want := llama.mergeLlama(m, nil), llama.mergeSegment(m, &w, nil); !equalInts(got, want) {
				t.Fatalf("segmented merge of %q = %v, whole %v", s, got, want)
			}
		}
	})
}
