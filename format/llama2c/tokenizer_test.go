package llama2c

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/internal/fileio"
	"github.com/shrinkml/shrink/internal/shareddata"
	"github.com/shrinkml/shrink/model"
)

func TestLoadTok512(t *testing.T) {
	path := shareddata.Path(t, shareddata.Tok512Bin)
	for _, vocab := range []int{512, 0} {
		tok, err := LoadTokenizer(path, vocab)
		if err != nil {
			t.Fatal(err)
		}
		if len(tok.Tokens) != 512 || len(tok.Scores) != 512 || len(tok.Types) != 512 {
			t.Fatalf("vocab %d: %d tokens, %d scores, %d types; want 512 each", vocab, len(tok.Tokens), len(tok.Scores), len(tok.Types))
		}
		if tok.Kind != "llama" || tok.BOS != 1 || tok.EOS != 2 || tok.UNK != 0 || tok.PAD != -1 ||
			!tok.AddBOS || tok.AddEOS || !tok.AddSpacePrefix {
			t.Errorf("settings: %+v", tok)
		}
		for _, c := range []struct {
			id    int
			text  string
			score float32
			typ   model.TokenType
		}{
			{0, "<unk>", 0, model.TokenUnknown},
			{1, "<s>", 0, model.TokenControl},
			{2, "</s>", 0, model.TokenControl},
			{3, "<0x00>", 0, model.TokenByte},
			{13, "<0x0A>", 0, model.TokenByte},
			{258, "<0xFF>", 0, model.TokenByte},
			{259, "\u2581t", 0, model.TokenNormal},
			{260, "he", -1, model.TokenNormal},
			{265, "\u2581the", -6, model.TokenNormal},
			{286, "\u2581was", -27, model.TokenNormal},
			{299, "ing", -40, model.TokenNormal},
			{511, "\u200a", -252, model.TokenNormal},
		} {
			if tok.Tokens[c.id] != c.text || tok.Scores[c.id] != c.score || tok.Types[c.id] != c.typ {
				t.Errorf("token %d = (%q, %v, %d), want (%q, %v, %d)", c.id,
					tok.Tokens[c.id], tok.Scores[c.id], tok.Types[c.id], c.text, c.score, c.typ)
			}
		}
		// The exporter wrote score -0 for the first merge; keep the sign bit.
		if math.Float32bits(tok.Scores[259]) != 0x80000000 {
			t.Errorf("score of token 259 = %#x, want -0", math.Float32bits(tok.Scores[259]))
		}
		counts := map[model.TokenType]int{}
		for _, ty := range tok.Types {
			counts[ty]++
		}
		if counts[model.TokenUnknown] != 1 || counts[model.TokenControl] != 2 || counts[model.TokenByte] != 256 || counts[model.TokenNormal] != 253 {
			t.Errorf("type counts %v", counts)
		}
		for id, s := range tok.Tokens {
			if strings.Contains(s, " ") {
				t.Errorf("token %d %q still holds a plain space", id, s)
			}
		}
	}
}

func TestSaveTokenizerReproducesTok512(t *testing.T) {
	path := shareddata.Path(t, shareddata.Tok512Bin)
	tok, err := LoadTokenizer(path, 512)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "tok512.bin")
	if err := SaveTokenizer(out, tok, false); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(path)
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, want) {
		t.Errorf("saved tokenizer differs from %s (%d vs %d bytes)", path, len(got), len(want))
	}
	// max_token_length is recomputed: 7 here, the file's own value.
	if binary.LittleEndian.Uint32(got) != 7 {
		t.Errorf("max_token_length = %d, want 7", binary.LittleEndian.Uint32(got))
	}
	if err := SaveTokenizer(out, tok, false); !errors.Is(err, fileio.ErrExists) {
		t.Errorf("SaveTokenizer over an existing file without force: %v", err)
	}
}

