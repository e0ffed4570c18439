// Package lm trains small llama-family language models on the CPU: a float32
// model whose every operation has a gradient-checked backward pass, AdamW
// training on windows of a token stream (optionally distilled from a
// teacher, optionally with masks that hold pruned weights at zero and
// gradual magnitude pruning), held-out evaluation, and a BPE tokenizer
// trainer. A trained model converts to the model.Model the rest of shrink
// loads, runs and compresses, and its logits agree with inference.Llama's.
package lm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/shrinkml/shrink/model"
)

// Config is the shape of a llama-family decoder: RMSNorm, rotary attention
// with grouped key/value heads, a SwiGLU feed-forward block and no biases.
type Config struct {
	Dim     int // hidden size
	Layers  int
	Heads   int
	KVHeads int // key/value heads; Heads must be a multiple
	Hidden  int // feed-forward (intermediate) size
	Vocab   int
	Context int // context length: the longest sequence trained and run

	RopeTheta float64
	NormEps   float64
	// Tied shares the token embedding with the output head.
	Tied bool
}

// HeadDim is the width of one attention head.
func (c Config) HeadDim() int { return c.Dim / c.Heads }

// Check reports the first inconsistency in c.
func (c Config) Check() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"dim", c.Dim}, {"layers", c.Layers}, {"heads", c.Heads}, {"kv heads", c.KVHeads},
		{"hidden", c.Hidden}, {"vocab", c.Vocab}, {"context", c.Context}} {
		if f.v <= 0 || f.v > 1<<20 {
			return fmt.Errorf("lm config: %s %d is out of range", f.name, f.v)
		}
	}
	switch {
	case c.Dim%c.Heads != 0:
		return fmt.Errorf("lm config: dim %d is not a multiple of %d heads", c.Dim, c.Heads)
	case c.Heads%c.KVHeads != 0:
		return fmt.Errorf("lm config: %d heads is not a multiple of %d kv heads", c.Heads, c.KVHeads)
	case c.HeadDim()%2 != 0:
		return fmt.Errorf("lm config: head dim %d is odd; RoPE needs pairs", c.HeadDim())
	case !(c.RopeTheta > 0):
		return fmt.Errorf("lm config: rope theta %g is out of range", c.RopeTheta)
	case !(c.NormEps > 0 && c.NormEps < 1):
		return fmt.Errorf("lm config: norm eps %g is out of range", c.NormEps)
	}
	return nil
}

// modelConfig is the model.Config of c, with the q and k rows in the pair
// RoPE layout the trainer uses.
func (c Config) modelConfig() model.Config {
	return model.Config{Arch: "llama", HiddenSize: c.Dim, IntermediateSize: c.Hidden, NumLayers: c.Layers,
		NumHeads: c.Heads, NumKVHeads: c.KVHeads, HeadDim: c.HeadDim(), VocabSize: c.Vocab,
		ContextLength: c.Context, RMSNormEps: c.NormEps, RopeTheta: c.RopeTheta,
		RopeLayout: model.RopePairs, TiedEmbeddings: c.Tied}
}

// Model is a llama-family decoder with float32 parameters, all in one flat
// slice: the layout is the tensor order of model.Config.Expected, with each
// layer's q, k and v rows adjacent (one fused [q+2kv, dim] matrix) and its
// gate and up rows adjacent (one fused [2·hidden, dim] matrix).
type Model struct {
	Config Config

	params []float32
	segs   []segment // one per tensor, in layout order
	embed  []float32 // [vocab][dim]
	layers []layerParams
	norm   []float32 // [dim]
	head   []float32 // [vocab][dim]; the embedding when tied

	// mask, laid out as params, is true where a weight is held at zero (see
	// mask.go); nil when nothing is. maskGen counts its changes, so that a
	// trainer knows when to refresh what it derives from it.
	mask    []bool
	maskGen int
}

// layerParams are views of one layer's parameters.
type layerParams struct {
	attnNorm, ffnNorm []float32
	wqkv              []float32 // [q+2kv][dim]: wq, wk, wv
	wo                []float32 // [dim][q]
	wgu               []float32 // [2·hidden][dim]: gate, up
	down              []float32 // [dim][hidden]
}

// segment is one tensor's stretch of the flat parameter vector.
type segment struct {
	name     string
	shape    []int
	off, len int
	matrix   bool // gets weight decay
}

// newModel lays out zeroed parameters for cfg.
func newModel(cfg Config) (*Model, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	m := &Model{Config: cfg}
	off := 0
	mc := cfg.modelConfig()
	for _, e := range mc.Expected() {
		n := 1
		for _, s := range e.Shape {
			n *= s
		}
		m.segs = append(m.segs, segment{name: e.Name, shape: e.Shape, off: off, len: n, matrix: len(e.Shape) == 2})
		off += n
	}
	m.params = make([]float32, off)
	m.bind()
	return m, nil
}

