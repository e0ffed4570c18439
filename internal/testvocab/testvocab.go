// Package testvocab builds the GPT-2 subset vocabulary that tests and fixture
// writers share: inference/tokenizer/testdata/gpt2_subset_tokenizer.json, a
// tokenizer.json with GPT-2's 256 byte tokens, the merges the test texts use
// and <|endoftext|>.
package testvocab

import (
	"encoding/json"
	"fmt"

	"github.com/shrinkml/shrink/model"
)

// GPT2Subset reads the tokenizer.json bytes data as a gpt2-kind vocabulary
// with pre-tokenizer pre (a GGUF tokenizer.ggml.pre name): every token
// normal except the added ones, which are control tokens and serve as BOS and
// EOS; no scores, no BOS added.
func GPT2Subset(data []byte, pre string) (*model.Tokenizer, error) {
	var tj struct {
		AddedTokens []struct {
			ID int `json:"id"`
		} `json:"added_tokens"`
		Model struct {
			Vocab  map[string]int `json:"vocab"`
			Merges []string       `json:"merges"`
		} `json:"model"`
	}
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, fmt.Errorf("gpt2 subset vocabulary: %w", err)
	}
	mt := &model.Tokenizer{Kind: "gpt2", Pre: pre, Merges: tj.Model.Merges, BOS: -1, EOS: -1, UNK: -1, PAD: -1}
	mt.Tokens = make([]string, len(tj.Model.Vocab))
	mt.Types = make([]model.TokenType, len(tj.Model.Vocab))
	for s, id := range tj.Model.Vocab {
		if id < 0 || id >= len(mt.Tokens) {
			return nil, fmt.Errorf("gpt2 subset vocabulary: token %q has id %d of %d", s, id, len(mt.Tokens))
		}
		mt.Tokens[id], mt.Types[id] = s, model.TokenNormal
	}
	for _, a := range tj.AddedTokens {
		if a.ID < 0 || a.ID >= len(mt.Tokens) {
			return nil, fmt.Errorf("gpt2 subset vocabulary: added token id %d of %d", a.ID, len(mt.Tokens))
		}
		mt.Types[a.ID] = model.TokenControl
		mt.BOS, mt.EOS = a.ID, a.ID
	}
	return mt, nil
}
