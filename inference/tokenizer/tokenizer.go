// Package tokenizer turns text into a model's token ids and back, from the
// vocabulary in a model.Tokenizer. It implements the two algorithms GGUF
// names: "llama" (SentencePiece BPE with byte fallback, as llama.cpp and
// SentencePiece encode) and "gpt2" (byte-level BPE with ranked merges and a
// regex pre-tokenizer, as GPT-2, Llama 3 and Qwen2 tokenizer.json files do).
//
// Text is plain text: control tokens such as "<s>" or "<|endoftext|>" written
// in the text are encoded like any other characters (llama.cpp's
// parse_special=false). Tokens of type user-defined are the exception, as in
// llama.cpp and SentencePiece: they are always matched whole.
package tokenizer

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/shrinkml/shrink/model"
)

// Tokenizer encodes and decodes text for one vocabulary. It is immutable after
// New and safe for concurrent use.
type Tokenizer struct {
	gpt2     bool
	tokens   []string
	types    []model.TokenType
	scores   []float32
	bos, eos int
	unk      int
	addEOS   bool
	addSpace bool

	// pieces holds the decoded bytes of each token for Decode.
	pieces [][]byte
	// special lists the user-defined tokens, longest first, matched whole in text.
	special []int

	// llama kind.
	mergeable map[string]int32 // tokens that merges may produce (normal, user-defined, unused)
	keys      []uint32         // scoreKey of each token's score
	bigrams   map[uint64]struct{}
	byteTok   [256]int32 // <0xNN> tokens, -1 when absent

	// gpt2 kind.
	pre          preTokenizer
	ignoreMerges bool
	rawIDs       map[string]int32 // normal tokens by their raw bytes
	byteSym      [256]int32       // the token of each single byte, -1 when absent
	merges       map[uint64]merge
}

type merge struct {
	rank int32
	id   int32
}

// New checks a vocabulary and prepares it for encoding. It rejects unknown
// kinds and pre-tokenizers, duplicate tokens, out-of-range special ids, NaN
// scores, merges of unknown tokens, and vocabularies that cannot encode every
// byte (no byte token and no unknown token).
func New(t *model.Tokenizer) (*Tokenizer, error) {
	if t == nil {
		return nil, fmt.Errorf("tokenizer: no vocabulary")
	}
	n := len(t.Tokens)
	if n == 0 {
		return nil, fmt.Errorf("tokenizer: empty vocabulary")
	}
	if n > math.MaxInt32 {
		return nil, fmt.Errorf("tokenizer: %d tokens is too many", n)
	}
	tk := &Tokenizer{
		tokens:   slices.Clone(t.Tokens),
		types:    slices.Clone(t.Types),
		scores:   slices.Clone(t.Scores),
		bos:      t.BOS,
		eos:      t.EOS,
		unk:      t.UNK,
		addEOS:   t.AddEOS,
		addSpace: t.AddSpacePrefix,
	}
	switch t.Kind {
	case "llama":
	case "gpt2":
		tk.gpt2 = true
	default:
		return nil, fmt.Errorf("tokenizer: unsupported kind %q (want \"llama\" or \"gpt2\")", t.Kind)
	}
	if t.Types != nil && len(t.Types) != n {
		return nil, fmt.Errorf("tokenizer: %d token types for %d tokens", len(t.Types), n)
	}
	for id, ty := range t.Types {
		if ty < 0 || ty > model.TokenByte {
			return nil, fmt.Errorf("tokenizer: token %d %q: unknown type %d", id, t.Tokens[id], ty)
		}
	}
	if !tk.gpt2 && len(t.Scores) != n {
		return nil, fmt.Errorf("tokenizer: %d scores for %d tokens", len(t.Scores), n)
	}
	if tk.gpt2 && t.Scores != nil && len(t.Scores) != n {
		return nil, fmt.Errorf("tokenizer: %d scores for %d tokens", len(t.Scores), n)
	}
	for id, s := range t.Scores {
		if math.IsNaN(float64(s)) {
			return nil, fmt.Errorf("tokenizer: token %d %q: score is NaN", id, t.Tokens[id])
		}
	}
	for _, sp := range []struct {
		name string
		id   int
	}{{"BOS", t.BOS}, {"EOS", t.EOS}, {"UNK", t.UNK}, {"PAD", t.PAD}} {
		if sp.id < -1 || sp.id >= n {
			return nil, fmt.Errorf("tokenizer: %s id %d out of range [0,%d)", sp.name, sp.id, n)
		}
	}
	if t.AddBOS && t.BOS < 0 {
		return nil, fmt.Errorf("tokenizer: AddBOS is set but there is no BOS token")
	}
	if t.AddEOS && t.EOS < 0 {
		return nil, fmt.Errorf("tokenizer: AddEOS is set but there is no EOS token")
	}
	ids := make(map[string]int32, n)
	for id, s := range t.Tokens {
		if prev, ok := ids[s]; ok {
			return nil, fmt.Errorf("tokenizer: duplicate token %q at ids %d and %d", s, prev, id)
		}
		ids[s] = int32(id)
	}
	for id, s := range t.Tokens {
		if t.TypeOf(id) == model.TokenUserDefined && s != "" {
			tk.special = append(tk.special, id)
		}
	}
	sort.SliceStable(tk.special, func(i, j int) bool {
		return len(t.Tokens[tk.special[i]]) > len(t.Tokens[tk.special[j]])
	})

	var err error
	if tk.gpt2 {
		err = tk.initGPT2(t, ids)
	} else {
		err = tk.initLlama(t, ids)
	}
	if err != nil {
		return nil, err
	}
	tk.pieces = make([][]byte, n)
	for id := range t.Tokens {
		tk.pieces[id] = tk.piece(id)
	}
	return tk, nil
}

