package prune

import (
	"bytes"
	"cmp"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/inference"
	"github.com/shrinkml/shrink/internal/calib"
	"github.com/shrinkml/shrink/model"
)

func testConfig(qkvBias bool) model.Config {
	return model.Config{Arch: "llama", HiddenSize: 32, IntermediateSize: 48, NumLayers: 2, NumHeads: 4, NumKVHeads: 2,
		HeadDim: 8, VocabSize: 40, ContextLength: 64, RMSNormEps: 1e-5, RopeTheta: 10000, QKVBias: qkvBias}
}

// randomModel fills every tensor cfg needs with seeded values of a sensible scale.
func randomModel(cfg model.Config, seed uint64) *model.Model {
	rng := rand.New(rand.NewPCG(seed, 3))
	m := &model.Model{Config: cfg, Source: "random"}
	for _, e := range cfg.Expected() {
		n := 1
		for _, d := range e.Shape {
			n *= d
		}
		vals := make([]float32, n)
		scale := 1 / math.Sqrt(float64(e.Shape[len(e.Shape)-1]))
		for i := range vals {
			if len(e.Shape) == 1 && !strings.HasSuffix(e.Name, "bias") {
				vals[i] = float32(1 + 0.2*(rng.Float64()-0.5))
			} else {
				vals[i] = float32(rng.NormFloat64() * scale)
			}
		}
		m.Tensors = append(m.Tensors, model.NewF32(e.Name, e.Shape, vals))
	}
	return m
}

func randomSeqs(n, length, vocab int, seed uint64) [][]int {
	rng := rand.New(rand.NewPCG(seed, 5))
	out := make([][]int, n)
	for i := range out {
		for range length {
			out[i] = append(out[i], rng.IntN(vocab))
		}
	}
	return out
}

func values(t *testing.T, m *model.Model, name string) []float32 {
	t.Helper()
	v, err := m.Tensor(name).Float32()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMagnitudeKeepsLargest checks that magnitude pruning keeps exactly the
// largest |w|, with ties broken toward keeping the earlier weight, per tensor
// and over several tensors at once.
func TestMagnitudeKeepsLargest(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	random := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	ties := []float32{1, -1, 0.5, 1, -0.5, 0.5, 2, -1, 0, 0, 1, -2}
	for _, tc := range []struct {
		name     string
		tensors  [][]float32
		sparsity float64
	}{
		{"ties", [][]float32{ties}, 0.5},
		{"ties 1/3", [][]float32{ties}, 1.0 / 3},
		{"ties global", [][]float32{ties, slices.Clone(ties)}, 0.6},
		{"random", [][]float32{random(1000)}, 0.7},
		{"random global", [][]float32{random(300), random(77), random(1)}, 0.45},
		{"none", [][]float32{random(10)}, 0},
		{"almost all", [][]float32{random(10)}, 0.99},
	} {
		t.Run(tc.name, func(t *testing.T) {
			type w struct {
				src, i int
				abs    float32
			}
			var all []w
			for s, v := range tc.tensors {
				for i, x := range v {
					all = append(all, w{s, i, float32(math.Abs(float64(x)))})
				}
			}
			// Brute force: largest first, the earlier (tensor, index) first among equals.
			slices.SortStableFunc(all, func(a, b w) int { return cmp.Compare(b.abs, a.abs) })
			keep := len(all) - pruneCount(len(all), tc.sparsity)
			want := map[[2]int]bool{}
			for _, x := range all[:keep] {
				want[[2]int{x.src, x.i}] = true
			}
			got := make([][]float32, len(tc.tensors))
			for s := range got {
				got[s] = slices.Clone(tc.tensors[s])
			}
			magnitude(got, tc.sparsity)
			for s, v := range got {
				for i, x := range v {
					orig := tc.tensors[s][i]
					if want[[2]int{s, i}] && x != orig || !want[[2]int{s, i}] && x != 0 {
						t.Fatalf("tensor %d weight %d (%v): got %v, kept=%v", s, i, orig, x, want[[2]int{s, i}])
					}
				}
			}
		})
	}
}

// TestPatternHolds prunes every matrix of a model N:M with each method; every
// group of M weights along a row must keep at most N (magnitude and Wanda
// exactly N, the weights being nonzero).
func TestPatternHolds(t *testing.T) {
	cfg := testConfig(false)
	m := randomModel(cfg, 2)
	for _, method := range []Method{Magnitude, Wanda, SparseGPT} {
		for _, p := range []Pattern{{2, 4}, {4, 8}, {1, 4}, {3, 4}} {
			out, rep, err := Prune(m, Options{Method: method, Pattern: p, Calibration: randomSeqs(4, 16, cfg.VocabSize, 1), Threads: 2})
			if err != nil {
				t.Fatalf("%s %s: %v", method, p, err)
			}
			if want := 1 - float64(p.N)/float64(p.M); math.Abs(rep.ReachedSparsity-want) > 1e-9 && method != SparseGPT {
				t.Errorf("%s %s: sparsity %g, want %g", method, p, rep.ReachedSparsity, want)
			}
			for _, mr := range rep.Matrices {
				v := values(t, out, mr.Name)
				cols := mr.Shape[1]
				for g := 0; g < len(v); g += p.M {
					nz := 0
					for _, x := range v[g : g+p.M] {
						if x != 0 {
							nz++
						}
					}
					if nz > p.N || method != SparseGPT && nz != p.N {
						t.Fatalf("%s %s %s: row %d, group at column %d keeps %d", method, p, mr.Name, g/cols, g%cols, nz)
					}
				}
			}
		}
	}
}

// TestWandaMatchesBruteForce scores a toy layer by |W_ij|·||X_j||₂ computed
// straight from the inputs and keeps each row's best half.
func TestWandaMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	const rows, cols, n = 5, 12, 40
	x := make([]float32, n*cols)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * float64(1+i%cols)) // columns of different scales
	}
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	h := calib.NewHessian(cols, 1)
	h.Add(x, n)
	for _, tc := range []struct {
		sparsity float64
		p        Pattern
	}{{0.5, Pattern{}}, {0.25, Pattern{}}, {0, Pattern{2, 4}}, {0, Pattern{1, 3}}} {
		got := slices.Clone(w)
		wanda(got, rows, cols, h.ColumnNorms(), tc.sparsity, tc.p, 2)
		for r := range rows {
			score := make([]float64, cols)
			for j := range cols {
				var s float64
				for i := range n {
					s += float64(x[i*cols+j]) * float64(x[i*cols+j])
				}
				score[j] = math.Abs(float64(w[r*cols+j])) * math.Sqrt(s)
			}
			groups := [][2]int{{0, cols}}
			drop := pruneCount(cols, tc.sparsity)
			if !tc.p.IsZero() {
				groups = nil
				for g := 0; g < cols; g += tc.p.M {
					groups = append(groups, [2]int{g, g + tc.p.M})
				}
				drop = tc.p.M - tc.p.N
			}
			for _, g := range groups {
				idx := []int{}
				for j := g[0]; j < g[1]; j++ {
					idx = append(idx, j)
				}
				slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(score[b], score[a]) })
				for k, j := range idx {
					want := w[r*cols+j]
					if k >= len(idx)-drop {
						want = 0
					}
					if got[r*cols+j] != want {
						t.Fatalf("sparsity %g pattern %v: row %d column %d is %v, want %v", tc.sparsity, tc.p, r, j, got[r*cols+j], want)
					}
				}
			}
		}
	}
}

