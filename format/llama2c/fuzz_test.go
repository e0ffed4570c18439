package llama2c

import (
	"bytes"
	"math"
	"testing"

	"github.com/shrinkml/shrink/model"
)

// FuzzLoad parses arbitrary bytes as a checkpoint. Whatever parses must be a
// valid model, and saving it must give back the input, except for RoPE table
// entries too far from the true values to be kept (see MetaRopePatch).
func FuzzLoad(f *testing.F) {
	// Small seeds (under 1 KB) keep the fuzzer's minimization of new inputs,
	// which is quadratic in their length, quick.
	for _, tied := range []bool{true, false} {
		s := micro
		s.tied = tied
		b := encodeBytes(f, tinyModel(s))
		f.Add(b)
		f.Add(b[:27])
		f.Add(b[:28])
		f.Add(b[:len(b)-4])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parse("fuzz", data)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("parse gave an invalid model: %v", err)
		}
		var out bytes.Buffer
		if err := encode(&out, "fuzz", m); err != nil {
			t.Fatalf("encode of a parsed model: %v", err)
		}
		got := out.Bytes()
		if len(got) != len(data) {
			t.Fatalf("re-encoded %d bytes from %d", len(got), len(data))
		}
		c := m.Config
		ropeStart := 28 + 4*int(m.Parameters()-paramsAfterRope(c))
		ropeEnd := ropeStart + 2*4*c.ContextLength*(c.HeadDim/2)
		if !bytes.Equal(got[:ropeStart], data[:ropeStart]) || !bytes.Equal(got[ropeEnd:], data[ropeEnd:]) {
			t.Fatalf("re-encoded weights differ from the input")
		}
		re, im := ropeTables(c.HeadDim, c.ContextLength)
		want := append(re, im...)
		for i := range want {
			in := f32At(data, (ropeStart-28)/4+i)
			kept := closeTo(in, want[i])
			same := math.Float32bits(f32At(got, (ropeStart-28)/4+i)) == math.Float32bits(in)
			if kept != same {
				t.Fatalf("RoPE entry %d: input %v, computed %v, re-encoded %v", i, in, want[i], f32At(got, (ropeStart-28)/4+i))
			}
		}
	})
}

// paramsAfterRope is the number of parameters stored after the RoPE tables.
func paramsAfterRope(c model.Config) int64 {
	if c.TiedEmbeddings {
		return 0
	}
	return int64(c.VocabSize) * int64(c.HiddenSize)
}

// FuzzTokenizer parses arbitrary bytes as a tokenizer file. Whatever parses
// must save and parse back to the same tokenizer.
func FuzzTokenizer(f *testing.F) {
	f.Add(tokFile(7, "<unk>", "\n<s>\n", "\n</s>\n", "<0x00>", " t", "he"), 6)
	f.Add(tokFile(7, "<unk>", "\n<s>\n", "\n</s>\n", "<0x00>", " t", "he"), 0)
	f.Add(tokFile(2, "a", "bbb"), 2)
	f.Add(tokFile(3, "a", "b")[:15], 2)
	f.Add([]byte{1, 0, 0}, 0)
	f.Fuzz(func(t *testing.T, data []byte, vocab int) {
		tok, err := parseTokenizer("fuzz", data, vocab)
		if err != nil {
			return
		}
		if vocab > 0 && len(tok.Tokens) != vocab {
			t.Fatalf("%d tokens for a vocabulary of %d", len(tok.Tokens), vocab)
		}
		if len(tok.Scores) != len(tok.Tokens) || len(tok.Types) != len(tok.Tokens) {
			t.Fatalf("%d tokens, %d scores, %d types", len(tok.Tokens), len(tok.Scores), len(tok.Types))
		}
		var out bytes.Buffer
		if err := encodeTokenizer(&out, "fuzz", tok); err != nil {
			t.Fatalf("encode of a parsed tokenizer: %v", err)
		}
		back, err := parseTokenizer("fuzz", out.Bytes(), len(tok.Tokens))
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		for i := range tok.Tokens {
			if back.Tokens[i] != tok.Tokens[i] || back.Types[i] != tok.Types[i] ||
				math.Float32bits(back.Scores[i]) != math.Float32bits(tok.Scores[i]) {
				t.Fatalf("token %d: (%q, %v, %d) read back as (%q, %v, %d)", i,
					tok.Tokens[i], tok.Scores[i], tok.Types[i], back.Tokens[i], back.Scores[i], back.Types[i])
			}
		}
		// Files written the way llama2.c's exporter writes them come back byte for byte.
		if exporterStyle(data, tok) && !bytes.Equal(out.Bytes()[4:], data[4:]) {
			t.Fatalf("an exporter-style file did not save back byte for byte")
		}
	})
}

// exporterStyle reports whether a parsed tokenizer file is one SaveTokenizer
// reproduces after its max_token_length: no U+2581 in the raw bytes, and BOS
// and EOS (when present) wrapped in newlines.
func exporterStyle(data []byte, tok *model.Tokenizer) bool {
	if bytes.Contains(data, []byte(spaceMark)) {
		return false
	}
	off := 4
	for id := range tok.Tokens {
		n := int(int32(uint32(data[off+4]) | uint32(data[off+5])<<8 | uint32(data[off+6])<<16 | uint32(data[off+7])<<24))
		text := data[off+8 : off+8+n]
		off += 8 + n
		if (id == bosID || id == eosID) && !(len(text) >= 2 && text[0] == '\n' && text[len(text)-1] == '\n') {
			return false
		}
	}
	return true
}
