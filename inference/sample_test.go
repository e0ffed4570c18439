package inference

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func newSampler(t testing.TB, o SamplerOptions) *Sampler {
	t.Helper()
	s, err := NewSampler(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func naiveArgmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

func randomLogits(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 3)
	}
	return x
}

// TestSamplerGreedy: temperature 0, top-k 1 and a tiny top-p all pick the argmax.
func TestSamplerGreedy(t *testing.T) {
	samplers := map[string]*Sampler{
		"temperature 0":   Greedy(),
		"top-k 1":         newSampler(t, SamplerOptions{Temperature: 1, TopK: 1, Seed: 1}),
		"top-p 1e-9":      newSampler(t, SamplerOptions{Temperature: 1, TopP: 1e-9, Seed: 2}),
		"top-p tiny, hot": newSampler(t, SamplerOptions{Temperature: 1.5, TopP: 1e-6, TopK: 50, Seed: 3}),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	cases := [][]float32{{1, 3, 3, 2}, {-5}, {0, 0, 0}, {-1, -2, -0.5}}
	for range 200 {
		cases = append(cases, randomLogits(rng, 1+rng.IntN(300)))
	}
	for name, s := range samplers {
		for _, x := range cases {
			if got, want := s.Sample(x), naiveArgmax(x); got != want {
				t.Fatalf("%s: Sample(%v) = %d, want %d", name, x, got, want)
			}
		}
	}
}

// TestSamplerSeed: equal seeds give equal streams, different seeds do not.
func TestSamplerSeed(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	logits := randomLogits(rng, 100)
	for _, o := range []SamplerOptions{{Temperature: 1}, {Temperature: 0.8, TopK: 20}, {Temperature: 1.2, TopP: 0.9}, {Temperature: 1, TopK: 40, TopP: 0.95}} {
		draw := func(seed uint64) []int {
			o.Seed = seed
			s := newSampler(t, o)
			out := make([]int, 500)
			for i := range out {
				out[i] = s.Sample(logits)
			}
			return out
		}
		a, b, c := draw(42), draw(42), draw(43)
		same := true
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%+v: draw %d differs between two samplers seeded alike", o, i)
			}
			same = same && a[i] == c[i]
		}
		if same {
			t.Errorf("%+v: seeds 42 and 43 gave the same 500 draws", o)
		}
	}
}

// chiSquare draws n samples and returns Pearson's statistic against want
// (probabilities; tokens with want 0 must never be drawn).
func chiSquare(t *testing.T, s *Sampler, logits []float32, want []float64, n int) float64 {
	t.Helper()
	counts := make([]int, len(logits))
	for range n {
		counts[s.Sample(logits)]++
	}
	var chi float64
	for i, p := range want {
		if p == 0 {
			if counts[i] != 0 {
				t.Fatalf("token %d has probability 0 but was drawn %d times", i, counts[i])
			}
			continue
		}
		e := p * float64(n)
		chi += (float64(counts[i]) - e) * (float64(counts[i]) - e) / e
	}
	return chi
}