// outputError is ||WX - ŴX|| / ||WX|| computed from the inputs themselves.
func outputError(w, pruned, x []float32, rows, cols, n int) float64 {
	var num, den float64
	for i := range n {
		for r := range rows {
			var a, b float64
			for j := range cols {
				a += float64(w[r*cols+j]) * float64(x[i*cols+j])
				b += float64(pruned[r*cols+j]) * float64(x[i*cols+j])
			}
			num += (a - b) * (a - b)
			den += a * a
		}
	}
	return math.Sqrt(num / den)
}

// TestSparseGPTBeatsWandaAndMagnitude prunes a random layer whose inputs have
// correlated columns of different scales; SparseGPT's updates must leave a
// smaller output error than Wanda and magnitude at 50% and at 2:4, and
// relOutputError must agree with the error computed from the inputs.
func TestSparseGPTBeatsWandaAndMagnitude(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	const rows, cols, n, k = 48, 96, 400, 24
	// X = Z·A: n samples of k latent factors mixed into cols inputs, plus noise.
	z := make([]float64, n*k)
	for i := range z {
		z[i] = rng.NormFloat64()
	}
	a := make([]float64, k*cols)
	for i := range a {
		a[i] = rng.NormFloat64() * float64(1+(i%cols)%5)
	}
	x := make([]float32, n*cols)
	for i := range n {
		for j := range cols {
			s := 0.1 * rng.NormFloat64()
			for f := range k {
				s += z[i*k+f] * a[f*cols+j]
			}
			x[i*cols+j] = float32(s)
		}
	}
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	hess := calib.NewHessian(cols, 2)
	hess.Add(x, n)
	h := hess.Sym()
	for _, tc := range []struct {
		name     string
		sparsity float64
		p        Pattern
	}{{"50%", 0.5, Pattern{}}, {"2:4", 0, Pattern{2, 4}}} {
		errs := map[Method]float64{}
		for _, method := range []Method{Magnitude, Wanda, SparseGPT} {
			got := slices.Clone(w)
			switch method {
			case Magnitude:
				if tc.p.IsZero() {
					magnitude([][]float32{got}, tc.sparsity)
				} else {
					magnitudeRows(got, rows, cols, tc.p)
				}
			case Wanda:
				wanda(got, rows, cols, hess.ColumnNorms(), tc.sparsity, tc.p, 2)
			case SparseGPT:
				// A block narrower than the matrix exercises the lazy updates.
				if _, err := sparseGPT(got, rows, cols, h, tc.sparsity, tc.p, 0, 32, 3); err != nil {
					t.Fatal(err)
				}
			}
			errs[method] = outputError(w, got, x, rows, cols, n)
			if e := relOutputError(w, got, rows, cols, h, 2); math.Abs(e-errs[method]) > 1e-4*errs[method] {
				t.Errorf("%s %s: relOutputError %g, from the inputs %g", tc.name, method, e, errs[method])
			}
		}
		t.Logf("%s: %v", tc.name, errs)
		if !(errs[SparseGPT] < errs[Wanda] && errs[SparseGPT] < errs[Magnitude]) {
			t.Errorf("%s: output errors %v: SparseGPT should be lowest", tc.name, errs)
		}
	}
}

