package lm_test

import (
	"fmt"
	"strings"

	"github.com/shrinkml/shrink/distill/lm"
	"github.com/shrinkml/shrink/inference/tokenizer"
)

// ExampleTrain learns a tokenizer and a tiny language model from a
// repetitive text; the loss soon falls to less than half its start.
func ExampleTrain() {
	text := strings.Repeat("the cat sat on the mat, and the dog sat on the log.\n", 100)
	tok, err := lm.TrainTokenizer(text, 300)
	if err != nil {
		panic(err)
	}
	enc, err := tokenizer.New(tok)
	if err != nil {
		panic(err)
	}
	tokens := enc.Encode(text, false)
	m, err := lm.New(lm.Config{Dim: 16, Layers: 1, Heads: 2, KVHeads: 1, Hidden: 32, Vocab: enc.VocabSize(),
		Context: 16, RopeTheta: 10000, NormEps: 1e-5}, 1)
	if err != nil {
		panic(err)
	}
	opts := lm.DefaultOptions()
	opts.Steps, opts.Batch, opts.Threads, opts.BOS = 100, 4, 1, enc.BOS()
	res, err := lm.Train(m, tokens, opts)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(tokens) < len(text)/4, res.LastLoss < res.FirstLoss/2)
	// Output: true true
}