func (t *Tokenizer) initLlama(mt *model.Tokenizer, ids map[string]int32) error {
	t.mergeable = make(map[string]int32, len(ids))
	t.keys = make([]uint32, len(mt.Tokens))
	for id, sc := range mt.Scores {
		t.keys[id] = scoreKey(sc)
	}
	for id, s := range mt.Tokens {
		switch mt.TypeOf(id) {
		case model.TokenNormal, model.TokenUserDefined, model.TokenUnused, 0:
			t.mergeable[s] = int32(id)
		}
	}
	t.bigrams = pieceBigrams(t.mergeable)
	for b := range 256 {
		name := fmt.Sprintf("<0x%02X>", b)
		id, ok := ids[name]
		if !ok {
			if t.unk < 0 {
				return fmt.Errorf("tokenizer: no byte token %s and no unknown token for byte fallback", name)
			}
			id = -1
		}
		t.byteTok[b] = id
	}
	return nil
}

func (t *Tokenizer) initGPT2(mt *model.Tokenizer, ids map[string]int32) error {
	pre, ok := preTokenizers[mt.Pre]
	if !ok {
		return fmt.Errorf("tokenizer: unsupported pre-tokenizer %q", mt.Pre)
	}
	t.pre = pre
	// llama.cpp looks whole pre-tokens up before merging for Llama 3, as its
	// tokenizer.json says (ignore_merges).
	t.ignoreMerges = pre.name == "llama3"
	t.rawIDs = make(map[string]int32, len(ids))
	for id, s := range mt.Tokens {
		switch mt.TypeOf(id) {
		case model.TokenNormal, 0:
			if raw, ok := byteLevelDecode(s); ok {
				t.rawIDs[string(raw)] = int32(id)
			}
		}
	}
	for b := range 256 {
		name := string(byteToRune[b])
		id, ok := ids[name]
		if !ok {
			if t.unk < 0 {
				return fmt.Errorf("tokenizer: no token %q for byte 0x%02X and no unknown token", name, b)
			}
			id = -1
		}
		t.byteSym[b] = id
	}
	t.merges = make(map[uint64]merge, len(mt.Merges))
	for rank, m := range mt.Merges {
		a, b, ok := strings.Cut(m, " ")
		if !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return fmt.Errorf("tokenizer: merge %d %q: want two tokens separated by one space", rank, m)
		}
		ia, oka := ids[a]
		ib, okb := ids[b]
		ic, okc := ids[a+b]
		switch {
		case !oka:
			return fmt.Errorf("tokenizer: merge %d %q: %q is not in the vocabulary", rank, m, a)
		case !okb:
			return fmt.Errorf("tokenizer: merge %d %q: %q is not in the vocabulary", rank, m, b)
		case !okc:
			return fmt.Errorf("tokenizer: merge %d %q: %q is not in the vocabulary", rank, m, a+b)
		}
		key := uint64(uint32(ia))<<32 | uint64(uint32(ib))
		if _, dup := t.merges[key]; !dup {
			t.merges[key] = merge{rank: int32(rank), id: ic}
		}
	}
	return nil
}

// BOS returns the beginning-of-sequence token id, or -1 when there is none.
func (t *Tokenizer) BOS() int { return t.bos }

// EOS returns the end-of-sequence token id, or -1 when there is none.
func (t *Tokenizer) EOS() int { return t.eos }

// VocabSize returns the number of tokens in the vocabulary.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

func (t *Tokenizer) typeOf(id int) model.TokenType {
	if id < 0 || id >= len(t.types) {
		return model.TokenNormal
	}
	return t.types[id]
}

