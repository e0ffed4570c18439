package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// preTokenizer cuts text into the pieces that byte-level BPE merges within.
// Each is a hand-written scanner equivalent to the regex its model was
// trained with (Go's regexp has no lookahead); next returns the end of the
// match that starts at i, which is always > i.
type preTokenizer struct {
	name string
	next func(s string, i int) int
}

// GPT-2's pattern:
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
var gpt2Pre = preTokenizer{"gpt2", nextGPT2}

// Llama 3's pattern (and OpenAI's cl100k):
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
var llama3Pre = preTokenizer{"llama3", func(s string, i int) int { return nextLlama3(s, i, 3) }}

// Qwen2's pattern is Llama 3's with single digits, \p{N} for \p{N}{1,3}.
var qwen2Pre = preTokenizer{"qwen2", func(s string, i int) int { return nextLlama3(s, i, 1) }}

// preTokenizers maps GGUF's tokenizer.ggml.pre names to scanners; the names
// are llama.cpp's for these three patterns.
var preTokenizers = map[string]preTokenizer{
	"":                 gpt2Pre,
	"default":          gpt2Pre,
	"gpt-2":            gpt2Pre,
	"gpt2":             gpt2Pre,
	"llama-bpe":        llama3Pre,
	"llama3":           llama3Pre,
	"llama-v3":         llama3Pre,
	"qwen2":            qwen2Pre,
	"deepseek-r1-qwen": qwen2Pre,
}

// Character classes. \s is Unicode White_Space, as in Oniguruma, Rust's
// regex and llama.cpp; an invalid byte (utf8.RuneError) is in no class.
func isSpace(r rune) bool  { return unicode.IsSpace(r) }
func isLetter(r rune) bool { return r != utf8.RuneError && unicode.IsLetter(r) }
func isNumber(r rune) bool { return unicode.IsNumber(r) }
func isOther(r rune) bool  { return !isSpace(r) && !isLetter(r) && !isNumber(r) }

// scan returns the end of the run of characters in class f starting at i.
func scan(s string, i int, f func(rune) bool) int {
	for i < len(s) {
		r, n := runeAt(s, i)
		if !f(r) {
			break
		}
		i += n
	}
	return i
}

// spaceRun matches \s+(?!\S) then \s+ at i, where s[i] is a space: the whole
// run of spaces, less its last character when a non-space follows and the run
// has more than one character.
func spaceRun(s string, i int) int {
	end, last := i, i
	for end < len(s) {
		r, n := runeAt(s, end)
		if !isSpace(r) {
			break
		}
		last = end
		end += n
	}
	if end < len(s) && last > i {
		return last
	}
	return end
}

// contraction matches 's|'t|'re|'ve|'m|'ll|'d at i, ASCII case-insensitively
// when fold is set, and returns its end or -1.
func contraction(s string, i int, fold bool) int {
	if s[i] != '\'' || i+1 >= len(s) {
		return -1
	}
	lower := func(c byte) byte {
		if fold && 'A' <= c && c <= 'Z' {
			return c + 'a' - 'A'
		}
		return c
	}
	var want byte
	switch lower(s[i+1]) {
	case 's', 't', 'm', 'd':
		return i + 2
	case 'r', 'v':
		want = 'e'
	case 'l':
		want = 'l'
	default:
		return -1
	}
	if i+2 < len(s) && lower(s[i+2]) == want {
		return i + 3
	}
	return -1
}

func nextGPT2(s string, i int) int {
	if e := contraction(s, i, false); e > 0 {
		return e
	}
	r, n := runeAt(s, i)
	j := i
	if r == ' ' && i+1 < len(s) {
		// ' ?' takes the space when a letter, number or other follows.
		r2, n2 := runeAt(s, i+1)
		if !isSpace(r2) {
			r, n, j = r2, n2, i+1
		}
	}
	switch {
	case isLetter(r):
		return scan(s, j+n, isLetter)
	case isNumber(r):
		return scan(s, j+n, isNumber)
	case isOther(r):
		return scan(s, j+n, isOther)
	}
	return spaceRun(s, i)
}

func nextLlama3(s string, i int, maxDigits int) int {
	if e := contraction(s, i, true); e > 0 {
		return e
	}
	r, n := runeAt(s, i)
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if isLetter(r) {
		return scan(s, i+n, isLetter)
	}
	if r != '\r' && r != '\n' && !isNumber(r) && i+n < len(s) {
		if r2, _ := runeAt(s, i+n); isLetter(r2) {
			return scan(s, i+n, isLetter)
		}
	}
	// \p{N}{1,maxDigits}
	if isNumber(r) {
		j := i + n
		for k := 1; k < maxDigits && j < len(s); k++ {
			r2, n2 := runeAt(s, j)
			if !isNumber(r2) {
				break
			}
			j += n2
		}
		return j
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	j, rr, nn := i, r, n
	if r == ' ' && i+1 < len(s) {
		r2, n2 := runeAt(s, i+1)
		if isOther(r2) {
			j, rr, nn = i+1, r2, n2
		}
	}
	if isOther(rr) {
		e := scan(s, j+nn, isOther)
		for e < len(s) && (s[e] == '\r' || s[e] == '\n') {
			e++
		}
		return e
	}
	// \s*[\r\n]+ : up to the last line break of the run of spaces.
	end, lastBreak := i, -1
	for end < len(s) {
		r2, n2 := runeAt(s, end)
		if !isSpace(r2) {
			break
		}
		if r2 == '\r' || r2 == '\n' {
			lastBreak = end
		}
		end += n2
	}
	if lastBreak >= 0 {
		return lastBreak + 1
	}
	return spaceRun(s, i)
}
