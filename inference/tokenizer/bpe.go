package tokenizer

import (
	"math"
	"unicode/utf8"
)

// byteToRune is GPT-2's bytes_to_unicode table: printable Latin-1 bytes map to
// themselves, the other 68 to U+0100 onwards, in byte order.
var byteToRune [256]rune

// runeToByte inverts byteToRune; entries for runes outside the table are -1.
var runeToByte [324]int16

func init() {
	for i := range runeToByte {
		runeToByte[i] = -1
	}
	n := 0
	for b := range 256 {
		if ('!' <= b && b <= '~') || (0xA1 <= b && b <= 0xAC) || (0xAE <= b && b <= 0xFF) {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = rune(256 + n)
			n++
		}
		runeToByte[byteToRune[b]] = int16(b)
	}
}

// byteLevelDecode turns a byte-level token back into its raw bytes; ok is
// false when s holds a character outside the byte-level alphabet.
func byteLevelDecode(s string) ([]byte, bool) {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r < 0 || int(r) >= len(runeToByte) || runeToByte[r] < 0 {
			return nil, false
		}
		out = append(out, byte(runeToByte[r]))
	}
	return out, true
}

// encodeGPT2 appends the byte-level BPE encoding of text to out: the text is
// cut into pre-tokens by the vocabulary's pre-tokenizer, and each pre-token's
// bytes, one symbol per byte, are merged by rank (lowest rank first, leftmost
// on ties) as Hugging Face tokenizers and llama.cpp do.
func (t *Tokenizer) encodeGPT2(text string, out []int) []int {
	var w bpeWork
	for i := 0; i < len(text); {
		j := t.pre.next(text, i)
		out = t.encodeWord(text[i:j], &w, out)
		i = j
	}
	return out
}

// bpeWork holds buffers reused across the words of one Encode call.
type bpeWork struct {
	syms []wordSym
	heap pairHeap
}

type wordSym struct {
	id         int32
	size       int32 // bytes covered; 0 once merged into the left neighbour
	prev, next int32
}

func (t *Tokenizer) encodeWord(word string, w *bpeWork, out []int) []int {
	if t.ignoreMerges {
		if id, ok := t.rawIDs[word]; ok {
			return append(out, int(id))
		}
	}
	if len(word) == 1 {
		return append(out, t.symOrUnk(word[0]))
	}
	for len(word) > maxFragment {
		out = t.mergeWord(word[:maxFragment], w, out)
		word = word[maxFragment:]
	}
	return t.mergeWord(word, w, out)
}

// mergeWord applies the merges to one pre-token with a heap and a linked
// list of symbols, O(n log n) for n bytes.
func (t *Tokenizer) mergeWord(word string, w *bpeWork, out []int) []int {
	syms := w.syms[:0]
	for i := int32(0); i < int32(len(word)); i++ {
		syms = append(syms, wordSym{id: t.byteSym[word[i]], size: 1, prev: i - 1, next: i + 1})
	}
	syms[len(syms)-1].next = -1
	h := w.heap[:0]
	tryAdd := func(l, r int32) {
		if l < 0 || r < 0 || syms[l].id < 0 || syms[r].id < 0 {
			return
		}
		m, ok := t.merges[uint64(uint32(syms[l].id))<<32|uint64(uint32(syms[r].id))]
		if !ok {
			return
		}
		h.push(pair{key: math.MaxUint32 - uint32(m.rank), left: l, size: syms[l].size + syms[r].size, id: m.id})
	}
	for i := int32(1); i < int32(len(syms)); i++ {
		tryAdd(i-1, i)
	}
	for len(h) > 0 {
		p := h.pop()
		l := &syms[p.left]
		if l.size == 0 || l.next < 0 {
			continue
		}
		r := &syms[l.next]
		if l.size+r.size != p.size {
			continue
		}
		l.id = p.id
		l.size = p.size
		r.size = 0
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = p.left
		}
		tryAdd(l.prev, p.left)
		tryAdd(p.left, l.next)
	}
	for i := int32(0); i >= 0; i = syms[i].next {
		if syms[i].id >= 0 {
			out = append(out, int(syms[i].id))
		} else {
			out = append(out, t.unk)
		}
	}
	w.syms, w.heap = syms, h
	return out
}

func (t *Tokenizer) symOrUnk(b byte) int {
	if id := t.byteSym[b]; id >= 0 {
		return int(id)
	}
	return t.unk
}

// runeAt decodes the character at s[i]; an invalid byte decodes as
// utf8.RuneError of size 1, which every pre-tokenizer class treats as
// "not a letter, number or space".
func runeAt(s string, i int) (rune, int) {
	c := s[i]
	if c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}