// logits runs a model over tokens and returns every position's logits.
func logits(t *testing.T, m *model.Model, tokens []int) []float32 {
	t.Helper()
	l, err := inference.NewLlama(m, inference.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out := make([]float32, len(tokens)*m.Config.VocabSize)
	if err := l.Forward(l.NewState(0), tokens, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStructuredRemovesDeadUnits zeroes the down columns of some FFN neurons
// (or the output columns of some KV groups); structured pruning must remove
// exactly those, and the smaller model must compute the same logits.
func TestStructuredRemovesDeadUnits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		s      Structure
		method Method
		bias   bool
	}{
		{"ffn magnitude", FFN, Magnitude, false},
		{"ffn wanda", FFN, Wanda, false},
		{"ffn sparsegpt", FFN, SparseGPT, false},
		{"heads magnitude", Heads, Magnitude, true},
		{"heads wanda", Heads, Wanda, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(tc.bias)
			m := randomModel(cfg, 6)
			// Units 1, 4, 5, ... (every third from 1) of every layer are dead.
			units := cfg.IntermediateSize
			if tc.s == Heads {
				units = cfg.NumKVHeads
			}
			dead := map[int]bool{}
			for u := 1; u < units; u += 3 {
				dead[u] = true
			}
			for li := range cfg.NumLayers {
				name, span := model.LayerTensor(li, model.FFNDown), func(u int) (int, int) { return u, u + 1 }
				if tc.s == Heads {
					per := cfg.HeadDim * cfg.NumHeads / cfg.NumKVHeads
					name, span = model.LayerTensor(li, model.AttnO), func(u int) (int, int) { return u * per, (u + 1) * per }
				}
				tt := m.Tensor(name)
				v := slices.Clone(values(t, m, name))
				for u := range dead {
					c0, c1 := span(u)
					for r := range tt.Rows() {
						clear(v[r*tt.Cols()+c0 : r*tt.Cols()+c1])
					}
				}
				*tt = *model.NewF32(name, tt.Shape, v)
			}
			tokens := randomSeqs(1, 20, cfg.VocabSize, 9)[0]
			opts := Options{Method: tc.method, Structured: tc.s, Sparsity: float64(len(dead)) / float64(units), Threads: 2}
			if tc.method != Magnitude {
				opts.Calibration = randomSeqs(3, 24, cfg.VocabSize, 2)
			}
			out, rep, err := Prune(m, opts)
			if err != nil {
				t.Fatal(err)
			}
			if tc.s == FFN && out.Config.IntermediateSize != units-len(dead) ||
				tc.s == Heads && (out.Config.NumKVHeads != units-len(dead) || out.Config.NumHeads != 2*out.Config.NumKVHeads) {
				t.Fatalf("config after: %+v", out.Config)
			}
			if rep.ParametersAfter >= rep.ParametersBefore {
				t.Errorf("parameters %d -> %d", rep.ParametersBefore, rep.ParametersAfter)
			}
			want, got := logits(t, m, tokens), logits(t, out, tokens)
			for i := range want {
				if math.Abs(float64(got[i]-want[i])) > 1e-4*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("logit %d: %v after pruning, %v before", i, got[i], want[i])
				}
			}
		})
	}
}

