package inference

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"

	"github.com/shrinkml/shrink/model"
)

func llamaConfig(dim, heads, kvHeads, headDim, ffn, vocab, layers int) model.Config {
	return model.Config{
		Arch: "llama", HiddenSize: dim, IntermediateSize: ffn, NumLayers: layers,
		NumHeads: heads, NumKVHeads: kvHeads, HeadDim: headDim, VocabSize: vocab,
		ContextLength: 512, RMSNormEps: 1e-5, RopeTheta: 10000,
	}
}

func with(c model.Config, f func(*model.Config)) model.Config { f(&c); return c }

// testConfigs cover the llama variants the engine must handle.
var testConfigs = []struct {
	name string
	cfg  model.Config
}{
	{"mha pairs tied", with(llamaConfig(32, 4, 4, 8, 48, 40, 2), func(c *model.Config) { c.TiedEmbeddings = true })},
	{"gqa half untied", with(llamaConfig(32, 4, 2, 8, 48, 40, 2), func(c *model.Config) { c.RopeLayout = model.RopeHalf })},
	{"mqa pairs bias", with(llamaConfig(32, 4, 1, 8, 48, 40, 2), func(c *model.Config) { c.QKVBias = true })},
	{"mqa half bias tied", with(llamaConfig(32, 4, 1, 8, 48, 40, 2), func(c *model.Config) {
		c.QKVBias, c.RopeLayout, c.TiedEmbeddings = true, model.RopeHalf, true
	})},
	{"odd sizes half bias", with(llamaConfig(24, 3, 3, 8, 37, 50, 2), func(c *model.Config) {
		c.QKVBias, c.RopeLayout = true, model.RopeHalf
	})},
	{"odd sizes gqa pairs", with(llamaConfig(24, 6, 2, 4, 37, 50, 3), nil2)},
	{"head dim not dim/heads", with(llamaConfig(24, 4, 2, 10, 40, 50, 2), func(c *model.Config) {
		c.RopeLayout, c.RopeTheta, c.RMSNormEps = model.RopeHalf, 1e6, 1e-6
	})},
	{"one layer one head", with(llamaConfig(16, 1, 1, 16, 20, 30, 1), nil2)},
}

func nil2(*model.Config) {}

func randomTokens(n, vocab int, seed uint64) []int {
	rng := rand.New(rand.NewPCG(seed, 3))
	out := make([]int, n)
	for i := range out {
		out[i] = rng.IntN(vocab)
	}
	return out
}

func newTestLlama(t testing.TB, m *model.Model, threads int) *Llama {
	t.Helper()
	return newTestLlamaOpts(t, m, Options{Threads: threads})
}

