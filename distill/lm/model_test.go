package lm

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/shrinkml/shrink/inference"
	"github.com/shrinkml/shrink/model"
)

// oddConfig has sizes that are multiples of nothing the kernels like.
var oddConfig = Config{Dim: 24, Layers: 2, Heads: 3, KVHeads: 1, Hidden: 40, Vocab: 37, Context: 16,
	RopeTheta: 10000, NormEps: 1e-5}

// randomize gives every parameter a value of the given scale, norms around one.
func randomize(m *Model, seed uint64, scale float64) {
	r := rand.New(rand.NewPCG(seed, 9))
	for _, s := range m.segs {
		p := m.params[s.off : s.off+s.len]
		for i := range p {
			if s.matrix {
				p[i] = float32(scale * r.NormFloat64())
			} else {
				p[i] = float32(1 + 0.2*r.NormFloat64())
			}
		}
	}
}

// TestLogitsMatchInference runs the same model through the trainer's forward
// pass and inference.Llama.
func TestLogitsMatchInference(t *testing.T) {
	for _, tied := range []bool{false, true} {
		cfg := oddConfig
		cfg.Tied = tied
		m, err := New(cfg, 3)
		if err != nil {
			t.Fatal(err)
		}
		randomize(m, 4, 0.3)
		mm := m.Model(model.SyntheticVocab(cfg.Vocab))
		if err := mm.Validate(); err != nil {
			t.Fatal(err)
		}
		eng, err := inference.NewLlama(mm, inference.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		tokens := []int{1, 5, 36, 0, 17, 17, 3, 22, 9, 30, 2}
		want := make([]float32, len(tokens)*cfg.Vocab)
		if err := eng.Forward(eng.NewState(0), tokens, want); err != nil {
			t.Fatal(err)
		}
		eng.Close()
		got, err := m.Logits(tokens)
		if err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for i := range want {
			d := math.Abs(float64(got[i]-want[i])) / math.Max(1, math.Abs(float64(want[i])))
			worst = math.Max(worst, d)
		}
		t.Logf("tied=%v: worst relative difference %.2g", tied, worst)
		if worst > 1e-4 {
			t.Errorf("tied=%v: logits differ from inference.Llama's by %g", tied, worst)
		}
		// The round trip through model.Model keeps every parameter.
		back, err := FromModel(mm)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range back.params {
			if v != m.params[i] {
				t.Fatalf("FromModel: parameter %d is %g, want %g", i, v, m.params[i])
			}
		}
	}
}

// TestFromModelHalfLayout reads a model whose q and k rows are stored in the
// rotate-half layout and in F16, and checks its logits against the
// inference engine's on the same file.
func TestFromModelHalfLayout(t *testing.T) {
	m, err := New(oddConfig, 5)
	if err != nil {
		t.Fatal(err)
	}
	randomize(m, 6, 0.3)
	mm := m.Model(nil)
	half, err := mm.WithRopeLayout(model.RopeHalf)
	if err != nil {
		t.Fatal(err)
	}
	for i, tn := range half.Tensors {
		if half.Tensors[i], err = tn.Convert(model.F16); err != nil {
			t.Fatal(err)
		}
	}
	back, err := FromModel(half)
	if err != nil {
		t.Fatal(err)
	}
	tokens := []int{4, 8, 15, 16, 23, 36}
	eng, err := inference.NewLlama(half, inference.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	want := make([]float32, len(tokens)*oddConfig.Vocab)
	if err := eng.Forward(eng.NewState(0), tokens, want); err != nil {
		t.Fatal(err)
	}
	got, err := back.Logits(tokens)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-4*math.Max(1, math.Abs(float64(want[i]))) {
			t.Fatalf("logit %d: %g from FromModel, %g from inference.Llama", i, got[i], want[i])
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Dim = 25 }, "not a multiple of 3 heads"},
		{func(c *Config) { c.KVHeads = 2 }, "not a multiple of 2 kv heads"},
		{func(c *Config) { c.Dim, c.Heads, c.KVHeads = 27, 3, 3 }, "odd"},
		{func(c *Config) { c.Vocab = 0 }, "vocab 0"},
		{func(c *Config) { c.NormEps = 0 }, "norm eps"},
	} {
		cfg := oddConfig
		c.mod(&cfg)
		if _, err := New(cfg, 1); err == nil || !contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", cfg, err, c.want)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