func softmaxAt(logits []float32, temp float64, keep func(i int) bool) []float64 {
	p := make([]float64, len(logits))
	var sum float64
	for i, l := range logits {
		if keep(i) {
			p[i] = math.Exp(float64(l) / temp)
			sum += p[i]
		}
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

// TestSamplerDistribution checks sampled frequencies against the intended
// distribution with a chi-square test (fixed seeds, so never flaky).
// Critical values are for p = 0.001.
func TestSamplerDistribution(t *testing.T) {
	logits := []float32{1, 2, 0.5, -1, 3, 1.5}
	all := func(int) bool { return true }
	// Probabilities at temperature 1: sorted descending they are tokens 4, 1, 5, 0, 2, 3.
	p1 := softmaxAt(logits, 1, all)
	order := []int{4, 1, 5, 0, 2, 3}
	nucleus := func(p float64) func(int) bool {
		in := map[int]bool{}
		var cum float64
		for _, i := range order {
			in[i] = true
			if cum += p1[i]; cum > p {
				break
			}
		}
		return func(i int) bool { return in[i] }
	}
	tests := []struct {
		name string
		o    SamplerOptions
		want []float64
		crit float64 // chi-square critical value, df = kept tokens - 1
	}{
		{"temperature 1", SamplerOptions{Temperature: 1}, p1, 20.52},
		{"temperature 0.7", SamplerOptions{Temperature: 0.7}, softmaxAt(logits, 0.7, all), 20.52},
		{"temperature 2", SamplerOptions{Temperature: 2}, softmaxAt(logits, 2, all), 20.52},
		{"top-k 3", SamplerOptions{Temperature: 1, TopK: 3}, softmaxAt(logits, 1, func(i int) bool { return i == 4 || i == 1 || i == 5 }), 13.82},
		{"top-p 0.8", SamplerOptions{Temperature: 1, TopP: 0.8}, softmaxAt(logits, 1, nucleus(0.8)), 13.82},
		{"top-p 0.7", SamplerOptions{Temperature: 1, TopP: 0.7}, softmaxAt(logits, 1, nucleus(0.7)), 10.83},
		{"top-p 0.5", SamplerOptions{Temperature: 1, TopP: 0.5}, softmaxAt(logits, 1, nucleus(0.5)), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Seed = 7
			if chi := chiSquare(t, newSampler(t, tc.o), logits, tc.want, 200000); chi > tc.crit {
				t.Errorf("chi-square %.2f > %.2f: frequencies do not follow %v", chi, tc.crit, tc.want)
			}
		})
	}
	// Probabilities are 0.547, 0.201, 0.122, ... for tokens 4, 1, 5, so the
	// nuclei are {4} at 0.5, {4, 1} at 0.7 and {4, 1, 5} at 0.8.
	if a, b, c := nucleus(0.5), nucleus(0.7), nucleus(0.8); !a(4) || a(1) || !b(1) || b(5) || !c(5) || c(0) {
		t.Fatalf("nucleus helper is wrong: %v %v", p1, order)
	}
}

func TestSamplerEdgeCases(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	for _, o := range []SamplerOptions{{}, {Temperature: 1}, {Temperature: 1, TopK: 2}, {Temperature: 1, TopP: 0.5}} {
		s := newSampler(t, o)
		if got := s.Sample(nil); got != -1 {
			t.Errorf("%+v: Sample(nil) = %d, want -1", o, got)
		}
		for _, tc := range []struct {
			x    []float32
			want int
		}{
			{[]float32{nan, 1, nan}, 1},
			{[]float32{nan, nan}, 0},
			{[]float32{0, inf, 2}, 1},
			{[]float32{-inf, -inf, 5}, 2},
		} {
			if got := s.Sample(tc.x); got != tc.want {
				t.Errorf("%+v: Sample(%v) = %d, want %d", o, tc.x, got, tc.want)
			}
		}
		for range 100 {
			got := s.Sample([]float32{float32(math.Inf(-1)), float32(math.Inf(-1))})
			if got < 0 || got > 1 {
				t.Fatalf("%+v: all -Inf gave %d", o, got)
			}
		}
	}
}

func TestNewSamplerErrors(t *testing.T) {
	for _, tc := range []struct {
		o    SamplerOptions
		want string
	}{
		{SamplerOptions{Temperature: -1}, "temperature"},
		{SamplerOptions{Temperature: math.NaN()}, "temperature"},
		{SamplerOptions{Temperature: math.Inf(1)}, "temperature"},
		{SamplerOptions{TopK: -1}, "top-k"},
		{SamplerOptions{TopP: 1.5}, "top-p"},
		{SamplerOptions{TopP: math.NaN()}, "top-p"},
	} {
		if _, err := NewSampler(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewSampler(%+v): error %v, want one about %s", tc.o, err, tc.want)
		}
	}
}

func TestSamplerAllocs(t *testing.T) {
	logits := randomLogits(rand.New(rand.NewPCG(5, 6)), 32000)
	for _, o := range []SamplerOptions{{}, {Temperature: 1}, {Temperature: 0.8, TopK: 40}, {Temperature: 1, TopP: 0.9}} {
		s := newSampler(t, o)
		s.Sample(logits) // grows the candidate buffer once
		if a := testing.AllocsPerRun(20, func() { s.Sample(logits) }); a != 0 {
			t.Errorf("%+v: Sample allocates %v times", o, a)
		}
	}
}
