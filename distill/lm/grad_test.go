package lm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/shrinkml/shrink/internal/gradcheck"
	"github.com/shrinkml/shrink/model"
)

// refModelLoss evaluates the mean loss of a model over sequences in float64,
// from a flat parameter vector laid out as m.params, composing the op
// references of ops_test.go. tz, when not nil, holds teacher logits.
func refModelLoss(m *Model, params []float64, inputs, targets [][]int, tz [][]float64, temp, alpha float64) float64 {
	var total float64
	count := 0
	for si, in := range inputs {
		z, _ := refForward(m, params, in)
		ce := gradcheck.RefCE(z, targets[si], m.Config.Vocab)
		if tz == nil {
			total += ce
		} else {
			total += alpha*temp*temp*refKL(z, tz[si], m.Config.Vocab, temp) + (1-alpha)*ce
		}
		count += len(in)
	}
	return total / float64(count)
}

// refForward runs a model in float64 over one sequence, from a flat
// parameter vector laid out as m.params, and returns the logits and the
// residual stream leaving each layer.
func refForward(m *Model, params []float64, in []int) (logits []float64, states [][]float64) {
	c := m.Config
	get := func(name string) []float64 {
		for _, s := range m.segs {
			if s.name == name {
				return params[s.off : s.off+s.len]
			}
		}
		panic(name)
	}
	d, hd := c.Dim, c.HeadDim()
	qd, kvd := c.Heads*hd, c.KVHeads*hd
	wd := qd + 2*kvd
	n := len(in)
	cos, sin, _ := ropeTables(n, hd, c.RopeTheta)
	emb := get(model.TokenEmbedding)
	x := make([]float64, n*d)
	for t, tok := range in {
		copy(x[t*d:(t+1)*d], emb[tok*d:(tok+1)*d])
	}
	for l := range c.Layers {
		name := func(s string) string { return model.LayerTensor(l, s) }
		xn := refRMSNorm(x, get(name(model.AttnNorm)), n, d, c.NormEps)
		wqkv := append(append(append([]float64(nil), get(name(model.AttnQ))...), get(name(model.AttnK))...), get(name(model.AttnV))...)
		qkv := refRoPE(refLinear(xn, wqkv, n, d, wd), n, wd, qd+kvd, hd, cos, sin)
		att := refAttention(qkv, n, c.Heads, c.KVHeads, hd)
		o := refLinear(att, get(name(model.AttnO)), n, qd, d)
		for i := range x {
			x[i] += o[i]
		}
		xn = refRMSNorm(x, get(name(model.FFNNorm)), n, d, c.NormEps)
		wgu := append(append([]float64(nil), get(name(model.FFNGate))...), get(name(model.FFNUp))...)
		h := refSwiGLU(refLinear(xn, wgu, n, d, 2*c.Hidden), n, c.Hidden)
		o = refLinear(h, get(name(model.FFNDown)), n, c.Hidden, d)
		for i := range x {
			x[i] += o[i]
		}
		states = append(states, append([]float64(nil), x...))
	}
	head := emb
	if !c.Tied {
		head = get(model.OutputHead)
	}
	return refLinear(refRMSNorm(x, get(model.FinalNorm), n, d, c.NormEps), head, n, d, c.Vocab), states
}

// TestModelGradient checks the whole backward pass, the sum of the shards'
// gradients included, against central differences of the float64 loss.
func TestModelGradient(t *testing.T) {
	base := Config{Dim: 8, Layers: 2, Heads: 2, KVHeads: 1, Hidden: 12, Vocab: 11, Context: 6, RopeTheta: 100, NormEps: 1e-5}
	for _, c := range []struct {
		tied, bos, distill bool
		threads            int
	}{
		{false, false, false, 1},
		{true, true, false, 1},
		{false, true, false, 3},
		{true, false, true, 2},
	} {
		t.Run(fmt.Sprintf("tied=%v bos=%v distill=%v threads=%d", c.tied, c.bos, c.distill, c.threads), func(t *testing.T) {
			cfg := base
			cfg.Tied = c.tied
			m, err := New(cfg, 1)
			if err != nil {
				t.Fatal(err)
			}
			randomize(m, 2, 0.4)
			rng := rand.New(rand.NewPCG(7, 8))
			tokens := make([]int, 40)
			for i := range tokens {
				tokens[i] = 3 + rng.IntN(cfg.Vocab-3)
			}
			opts := DefaultOptions()
			opts.Batch, opts.Steps = 3, 1
			if c.bos {
				opts.BOS = 1
			}
			var teacher *Model
			if c.distill {
				teacher, _ = New(cfg, 9)
				randomize(teacher, 10, 0.5)
				opts.Teacher, opts.Temperature, opts.Alpha = teacher, 3, 0.6
			}
			opts, err = opts.resolve(m, len(tokens))
			if err != nil {
				t.Fatal(err)
			}
			tr := newTrainer(m, opts, c.threads)
			starts := []int{0, 17, 33}
			loss, sumsq, err := tr.accumulate(tokens, starts)
			if err != nil {
				t.Fatal(err)
			}
			grad := tr.work[0].grad

			n := opts.Context
			var inputs, targets [][]int
			var tz [][]float64
			for _, s := range starts {
				w := &worker{tokens: make([]int, n), targets: make([]int, n)}
				fill(w, tokens, []int{s}, n, opts.BOS)
				inputs, targets = append(inputs, w.tokens), append(targets, w.targets)
				if teacher != nil {
					z, err := teacher.Logits(w.tokens)
					if err != nil {
						t.Fatal(err)
					}
					tz = append(tz, f64(z))
				}
			}
			params := f64(m.params)
			ref := func() float64 { return refModelLoss(m, params, inputs, targets, tz, opts.Temperature, opts.Alpha) }
			if want := ref(); math.Abs(loss-want) > 1e-5*math.Max(1, want) {
				t.Errorf("loss %g, float64 reference %g", loss, want)
			}
			const h = 1e-6
			var ss, worst float64
			for i := range params {
				p := params[i]
				params[i] = p + h
				fp := ref()
				params[i] = p - h
				fm := ref()
				params[i] = p
				num := (fp - fm) / (2 * h)
				e := math.Abs(float64(grad[i])-num) / math.Max(1, math.Abs(num))
				worst = math.Max(worst, e)
				if e > gradcheck.Tol {
					t.Fatalf("parameter %d: gradient %g, central difference %g", i, grad[i], num)
				}
				ss += float64(grad[i]) * float64(grad[i])
			}
			if math.Abs(ss-sumsq) > 1e-9*ss {
				t.Errorf("squared norm %g, want %g", sumsq, ss)
			}
			t.Logf("%d parameters, worst relative error %.2g", len(params), worst)
		})
	}
}
