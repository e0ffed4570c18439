package lm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/distill/train"
	"github.com/shrinkml/shrink/internal/gradcheck"
	"github.com/shrinkml/shrink/model"
	"github.com/shrinkml/shrink/prune"
)

// randomMask marks about share of n weights.
func randomMask(n int, share float64, seed uint64) []bool {
	rng := rand.New(rand.NewPCG(seed, 5))
	m := make([]bool, n)
	for i := range m {
		m[i] = rng.Float64() < share
	}
	return m
}

// seg returns the segment of tensor name.
func (m *Model) seg(name string) segment {
	return m.segs[slices.IndexFunc(m.segs, func(s segment) bool { return s.name == name })]
}

// maskAll masks about share of every linear matrix of m at random.
func maskAll(t *testing.T, m *Model, share float64) {
	t.Helper()
	for i, name := range m.PrunableTensors() {
		if err := m.SetMask(name, randomMask(m.seg(name).len, share, uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
}

// countTrue is how many of m are true.
func countTrue(m []bool) int {
	c := 0
	for _, v := range m {
		if v {
			c++
		}
	}
	return c
}

// TestMaskedGradient checks the backward pass of a masked model against
// central differences, and that the clipping norm leaves the masked weights'
// gradients out.
func TestMaskedGradient(t *testing.T) {
	base := Config{Dim: 8, Layers: 2, Heads: 2, KVHeads: 1, Hidden: 12, Vocab: 11, Context: 6, RopeTheta: 100, NormEps: 1e-5}
	for _, c := range []struct {
		tied    bool
		threads int
		share   float64
	}{
		{false, 1, 0.5},
		{true, 3, 0.3},
		{false, 2, 0.9},
	} {
		t.Run(fmt.Sprintf("tied=%v threads=%d share=%g", c.tied, c.threads, c.share), func(t *testing.T) {
			cfg := base
			cfg.Tied = c.tied
			m, _ := New(cfg, 1)
			randomize(m, 2, 0.4)
			maskAll(t, m, c.share)
			rng := rand.New(rand.NewPCG(7, 8))
			tokens := make([]int, 40)
			for i := range tokens {
				tokens[i] = 3 + rng.IntN(cfg.Vocab-3)
			}
			opts := DefaultOptions()
			opts.Batch, opts.Steps, opts.BOS = 3, 1, 1
			opts, err := opts.resolve(m, len(tokens))
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
			for _, s := range starts {
				w := &worker{tokens: make([]int, n), targets: make([]int, n)}
				fill(w, tokens, []int{s}, n, opts.BOS)
				inputs, targets = append(inputs, w.tokens), append(targets, w.targets)
			}
			params := f64(m.params)
			ref := func() float64 { return refModelLoss(m, params, inputs, targets, nil, 0, 0) }
			if want := ref(); math.Abs(loss-want) > 1e-5*math.Max(1, want) {
				t.Errorf("loss %g, float64 reference %g", loss, want)
			}
			const h = 1e-6
			var free float64
			for i := range params {
				p := params[i]
				params[i] = p + h
				fp := ref()
				params[i] = p - h
				fm := ref()
				params[i] = p
				num := (fp - fm) / (2 * h)
				if e := math.Abs(float64(grad[i])-num) / math.Max(1, math.Abs(num)); e > gradcheck.Tol {
					t.Fatalf("parameter %d (masked %v): gradient %g, central difference %g", i, m.mask[i], grad[i], num)
				}
				if !m.mask[i] {
					free += float64(grad[i]) * float64(grad[i])
				}
			}
			if math.Abs(free-sumsq) > 1e-9*free {
				t.Errorf("squared norm %g, want %g over the free weights", sumsq, free)
			}
		})
	}
}

// TestMaskedWeightsStayZero trains masked models and wants the masked
// weights and their AdamW moments exactly zero after every step while the
// others move; a model whose masks are all false trains as one without.
func TestMaskedWeightsStayZero(t *testing.T) {
	enc, tokens, _ := tinyCorpus(t, 200, 300)
	cfg := tinyConfig
	cfg.Vocab = enc.VocabSize()
	for _, c := range []struct {
		name    string
		threads int
		teacher bool
	}{
		{"one thread", 1, false},
		{"3 threads", 3, false},
		{"distill 2 threads", 2, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, _ := New(cfg, 1)
			maskAll(t, m, 0.6)
			before := slices.Clone(m.params)
			mask := slices.Clone(m.mask)
			opts := DefaultOptions()
			opts.Steps, opts.Batch, opts.Threads, opts.BOS = 12, 6, c.threads, enc.BOS()
			if c.teacher {
				opts.Teacher, _ = New(cfg, 9)
			}
			opts, err := opts.resolve(m, len(tokens))
			if err != nil {
				t.Fatal(err)
			}
			tr := newTrainer(m, opts, c.threads)
			rng := rand.New(rand.NewPCG(3, 4))
			starts := make([]int, opts.Batch)
			for s := range opts.Steps {
				for i := range starts {
					starts[i] = rng.IntN(len(tokens) - opts.Context)
				}
				if _, err := tr.step(tokens, starts, s); err != nil {
					t.Fatal(err)
				}
				for i, masked := range m.mask {
					if masked && (math.Float32bits(m.params[i]) != 0 || tr.mom[i] != 0 || tr.v[i] != 0) {
						t.Fatalf("step %d: masked parameter %d is %g, moments %g, %g", s+1, i, m.params[i], tr.mom[i], tr.v[i])
					}
				}
			}
			if !slices.Equal(m.mask, mask) {
				t.Error("training changed the masks")
			}
			moved, freeN := 0, 0
			for i, masked := range m.mask {
				if !masked {
					freeN++
					if m.params[i] != before[i] {
						moved++
					}
				}
			}
			if moved < freeN*9/10 {
				t.Errorf("%d of %d free parameters moved", moved, freeN)
			}

			// All-false masks are no masks.
			plain, _ := New(cfg, 1)
			empty, _ := New(cfg, 1)
			for _, name := range empty.PrunableTensors() {
				if err := empty.SetMask(name, make([]bool, empty.seg(name).len)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := Train(plain, tokens, opts); err != nil {
				t.Fatal(err)
			}
			if _, err := Train(empty, tokens, opts); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(plain.params, empty.params) {
				t.Error("a model with empty masks trains differently from one without")
			}
		})
	}
}

// TestPruneMagnitudeMatchesPrune prunes one model by lm's magnitude pruning
// and by package prune, per tensor and globally: the same weights go.
func TestPruneMagnitudeMatchesPrune(t *testing.T) {
	for _, c := range []struct {
		sparsity float64
		global   bool
	}{{0.5, false}, {0.7, false}, {0.6, true}} {
		t.Run(fmt.Sprintf("%g global=%v", c.sparsity, c.global), func(t *testing.T) {
			cfg := tinyConfig
			cfg.Vocab = 50
			m, _ := New(cfg, 4)
			randomize(m, 5, 0.3)
			scope := prune.PerTensor
			if c.global {
				scope = prune.Global
			}
			p, _, err := prune.Prune(m.Model(nil), prune.Options{Method: prune.Magnitude, Sparsity: c.sparsity, Scope: scope, Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			want, err := FromModel(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.PruneMagnitude(c.sparsity, c.global); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(m.params, want.params) {
				t.Error("lm's magnitude pruning differs from package prune's")
			}
			tensors, all := m.Sparsity()
			if len(tensors) != 7*cfg.Layers {
				t.Errorf("%d tensors' sparsity, want %d", len(tensors), 7*cfg.Layers)
			}
			if math.Abs(all-c.sparsity) > 1e-3 {
				t.Errorf("sparsity %g, want %g", all, c.sparsity)
			}
		})
	}
}

// TestGradualSchedule prunes while training: after each step every linear
// matrix holds exactly round(s·n) masked zeros for the sparsity s of the
// schedule's last pruning (or the matrices together do, globally), the
// embedding, norms and head keep their weights, and the run ends at the
// final sparsity.
func TestGradualSchedule(t *testing.T) {
	enc, tokens, _ := tinyCorpus(t, 200, 300)
	cfg := tinyConfig
	cfg.Vocab = enc.VocabSize()
	for _, c := range []struct {
		name  string
		sched train.Schedule
		steps int
		tied  bool
	}{
		{"per tensor to 0.5", train.Schedule{Final: 0.5, Every: 2, Count: 5}, 16, false},
		{"per tensor 0.2 to 0.7 from step 3", train.Schedule{Initial: 0.2, Final: 0.7, Start: 3, Every: 3, Count: 3}, 14, true},
		{"global to 0.7", train.Schedule{Final: 0.7, Every: 1, Count: 6, Global: true}, 10, false},
		{"once, at step 4", train.Schedule{Final: 0.6, Start: 4}, 8, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := cfg
			cfg.Tied = c.tied
			m, _ := New(cfg, 1)
			opts := DefaultOptions()
			opts.Steps, opts.Batch, opts.Threads, opts.BOS = c.steps, 4, 2, enc.BOS()
			sched := c.sched
			opts.Prune = &sched
			names := m.PrunableTensors()
			check := func(step int, s float64) {
				var masked, zeros, total int
				for _, name := range names {
					mk, seg := m.Mask(name), m.seg(name)
					k, z := countTrue(mk), 0
					for i, v := range mk {
						if m.params[seg.off+i] == 0 {
							z++
							if !v {
								t.Fatalf("step %d: %s has an unmasked zero at %d", step, name, i)
							}
						}
					}
					if want := int(math.Round(s * float64(len(mk)))); !sched.Global && (k != want || z != want) {
						t.Fatalf("step %d: %s has %d masked, %d zeros of %d; want %d (sparsity %g)", step, name, k, z, len(mk), want, s)
					}
					masked, zeros, total = masked+k, zeros+z, total+len(mk)
				}
				if want := int(math.Round(s * float64(total))); sched.Global && (masked != want || zeros != want) {
					t.Fatalf("step %d: %d masked, %d zeros of %d; want %d (sparsity %g)", step, masked, zeros, total, want, s)
				}
			}
			last := 0.0 // the sparsity of the last pruning so far
			opts.OnStep = func(st Step) {
				if sched.Prunes(st.Step - 1) {
					last = sched.SparsityAt(st.Step - 1)
				}
				if m.mask != nil || last > 0 {
					check(st.Step, last)
				}
			}
			before := m.Clone()
			if _, err := Train(m, tokens, opts); err != nil {
				t.Fatal(err)
			}
			check(c.steps, sched.Final)
			for _, s := range m.segs {
				if prunable(s.name) {
					continue
				}
				for i, v := range m.params[s.off : s.off+s.len] {
					if v == 0 && before.params[s.off+i] != 0 {
						t.Fatalf("%s, not a linear matrix, has a zero at %d", s.name, i)
					}
				}
			}
			if ts, all := m.Sparsity(); len(ts) != len(names) || math.Abs(all-sched.Final) > 1e-3 {
				t.Errorf("sparsity %v, %g; want %g", ts, all, sched.Final)
			}
		})
	}
}

// TestResumeMasked stops gradual pruning runs and resumes them from their
// checkpoints: the weights and the masks are the uninterrupted run's, bit
// for bit; a resume without the schedule is refused.
func TestResumeMasked(t *testing.T) {
	enc, tokens, _ := tinyCorpus(t, 120, 300)
	cfg := Config{Dim: 16, Layers: 2, Heads: 2, KVHeads: 1, Hidden: 24, Vocab: enc.VocabSize(), Context: 16, RopeTheta: 10000, NormEps: 1e-5}
	for _, c := range []struct {
		name        string
		threads     int
		sched       train.Schedule
		every, stop int
	}{
		{"mid-ramp", 2, train.Schedule{Final: 0.6, Every: 2, Count: 4}, 3, 5},
		{"after the ramp", 1, train.Schedule{Initial: 0.1, Final: 0.5, Start: 2, Every: 3, Count: 2, Global: true}, 4, 10},
		{"before the first pruning", 3, train.Schedule{Final: 0.5, Start: 6}, 2, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := DefaultOptions()
			sched := c.sched
			opts.Steps, opts.Batch, opts.Threads, opts.BOS, opts.Prune = 14, 5, c.threads, enc.BOS(), &sched
			want, _ := New(cfg, 1)
			trainUntil(t, want, tokens, opts, 0)

			opts.Checkpoint, opts.CheckpointEvery = filepath.Join(t.TempDir(), "lm.ckpt"), c.every
			first, _ := New(cfg, 1)
			if _, stopped := trainUntil(t, first, tokens, opts, c.stop); !stopped {
				t.Fatal("the run was not interrupted")
			}
			opts.Resume = opts.Checkpoint
			got, _ := New(cfg, 1)
			trainUntil(t, got, tokens, opts, 0)
			if !slices.Equal(got.params, want.params) || !slices.Equal(got.mask, want.mask) {
				t.Fatal("the resumed run's weights or masks differ from the uninterrupted run's")
			}

			o := opts
			o.Prune, o.Checkpoint = nil, ""
			again, _ := New(cfg, 1)
			if _, err := Train(again, tokens, o); err == nil || !strings.Contains(err.Error(), "pruning schedule") {
				t.Errorf("resuming without the schedule: %v", err)
			}
		})
	}
}

func TestMaskErrors(t *testing.T) {
	cfg := tinyConfig
	cfg.Vocab = 20
	m, _ := New(cfg, 1)
	toks := make([]int, 200)
	for i := range toks {
		toks[i] = i % 20
	}
	q := model.LayerTensor(0, model.AttnQ)
	for _, c := range []struct {
		name string
		run  func() error
		want string
	}{
		{"embedding", func() error { return m.SetMask(model.TokenEmbedding, make([]bool, 20*32)) }, "not a linear matrix"},
		{"norm", func() error { return m.SetMask(model.LayerTensor(0, model.AttnNorm), make([]bool, 32)) }, "not a linear matrix"},
		{"length", func() error { return m.SetMask(q, make([]bool, 3)) }, "a mask of 3 values"},
		{"sparsity", func() error { return m.PruneMagnitude(1, false) }, "sparsity 1"},
		{"schedule too long", func() error {
			o := DefaultOptions()
			o.Steps, o.Prune = 5, &train.Schedule{Final: 0.5, Every: 1, Count: 5}
			_, err := Train(m, toks, o)
			return err
		}, "the run has 5 steps"},
		{"schedule backwards", func() error {
			o := DefaultOptions()
			o.Steps, o.Prune = 5, &train.Schedule{Initial: 0.6, Final: 0.5}
			_, err := Train(m, toks, o)
			return err
		}, "from sparsity 0.6 to 0.5"},
	} {
		if err := c.run(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
	if m.mask != nil || m.Mask(q) != nil {
		t.Error("failed calls left masks")
	}
	if err := m.SetMask(q, randomMask(32*32, 0.5, 1)); err != nil {
		t.Fatal(err)
	}
	if err := m.SetMask(q, nil); err != nil || countTrue(m.Mask(q)) != 0 {
		t.Errorf("unmasking: %v, %d still masked", err, countTrue(m.Mask(q)))
	}
}