func TestTokenizerRoundTrip(t *testing.T) {
	tok := &model.Tokenizer{
		Kind:   "llama",
		Tokens: []string{"<unk>", "<s>", "</s>", "<0x41>", "\u2581a", "b\u2581\u2581c", "<0x4g>", ""},
		Scores: []float32{0, 0, 0, 0, -1, -2.5, -3, float32(math.Inf(-1))},
		BOS:    1, EOS: 2, UNK: 0, PAD: -1, AddBOS: true, AddSpacePrefix: true,
	}
	var b bytes.Buffer
	if err := encodeTokenizer(&b, "mem", tok); err != nil {
		t.Fatal(err)
	}
	// max_token_length is 6, the length of "\n</s>\n" and "<0x41>".
	want := tokFileScores(6, []string{"<unk>", "\n<s>\n", "\n</s>\n", "<0x41>", " a", "b  c", "<0x4g>", ""}, tok.Scores)
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("encoded\n%q\nwant\n%q", b.Bytes(), want)
	}
	back, err := parseTokenizer("mem", b.Bytes(), len(tok.Tokens))
	if err != nil {
		t.Fatal(err)
	}
	wantTypes := []model.TokenType{model.TokenUnknown, model.TokenControl, model.TokenControl, model.TokenByte,
		model.TokenNormal, model.TokenNormal, model.TokenNormal, model.TokenNormal}
	for i := range tok.Tokens {
		if back.Tokens[i] != tok.Tokens[i] || back.Scores[i] != tok.Scores[i] || back.Types[i] != wantTypes[i] {
			t.Errorf("token %d read back as (%q, %v, %d), want (%q, %v, %d)", i,
				back.Tokens[i], back.Scores[i], back.Types[i], tok.Tokens[i], tok.Scores[i], wantTypes[i])
		}
	}

	// No scores means zero scores.
	tok.Scores = nil
	b.Reset()
	if err := encodeTokenizer(&b, "mem", tok); err != nil {
		t.Fatal(err)
	}
	if back, err = parseTokenizer("mem", b.Bytes(), 0); err != nil || back.Scores[5] != 0 {
		t.Errorf("without scores: %v, %v", back, err)
	}
}

func tokFileScores(maxLen int32, tokens []string, scores []float32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(maxLen))
	for i, t := range tokens {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(scores[i]))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(t)))
		b = append(b, t...)
	}
	return b
}

func TestLoadTokenizerErrors(t *testing.T) {
	valid := tokFile(3, "a", "bb", "ccc")
	withLen := func(n int32) []byte { // "a" then a token claiming n bytes
		b := tokFile(3, "a")
		b = binary.LittleEndian.AppendUint32(b, 0)
		b = binary.LittleEndian.AppendUint32(b, uint32(n))
		return append(b, "xy"...)
	}
	cases := []struct {
		name  string
		data  []byte
		vocab int
		want  string
	}{
		{"empty", nil, 0, "file has 0 bytes, too short for the 4-byte max_token_length"},
		{"negative max", tokFile(-1, "a"), 0, "max_token_length -1 is negative"},
		{"no tokens", tokFile(3), 0, "holds no tokens"},
		{"length beyond max", tokFile(2, "a", "bbb"), 0, "token 1: length 3 exceeds max_token_length 2"},
		{"negative length", withLen(-5), 0, "token 1: length -5 is negative"},
		{"length beyond file", withLen(3), 0, "token 1: length 3 runs past the end of the file (2 bytes remain at byte 21)"},
		{"truncated text", valid[:len(valid)-1], 0, "token 2: length 3 runs past the end of the file (2 bytes remain at byte 31)"},
		{"truncated length", valid[:len(valid)-4], 0, "token 2: truncated at byte 23: score and length need 8 bytes, 7 remain"},
		{"truncated score", valid[:len(valid)-9], 0, "token 2: truncated at byte 23: score and length need 8 bytes, 2 remain"},
		{"fewer than the model", valid, 4, "file ends after 3 tokens, the model's vocabulary has 4"},
		{"more than the model", valid, 2, "holds more tokens than the model's vocabulary of 2: 11 bytes follow token 1"},
		{"huge vocab", valid, math.MaxInt32, "file ends after 3 tokens, the model's vocabulary has 2147483647"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeTemp(t, "tok.bin", c.data)
			_, err := LoadTokenizer(p, c.vocab)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("LoadTokenizer: %v\nwant an error naming %s and containing %q", err, p, c.want)
			}
		})
	}
	if _, err := LoadTokenizer(filepath.Join(t.TempDir(), "none.bin"), 0); err == nil || !strings.Contains(err.Error(), "none.bin") {
		t.Errorf("missing file: %v", err)
	}
}

func TestSaveTokenizerErrors(t *testing.T) {
	cases := []struct {
		name string
		tok  *model.Tokenizer
		want string
	}{
		{"nil", nil, "the model has no tokenizer"},
		{"gpt2", &model.Tokenizer{Kind: "gpt2", Tokens: []string{"a"}}, `a "gpt2" tokenizer cannot be stored`},
		{"empty", &model.Tokenizer{Kind: "llama"}, "the tokenizer has no tokens"},
		{"scores", &model.Tokenizer{Kind: "llama", Tokens: []string{"a", "b"}, Scores: []float32{1}}, "1 scores for 2 tokens"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "tok.bin")
			err := SaveTokenizer(p, c.tok, false)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("SaveTokenizer: %v\nwant an error naming %s and containing %q", err, p, c.want)
			}
		})
	}
}

func BenchmarkParseTokenizer(b *testing.B) {
	data, err := os.ReadFile(shareddata.Path(b, shareddata.Tok512Bin))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := parseTokenizer("bench", data, 512); err != nil {
			b.Fatal(err)
		}
	}
}
