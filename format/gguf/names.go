package gguf

import (
	"strconv"
	"strings"

	"github.com/shrinkml/shrink/model"
)

// Global tensors: GGUF base name and Hugging Face base name (without .weight/.bias).
var globalNames = [][2]string{
	{"token_embd", "model.embed_tokens"},
	{"output_norm", "model.norm"},
	{"output", "lm_head"},
}

// Per-layer modules in the order llama.cpp's llama2.c converter writes them
// (checked against stories260K-F32.gguf).
var layerNames = [][2]string{
	{"attn_q", "self_attn.q_proj"},
	{"attn_k", "self_attn.k_proj"},
	{"attn_v", "self_attn.v_proj"},
	{"attn_output", "self_attn.o_proj"},
	{"attn_norm", "input_layernorm"},
	{"ffn_gate", "mlp.gate_proj"},
	{"ffn_down", "mlp.down_proj"},
	{"ffn_up", "mlp.up_proj"},
	{"ffn_norm", "post_attention_layernorm"},
}

// splitParam splits "x.weight" or "x.bias" into base and suffix.
func splitParam(name string) (base, suffix string, ok bool) {
	for _, s := range []string{".weight", ".bias"} {
		if b, found := strings.CutSuffix(name, s); found && b != "" {
			return b, s, true
		}
	}
	return "", "", false
}

// splitLayer splits "<prefix>N.rest" with N a canonical decimal layer index.
func splitLayer(name, prefix string) (layer int, rest string, ok bool) {
	s, found := strings.CutPrefix(name, prefix)
	if !found {
		return 0, "", false
	}
	num, rest, found := strings.Cut(s, ".")
	if !found || num == "" || len(num) > 7 || (len(num) > 1 && num[0] == '0') {
		return 0, "", false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || strconv.Itoa(n) != num {
		return 0, "", false
	}
	return n, rest, true
}

// hfName maps a GGUF tensor name to shrink's canonical (Hugging Face) name;
// names it does not know are returned unchanged.
func hfName(name string) string {
	base, suffix, ok := splitParam(name)
	if !ok {
		return name
	}
	for _, g := range globalNames {
		if base == g[0] {
			return g[1] + suffix
		}
	}
	if layer, rest, ok := splitLayer(base, "blk."); ok {
		for _, l := range layerNames {
			if rest == l[0] {
				return model.LayerTensor(layer, l[1]+suffix)
			}
		}
	}
	return name
}

// ggufName maps a canonical tensor name to its GGUF name; names it does not
// know are returned unchanged.
func ggufName(name string) string {
	base, suffix, ok := splitParam(name)
	if !ok {
		return name
	}
	for _, g := range globalNames {
		if base == g[1] {
			return g[0] + suffix
		}
	}
	if layer, rest, ok := splitLayer(base, "model.layers."); ok {
		for _, l := range layerNames {
			if rest == l[1] {
				return "blk." + strconv.Itoa(layer) + "." + l[0] + suffix
			}
		}
	}
	return name
}

// tensorOrder returns the canonical names of a llama model in the order
// llama.cpp's converter writes them: token_embd, output_norm, output, then each
// block (weights, each followed by its bias). Names not in the model are
// skipped by the caller.
func tensorOrder(layers int) []string {
	names := make([]string, 0, 3*2+layers*len(layerNames)*2)
	for _, g := range globalNames {
		names = append(names, g[1]+".weight", g[1]+".bias")
	}
	for l := 0; l < layers; l++ {
		for _, ln := range layerNames {
			names = append(names, model.LayerTensor(l, ln[1]+".weight"), model.LayerTensor(l, ln[1]+".bias"))
		}
	}
	return names
}
