package model

// TokenType classifies a vocabulary entry, with GGUF's numbering.
type TokenType int32

// Token types as stored in GGUF's tokenizer.ggml.token_type.
const (
	TokenNormal      TokenType = 1
	TokenUnknown     TokenType = 2
	TokenControl     TokenType = 3
	TokenUserDefined TokenType = 4
	TokenUnused      TokenType = 5
	TokenByte        TokenType = 6
)

// Tokenizer holds a model's vocabulary and the settings needed to encode text
// the way the model was trained. Tokens follow GGUF's conventions: in
// SentencePiece vocabularies a space is U+2581 and byte tokens are "<0xAB>".
type Tokenizer struct {
	// Kind is "llama" for SentencePiece-style BPE with byte fallback or
	// "gpt2" for byte-level BPE with merges.
	Kind   string
	Tokens []string
	Scores []float32   // merge priority, higher merges first (llama kind)
	Types  []TokenType // one per token; nil means all normal
	Merges []string    // "a b" pairs in priority order (gpt2 kind)
	// Pre names the pre-tokenizer of a gpt2-kind vocabulary (GGUF tokenizer.ggml.pre).
	Pre string

	BOS, EOS, UNK, PAD int // -1 when absent
	AddBOS, AddEOS     bool
	// AddSpacePrefix prepends a space to the text before encoding (SentencePiece's dummy prefix).
	AddSpacePrefix bool

	// Files are Hugging Face tokenizer files (tokenizer.json, tokenizer.model,
	// tokenizer_config.json, ...) carried through byte for byte.
	Files map[string][]byte
}

// TypeOf returns the type of token id, TokenNormal when types are unknown.
func (t *Tokenizer) TypeOf(id int) TokenType {
	if id < 0 || id >= len(t.Types) {
		return TokenNormal
	}
	return t.Types[id]
}
