package model

import "testing"

func TestParseLayerTensor(t *testing.T) {
	for _, c := range []struct {
		name string
		l    int
		rest string
		ok   bool
	}{
		{LayerTensor(0, AttnQ), 0, AttnQ, true},
		{LayerTensor(12, FFNDown), 12, FFNDown, true},
		{TokenEmbedding, 0, "", false},
		{"model.layers.x.self_attn.q_proj.weight", 0, "", false},
		{"model.layers.3", 0, "", false},
		{"model.layers.99999999999999999999.mlp.up_proj.weight", 0, "", false},
	} {
		l, rest, ok := ParseLayerTensor(c.name)
		if l != c.l || rest != c.rest || ok != c.ok {
			t.Errorf("ParseLayerTensor(%q) = %d, %q, %v; want %d, %q, %v", c.name, l, rest, ok, c.l, c.rest, c.ok)
		}
	}
}
