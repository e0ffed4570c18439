package inference

import (
	"strings"
	"testing"

	"github.com/shrinkml/shrink/model"
)

// TestSetVector replaces a norm weight: the logits change, and restoring the
// old weight restores them; a wrong length or name is an error.
func TestSetVector(t *testing.T) {
	cfg := model.Config{Arch: "llama", HiddenSize: 32, IntermediateSize: 64, NumLayers: 2, NumHeads: 2,
		NumKVHeads: 2, HeadDim: 16, VocabSize: 40, ContextLength: 16, RMSNormEps: 1e-5, RopeTheta: 10000}
	m, err := model.Synthesize(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLlama(m, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	run := func() []float32 {
		out := make([]float32, cfg.VocabSize)
		if err := l.Forward(l.NewState(4), []int{1, 5, 7, 9}, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := run()
	name := model.LayerTensor(1, model.FFNNorm)
	half := make([]float32, cfg.HiddenSize)
	for i := range half {
		half[i] = 0.5
	}
	if err := l.SetVector(name, half); err != nil {
		t.Fatal(err)
	}
	changed := run()
	ones := make([]float32, cfg.HiddenSize)
	for i := range ones {
		ones[i] = 1
	}
	if err := l.SetVector(name, ones); err != nil {
		t.Fatal(err)
	}
	after := run()
	same := func(a, b []float32) bool {
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return true
	}
	if same(before, changed) || !same(before, after) {
		t.Errorf("logits did not follow the norm weight")
	}
	if err := l.SetVector(name, ones[:3]); err == nil || !strings.Contains(err.Error(), "has 3 values, want 32") {
		t.Errorf("short vector: %v", err)
	}
	if err := l.SetVector(model.LayerTensor(0, model.AttnVB), ones); err == nil || !strings.Contains(err.Error(), "not a replaceable vector") {
		t.Errorf("absent bias: %v", err)
	}
}
