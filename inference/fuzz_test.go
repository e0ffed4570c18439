package inference

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"testing"

	"github.com/shrinkml/shrink/model"
)

// FuzzSample feeds arbitrary logits (NaN and infinities included) and options
// to a Sampler: it must return a valid index, respect top-k, and agree with a
// plain argmax when greedy.
func FuzzSample(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64}, 1.0, 2, 0.9, uint64(1))
	f.Add([]byte{0, 0, 192, 127, 0, 0, 128, 127, 0, 0, 128, 255}, 0.5, 0, 0.5, uint64(2))
	f.Add([]byte{}, 0.0, 0, 0.0, uint64(3))
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 1e-30, 1, 1.0, uint64(4))
	f.Fuzz(func(t *testing.T, raw []byte, temp float64, topK int, topP float64, seed uint64) {
		logits := make([]float32, len(raw)/4)
		for i := range logits {
			logits[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		s, err := NewSampler(SamplerOptions{Temperature: temp, TopK: topK, TopP: topP, Seed: seed})
		if err != nil {
			return
		}
		for range 3 {
			got := s.Sample(logits)
			if len(logits) == 0 {
				if got != -1 {
					t.Fatalf("empty logits gave %d", got)
				}
				return
			}
			if got < 0 || got >= len(logits) {
				t.Fatalf("Sample returned %d for %d logits", got, len(logits))
			}
			v := logits[got]
			allNaN := true
			for _, x := range logits {
				allNaN = allNaN && x != x
			}
			if v != v && !allNaN {
				t.Fatalf("picked NaN logit %d of %v", got, logits)
			}
			if temp == 0 || topK == 1 {
				if want := argmax(logits); got != want {
					t.Fatalf("greedy picked %d, argmax is %d", got, want)
				}
			}
			if topK > 0 && v == v {
				better := 0
				for _, x := range logits {
					if x > v {
						better++
					}
				}
				if better >= topK {
					t.Fatalf("picked %d (logit %g) with %d better logits under top-k %d", got, v, better, topK)
				}
			}
		}
	})
}

// fuzzModel derives a small llama config and model from fuzz bytes.
func fuzzModel(t *testing.T, b []byte) (*model.Model, []byte) {
	for len(b) < 12 {
		b = append(b, 0)
	}
	heads := 1 + int(b[0]%4)
	divs := []int{}
	for d := 1; d <= heads; d++ {
		if heads%d == 0 {
			divs = append(divs, d)
		}
	}
	cfg := model.Config{
		Arch:             "llama",
		NumHeads:         heads,
		NumKVHeads:       divs[int(b[1])%len(divs)],
		HeadDim:          2 * (1 + int(b[2]%4)),
		HiddenSize:       1 + int(b[3]%24),
		IntermediateSize: 1 + int(b[4]%24),
		VocabSize:        1 + int(b[5]%30),
		NumLayers:        1 + int(b[6]%2),
		ContextLength:    1 + int(b[7]%24),
		RMSNormEps:       1e-5,
		RopeTheta:        []float64{10000, 500000, 1e6, 100}[b[8]%4],
		RopeLayout:       model.RopeLayout(b[9] & 1),
		TiedEmbeddings:   b[9]&2 != 0,
		QKVBias:          b[9]&4 != 0,
	}
	return randomModel(t, cfg, uint64(b[10])), b[11:]
}

// FuzzLlama builds small models of random shape, sometimes damaged, and runs
// random tokens through them in two Forward calls. A damaged model must be
// refused with an error; a sound one must match the float64 reference.
func FuzzLlama(f *testing.F) {
	f.Add([]byte{3, 1, 2, 20, 13, 29, 1, 23, 0, 5, 7, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})
	f.Add([]byte{2, 0, 3, 7, 5, 9, 0, 4, 2, 2, 1, 1, 0, 5, 200, 3})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1})
	f.Add([]byte{1, 1, 1, 11, 17, 3, 1, 15, 3, 6, 9, 3, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, rest := fuzzModel(t, data)
		var mode, which, threads, cut byte
		if len(rest) >= 4 {
			mode, which, threads, cut, rest = rest[0]%4, rest[1], 1+rest[2]%2, rest[3], rest[4:]
		}
		damaged := false
		ti := int(which) % len(m.Tensors)
		switch mode {
		case 1: // drop a tensor
			m.Tensors = append(m.Tensors[:ti:ti], m.Tensors[ti+1:]...)
			damaged = true
		case 2: // store one as BF16, which must still work
			c, err := m.Tensors[ti].Convert(model.BF16)
			if err != nil {
				t.Fatal(err)
			}
			m.Tensors[ti] = c
		case 3: // truncate one
			tn := *m.Tensors[ti]
			tn.Data = tn.Data[:len(tn.Data)-1]
			m.Tensors[ti] = &tn
			damaged = true
		}
		l, err := NewLlama(m, Options{Threads: int(threads)})
		if damaged {
			if err == nil {
				l.Close()
				t.Fatalf("damaged model (mode %d, tensor %d) was accepted", mode, ti)
			}
			return
		}
		if err != nil {
			t.Fatalf("sound model refused: %v", err)
		}
		defer l.Close()
		l.minWork = 0
		V := m.Config.VocabSize
		tokens := make([]int, len(rest))
		valid := true
		for i, c := range rest {
			tokens[i] = int(c)%(V+2) - 1
			valid = valid && tokens[i] >= 0 && tokens[i] < V
		}
		s := l.NewState(0)
		split := 0
		if len(tokens) > 0 {
			split = int(cut) % (len(tokens) + 1)
		}
		var got []float32
		var ferr error
		for _, part := range [][]int{tokens[:split], tokens[split:]} {
			if len(part) == 0 {
				continue
			}
			out := make([]float32, len(part)*V)
			if ferr = l.Forward(s, part, out); ferr != nil {
				break
			}
			got = append(got, out...)
		}
		if len(tokens) == 0 {
			return
		}
		if !valid || len(tokens) > m.Config.ContextLength {
			if ferr == nil {
				t.Fatalf("tokens %v (vocab %d, context %d) ran without error", tokens, V, m.Config.ContextLength)
			}
			return
		}
		if ferr != nil {
			t.Fatalf("tokens %v: %v", tokens, ferr)
		}
		ref := newRefModel(t, m)
		want := ref.forward(tokens)
		tol := 1e-4 + 30*ref.sensitivity(tokens, want)
		for p := range tokens {
			compareLogits(t, fmt.Sprintf("pos %d (tolerance %.2g)", p, tol), got[p*V:(p+1)*V], want[p], tol)
		}
	})
}

