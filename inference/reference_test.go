package inference

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/model"
)

// This file holds a deliberately plain reference decoder: float64 throughout,
// no kernels, no KV cache (every position recomputes attention over its whole
// prefix), written from the Llama definition rather than from the engine.

// randomModel returns a llama model with the shapes cfg expects, filled with
// seeded random values of realistic scale.
func randomModel(t testing.TB, cfg model.Config, seed uint64) *model.Model {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	m := &model.Model{Config: cfg, Source: "random"}
	for _, e := range cfg.Expected() {
		vals := make([]float32, (&model.Tensor{Shape: e.Shape}).Elems())
		scale := 1 / math.Sqrt(float64(e.Shape[len(e.Shape)-1]))
		norm := e.Name == model.FinalNorm || strings.HasSuffix(e.Name, model.AttnNorm) || strings.HasSuffix(e.Name, model.FFNNorm)
		for i := range vals {
			switch {
			case len(e.Shape) == 1 && norm:
				vals[i] = float32(1 + 0.2*(rng.Float64()-0.5))
			case len(e.Shape) == 1: // biases
				vals[i] = float32(0.2 * (rng.Float64() - 0.5))
			default:
				vals[i] = float32(2 * scale * (rng.Float64() - 0.5) * math.Sqrt(3))
			}
		}
		m.Tensors = append(m.Tensors, model.NewF32(e.Name, e.Shape, vals))
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

// refModel is a model's tensors as float64 matrices.
type refModel struct {
	cfg model.Config
	t   map[string][]float64
	// quant holds the Q8_0, Q4_0 and Q4_1 matrices whose inputs are
	// quantized as the engine quantizes them (newQuantRefModel); empty in
	// the plain reference.
	quant map[string]*model.Tensor
	// round32 rounds every activation to float32 as it is produced, as the
	// engine stores them; the difference from the exact reference says how
	// far float32 storage alone moves the logits (see sensitivity).
	round32 bool
	// kvHalf rounds every key and value to IEEE half, as the engine's
	// KVF16 cache stores them.
	kvHalf bool
}

// kvStore rounds v to half precision when r.kvHalf is set, and returns v.
func (r *refModel) kvStore(v []float64) []float64 {
	if r.kvHalf {
		for i := range v {
			v[i] = float64(model.F16ToF32(model.F32ToF16(float32(v[i]))))
		}
	}
	return v
}

// store rounds v to float32 in place when r.round32 is set, and returns v.
func (r *refModel) store(v []float64) []float64 {
	if r.round32 {
		for i := range v {
			v[i] = float64(float32(v[i]))
		}
	}
	return v
}

// linear returns W·x + b for the matrix name (see linearQ8 for quant).
func (r *refModel) linear(name string, x, b []float64) []float64 {
	if t, ok := r.quant[name]; ok {
		return r.store(linearQ8(t, x, b))
	}
	return r.store(linear(r.get(name), x, b))
}

func newRefModel(t testing.TB, m *model.Model) *refModel {
	t.Helper()
	r := &refModel{cfg: m.Config, t: map[string][]float64{}}
	for _, tn := range m.Tensors {
		v, err := tn.Float32()
		if err != nil {
			t.Fatal(err)
		}
		f := make([]float64, len(v))
		for i := range v {
			f[i] = float64(v[i])
		}
		r.t[tn.Name] = f
	}
	return r
}

func (r *refModel) get(name string) []float64 {
	v, ok := r.t[name]
	if !ok {
		panic("reference: missing tensor " + name)
	}
	return v
}

// linear returns W·x + b for W [len(W)/len(x), len(x)].
func linear(w, x, b []float64) []float64 {
	out := make([]float64, len(w)/len(x))
	for r := range out {
		var s float64
		for c, xv := range x {
			s += w[r*len(x)+c] * xv
		}
		if b != nil {
			s += b[r]
		}
		out[r] = s
	}
	return out
}

func rmsnorm(x, w []float64, eps float64) []float64 {
	var ss float64
	for _, v := range x {
		ss += v * v
	}
	s := 1 / math.Sqrt(ss/float64(len(x))+eps)
	out := make([]float64, len(x))
	for i := range x {
		out[i] = w[i] * x[i] * s
	}
	return out
}

// rope rotates every head of x for position pos. The i-th frequency is
// theta^(-2i/headDim); layout says which two dimensions of a head it turns.
func rope(x []float64, headDim, pos int, theta float64, layout model.RopeLayout) {
	for h := 0; h < len(x); h += headDim {
		for i := 0; i < headDim/2; i++ {
			a, b := h+2*i, h+2*i+1
			if layout == model.RopeHalf {
				a, b = h+i, h+i+headDim/2
			}
			ang := float64(pos) * math.Pow(theta, -float64(2*i)/float64(headDim))
			c, s := math.Cos(ang), math.Sin(ang)
			x[a], x[b] = x[a]*c-x[b]*s, x[a]*s+x[b]*c
		}
	}
}

// forward returns the logits of every position of tokens, [len(tokens)][vocab].
func (r *refModel) forward(tokens []int) [][]float64 {
	c := r.cfg
	d, hd := c.HiddenSize, c.HeadDim
	T := len(tokens)
	emb := r.get(model.TokenEmbedding)
	x := make([][]float64, T)
	for t, tok := range tokens {
		x[t] = append([]float64(nil), emb[tok*d:(tok+1)*d]...)
	}
	bias := func(l int, s string) []float64 {
		if !c.QKVBias {
			return nil
		}
		return r.get(model.LayerTensor(l, s))
	}
	for l := 0; l < c.NumLayers; l++ {
		get := func(s string) []float64 { return r.get(model.LayerTensor(l, s)) }
		q := make([][]float64, T)
		k := make([][]float64, T)
		v := make([][]float64, T)
		for t := range x {
			xb := r.store(rmsnorm(x[t], get(model.AttnNorm), c.RMSNormEps))
			q[t] = r.linear(model.LayerTensor(l, model.AttnQ), xb, bias(l, model.AttnQB))
			k[t] = r.linear(model.LayerTensor(l, model.AttnK), xb, bias(l, model.AttnKB))
			v[t] = r.linear(model.LayerTensor(l, model.AttnV), xb, bias(l, model.AttnVB))
			rope(q[t], hd, t, c.RopeTheta, c.RopeLayout)
			rope(k[t], hd, t, c.RopeTheta, c.RopeLayout)
			r.store(q[t])
			r.kvStore(r.store(k[t]))
			r.kvStore(v[t])
		}
		for t := range x {
			att := make([]float64, c.NumHeads*hd)
			for h := 0; h < c.NumHeads; h++ {
				g := h * c.NumKVHeads / c.NumHeads // the kv head this query head shares
				w := make([]float64, t+1)
				mx := math.Inf(-1)
				for s := 0; s <= t; s++ {
					var dot float64
					for i := 0; i < hd; i++ {
						dot += q[t][h*hd+i] * k[s][g*hd+i]
					}
					w[s] = dot / math.Sqrt(float64(hd))
					mx = math.Max(mx, w[s])
				}
				var sum float64
				for s := range w {
					w[s] = math.Exp(w[s] - mx)
					sum += w[s]
				}
				for s := range w {
					for i := 0; i < hd; i++ {
						att[h*hd+i] += w[s] / sum * v[s][g*hd+i]
					}
				}
			}
			o := r.linear(model.LayerTensor(l, model.AttnO), r.store(att), nil)
			for i := range x[t] {
				x[t][i] += o[i]
			}
			r.store(x[t])
			xb := r.store(rmsnorm(x[t], get(model.FFNNorm), c.RMSNormEps))
			gate := r.linear(model.LayerTensor(l, model.FFNGate), xb, nil)
			up := r.linear(model.LayerTensor(l, model.FFNUp), xb, nil)
			for i := range gate {
				gate[i] = gate[i] / (1 + math.Exp(-gate[i])) * up[i]
			}
			down := r.linear(model.LayerTensor(l, model.FFNDown), r.store(gate), nil)
			for i := range x[t] {
				x[t][i] += down[i]
			}
			r.store(x[t])
		}
	}
	head := model.OutputHead
	if c.TiedEmbeddings {
		head = model.TokenEmbedding
	}
	out := make([][]float64, T)
	for t := range x {
		out[t] = r.linear(head, r.store(rmsnorm(x[t], r.get(model.FinalNorm), c.RMSNormEps)), nil)
	}
	return out
}

// compareLogits fails unless got (float32) matches want within tol relative
// to the largest magnitude of want.
func compareLogits(t testing.TB, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d logits, want %d", what, len(got), len(want))
	}
	var scale, worst float64
	wi := 0
	for _, w := range want {
		scale = math.Max(scale, math.Abs(w))
	}
	scale = math.Max(scale, 1)
	for i := range got {
		if d := math.Abs(float64(got[i]) - want[i]); d > worst || math.IsNaN(d) {
			worst, wi = d, i
		}
	}
	if !(worst <= tol*scale) {
		t.Fatalf("%s: logit %d is %g, want %g (|diff| %.3g > %.1g × %.3g)", what, wi, got[wi], want[wi], worst, tol, scale)
	}
}

func TestReferenceSelfCheck(t *testing.T) {
	// The rotate-half layout is the pairs layout with permuted q/k rows, so
	// the reference must give the same logits for both forms of one model.
	cfg := testConfigs[1].cfg
	m := randomModel(t, cfg, 1)
	p, err := m.WithRopeLayout(model.RopePairs)
	if err != nil {
		t.Fatal(err)
	}
	tokens := []int{1, 5, 9, 2, 7}
	a, b := newRefModel(t, m).forward(tokens), newRefModel(t, p).forward(tokens)
	for i := range a {
		for j := range a[i] {
			if math.Abs(a[i][j]-b[i][j]) > 1e-9 {
				t.Fatalf("position %d logit %d: half %g, pairs %g", i, j, a[i][j], b[i][j])
			}
		}
	}
}
