package tokenizer

import (
	"math"
	"strings"
	"unicode/utf8"

	"github.com/shrinkml/shrink/model"
)

// spaceMark is SentencePiece's visible space, U+2581.
const spaceMark = "\u2581"

// symbol is one piece of the text being merged, a byte range in a doubly
// linked list; a symbol merged into its left neighbour gets end == start.
type symbol struct {
	start, end int32
	prev, next int32
}

// pair is a candidate merge of a symbol with its right neighbour. key orders
// candidates, higher first, then the leftmost; size, the byte length of the
// merged symbol, detects pairs made stale by other merges (sizes only grow).
type pair struct {
	key  uint32
	left int32
	size int32
	id   int32
}

// scoreKey maps a float32 score to a uint32 of the same order, with -0 == +0.
func scoreKey(f float32) uint32 {
	if f == 0 {
		f = 0
	}
	b := math.Float32bits(f)
	if b&(1<<31) != 0 {
		return ^b
	}
	return b | 1<<31
}

// pairHeap is a binary max-heap of pairs, kept by hand to avoid the interface
// calls of container/heap in the hot loop.
type pairHeap []pair

func (h pairHeap) less(i, j int) bool {
	if h[i].key != h[j].key {
		return h[i].key > h[j].key
	}
	return h[i].left < h[j].left
}

func (h *pairHeap) push(p pair) {
	*h = append(*h, p)
	s := *h
	i := len(s) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !s.less(i, parent) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *pairHeap) pop() pair {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(s) {
			break
		}
		m := l
		if r := l + 1; r < len(s) && s.less(r, l) {
			m = r
		}
		if !s.less(m, i) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// encodeLlama appends the SentencePiece BPE encoding of text to out. It
// follows SentencePiece's bpe_model.cc (and llama.cpp's llm_tokenizer_spm):
// the text, with a leading space when prefix is set and spaces written as
// U+2581, is cut into UTF-8 characters (an invalid byte is a character of its
// own); the adjacent pair whose concatenation is a vocabulary piece of the
// highest score is merged, the leftmost on ties, until no pair is a piece;
// a symbol left that is not a piece becomes its byte tokens, or the unknown
// token where a byte token is missing. Merging uses a heap and a linked list,
// so it takes O(n log n) time for n characters.
func (t *Tokenizer) encodeLlama(text string, prefix bool, out []int) []int {
	if text == "" {
		return out
	}
	if prefix {
		text = " " + text
	}
	s := strings.ReplaceAll(text, " ", spaceMark)
	for len(s) > maxFragment {
		cut := maxFragment
		for cut > maxFragment-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
			cut--
		}
		out = t.mergeLlama(s[:cut], out)
		s = s[cut:]
	}
	return t.mergeLlama(s, out)
}

// maxFragment bounds the bytes merged at once so that offsets fit in int32;
// longer text is cut at a character boundary, which can change the encoding
// only at the cut.
const maxFragment = 1 << 30

// charKey packs the bytes of one character (1 to 4 bytes, as the text is cut)
// into a uint32; the packing is one-to-one because a lead byte fixes the
// length of its character.
func charKey(c string) uint32 {
	var k uint32
	for i := 0; i < len(c); i++ {
		k = k<<8 | uint32(c[i])
	}
	return k
}

// charLen returns the byte length of the character at s[i], 1 for an invalid
// byte.
func charLen(s string, i int) int {
	if s[i] < utf8.RuneSelf {
		return 1
	}
	_, n := utf8.DecodeRuneInString(s[i:])
	return n
}

// pieceBigrams lists every pair of adjacent characters inside a mergeable
// piece. No merge can ever join two neighbouring characters that are not such
// a pair, so the text can be cut there and each part merged on its own with
// exactly the same result, which keeps the heaps small.
func pieceBigrams(pieces map[string]int32) map[uint64]struct{} {
	set := make(map[uint64]struct{})
	for p := range pieces {
		prev := -1
		for i := 0; i < len(p); {
			n := charLen(p, i)
			if prev >= 0 {
				set[uint64(charKey(p[prev:i]))<<32|uint64(charKey(p[i:i+n]))] = struct{}{}
			}
			prev = i
			i += n
		}
	}
	return set
}

// mergeLlama appends the encoding of s (already with U+2581 for spaces),
// merging independently between the cuts that pieceBigrams allows.
func (t *Tokenizer) mergeLlama(s string, out []int) []int {
	var w spmWork
	start, prev := 0, -1
	for i := 0; i < len(s); {
		n := charLen(s, i)
		if prev >= 0 {
			if _, ok := t.bigrams[uint64(charKey(s[prev:i]))<<32|uint64(charKey(s[i:i+n]))]; !ok {
				out = t.mergeSegment(s[start:i], &w, out)
				start = i
			}
		}
		prev = i
		i += n
	}
	return t.mergeSegment(s[start:], &w, out)
}

// spmWork holds buffers reused across the segments of one Encode call.
type spmWork struct {
	syms []symbol
	heap pairHeap
}

func (t *Tokenizer) mergeSegment(s string, w *spmWork, out []int) []int {
	if s == "" {
		return out
	}
	syms := w.syms[:0]
	for i := 0; i < len(s); {
		size := charLen(s, i)
		n := int32(len(syms))
		syms = append(syms, symbol{start: int32(i), end: int32(i + size), prev: n - 1, next: n + 1})
		i += size
	}
	syms[len(syms)-1].next = -1

	h := w.heap[:0]
	// revMerge records how unused pieces were made, to split them back as
	// SentencePiece does.
	var revMerge map[string][2]string
	tryAdd := func(l, r int32) {
		if l < 0 || r < 0 {
			return
		}
		piece := s[syms[l].start:syms[r].end]
		id, ok := t.mergeable[piece]
		if !ok {
			return
		}
		h.push(pair{key: t.keys[id], left: l, size: int32(len(piece)), id: id})
		if t.typeOf(int(id)) == model.TokenUnused {
			if revMerge == nil {
				revMerge = make(map[string][2]string)
			}
			revMerge[piece] = [2]string{s[syms[l].start:syms[l].end], s[syms[r].start:syms[r].end]}
		}
	}
	for i := int32(1); i < int32(len(syms)); i++ {
		tryAdd(i-1, i)
	}
	for len(h) > 0 {
		p := h.pop()
		l := &syms[p.left]
		if l.end == l.start || l.next < 0 {
			continue
		}
		r := &syms[l.next]
		if (l.end-l.start)+(r.end-r.start) != p.size {
			continue // one side was merged since this pair was found
		}
		l.end = r.end
		r.end = r.start
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = p.left
		}
		tryAdd(l.prev, p.left)
		tryAdd(p.left, l.next)
	}

	for i := int32(0); i >= 0; i = syms[i].next {
		out = t.resegment(s[syms[i].start:syms[i].end], revMerge, out)
	}
	w.syms, w.heap = syms, h
	return out
}

// resegment appends the ids of one final symbol: its piece, the pieces an
// unused piece was merged from, or its bytes.
func (t *Tokenizer) resegment(piece string, revMerge map[string][2]string, out []int) []int {
	if id, ok := t.mergeable[piece]; ok {
		if t.typeOf(int(id)) == model.TokenUnused {
			if parts, ok := revMerge[piece]; ok {
				out = t.resegment(parts[0], revMerge, out)
				return t.resegment(parts[1], revMerge, out)
			}
		}
		return append(out, int(id))
	}
	for i := 0; i < len(piece); i++ {
		if id := t.byteTok[piece[i]]; id >= 0 {
			out = append(out, int(id))
		} else {
			out = append(out, t.unk)
		}
	}
	return out
}
