package llama2c

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/shrinkml/shrink/internal/fileio"
	"github.com/shrinkml/shrink/model"
)

// llama2.c's tokenizer ids, fixed by its SentencePiece training setup.
const (
	unkID = 0
	bosID = 1
	eosID = 2
)

// spaceMark is SentencePiece's visible space, which llama2.c's exporter
// replaced with ' ' and GGUF vocabularies keep.
const spaceMark = "\u2581"

// LoadTokenizer reads a llama2.c tokenizer file (tok512.bin, tokenizer.bin).
// vocabSize is the model's vocabulary size, which the file must match
// exactly; 0 reads every token in the file. Tokens follow GGUF conventions:
// spaces become U+2581, and the "\n<s>\n" and "\n</s>\n" texts of BOS and EOS
// become "<s>" and "</s>".
func LoadTokenizer(path string, vocabSize int) (*model.Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("llama2c tokenizer %s: %w", path, err)
	}
	return parseTokenizer(path, data, vocabSize)
}

func parseTokenizer(name string, data []byte, vocabSize int) (*model.Tokenizer, error) {
	fail := func(format string, args ...any) (*model.Tokenizer, error) {
		return nil, fmt.Errorf("llama2c tokenizer %s: "+format, append([]any{name}, args...)...)
	}
	if len(data) < 4 {
		return fail("file has %d bytes, too short for the 4-byte max_token_length", len(data))
	}
	maxLen := int64(int32(binary.LittleEndian.Uint32(data)))
	if maxLen < 0 {
		return fail("max_token_length %d is negative", maxLen)
	}
	// Every token takes at least 8 bytes, which bounds the allocation.
	capacity := (len(data) - 4) / 8
	if vocabSize > 0 && vocabSize < capacity {
		capacity = vocabSize
	}
	tok := &model.Tokenizer{
		Kind:           "llama",
		Tokens:         make([]string, 0, capacity),
		Scores:         make([]float32, 0, capacity),
		Types:          make([]model.TokenType, 0, capacity),
		BOS:            bosID,
		EOS:            eosID,
		UNK:            unkID,
		PAD:            -1,
		AddBOS:         true,
		AddSpacePrefix: true,
	}
	off := 4
	for id := 0; vocabSize <= 0 && off < len(data) || id < vocabSize; id++ {
		if off == len(data) {
			return fail("file ends after %d tokens, the model's vocabulary has %d", id, vocabSize)
		}
		if len(data)-off < 8 {
			return fail("token %d: truncated at byte %d: score and length need 8 bytes, %d remain", id, off, len(data)-off)
		}
		score := math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		n := int64(int32(binary.LittleEndian.Uint32(data[off+4:])))
		off += 8
		switch {
		case n < 0:
			return fail("token %d: length %d is negative", id, n)
		case n > maxLen:
			return fail("token %d: length %d exceeds max_token_length %d", id, n, maxLen)
		case n > int64(len(data)-off):
			return fail("token %d: length %d runs past the end of the file (%d bytes remain at byte %d)", id, n, len(data)-off, off)
		}
		text := string(data[off : off+int(n)])
		off += int(n)
		if (id == bosID || id == eosID) && len(text) >= 2 && text[0] == '\n' && text[len(text)-1] == '\n' {
			text = text[1 : len(text)-1]
		}
		text = strings.ReplaceAll(text, " ", spaceMark)
		tok.Tokens = append(tok.Tokens, text)
		tok.Scores = append(tok.Scores, score)
		tok.Types = append(tok.Types, tokenType(id, text))
	}
	if off != len(data) {
		return fail("holds more tokens than the model's vocabulary of %d: %d bytes follow token %d", vocabSize, len(data)-off, vocabSize-1)
	}
	if len(tok.Tokens) == 0 {
		return fail("holds no tokens")
	}
	if len(tok.Tokens) <= eosID {
		tok.EOS = -1
	}
	if len(tok.Tokens) <= bosID {
		tok.BOS = -1
	}
	return tok, nil
}

// tokenType classifies a token the way llama.cpp's llama2.c converter does.
func tokenType(id int, text string) model.TokenType {
	switch {
	case id == unkID:
		return model.TokenUnknown
	case id == bosID || id == eosID:
		return model.TokenControl
	case isByteToken(text):
		return model.TokenByte
	}
	return model.TokenNormal
}

// isByteToken reports whether text is a byte-fallback token such as "<0x0A>".
func isByteToken(text string) bool {
	if len(text) != 6 || !strings.HasPrefix(text, "<0x") || text[5] != '>' {
		return false
	}
	for _, c := range text[3:5] {
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// SaveTokenizer writes tok as a llama2.c tokenizer file, the inverse of
// LoadTokenizer: U+2581 becomes ' ', BOS and EOS are wrapped in newlines as
// llama2.c's exporter does, and max_token_length is the longest token. An
// existing file is replaced only when force is set.
func SaveTokenizer(path string, tok *model.Tokenizer, force bool) error {
	return fileio.WriteFile(path, force, func(w *bufio.Writer) error {
		return encodeTokenizer(w, path, tok)
	})
}

func encodeTokenizer(w io.Writer, name string, tok *model.Tokenizer) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("llama2c tokenizer %s: "+format, append([]any{name}, args...)...)
	}
	if tok == nil {
		return fail("the model has no tokenizer")
	}
	if tok.Kind != "llama" {
		return fail("a %q tokenizer cannot be stored; llama2.c holds SentencePiece-style (\"llama\") vocabularies", tok.Kind)
	}
	if len(tok.Tokens) == 0 {
		return fail("the tokenizer has no tokens")
	}
	if tok.Scores != nil && len(tok.Scores) != len(tok.Tokens) {
		return fail("%d scores for %d tokens", len(tok.Scores), len(tok.Tokens))
	}
	texts := make([]string, len(tok.Tokens))
	maxLen := 0
	for id, t := range tok.Tokens {
		t = strings.ReplaceAll(t, spaceMark, " ")
		if id == tok.BOS || id == tok.EOS {
			t = "\n" + t + "\n"
		}
		if len(t) > math.MaxInt32 {
			return fail("token %d is %d bytes long", id, len(t))
		}
		texts[id] = t
		maxLen = max(maxLen, len(t))
	}
	buf := binary.LittleEndian.AppendUint32(nil, uint32(maxLen))
	for id, t := range texts {
		var score float32
		if tok.Scores != nil {
			score = tok.Scores[id]
		}
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(score))
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(t)))
		buf = append(buf, t...)
	}
	if _, err := w.Write(buf); err != nil {
		return fail("%w", err)
	}
	return nil
}