// TestStructuredSparseGPTRefits prunes live FFN neurons: SparseGPT's least
// squares refit of down must leave a smaller output error than Wanda's choice
// alone.
func TestStructuredSparseGPTRefits(t *testing.T) {
	cfg := testConfig(false)
	m := randomModel(cfg, 8)
	seqs := randomSeqs(4, 32, cfg.VocabSize, 3)
	errOf := func(method Method) float64 {
		_, rep, err := Prune(m, Options{Method: method, Structured: FFN, Sparsity: 0.25, Calibration: seqs, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, mr := range rep.Matrices {
			if mr.Name == model.LayerTensor(0, model.FFNDown) {
				return *mr.RelOutputError
			}
		}
		t.Fatal("no report for layer 0's down projection")
		return 0
	}
	if w, s := errOf(Wanda), errOf(SparseGPT); !(s < w) {
		t.Errorf("layer 0 down error: sparsegpt %g, wanda %g", s, w)
	}
}

// TestDeterministic prunes twice with different thread counts: the bytes must match.
func TestDeterministic(t *testing.T) {
	cfg := testConfig(true)
	m := randomModel(cfg, 10)
	seqs := randomSeqs(3, 20, cfg.VocabSize, 4)
	for _, o := range []Options{
		{Method: SparseGPT, Sparsity: 0.6, Calibration: seqs},
		{Method: Wanda, Pattern: Pattern{2, 4}, Calibration: seqs},
		{Method: Magnitude, Sparsity: 0.3, Scope: Global, Include: regexp.MustCompile("embed")},
	} {
		var first []*model.Tensor
		for _, threads := range []int{1, 3} {
			o.Threads = threads
			out, _, err := Prune(m, o)
			if err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first = out.Tensors
				continue
			}
			for i, tt := range out.Tensors {
				if !bytes.Equal(tt.Data, first[i].Data) {
					t.Errorf("%s: tensor %s differs between 1 and 3 threads", o.Method, tt.Name)
				}
			}
		}
	}
}

// TestSelection checks the default selection and --include / --exclude.
func TestSelection(t *testing.T) {
	cfg := testConfig(false)
	m := randomModel(cfg, 11)
	for _, tc := range []struct {
		include, exclude string
		want             int
	}{
		{"", "", 14},
		{"embed_tokens", "", 15},
		{"", `layers\.0\.`, 7},
		{"embed|lm_head", `mlp`, 10},
	} {
		o := Options{Method: Magnitude, Sparsity: 0.5}
		if tc.include != "" {
			o.Include = regexp.MustCompile(tc.include)
		}
		if tc.exclude != "" {
			o.Exclude = regexp.MustCompile(tc.exclude)
		}
		out, rep, err := Prune(m, o)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Matrices) != tc.want {
			t.Errorf("include %q exclude %q: %d tensors pruned, want %d", tc.include, tc.exclude, len(rep.Matrices), tc.want)
		}
		if tc.include == "" && !bytes.Equal(out.Tensor(model.TokenEmbedding).Data, m.Tensor(model.TokenEmbedding).Data) {
			t.Errorf("the embedding changed without --include")
		}
	}
}

func TestOptionErrors(t *testing.T) {
	cfg := testConfig(false)
	m := randomModel(cfg, 12)
	seqs := randomSeqs(1, 8, cfg.VocabSize, 1)
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Sparsity: 1}, "want a fraction in [0, 1)"},
		{Options{Sparsity: -0.1}, "want a fraction in [0, 1)"},
		{Options{Sparsity: math.NaN()}, "want a fraction in [0, 1)"},
		{Options{Pattern: Pattern{3, 2}}, "want 1 <= N <= M"},
		{Options{Pattern: Pattern{0, 4}}, "want 1 <= N <= M"},
		{Options{Pattern: Pattern{2, 5}}, "do not split into groups of 5"},
		{Options{Pattern: Pattern{2, 4}, Sparsity: 0.5}, "both given"},
		{Options{Method: Wanda, Sparsity: 0.5}, "needs calibration data"},
		{Options{Method: "obs", Sparsity: 0.5}, "unknown method"},
		{Options{Method: Wanda, Sparsity: 0.5, Scope: Global, Calibration: seqs}, "scope global"},
		{Options{Structured: FFN, Sparsity: 0.5, Exclude: regexp.MustCompile("x")}, "do not apply"},
		{Options{Structured: FFN, Pattern: Pattern{2, 4}}, "does not combine"},
		{Options{Sparsity: 0.5, Exclude: regexp.MustCompile(".")}, "no tensor is selected"},
	} {
		if _, _, err := Prune(m, tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.o, err, tc.want)
		}
	}
	if _, err := ParsePattern("2-4"); err == nil {
		t.Errorf("ParsePattern(2-4) succeeded")
	}
}
