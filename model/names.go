package model

import (
	"fmt"
	"strconv"
	"strings"
)

// Canonical tensor names are Hugging Face's; every reader maps its own names to
// these and every writer maps them back.
const (
	TokenEmbedding = "model.embed_tokens.weight"
	FinalNorm      = "model.norm.weight"
	OutputHead     = "lm_head.weight"
)

// Per-layer tensor suffixes; LayerTensor joins them with a layer index.
const (
	AttnNorm = "input_layernorm.weight"
	AttnQ    = "self_attn.q_proj.weight"
	AttnK    = "self_attn.k_proj.weight"
	AttnV    = "self_attn.v_proj.weight"
	AttnO    = "self_attn.o_proj.weight"
	AttnQB   = "self_attn.q_proj.bias"
	AttnKB   = "self_attn.k_proj.bias"
	AttnVB   = "self_attn.v_proj.bias"
	FFNNorm  = "post_attention_layernorm.weight"
	FFNGate  = "mlp.gate_proj.weight"
	FFNUp    = "mlp.up_proj.weight"
	FFNDown  = "mlp.down_proj.weight"
)

// LayerTensor returns the canonical name of a per-layer tensor, e.g.
// LayerTensor(3, AttnQ) is "model.layers.3.self_attn.q_proj.weight".
func LayerTensor(layer int, suffix string) string {
	return fmt.Sprintf("model.layers.%d.%s", layer, suffix)
}

// ParseLayerTensor is LayerTensor's inverse: the layer and suffix of a
// canonical per-layer tensor name, and false for any other name.
func ParseLayerTensor(name string) (layer int, suffix string, ok bool) {
	rest, found := strings.CutPrefix(name, "model.layers.")
	if !found {
		return 0, "", false
	}
	num, suffix, found := strings.Cut(rest, ".")
	if !found || suffix == "" {
		return 0, "", false
	}
	l, err := strconv.Atoi(num)
	if err != nil || l < 0 || LayerTensor(l, suffix) != name {
		return 0, "", false
	}
	return l, suffix, true
}

// MLPWeight and MLPBias name the parameters of the i-th Linear layer of an MLP
// classifier ("layers.0.weight"); a plain nn.Sequential uses other indices and
// is renamed on load.
func MLPWeight(i int) string { return fmt.Sprintf("layers.%d.weight", i) }

// MLPBias names the bias of the i-th Linear layer of an MLP classifier.
func MLPBias(i int) string { return fmt.Sprintf("layers.%d.bias", i) }

// Expected lists every tensor a model with this config must have, with its shape.
func (c *Config) Expected() []Tensor {
	var ts []Tensor
	add := func(name string, shape ...int) { ts = append(ts, Tensor{Name: name, Shape: shape}) }
	switch c.Arch {
	case "llama":
		d, kv, ff := c.HiddenSize, c.KVDim(), c.IntermediateSize
		q := c.NumHeads * c.HeadDim
		add(TokenEmbedding, c.VocabSize, d)
		for l := 0; l < c.NumLayers; l++ {
			add(LayerTensor(l, AttnNorm), d)
			add(LayerTensor(l, AttnQ), q, d)
			add(LayerTensor(l, AttnK), kv, d)
			add(LayerTensor(l, AttnV), kv, d)
			if c.QKVBias {
				add(LayerTensor(l, AttnQB), q)
				add(LayerTensor(l, AttnKB), kv)
				add(LayerTensor(l, AttnVB), kv)
			}
			add(LayerTensor(l, AttnO), d, q)
			add(LayerTensor(l, FFNNorm), d)
			add(LayerTensor(l, FFNGate), ff, d)
			add(LayerTensor(l, FFNUp), ff, d)
			add(LayerTensor(l, FFNDown), d, ff)
		}
		add(FinalNorm, d)
		if !c.TiedEmbeddings {
			add(OutputHead, c.VocabSize, d)
		}
	case "mlp":
		if c.MLP != nil {
			for i := 0; i+1 < len(c.MLP.Sizes); i++ {
				add(MLPWeight(i), c.MLP.Sizes[i+1], c.MLP.Sizes[i])
				add(MLPBias(i), c.MLP.Sizes[i+1])
			}
		}
	}
	return ts
}