// bind points the views at m.params.
func (m *Model) bind() {
	view := func(name string) []float32 {
		for _, s := range m.segs {
			if s.name == name {
				return m.params[s.off : s.off+s.len]
			}
		}
		panic("lm: no tensor " + name)
	}
	// span returns the parameters from the start of tensor a to the end of b.
	span := func(a, b string) []float32 {
		x, y := view(a), view(b)
		lo := len(m.params) - cap(x)
		hi := len(m.params) - cap(y) + len(y)
		return m.params[lo:hi]
	}
	c := m.Config
	m.embed = view(model.TokenEmbedding)
	m.layers = make([]layerParams, c.Layers)
	for l := range m.layers {
		n := func(s string) string { return model.LayerTensor(l, s) }
		m.layers[l] = layerParams{
			attnNorm: view(n(model.AttnNorm)), ffnNorm: view(n(model.FFNNorm)),
			wqkv: span(n(model.AttnQ), n(model.AttnV)), wo: view(n(model.AttnO)),
			wgu: span(n(model.FFNGate), n(model.FFNUp)), down: view(n(model.FFNDown)),
		}
	}
	m.norm = view(model.FinalNorm)
	if c.Tied {
		m.head = m.embed
	} else {
		m.head = view(model.OutputHead)
	}
}

// New returns a model with seeded random weights: normal with standard
// deviation 0.02 for the matrices, 0.02/√(2·layers) for the projections that
// write to the residual stream (o and down, as GPT-2 does), ones for the norms.
// The same config and seed give the same weights.
func New(cfg Config, seed uint64) (*Model, error) {
	m, err := newModel(cfg)
	if err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(seed, 0x1a2b))
	resid := 0.02 / math.Sqrt(2*float64(cfg.Layers))
	for _, s := range m.segs {
		p := m.params[s.off : s.off+s.len]
		if !s.matrix {
			for i := range p {
				p[i] = 1
			}
			continue
		}
		std := 0.02
		if hasSuffix(s.name, model.AttnO) || hasSuffix(s.name, model.FFNDown) {
			std = resid
		}
		for i := range p {
			p[i] = float32(std * r.NormFloat64())
		}
	}
	return m, nil
}

func hasSuffix(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}

// FromModel copies the weights of a llama-family model.Model (any dtype the
// model package decodes, F32 and F16 included) into a trainable Model.
// Models with q/k/v biases (Qwen2) are not supported.
func FromModel(src *model.Model) (*Model, error) {
	c := src.Config
	if c.Arch != "llama" {
		return nil, fmt.Errorf("lm: architecture %q is not a llama-family decoder", c.Arch)
	}
	if c.QKVBias {
		return nil, fmt.Errorf("lm: models with q/k/v biases are not supported")
	}
	switch c.HFArchitecture {
	case "", "LlamaForCausalLM", "MistralForCausalLM":
	default:
		return nil, fmt.Errorf("lm: architecture %s is not supported", c.HFArchitecture)
	}
	if c.HeadDim*c.NumHeads != c.HiddenSize {
		return nil, fmt.Errorf("lm: %d heads of %d do not make the hidden size %d", c.NumHeads, c.HeadDim, c.HiddenSize)
	}
	if err := src.Validate(); err != nil {
		return nil, fmt.Errorf("lm: %w", err)
	}
	pm, err := src.WithRopeLayout(model.RopePairs)
	if err != nil {
		return nil, fmt.Errorf("lm: %w", err)
	}
	m, err := newModel(Config{Dim: c.HiddenSize, Layers: c.NumLayers, Heads: c.NumHeads, KVHeads: c.NumKVHeads,
		Hidden: c.IntermediateSize, Vocab: c.VocabSize, Context: c.ContextLength, RopeTheta: c.RopeTheta,
		NormEps: c.RMSNormEps, Tied: c.TiedEmbeddings})
	if err != nil {
		return nil, err
	}
	for _, s := range m.segs {
		t := pm.Tensor(s.name)
		vals, err := t.Float32()
		if err != nil {
			return nil, fmt.Errorf("lm: %w", err)
		}
		copy(m.params[s.off:s.off+s.len], vals)
	}
	return m, nil
}

// Model returns the model as an F32 llama model.Model with shrink's tensor
// names, ready for inference.NewLlama or format.Save; tok, which may be nil,
// becomes its tokenizer. The tensors are copies.
func (m *Model) Model(tok *model.Tokenizer) *model.Model {
	out := &model.Model{Config: m.Config.modelConfig(), Tokenizer: tok,
		Metadata: map[string]any{"general.name": "shrink-lm"}}
	for _, s := range m.segs {
		out.Tensors = append(out.Tensors, model.NewF32(s.name, s.shape, m.params[s.off:s.off+s.len]))
	}
	return out
}

// Params is the number of parameters.
func (m *Model) Params() int { return len(m.params) }

// Clone returns a deep copy of m, masks included.
func (m *Model) Clone() *Model {
	c := &Model{Config: m.Config, segs: m.segs, params: append([]float32(nil), m.params...), mask: slices.Clone(m.mask)}
	c.bind()
	return c
}
