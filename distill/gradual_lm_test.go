package distill

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/distill/lm"
	"github.com/shrinkml/shrink/distill/train"
	"github.com/shrinkml/shrink/model"
	"github.com/shrinkml/shrink/prune"
)

// markovTokens draws n tokens of a chain over vocab tokens in which each
// pair of tokens is followed by one of two others: text a small model learns
// only by attending to the token before the last.
func markovTokens(n, vocab int, seed uint64) []int {
	rng := rand.New(rand.NewPCG(seed, 11))
	next := make([][2]int, vocab*vocab)
	for i := range next {
		for j := range next[i] {
			next[i][j] = rng.IntN(vocab)
		}
	}
	chain := rand.New(rand.NewPCG(seed+1, 12))
	out := make([]int, n)
	for i := 2; i < n; i++ {
		out[i] = next[out[i-2]*vocab+out[i-1]][chain.IntN(2)]
	}
	return out
}

// zerosOf counts the zeros of every linear matrix of m.
func zerosOf(t *testing.T, m *model.Model) map[string][2]int {
	t.Helper()
	out := map[string][2]int{}
	for _, tn := range m.Tensors {
		_, rest, ok := model.ParseLayerTensor(tn.Name)
		if !ok || rest == model.AttnNorm || rest == model.FFNNorm {
			continue
		}
		v, err := tn.Float32()
		if err != nil {
			t.Fatal(err)
		}
		z := 0
		for _, x := range v {
			if x == 0 {
				z++
			}
		}
		out[tn.Name] = [2]int{z, len(v)}
	}
	return out
}

// TestGradualPruneLM trains a tiny language model, then prunes it to 70%
// gradually (with and without itself as the teacher, from a Hugging Face RoPE
// layout): every linear matrix ends at exactly 70%, and the held-out
// perplexity stays far below one-shot pruning's. Fine-tuning the one-shot
// model keeps its zeros and recovers too.
func TestGradualPruneLM(t *testing.T) {
	const vocab = 12
	tokens := markovTokens(6000, vocab, 1)
	held := markovTokens(1500, vocab, 1)[500:]
	dense, err := lm.New(lm.Config{Dim: 16, Layers: 2, Heads: 2, KVHeads: 1, Hidden: 32, Vocab: vocab, Context: 16,
		RopeTheta: 10000, NormEps: 1e-5}, 3)
	if err != nil {
		t.Fatal(err)
	}
	o := lm.DefaultOptions()
	o.Steps, o.Batch, o.Threads, o.LR = 150, 8, 2, 1e-2
	if _, err := lm.Train(dense, tokens, o); err != nil {
		t.Fatal(err)
	}
	halves, err := dense.Model(nil).WithRopeLayout(model.RopeHalf)
	if err != nil {
		t.Fatal(err)
	}
	halves.Source = "dense"
	ppl := func(m *model.Model) float64 {
		n, err := lm.FromModel(m)
		if err != nil {
			t.Fatal(err)
		}
		e, err := lm.Evaluate(n, held, 16, -1, 2)
		if err != nil {
			t.Fatal(err)
		}
		return e.Perplexity
	}
	oneShot, _, err := prune.Prune(halves, prune.Options{Method: prune.Magnitude, Sparsity: 0.7, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	pDense, pOnce := ppl(halves), ppl(oneShot)

	o.Steps, o.LR = 120, 3e-3
	sched := train.Schedule{Final: 0.7, Every: 6, Count: 10}
	for _, c := range []struct {
		name    string
		teacher *model.Model
	}{{"labels", nil}, {"self-distilled", halves}} {
		t.Run(c.name, func(t *testing.T) {
			po := o
			po.Prune = &sched
			r, err := GradualPruneLM(halves, tokens, LMRecoveryOptions{Train: po, Teacher: c.teacher})
			if err != nil {
				t.Fatal(err)
			}
			if r.Model.Config.RopeLayout != model.RopeHalf || r.Model.Source != "dense" || r.Masked != 0 {
				t.Errorf("layout %v, source %q, %d masked at the start", r.Model.Config.RopeLayout, r.Model.Source, r.Masked)
			}
			zs := zerosOf(t, r.Model)
			if len(zs) != 14 || len(r.Tensors) != 14 || len(r.TensorSparsity) != 14 {
				t.Fatalf("%d pruned matrices, %d reported", len(zs), len(r.Tensors))
			}
			for i, name := range r.Tensors {
				z := zs[name]
				if want := int(math.Round(0.7 * float64(z[1]))); z[0] != want || r.TensorSparsity[i] != float64(want)/float64(z[1]) {
					t.Errorf("%s: %d zeros of %d (reported %g), want %d", name, z[0], z[1], r.TensorSparsity[i], want)
				}
			}
			for _, name := range []string{model.TokenEmbedding, model.OutputHead, model.FinalNorm} {
				if v, _ := r.Model.Tensor(name).Float32(); len(v) == 0 || v[0] == 0 {
					t.Errorf("%s was pruned or lost", name)
				}
			}
			got := ppl(r.Model)
			t.Logf("held-out perplexity: dense %.3f, one-shot 70%% %.3f, gradual %.3f", pDense, pOnce, got)
			if !(got < pOnce) || got > 2*pDense {
				t.Errorf("perplexity: dense %.3f, one-shot %.3f, gradual %.3f", pDense, pOnce, got)
			}
		})
	}

	r, err := FinetuneLM(oneShot, tokens, LMRecoveryOptions{Train: o})
	if err != nil {
		t.Fatal(err)
	}
	before := zerosOf(t, oneShot)
	masked := 0
	for name, z := range zerosOf(t, r.Model) {
		masked += before[name][0]
		if z != before[name] {
			t.Errorf("%s: %v zeros after fine-tuning, %v before", name, z, before[name])
		}
	}
	if r.Masked != masked || math.Abs(r.Sparsity-0.7) > 1e-3 {
		t.Errorf("%d masked at the start, want %d; sparsity %g", r.Masked, masked, r.Sparsity)
	}
	if got := ppl(r.Model); !(got < pOnce) {
		t.Errorf("fine-tuning took the perplexity from %.3f to %.3f", pOnce, got)
	} else {
		t.Logf("one-shot 70%% fine-tuned: %.3f", got)
	}

	for _, c := range []struct {
		name string
		run  func() error
		want string
	}{
		{"no schedule", func() error { _, err := GradualPruneLM(halves, tokens, LMRecoveryOptions{Train: o}); return err }, "needs a schedule"},
		{"teacher option", func() error {
			bad := o
			bad.Teacher = dense
			_, err := FinetuneLM(halves, tokens, LMRecoveryOptions{Train: bad})
			return err
		}, "not a training option"},
		{"mlp", func() error {
			_, err := FinetuneLM(&model.Model{Config: model.Config{Arch: "mlp"}, Source: "m"}, tokens, LMRecoveryOptions{Train: o})
			return err
		}, "not a llama-family decoder"},
		{"tokens", func() error {
			_, err := FinetuneLM(halves, []int{1, 2, 99, 4}, LMRecoveryOptions{Train: o})
			return err
		}, "dense"},
	} {
		if err := c.run(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}
