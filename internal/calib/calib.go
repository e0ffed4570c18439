// Package calib holds what methods that fit a model to its activations share:
// calibration windows cut from a tokenized text, the Hessian H = 2/N Σ x xᵀ of
// each linear group's inputs, and the upper Cholesky factor of H⁻¹ that GPTQ
// and SparseGPT propagate their errors through.
package calib

import (
	"fmt"
	"math/rand/v2"
	"os"

	"github.com/shrinkml/shrink/inference/tokenizer"
	"github.com/shrinkml/shrink/model"
)

// TokenizeFile reads the text file at path and encodes it with m's tokenizer,
// without a BOS. It returns the tokens and the BOS id a window should start
// with: m's BOS when its tokenizer adds one (as shrink eval does), else -1.
func TokenizeFile(m *model.Model, path string) (tokens []int, bos int, err error) {
	if m.Tokenizer == nil {
		return nil, -1, fmt.Errorf("calibration: the model has no tokenizer")
	}
	tok, err := tokenizer.New(m.Tokenizer)
	if err != nil {
		return nil, -1, fmt.Errorf("calibration: %w", err)
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, -1, fmt.Errorf("calibration: %w", err)
	}
	bos = -1
	if m.Tokenizer.AddBOS && m.Tokenizer.BOS >= 0 {
		bos = m.Tokenizer.BOS
	}
	return tok.Encode(string(text), false), bos, nil
}

// Windows picks n windows of length tokens from a tokenized text, the same ones
// for the same seed. The rule: with bos >= 0 each window is bos followed by
// length-1 consecutive text tokens (the model saw a BOS before every sequence
// in training), else length text tokens. The text is cut into n equal
// segments and each window starts at a seeded random offset inside its own
// segment, so windows never overlap and spread over the whole text. A text
// shorter than n windows is an error.
func Windows(tokens []int, n, length, bos int, seed uint64) ([][]int, error) {
	if n <= 0 || length <= 0 || (bos >= 0 && length < 2) {
		return nil, fmt.Errorf("calibration: %d windows of %d tokens: want at least one window of at least %d tokens",
			n, length, 1+min(bos+1, 1))
	}
	body := length
	if bos >= 0 {
		body--
	}
	if len(tokens) < n*body {
		return nil, fmt.Errorf("calibration text has %d tokens; %d windows of %d need at least %d",
			len(tokens), n, length, n*body)
	}
	seg := len(tokens) / n
	rng := rand.New(rand.NewPCG(seed, 0x63616c6962)) // "calib"
	out := make([][]int, n)
	for i := range out {
		start := i*seg + rng.IntN(seg-body+1)
		w := make([]int, 0, length)
		if bos >= 0 {
			w = append(w, bos)
		}
		out[i] = append(w, tokens[start:start+body]...)
	}
	return out, nil
}
