package lm

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/shrinkml/shrink/model"
)

// spaceMark is SentencePiece's visible space, U+2581.
const spaceMark = "\u2581"

// MinVocab is the smallest vocabulary TrainTokenizer builds: <unk>, <s>,
// </s>, the 256 byte tokens and U+2581.
const MinVocab = 3 + 256 + 1

// TrainTokenizer learns a byte-fallback BPE vocabulary of at most vocabSize
// tokens from text, in the layout of llama2.c's tokenizers: <unk>, <s>, </s>,
// the byte tokens <0x00>..<0xFF>, the space piece U+2581 (score 0), then the
// learned pieces, whose scores fall in merge order (-1, -2, ...), so that inference/tokenizer encodes with it as SentencePiece
// does (spaces as U+2581, a dummy space before the text, BOS added).
//
// The text, a space prepended and spaces written as U+2581, is cut into
// words before each U+2581, and each word into UTF-8 characters; merges
// never cross a word boundary. Each round merges the adjacent pair of symbols
// that occurs most often, ties going to the pair whose joined string is
// smallest in byte order, then to the smaller left symbol. Pairs that would
// join an invalid UTF-8 byte or spell a special or byte token are never
// merged; a pair that joins into an existing piece is merged without a new
// token. Training stops early, with a smaller vocabulary, when no pair occurs
// twice. The same text and size always give the same vocabulary.
func TrainTokenizer(text string, vocabSize int) (*model.Tokenizer, error) {
	if vocabSize < MinVocab {
		return nil, fmt.Errorf("lm: vocabulary size %d; want at least %d (3 special tokens, 256 byte tokens and U+2581)", vocabSize, MinVocab)
	}
	if text == "" {
		return nil, fmt.Errorf("lm: no text to train a tokenizer on")
	}
	tok := &model.Tokenizer{Kind: "llama", BOS: 1, EOS: 2, UNK: 0, PAD: -1, AddBOS: true, AddSpacePrefix: true}
	add := func(s string, typ model.TokenType, score float32) {
		tok.Tokens = append(tok.Tokens, s)
		tok.Types = append(tok.Types, typ)
		tok.Scores = append(tok.Scores, score)
	}
	add("<unk>", model.TokenUnknown, 0)
	add("<s>", model.TokenControl, 0)
	add("</s>", model.TokenControl, 0)
	for b := range 256 {
		add(fmt.Sprintf("<0x%02X>", b), model.TokenByte, 0)
	}
	// A space that joins nothing must decode as a space, not as the bytes
	// of U+2581, so U+2581 is a piece of its own, as in SentencePiece.
	add(spaceMark, model.TokenNormal, 0)
	taken := make(map[string]bool, vocabSize)
	for _, s := range tok.Tokens {
		taken[s] = true
	}

	b := newBPE(strings.ReplaceAll(" "+text, " ", spaceMark))
	for len(tok.Tokens) < vocabSize {
		a, c, ok := b.best(taken)
		if !ok {
			break
		}
		piece := b.syms[a] + b.syms[c]
		if !taken[piece] {
			taken[piece] = true
			// Scores fall in merge order, as SentencePiece's do: -1, -2, ...
			add(piece, model.TokenNormal, -float32(len(tok.Tokens)-MinVocab+1))
		}
		b.merge(a, c, piece)
	}
	return tok, nil
}

// bpe is the state of a training run: the distinct words with their counts,
// each as a sequence of symbol ids, and the count of every adjacent pair.
type bpe struct {
	syms    []string
	ids     map[string]int32
	invalid []bool // the symbol is an invalid UTF-8 byte
	words   [][]int32
	freq    []int64
	pairs   map[uint64]int64
	where   map[uint64][]int32 // words that held the pair when it was counted (may be stale)
	banned  map[uint64]bool
	seen    []int // merge round in which a word was last rewritten
	round   int
}

func pairKey(a, b int32) uint64 { return uint64(a)<<32 | uint64(uint32(b)) }

func newBPE(s string) *bpe {
	b := &bpe{ids: map[string]int32{}, pairs: map[uint64]int64{}, where: map[uint64][]int32{}, banned: map[uint64]bool{}}
	counts := map[string]int64{}
	for len(s) > 0 {
		// A word runs from its first character to the next U+2581.
		_, first := utf8.DecodeRuneInString(s)
		n := strings.Index(s[first:], spaceMark)
		if n < 0 {
			n = len(s)
		} else {
			n += first
		}
		counts[s[:n]]++
		s = s[n:]
	}
	words := make([]string, 0, len(counts))
	for w := range counts {
		words = append(words, w)
	}
	sort.Strings(words)
	for _, w := range words {
		var syms []int32
		for i := 0; i < len(w); {
			r, n := utf8.DecodeRuneInString(w[i:])
			syms = append(syms, b.symbol(w[i:i+n], r == utf8.RuneError && n == 1))
			i += n
		}
		b.words = append(b.words, syms)
		b.freq = append(b.freq, counts[w])
	}
	b.seen = make([]int, len(b.words))
	for i := range b.words {
		b.count(int32(i), 1)
	}
	return b
}

// symbol returns the id of s, adding it.
func (b *bpe) symbol(s string, invalid bool) int32 {
	if id, ok := b.ids[s]; ok {
		return id
	}
	id := int32(len(b.syms))
	b.syms = append(b.syms, s)
	b.invalid = append(b.invalid, invalid)
	b.ids[s] = id
	return id
}

// count adds sign times word i's count to each of its pairs.
func (b *bpe) count(i int32, sign int64) {
	w := b.words[i]
	for j := 1; j < len(w); j++ {
		k := pairKey(w[j-1], w[j])
		b.pairs[k] += sign * b.freq[i]
		if sign > 0 {
			b.where[k] = append(b.where[k], i)
		}
	}
}

// best returns the pair to merge next, or false when no allowed pair occurs twice.
// Symbols are single characters or learned pieces, so a taken string that
// is a symbol is a learned piece, and one that is not is a special or byte token.
func (b *bpe) best(taken map[string]bool) (int32, int32, bool) {
	var (
		bk    uint64
		bc    int64
		bs    string
		found bool
	)
	for k, c := range b.pairs {
		if c < 2 || c < bc || b.banned[k] {
			continue
		}
		l, r := int32(k>>32), int32(uint32(k))
		s := b.syms[l] + b.syms[r]
		if _, piece := b.ids[s]; b.invalid[l] || b.invalid[r] || taken[s] && !piece {
			b.banned[k] = true
			continue
		}
		if c > bc || s < bs || s == bs && b.syms[l] < b.syms[int32(bk>>32)] {
			bk, bc, bs, found = k, c, s, true
		}
	}
	return int32(bk >> 32), int32(uint32(bk)), found
}

// merge joins every occurrence of the pair (a, c), left to right, into piece.
func (b *bpe) merge(a, c int32, piece string) {
	b.round++
	id := b.symbol(piece, false)
	k := pairKey(a, c)
	for _, i := range b.where[k] {
		if b.seen[i] == b.round {
			continue
		}
		b.seen[i] = b.round
		w := b.words[i]
		has := false
		for j := 1; j < len(w); j++ {
			if w[j-1] == a && w[j] == c {
				has = true
				break
			}
		}
		if !has {
			continue
		}
		b.count(i, -1)
		out := w[:0]
		for j := 0; j < len(w); j++ {
			if j+1 < len(w) && w[j] == a && w[j+1] == c {
				out = append(out, id)
				j++
			} else {
				out = append(out, w[j])
			}
		}
		b.words[i] = out
		b.count(i, 1)
	}
	delete(b.where, k)
	delete(b.pairs, k)
}
