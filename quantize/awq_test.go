package quantize

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/inference"
	"github.com/shrinkml/shrink/model"
)

// awqModel is a small llama whose heads each have their own value head (so
// AWQ can scale o too), with random QKV biases when bias is set.
func awqModel(t testing.TB, bias bool) *model.Model {
	t.Helper()
	cfg := model.Config{Arch: "llama", HiddenSize: 64, IntermediateSize: 128, NumLayers: 2, NumHeads: 4,
		NumKVHeads: 4, HeadDim: 16, VocabSize: 96, ContextLength: 64, RMSNormEps: 1e-5, RopeTheta: 10000, QKVBias: bias}
	m, err := model.Synthesize(cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i, tn := range m.Tensors {
		if strings.HasSuffix(tn.Name, "_proj.bias") || strings.HasSuffix(tn.Name, "norm.weight") {
			v, _ := tn.Float32()
			v = append([]float32(nil), v...)
			for j := range v {
				if strings.HasSuffix(tn.Name, "bias") {
					v[j] = float32(0.1 * rng.NormFloat64())
				} else {
					v[j] = float32(math.Exp(0.3 * rng.NormFloat64()))
				}
			}
			m.Tensors[i] = model.NewF32(tn.Name, tn.Shape, v)
		}
	}
	return m
}

// randomSeqs returns n sequences of length tokens below vocab.
func randomSeqs(n, length, vocab int, seed uint64) [][]int {
	rng := rand.New(rand.NewPCG(seed, 2))
	seqs := make([][]int, n)
	for i := range seqs {
		seqs[i] = make([]int, length)
		for j := range seqs[i] {
			seqs[i][j] = rng.IntN(vocab)
		}
	}
	return seqs
}

// logits runs m over every sequence and returns all positions' logits.
func logits(t testing.TB, m *model.Model, seqs [][]int) []float32 {
	t.Helper()
	l, err := inference.NewLlama(m, inference.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var out []float32
	for _, seq := range seqs {
		s := l.NewState(len(seq))
		buf := make([]float32, len(seq)*m.Config.VocabSize)
		if err := l.Forward(s, seq, buf); err != nil {
			t.Fatal(err)
		}
		out = append(out, buf...)
	}
	return out
}

// TestAWQFoldEquivalent folds random scales into every group of every layer,
// without quantizing: the model must compute the same logits.
func TestAWQFoldEquivalent(t *testing.T) {
	for _, bias := range []bool{false, true} {
		m := awqModel(t, bias)
		if got := awqEligible(m.Config, map[string]bool{model.AttnQ: true, model.AttnK: true, model.AttnV: true,
			model.AttnO: true, model.FFNGate: true, model.FFNUp: true, model.FFNDown: true}); len(got) != 4 {
			t.Fatalf("eligible groups %v, want all four", got)
		}
		rng := rand.New(rand.NewPCG(9, 9))
		folded := &model.Model{Config: m.Config, Tokenizer: m.Tokenizer, Metadata: m.Metadata, Tensors: append([]*model.Tensor(nil), m.Tensors...)}
		changed := 0
		for li := range m.Config.NumLayers {
			scales := map[inference.LinearGroup][]float64{}
			for _, g := range linearGroups {
				cols := m.Config.HiddenSize
				switch g {
				case inference.GroupO:
					cols = m.Config.NumHeads * m.Config.HeadDim
				case inference.GroupDown:
					cols = m.Config.IntermediateSize
				}
				s := make([]float64, cols)
				for j := range s {
					s[j] = math.Exp(rng.NormFloat64())
				}
				scales[g] = s
			}
			vals, err := awqFold(m, li, scales)
			if err != nil {
				t.Fatal(err)
			}
			for i, tn := range folded.Tensors {
				if v, ok := vals[tn.Name]; ok {
					folded.Tensors[i] = model.NewF32(tn.Name, tn.Shape, v)
					changed++
				}
			}
		}
		if want := m.Config.NumLayers * (9 + map[bool]int{false: 0, true: 1}[bias]); changed != want {
			t.Errorf("bias %v: %d tensors folded, want %d", bias, changed, want)
		}
		seqs := randomSeqs(2, 40, m.Config.VocabSize, 1)
		want, got := logits(t, m, seqs), logits(t, folded, seqs)
		var worst, scale float64
		for i := range want {
			worst = max(worst, math.Abs(float64(got[i]-want[i])))
			scale = max(scale, math.Abs(float64(want[i])))
		}
		if worst > 1e-4*scale || worst == 0 && bias {
			t.Errorf("bias %v: logits differ by up to %g (largest logit %g)", bias, worst, scale)
		}
	}
}

// outlierModel is a small llama whose norms make a few input channels of
// every group 20 times larger than the rest, as real activations have.
func outlierModel(t testing.TB) *model.Model {
	m := awqModel(t, false)
	for i, tn := range m.Tensors {
		if strings.HasSuffix(tn.Name, "norm.weight") && strings.Contains(tn.Name, "layers") {
			v, _ := tn.Float32()
			v = append([]float32(nil), v...)
			for _, j := range []int{3, 17, 40, 41, 60} {
				v[j] *= 20
			}
			m.Tensors[i] = model.NewF32(tn.Name, tn.Shape, v)
		}
	}
	return m
}

// TestAWQBeatsRTN quantizes a model with outlier input channels: AWQ's logits
// must be closer to the float model's than RTN's, and the report must name
// the exponents, with a layer output error no larger than RTN's.
func TestAWQBeatsRTN(t *testing.T) {
	m := outlierModel(t)
	calibSeqs := randomSeqs(4, 48, m.Config.VocabSize, 11)
	evalSeqs := randomSeqs(3, 48, m.Config.VocabSize, 12)
	ref := logits(t, m, evalSeqs)
	mse := func(q *model.Model) float64 {
		got := logits(t, q, evalSeqs)
		var s float64
		for i := range ref {
			d := float64(got[i] - ref[i])
			s += d * d
		}
		return s / float64(len(ref))
	}
	for _, o := range []Options{{Scheme: Q4_0}, {Scheme: Q4_1}, {Scheme: Int4, Group: 32}} {
		rtn, _, err := Quantize(m, o)
		if err != nil {
			t.Fatal(err)
		}
		o.Method, o.Calibration = AWQ, calibSeqs
		awq, rep, err := Quantize(m, o)
		if err != nil {
			t.Fatal(err)
		}
		er, ea := mse(rtn), mse(awq)
		t.Logf("%s: logit MSE RTN %.3g, AWQ %.3g", o.Scheme, er, ea)
		if !(ea < 0.9*er) {
			t.Errorf("%s: AWQ's logit MSE %.3g is not 10%% below RTN's %.3g", o.Scheme, ea, er)
		}
		if len(rep.AWQ) != 4*m.Config.NumLayers {
			t.Fatalf("%s: %d AWQ groups in the report, want %d", o.Scheme, len(rep.AWQ), 4*m.Config.NumLayers)
		}
		scaled := 0
		for _, g := range rep.AWQ {
			if g.Loss > g.RTNLoss || g.Alpha < 0 || g.Alpha >= 1 {
				t.Errorf("%s: %+v", o.Scheme, g)
			}
			if g.Alpha > 0 {
				scaled++
			}
		}
		if scaled == 0 {
			t.Errorf("%s: no group was scaled", o.Scheme)
		}
	}
}

// TestQuantizeAWQ checks the method's bookkeeping on a model with grouped
// query heads (o is not scaled): the bytes do not depend on the thread count,
// the embedding and head are RTN's, the norms carry the scales in F32, and
// awq+gptq runs too.
func TestQuantizeAWQ(t *testing.T) {
	m := synth(t, 128, false)
	seqs := randomSeqs(3, 40, m.Config.VocabSize, 2)
	rtn, _, err := Quantize(m, Options{Scheme: Q4_0})
	if err != nil {
		t.Fatal(err)
	}
	for _, method := range []Method{AWQ, AWQGPTQ} {
		var first *model.Model
		for _, threads := range []int{1, 3} {
			q, rep, err := Quantize(m, Options{Scheme: Q4_0, Method: method, Calibration: seqs, Threads: threads})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Method != method || rep.CalibrationTokens != 120 || len(rep.AWQ) != 3*m.Config.NumLayers {
				t.Errorf("%s: report: method %s, %d tokens, %d groups", method, rep.Method, rep.CalibrationTokens, len(rep.AWQ))
			}
			if (rep.BlockScales != "") != (method == AWQGPTQ) {
				t.Errorf("%s: block scales %q", method, rep.BlockScales)
			}
			for _, g := range rep.AWQ {
				if g.Group == "o" {
					t.Errorf("%s: o scaled under grouped query heads", method)
				}
			}
			for i, qt := range q.Tensors {
				rt := rtn.Tensors[i]
				// The embedding is always RTN's; the untied head is too under
				// AWQ, and GPTQ's under AWQ+GPTQ.
				if same := bytes.Equal(qt.Data, rt.Data); qt.Name == model.TokenEmbedding && !same ||
					qt.Name == model.OutputHead && same != (method == AWQ) {
					t.Errorf("%s: %s: same bytes as RTN's: %v", method, qt.Name, same)
				}
				if strings.HasSuffix(qt.Name, "layernorm.weight") && qt.DType != model.F32 {
					t.Errorf("%s: %s is %s", method, qt.Name, qt.DType)
				}
				if first != nil && !bytes.Equal(qt.Data, first.Tensors[i].Data) {
					t.Errorf("%s: %s depends on the thread count", method, qt.Name)
				}
			}
			first = q
		}
	}
	if _, _, err := Quantize(m, Options{Scheme: Q4_0, Method: AWQ}); err == nil || !strings.Contains(err.Error(), "awq needs calibration") {
		t.Errorf("no calibration: %v", err)
	}
	for _, s := range []string{"awq", "AWQ+GPTQ"} {
		if _, err := ParseMethod(s); err != nil {
			t.Error(err)
		}
	}
}

// TestAWQScales checks the grid's scales: 1 at alpha 0, normalised so that
// the largest times the smallest is 1, and floored for dead inputs.
func TestAWQScales(t *testing.T) {
	mean := []float64{0.5, 2, 8, 0}
	for _, s := range awqScales(mean, 0) {
		if s != 1 {
			t.Fatalf("alpha 0: scale %g, want 1", s)
		}
	}
	s := awqScales(mean, 0.5)
	if lo, hi := s[3], s[2]; math.Abs(lo*hi-1) > 1e-12 || math.Abs(s[1]/s[0]-2) > 1e-12 {
		t.Errorf("alpha 0.5: %v", s)
	}
}