func newTestLlamaOpts(t testing.TB, m *model.Model, opts Options) *Llama {
	t.Helper()
	l, err := NewLlama(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestLlamaMatchesReference checks prefill, token-by-token decode, and
// prefill in segments on top of a filled cache against the float64
// reference, with either KV cache (the reference rounding keys and values
// to half for KVF16).
func TestLlamaMatchesReference(t *testing.T) {
	for i, tc := range testConfigs {
		for _, kv := range []KVCache{KVF32, KVF16} {
			t.Run(tc.name+" "+kv.String(), func(t *testing.T) {
				testMatchesReference(t, tc.cfg, uint64(i), kv)
			})
		}
	}
}

func testMatchesReference(t *testing.T, cfg model.Config, seed uint64, kv KVCache) {
	m := randomModel(t, cfg, seed)
	tokens := randomTokens(23, cfg.VocabSize, seed)
	ref := newRefModel(t, m)
	ref.kvHalf = kv == KVF16
	want := ref.forward(tokens)
	V := cfg.VocabSize
	tol := 1e-4
	if kv == KVF16 {
		// A key or value within float32 rounding of a midpoint between
		// halves may round the other way than the reference's; one such
		// moves a logit by about 1e-4 of the largest. TestKVF16 checks
		// the rounding itself.
		tol = 3e-4
	}
	for _, threads := range []int{1, 2} {
		l := newTestLlamaOpts(t, m, Options{Threads: threads, KVCache: kv})
		l.minWork = 0

		// Prefill, logits for every position.
		s := l.NewState(0)
		all := make([]float32, len(tokens)*V)
		if err := l.Forward(s, tokens, all); err != nil {
			t.Fatal(err)
		}
		for p := range tokens {
			compareLogits(t, fmt.Sprintf("threads %d prefill pos %d", threads, p), all[p*V:(p+1)*V], want[p], tol)
		}

		// Decode, one token at a time.
		s.Reset()
		one := make([]float32, V)
		for p, tok := range tokens {
			if err := l.Forward(s, []int{tok}, one); err != nil {
				t.Fatal(err)
			}
			compareLogits(t, fmt.Sprintf("threads %d decode pos %d", threads, p), one, want[p], tol)
		}

		// Segments of several sizes, each appended to the cache.
		s.Reset()
		p := 0
		for _, n := range []int{5, 1, 8, 1, 2, 6} {
			out := make([]float32, n*V)
			if n == 1 {
				out = out[:V]
			}
			if err := l.Forward(s, tokens[p:p+n], out); err != nil {
				t.Fatal(err)
			}
			for j := 0; j < n; j++ {
				compareLogits(t, fmt.Sprintf("threads %d segment pos %d", threads, p+j), out[j*V:(j+1)*V], want[p+j], tol)
			}
			p += n
		}
		if s.Pos() != len(tokens) {
			t.Fatalf("Pos() = %d, want %d", s.Pos(), len(tokens))
		}

		// Last-position logits only.
		s.Reset()
		if err := l.Forward(s, tokens, one); err != nil {
			t.Fatal(err)
		}
		compareLogits(t, fmt.Sprintf("threads %d last only", threads), one, want[len(tokens)-1], tol)
	}
}

// TestKVF16 wants the engine with a half-precision KV cache four times
// closer (RMS over every logit) to the reference that rounds keys and values
// to half than that reference is to the exact one, and the float32 cache the
// other way round: each engine rounds its cache as it says. The f16 engine's
// distance is mostly keys and values that lie within float32 rounding of a
// half-way point and so round the other way than in the float64 reference;
// how many do depends on the kernels' summation order: over these configs
// the ratio ran from 8.3 (AVX2) and 11.7 (AVX-512, pure Go) to over 1,000,
// so the factor leaves room for that, and a cache rounded the wrong way (a
// ratio near 1) still fails.
func TestKVF16(t *testing.T) {
	rms := func(a [][]float64, b []float32) float64 {
		var s float64
		for p := range a {
			for j, v := range a[p] {
				d := v - float64(b[p*len(a[p])+j])
				s += d * d
			}
		}
		return math.Sqrt(s / float64(len(b)))
	}
	for i, tc := range testConfigs {
		m := randomModel(t, tc.cfg, uint64(i))
		tokens := randomTokens(23, tc.cfg.VocabSize, uint64(i))
		exact := newRefModel(t, m)
		half := newRefModel(t, m)
		half.kvHalf = true
		wantExact, wantHalf := exact.forward(tokens), half.forward(tokens)
		var gap float64
		for p := range wantExact {
			for j := range wantExact[p] {
				d := wantExact[p][j] - wantHalf[p][j]
				gap += d * d
			}
		}
		gap = math.Sqrt(gap / float64(len(tokens)*tc.cfg.VocabSize))
		for _, kv := range []KVCache{KVF32, KVF16} {
			l := newTestLlamaOpts(t, m, Options{Threads: 2, KVCache: kv})
			if l.KVCache() != kv {
				t.Fatalf("KVCache() = %v, want %v", l.KVCache(), kv)
			}
			if got, want := l.KVBytesPerPosition(), int64(tc.cfg.NumLayers*2*tc.cfg.KVDim()*(4-2*int(kv))); got != want {
				t.Errorf("%s %v: KVBytesPerPosition() = %d, want %d", tc.name, kv, got, want)
			}
			s := l.NewState(0)
			got := make([]float32, len(tokens)*tc.cfg.VocabSize)
			if err := l.Forward(s, tokens, got); err != nil {
				t.Fatal(err)
			}
			near, far := rms(wantExact, got), rms(wantHalf, got)
			if kv == KVF16 {
				near, far = far, near
			}
			if !(near < gap/4) {
				t.Errorf("%s %v: RMS %.3g from its reference, %.3g from the other; the references differ by %.3g", tc.name, kv, near, far, gap)
			}
		}
	}
}

// TestLlamaLongPrefill runs more tokens than one prefill chunk holds.
func TestLlamaLongPrefill(t *testing.T) {
	cfg := testConfigs[1].cfg
	m := randomModel(t, cfg, 11)
	tokens := randomTokens(prefillChunk*2+19, cfg.VocabSize, 5)
	want := newRefModel(t, m).forward(tokens)
	l := newTestLlama(t, m, 2)
	s := l.NewState(0)
	V := cfg.VocabSize
	all := make([]float32, len(tokens)*V)
	if err := l.Forward(s, tokens, all); err != nil {
		t.Fatal(err)
	}
	for p := range tokens {
		compareLogits(t, fmt.Sprintf("pos %d", p), all[p*V:(p+1)*V], want[p], 1e-4)
	}
}

// TestPrefillMatchesDecode compares the batched and the one-token paths on a
// model large enough that both use their blocked kernels and several threads.
func TestPrefillMatchesDecode(t *testing.T) {
	cfg := with(llamaConfig(128, 8, 2, 16, 344, 300, 2), func(c *model.Config) { c.RopeLayout = model.RopeHalf })
	m := randomModel(t, cfg, 3)
	tokens := randomTokens(40, cfg.VocabSize, 8)
	V := cfg.VocabSize
	for _, threads := range []int{1, 2} {
		l := newTestLlama(t, m, threads)
		s := l.NewState(64)
		all := make([]float32, len(tokens)*V)
		if err := l.Forward(s, tokens, all); err != nil {
			t.Fatal(err)
		}
		s.Reset()
		one := make([]float32, V)
		for p, tok := range tokens {
			if err := l.Forward(s, []int{tok}, one); err != nil {
				t.Fatal(err)
			}
			want := make([]float64, V)
			for i := range want {
				want[i] = float64(all[p*V+i])
			}
			compareLogits(t, fmt.Sprintf("threads %d pos %d", threads, p), one, want, 1e-5)
		}
	}
}

// TestThreadsBitIdentical requires the same bits from every thread count.
func TestThreadsBitIdentical(t *testing.T) {
	cfg := with(llamaConfig(192, 6, 2, 32, 500, 1000, 2), func(c *model.Config) { c.QKVBias = true })
	m := randomModel(t, cfg, 4)
	tokens := randomTokens(30, cfg.VocabSize, 9)
	V := cfg.VocabSize
	run := func(threads int) (prefill, decode []float32) {
		l := newTestLlama(t, m, threads)
		l.minWork = 0
		s := l.NewState(64)
		prefill = make([]float32, len(tokens)*V)
		if err := l.Forward(s, tokens, prefill); err != nil {
			t.Fatal(err)
		}
		s.Reset()
		one := make([]float32, V)
		for _, tok := range tokens {
			if err := l.Forward(s, []int{tok}, one); err != nil {
				t.Fatal(err)
			}
			decode = append(decode, one...)
		}
		return prefill, decode
	}
	p1, d1 := run(1)
	for _, threads := range []int{2, 3, 5} {
		p, d := run(threads)
		for i := range p1 {
			if math.Float32bits(p[i]) != math.Float32bits(p1[i]) {
				t.Fatalf("threads %d: prefill logit %d is %g, with 1 thread %g", threads, i, p[i], p1[i])
			}
		}
		for i := range d1 {
			if math.Float32bits(d[i]) != math.Float32bits(d1[i]) {
				t.Fatalf("threads %d: decode logit %d is %g, with 1 thread %g", threads, i, d[i], d1[i])
			}
		}
	}
}

// TestRopeLayoutsAgree runs one model in both layouts: permuting q/k rows
// with model.WithRopeLayout must not change a single logit beyond rounding.
func TestRopeLayoutsAgree(t *testing.T) {
	m := randomModel(t, testConfigs[4].cfg, 6) // half layout with biases
	p, err := m.WithRopeLayout(model.RopePairs)
	if err != nil {
		t.Fatal(err)
	}
	tokens := randomTokens(12, m.Config.VocabSize, 2)
	V := m.Config.VocabSize
	logits := func(m *model.Model) []float32 {
		l := newTestLlama(t, m, 1)
		out := make([]float32, len(tokens)*V)
		if err := l.Forward(l.NewState(0), tokens, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, b := logits(m), logits(p)
	want := make([]float64, len(b))
	for i := range b {
		want[i] = float64(b[i])
	}
	compareLogits(t, "half vs pairs", a, want, 1e-5)
}

// TestDecodeAllocs requires the decode hot path not to allocate.
func TestDecodeAllocs(t *testing.T) {
	m := randomModel(t, with(llamaConfig(128, 4, 2, 32, 256, 200, 2), nil2), 5)
	for _, threads := range []int{1, 2} {
		l := newTestLlamaOpts(t, m, Options{Threads: threads, KVCache: KVCache(threads - 1)}) // f32 and f16 caches
		l.minWork = 0
		s := l.NewState(0)
		logits := make([]float32, m.Config.VocabSize)
		tok := []int{3}
		allocs := testing.AllocsPerRun(100, func() {
			if err := l.Forward(s, tok, logits); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("threads %d: decode allocates %v times per token", threads, allocs)
		}
		s.Reset()
		toks := randomTokens(20, m.Config.VocabSize, 1)
		all := make([]float32, len(toks)*m.Config.VocabSize)
		// Enough runs that a stray allocation by another goroutine (a
		// finished test's cleanup, the runtime) averages out below one.
		allocs = testing.AllocsPerRun(50, func() {
			s.Reset()
			if err := l.Forward(s, toks, all); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("threads %d: prefill allocates %v times", threads, allocs)
		}
	}
}

func TestForwardErrors(t *testing.T) {
	cfg := testConfigs[0].cfg
	m := randomModel(t, cfg, 1)
	l := newTestLlama(t, m, 1)
	other := newTestLlama(t, m, 1)
	V := cfg.VocabSize
	tests := []struct {
		name   string
		state  func() *State
		tokens []int
		logits int
		want   string
	}{
		{"no tokens", func() *State { return l.NewState(8) }, nil, V, "no tokens"},
		{"token too large", func() *State { return l.NewState(8) }, []int{1, V}, V, "outside the vocabulary"},
		{"negative token", func() *State { return l.NewState(8) }, []int{-1}, V, "outside the vocabulary"},
		{"bad logits length", func() *State { return l.NewState(8) }, []int{1, 2}, V + 1, "logits for 2 tokens"},
		{"full", func() *State { return l.NewState(2) }, []int{1, 2, 3}, V, "do not fit"},
		{"foreign state", func() *State { return other.NewState(8) }, []int{1}, V, "another model"},
		{"nil state", func() *State { return nil }, []int{1}, V, "another model"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := l.Forward(tc.state(), tc.tokens, make([]float32, tc.logits))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestClosed(t *testing.T) {
	m := randomModel(t, testConfigs[0].cfg, 1)
	l, err := NewLlama(m, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	s := l.NewState(0)
	l.Close()
	l.Close() // twice is fine
	if err := l.Forward(s, []int{1}, nil); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Forward after Close: error %v", err)
	}
}

func TestNewLlamaErrors(t *testing.T) {
	good := testConfigs[0].cfg
	tests := []struct {
		name string
		edit func(m *model.Model)
		want string
	}{
		{"mlp arch", func(m *model.Model) { m.Config.Arch = "mlp" }, "not a llama-family decoder"},
		{"unsupported hf arch", func(m *model.Model) { m.Config.HFArchitecture = "GemmaForCausalLM" }, "not supported"},
		{"bad config", func(m *model.Model) { m.Config.NumKVHeads = 3 }, "not a multiple"},
		{"missing tensor", func(m *model.Model) { m.Tensors = m.Tensors[1:] }, "is missing"},
		{"wrong shape", func(m *model.Model) {
			t := m.Tensor(model.LayerTensor(0, model.AttnQ))
			t.Shape = []int{t.Shape[1], t.Shape[0] / 2, 2}
		}, "has shape"},
		{"integer dtype", func(m *model.Model) {
			t := m.Tensor(model.LayerTensor(0, model.AttnK))
			t.DType = model.I32
		}, "not supported"},
		{"short data", func(m *model.Model) {
			t := m.Tensor(model.LayerTensor(1, model.FFNDown))
			t.Data = t.Data[:len(t.Data)-4]
		}, "needs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := randomModel(t, good, 1)
			tc.edit(m)
			_, err := NewLlama(m, Options{Threads: 1})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := NewLlama(randomModel(t, good, 1), Options{KVCache: 7}); err == nil || !strings.Contains(err.Error(), "unknown KVCache(7)") {
		t.Errorf("an unknown KV cache type: %v", err)
	}
	for _, s := range []string{"f32", "f16", "q8_0", ""} {
		k, err := ParseKVCache(s)
		if ok := s == "f32" || s == "f16"; ok != (err == nil) || (ok && k.String() != s) {
			t.Errorf("ParseKVCache(%q) = %v, %v", s, k, err)
		}
	}
}

// TestConvertedDTypes runs F16, BF16 and Q8_0 copies of a model; each must
// match the reference run on the same weights decoded to float64 (for Q8_0,
// with the activations quantized as QuantWeights quantizes them).
func TestConvertedDTypes(t *testing.T) {
	cfg := with(llamaConfig(64, 4, 2, 16, 96, 64, 2), func(c *model.Config) { c.TiedEmbeddings = true })
	base := randomModel(t, cfg, 12)
	tokens := randomTokens(10, cfg.VocabSize, 12)
	for _, dt := range []model.DType{model.F16, model.BF16, model.Q8_0} {
		t.Run(dt.String(), func(t *testing.T) {
			m := *base
			m.Tensors = nil
			for _, tn := range base.Tensors {
				var c *model.Tensor
				var err error
				switch {
				case len(tn.Shape) == 1:
					c = tn
				case dt == model.Q8_0:
					c = quantizeQ8(t, tn)
				default:
					c, err = tn.Convert(dt)
				}
				if err != nil {
					t.Fatal(err)
				}
				m.Tensors = append(m.Tensors, c)
			}
			want := newQuantRefModel(t, &m).forward(tokens)
			l := newTestLlama(t, &m, 2)
			V := cfg.VocabSize
			all := make([]float32, len(tokens)*V)
			if err := l.Forward(l.NewState(0), tokens, all); err != nil {
				t.Fatal(err)
			}
			for p := range tokens {
				compareLogits(t, fmt.Sprintf("pos %d", p), all[p*V:(p+1)*V], want[p], 1e-4)
			}
		})
	}
}

// quantizeQ8 is a plain Q8_0 quantizer (scale = max|x|/127 as fp16, rounded
// values), enough to produce valid blocks for the load path.
func quantizeQ8(t testing.TB, tn *model.Tensor) *model.Tensor {
	v, err := tn.Float32()
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 0, len(v)/32*34)
	for b := 0; b < len(v); b += 32 {
		var amax float64
		for _, x := range v[b : b+32] {
			amax = math.Max(amax, math.Abs(float64(x)))
		}
		h := model.F32ToF16(float32(amax / 127))
		d := float64(model.F16ToF32(h))
		data = append(data, byte(h), byte(h>>8))
		for _, x := range v[b : b+32] {
			q := 0.0
			if d != 0 {
				q = math.Round(float64(x) / d)
			}
			data = append(data, byte(int8(q)))
		}
	}
	return &model.Tensor{Name: tn.Name, DType: model.Q8_0, Shape: tn.Shape, Data: data}
}

// TestZeroCopy: aligned F32 weights are used in place, not copied.
func TestZeroCopy(t *testing.T) {
	m := randomModel(t, testConfigs[0].cfg, 1)
	l := newTestLlama(t, m, 1)
	for name, w := range map[string]Weights{
		model.LayerTensor(0, model.AttnQ):   l.layers[0].wq,
		model.LayerTensor(1, model.FFNDown): l.layers[1].down,
		model.TokenEmbedding:                l.head, // tied
	} {
		f, ok := w.(*F32Weights)
		if !ok {
			t.Fatalf("%s: weights are %T, want *F32Weights", name, w)
		}
		if &f.data[0] != (*float32)(unsafe.Pointer(&m.Tensor(name).Data[0])) {
			t.Errorf("%s: weights were copied", name)
		}
	}
}
