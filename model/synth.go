package model

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
)

// Presets are real model shapes for speed work without downloading weights.
var Presets = map[string]Config{
	// llama-134m: 134.1M parameters, the shape of a small Llama trained from scratch.
	"llama-134m": {Arch: "llama", HiddenSize: 768, IntermediateSize: 2048, NumLayers: 12, NumHeads: 12,
		NumKVHeads: 12, HeadDim: 64, VocabSize: 32000, ContextLength: 2048, RMSNormEps: 1e-5, RopeTheta: 10000},
	// stories260k: the shape of llama2.c's stories260K.
	"stories260k": {Arch: "llama", HiddenSize: 64, IntermediateSize: 172, NumLayers: 5, NumHeads: 8,
		NumKVHeads: 4, HeadDim: 8, VocabSize: 512, ContextLength: 512, RMSNormEps: 1e-5, RopeTheta: 10000, TiedEmbeddings: true},
	// stories15m: the shape of llama2.c's stories15M.
	"stories15m": {Arch: "llama", HiddenSize: 288, IntermediateSize: 768, NumLayers: 6, NumHeads: 6,
		NumKVHeads: 6, HeadDim: 48, VocabSize: 32000, ContextLength: 256, RMSNormEps: 1e-5, RopeTheta: 10000, TiedEmbeddings: true},
}

// PresetNames lists the preset names in order.
func PresetNames() []string {
	names := make([]string, 0, len(Presets))
	for n := range Presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Synthesize builds a model of the given shape with seeded random F32 weights:
// normal with standard deviation 0.02 for matrices (as in GPT-2's
// initialisation), ones for norms, zeros for biases. It also gets a synthetic
// byte-fallback vocabulary, so it can be run and tokenized like a real model.
// The same config and seed give the same bytes.
func Synthesize(cfg Config, seed uint64) (*Model, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	m := &Model{Config: cfg, Metadata: map[string]any{"general.name": "synthetic"}}
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	for _, e := range cfg.Expected() {
		n := 1
		for _, s := range e.Shape {
			n *= s
		}
		vals := make([]float32, n)
		switch {
		case strings.HasSuffix(e.Name, "norm.weight"):
			for i := range vals {
				vals[i] = 1
			}
		case len(e.Shape) >= 2:
			for i := range vals {
				vals[i] = float32(0.02 * r.NormFloat64())
			}
		}
		m.Tensors = append(m.Tensors, NewF32(e.Name, e.Shape, vals))
	}
	if cfg.Arch == "llama" {
		m.Tokenizer = SyntheticVocab(cfg.VocabSize)
	}
	return m, m.Validate()
}

// SyntheticVocab returns a SentencePiece-style vocabulary of n tokens: <unk>,
// <s>, </s>, the 256 byte tokens, then placeholder pieces, so that any text
// encodes (through byte fallback) and any id decodes.
func SyntheticVocab(n int) *Tokenizer {
	t := &Tokenizer{Kind: "llama", BOS: 1, EOS: 2, UNK: 0, PAD: -1, AddBOS: true, AddSpacePrefix: true}
	add := func(s string, typ TokenType) {
		t.Tokens = append(t.Tokens, s)
		t.Types = append(t.Types, typ)
		t.Scores = append(t.Scores, 0)
	}
	add("<unk>", TokenUnknown)
	add("<s>", TokenControl)
	add("</s>", TokenControl)
	for b := 0; b < 256; b++ {
		add(fmt.Sprintf("<0x%02X>", b), TokenByte)
	}
	for i := len(t.Tokens); i < n; i++ {
		add(fmt.Sprintf("<synth%d>", i), TokenUserDefined)
	}
	if len(t.Tokens) > n {
		t.Tokens, t.Types, t.Scores = t.Tokens[:n], t.Types[:n], t.Scores[:n]
	}
	return t
}