// sensitivity is the largest change of the reference logits when every
// weight moves by about one float32 rounding (1e-7 relative), or when every
// activation is rounded to float32 as it is stored. Tiny random models can be
// ill-conditioned (a one-wide residual stream that nearly cancels), and there
// float32 arithmetic cannot match float64 to 1e-4.
func (r *refModel) sensitivity(tokens []int, want [][]float64) float64 {
	worst := diffLogits(want, (&refModel{cfg: r.cfg, t: r.t, round32: true}).forward(tokens))
	p := &refModel{cfg: r.cfg, t: map[string][]float64{}}
	names := make([]string, 0, len(r.t))
	for name := range r.t {
		names = append(names, name)
	}
	sort.Strings(names)
	k := 0
	for _, name := range names {
		v := r.t[name]
		w := make([]float64, len(v))
		for i := range v {
			k++
			w[i] = v[i] * (1 + 1e-7*math.Sin(float64(k)*12.9898))
		}
		p.t[name] = w
	}
	return math.Max(worst, diffLogits(want, p.forward(tokens)))
}

// diffLogits is the largest |a-b| over all positions and logits.
func diffLogits(a, b [][]float64) float64 {
	var worst float64
	for i := range a {
		for j := range a[i] {
			worst = math.Max(worst, math.Abs(a[i][j]-b[i][j]))
		}
	}
	return worst
}
