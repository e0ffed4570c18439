package lm_test

import (
	"fmt"
	"strings"

	"github.com/shrinkml/shrink/distill/lm"
	"github.com/shrinkml/shrink/distill/train"
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

// ExampleTrain_gradual prunes half of every linear matrix of a tiny language
// model while it learns, on Zhu & Gupta's cubic schedule over the first half
// of the steps, then trains on with the masks fixed.
func ExampleTrain_gradual() {
	text := strings.Repeat("the cat sat on the mat, and the dog sat on the log.\n", 100)
	tok, err := lm.TrainTokenizer(text, 300)
	if err != nil {
		panic(err)
	}
	enc, err := tokenizer.New(tok)
	if err != nil {
		panic(err)
	}
	m, err := lm.New(lm.Config{Dim: 16, Layers: 1, Heads: 2, KVHeads: 1, Hidden: 32, Vocab: enc.VocabSize(),
		Context: 16, RopeTheta: 10000, NormEps: 1e-5}, 1)
	if err != nil {
		panic(err)
	}
	opts := lm.DefaultOptions()
	opts.Steps, opts.Batch, opts.Threads, opts.BOS = 100, 4, 1, enc.BOS()
	opts.Prune = &train.Schedule{Final: 0.5, Every: 5, Count: 10}
	res, err := lm.Train(m, enc.Encode(text, false), opts)
	if err != nil {
		panic(err)
	}
	tensors, all := m.Sparsity()
	fmt.Println(m.PrunableTensors()[0], tensors[0], all, res.LastLoss < res.FirstLoss/2)
	// Output: model.layers.0.self_attn.q_proj.weight 0.5 0.5 true
}