// Encode returns the token ids of text. With addBOS it starts with the BOS
// token (if the vocabulary has one); the EOS token is appended when the
// vocabulary asks for it (model.Tokenizer.AddEOS). Invalid UTF-8 is encoded
// byte by byte, so every string has an encoding.
//
// AddSpacePrefix means, under the llama kind, a space before non-empty text
// and, as llama.cpp does, again after each user-defined token; under the gpt2
// kind, a space before each text fragment that does not start with one (Hugging
// Face's ByteLevel add_prefix_space). Control tokens written in the text are
// encoded as plain text.
func (t *Tokenizer) Encode(text string, addBOS bool) []int {
	out := make([]int, 0, len(text)/3+2)
	if addBOS && t.bos >= 0 {
		out = append(out, t.bos)
	}
	prevSpecial := true
	t.partition(text, func(frag string, special int) {
		if special >= 0 {
			out = append(out, special)
			prevSpecial = true
			return
		}
		if t.gpt2 {
			if t.addSpace && frag[0] != ' ' {
				frag = " " + frag
			}
			out = t.encodeGPT2(frag, out)
		} else {
			out = t.encodeLlama(frag, t.addSpace && prevSpecial, out)
		}
		prevSpecial = false
	})
	if t.addEOS && t.eos >= 0 {
		out = append(out, t.eos)
	}
	return out
}

// partition cuts text into raw fragments and user-defined tokens, longest
// token first, the way llama.cpp does, and calls f on each in order (special
// is -1 for raw text). Empty fragments are skipped.
func (t *Tokenizer) partition(text string, f func(frag string, special int)) {
	if text == "" {
		return
	}
	if len(t.special) == 0 {
		f(text, -1)
		return
	}
	type frag struct {
		s  string
		id int
	}
	frags := []frag{{text, -1}}
	for _, id := range t.special {
		tok := t.tokens[id]
		var next []frag
		changed := false
		for _, fr := range frags {
			if fr.id >= 0 || !strings.Contains(fr.s, tok) {
				next = append(next, fr)
				continue
			}
			changed = true
			s := fr.s
			for {
				i := strings.Index(s, tok)
				if i < 0 {
					break
				}
				if i > 0 {
					next = append(next, frag{s[:i], -1})
				}
				next = append(next, frag{tok, id})
				s = s[i+len(tok):]
			}
			if s != "" {
				next = append(next, frag{s, -1})
			}
		}
		if changed {
			frags = next
		}
	}
	for _, fr := range frags {
		f(fr.s, fr.id)
	}
}

// Decode returns the bytes that token id adds to a text when it follows token
// prev, for streaming output in the manner of llama2.c: byte tokens give their
// raw byte, a space-prefixed vocabulary (llama kind with AddSpacePrefix) loses
// the leading space of the token right after BOS, and control, unknown and
// unused tokens give nothing. Out-of-range ids give nil.
func (t *Tokenizer) Decode(prev, id int) []byte {
	if id < 0 || id >= len(t.pieces) {
		return nil
	}
	p := t.pieces[id]
	if prev == t.bos && t.bos >= 0 && t.stripsPrefix(id) && len(p) > 0 && p[0] == ' ' {
		p = p[1:]
	}
	return append([]byte(nil), p...)
}

// stripsPrefix tells whether the dummy-prefix space of token id is dropped at
// the start of a text.
func (t *Tokenizer) stripsPrefix(id int) bool {
	if t.gpt2 || !t.addSpace {
		return false
	}
	ty := t.typeOf(id)
	return ty == model.TokenNormal || ty == 0
}

// DecodeAll returns the text of a whole sequence, read as the start of a text:
// the dummy-prefix space of its first token is dropped as if BOS came before
// it (see Decode). DecodeAll(Encode(s, b)) == s for every string, valid
// UTF-8 or not, save three cases: U+2581 in llama-kind text (it reads as a
// space), text after a user-defined token under AddSpacePrefix (it gains a
// space), and gpt2-kind AddSpacePrefix (the added space stays).
func (t *Tokenizer) DecodeAll(ids []int) string {
	var sb strings.Builder
	for i, id := range ids {
		if id < 0 || id >= len(t.pieces) {
			continue
		}
		p := t.pieces[id]
		atStart := i == 0 || (t.bos >= 0 && ids[i-1] == t.bos)
		if atStart && t.stripsPrefix(id) && len(p) > 0 && p[0] == ' ' {
			p = p[1:]
		}
		sb.Write(p)
	}
	return sb.String()
}

// piece computes the decoded bytes of token id, before any prefix stripping.
func (t *Tokenizer) piece(id int) []byte {
	s := t.tokens[id]
	ty := t.typeOf(id)
	switch ty {
	case model.TokenControl, model.TokenUnknown, model.TokenUnused:
		return nil
	case model.TokenUserDefined:
		return []byte(s)
	}
	if t.gpt2 {
		if raw, ok := byteLevelDecode(s); ok {
			return raw
		}
		return []byte(s)
	}
	if b, ok := parseByteToken(s); ok && (ty == model.TokenByte || t.types == nil) {
		return []byte{b}
	}
	if ty == model.TokenByte {
		return []byte(s)
	}
	return []byte(strings.ReplaceAll(s, spaceMark, " "))
}

// parseByteToken parses "<0xAB>".
func parseByteToken(s string) (byte, bool) {
	if len(s) != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>' {
		return 0, false
	}
	hi, ok1 := hexDigit(s[3])
	lo, ok2 := hexDigit(s[4])
	return hi<<4 | lo, ok1 && ok2
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
