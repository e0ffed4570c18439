package lm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/internal/gradcheck"
)

// refHidden is the hidden-state loss of student states s against teacher
// states t ([n][width] each, per layer) in float64, summed over positions
// and pairs: proj, when not nil, holds each pair's [teacher dim][student
// dim] projection.
func refHidden(loss string, weight float64, s, t [][]float64, pairs [][2]int, proj [][]float64, n, ds, dt int) float64 {
	var total float64
	for i, p := range pairs {
		x, h := s[p[0]], t[p[1]]
		y := x
		if proj != nil {
			y = make([]float64, n*dt)
			for r := range n {
				for o := range dt {
					y[r*dt+o] = gradcheck.Dot64(x[r*ds:(r+1)*ds], proj[i][o*ds:(o+1)*ds])
				}
			}
		}
		for r := range n {
			yr, hr := y[r*dt:(r+1)*dt], h[r*dt:(r+1)*dt]
			if loss == "mse" {
				var q float64
				for j := range yr {
					q += (yr[j] - hr[j]) * (yr[j] - hr[j])
				}
				total += weight * q / float64(dt)
			} else {
				c := gradcheck.Dot64(yr, hr) / math.Max(math.Sqrt(gradcheck.Dot64(yr, yr)*gradcheck.Dot64(hr, hr)), 1e-8)
				total += weight * (1 - c)
			}
		}
	}
	return total
}

// TestHiddenLossGradient checks the gradient of CE + KL + a hidden-state
// loss, with respect to the student's parameters and the projections,
// against central differences of the float64 loss.
func TestHiddenLossGradient(t *testing.T) {
	student := Config{Dim: 8, Layers: 2, Heads: 2, KVHeads: 1, Hidden: 12, Vocab: 11, Context: 5, RopeTheta: 100, NormEps: 1e-5}
	for _, c := range []struct {
		loss          string
		teacherDim    int
		layers, remap []int
		threads       int
	}{
		{"mse", 8, nil, nil, 1},
		{"cosine", 8, nil, nil, 2},
		{"mse", 12, nil, nil, 2},
		{"cosine", 12, []int{0}, []int{2}, 3},
	} {
		t.Run(fmt.Sprintf("%s teacher dim %d layers %v->%v threads %d", c.loss, c.teacherDim, c.layers, c.remap, c.threads), func(t *testing.T) {
			tc := student
			tc.Dim, tc.Heads, tc.Layers = c.teacherDim, 2, 3
			m, _ := New(student, 1)
			randomize(m, 2, 0.4)
			teacher, _ := New(tc, 3)
			randomize(teacher, 4, 0.5)
			rng := rand.New(rand.NewPCG(7, 8))
			tokens := make([]int, 30)
			for i := range tokens {
				tokens[i] = 3 + rng.IntN(student.Vocab-3)
			}
			opts := DefaultOptions()
			opts.Batch, opts.Steps, opts.BOS = 3, 1, 1
			opts.Teacher, opts.Temperature, opts.Alpha = teacher, 2, 0.5
			opts.HiddenLoss, opts.HiddenWeight, opts.HiddenLayers, opts.HiddenMap = c.loss, 0.8, c.layers, c.remap
			opts, err := opts.resolve(m, len(tokens))
			if err != nil {
				t.Fatal(err)
			}
			tr := newTrainer(m, opts, c.threads)
			// Larger projections than the seeded ones make the check sharper.
			for i := range tr.hid.Params {
				tr.hid.Params[i] = float32(0.5 * (2*rng.Float64() - 1))
			}
			tr.hid.Refresh()
			starts := []int{0, 11, 24}
			loss, sumsq, err := tr.accumulate(tokens, starts)
			if err != nil {
				t.Fatal(err)
			}
			n := opts.Context
			var inputs, targets [][]int
			var tz [][]float64
			var tstates [][][]float64
			for _, s := range starts {
				w := &worker{tokens: make([]int, n), targets: make([]int, n)}
				fill(w, tokens, []int{s}, n, opts.BOS)
				inputs, targets = append(inputs, w.tokens), append(targets, w.targets)
				z, st := refForward(teacher, f64(teacher.params), w.tokens)
				tz, tstates = append(tz, z), append(tstates, st)
			}
			var pairs [][2]int
			for _, p := range tr.hid.Pairs {
				pairs = append(pairs, [2]int{p.Student, p.Teacher})
			}
			params, proj := f64(m.params), f64(tr.hid.Params)
			total := float64(len(starts) * n)
			ref := func() float64 {
				l := refModelLoss(m, params, inputs, targets, tz, opts.Temperature, opts.Alpha)
				var pr [][]float64
				if len(proj) > 0 {
					for i := range pairs {
						sz := student.Dim * c.teacherDim
						pr = append(pr, proj[i*sz:(i+1)*sz])
					}
				}
				for si, in := range inputs {
					_, st := refForward(m, params, in)
					l += refHidden(c.loss, opts.HiddenWeight, st, tstates[si], pairs, pr, n, student.Dim, c.teacherDim) / total
				}
				return l
			}
			if want := ref(); math.Abs(loss-want) > 1e-5*math.Max(1, want) {
				t.Errorf("loss %g, float64 reference %g", loss, want)
			}
			grad := append(append([]float32(nil), tr.work[0].grad...), tr.hs[0].Grad...)
			all := []*[]float64{&params, &proj}
			const h = 1e-6
			var ss, worst float64
			i := 0
			for _, vec := range all {
				for j := range *vec {
					p := (*vec)[j]
					(*vec)[j] = p + h
					fp := ref()
					(*vec)[j] = p - h
					fm := ref()
					(*vec)[j] = p
					num := (fp - fm) / (2 * h)
					e := math.Abs(float64(grad[i])-num) / math.Max(1, math.Abs(num))
					worst = math.Max(worst, e)
					if e > gradcheck.Tol {
						t.Fatalf("parameter %d: gradient %g, central difference %g", i, grad[i], num)
					}
					ss += float64(grad[i]) * float64(grad[i])
					i++
				}
			}
			if math.Abs(ss-sumsq) > 1e-9*ss {
				t.Errorf("squared norm %g, want %g", sumsq, ss)
			}
			t.Logf("%d student and %d projection parameters, pairs %v, worst relative error %.2g", len(params), len(proj), pairs, worst)
		})
	}
}

// TestHiddenLoss trains with each hidden-state loss through a projection:
// a run resumes exactly from a checkpoint with its projections, the loss
// changes the weights, and bad options are refused.
func TestHiddenLoss(t *testing.T) {
	enc, tokens, _ := tinyCorpus(t, 120, 300)
	cfg := Config{Dim: 16, Layers: 2, Heads: 2, KVHeads: 1, Hidden: 24, Vocab: enc.VocabSize(), Context: 16, RopeTheta: 10000, NormEps: 1e-5}
	tc := cfg
	tc.Dim, tc.Layers, tc.Hidden = 24, 4, 32
	teacher, _ := New(tc, 9)
	for _, loss := range []string{"mse", "cosine"} {
		t.Run(loss, func(t *testing.T) {
			opts := DefaultOptions()
			opts.Steps, opts.Batch, opts.Threads, opts.BOS, opts.Teacher = 12, 4, 2, enc.BOS(), teacher
			opts.HiddenLoss, opts.HiddenWeight = loss, 5
			a, _ := New(cfg, 1)
			if _, err := Train(a, tokens, opts); err != nil {
				t.Fatal(err)
			}
			b, _ := New(cfg, 1)
			path := filepath.Join(t.TempDir(), "h.ckpt")
			opts.Checkpoint, opts.CheckpointEvery = path, 5
			if _, stopped := trainUntil(t, b, tokens, opts, 7); !stopped {
				t.Fatal("not interrupted")
			}
			opts.Resume = path
			if _, err := Train(b, tokens, opts); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(a.params, b.params) {
				t.Error("a resumed hidden-state run differs from an uninterrupted one")
			}
			plain, _ := New(cfg, 1)
			o := opts
			o.HiddenLoss, o.HiddenWeight, o.Checkpoint, o.Resume = "", 0, "", ""
			if _, err := Train(plain, tokens, o); err != nil {
				t.Fatal(err)
			}
			if slices.Equal(plain.params, a.params) {
				t.Error("the hidden-state loss changed nothing")
			}
			o.Resume = path
			if _, err := Train(plain, tokens, o); err == nil || !strings.Contains(err.Error(), "hidden loss") {
				t.Errorf("resuming a hidden-state run without one: %v", err)
			}
		})
	}
	m, _ := New(cfg, 1)
	for _, c := range []struct {
		edit func(o *Options)
		msg  string
	}{
		{func(o *Options) { o.Teacher = nil }, "needs Teacher"},
		{func(o *Options) { o.HiddenLoss = "l1" }, "loss \"l1\""},
		{func(o *Options) { o.HiddenWeight = 0 }, "weight 0"},
		{func(o *Options) { o.HiddenLayers = []int{2} }, "student layer 2 of 2"},
		{func(o *Options) { o.HiddenLayers, o.HiddenMap = []int{0}, []int{4} }, "teacher layer 4 of 4"},
		{func(o *Options) { o.HiddenLoss = "" }, "apply to a HiddenLoss"},
	} {
		o := DefaultOptions()
		o.Steps, o.Teacher, o.HiddenLoss, o.HiddenWeight = 1, teacher, "mse", 1
		c.edit(&o)
		if _, err := Train(m, tokens, o); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%v; want %q", err, c.msg)
		}
	}
}

// TestHiddenLossPullsStates distills from a teacher of the same width with
// only the hidden-state loss weighing much: the student's last state ends
// closer to the teacher's than a student trained without it.
func TestHiddenLossPullsStates(t *testing.T) {
	enc, tokens, _ := tinyCorpus(t, 120, 300)
	cfg := Config{Dim: 16, Layers: 2, Heads: 2, KVHeads: 1, Hidden: 24, Vocab: enc.VocabSize(), Context: 16, RopeTheta: 10000, NormEps: 1e-5}
	tc := cfg
	tc.Layers = 3
	teacher, _ := New(tc, 9)
	dist := func(m *Model) float64 {
		ws, wt := newWorker(m, 1, 16, false), newWorker(teacher, 1, 16, false)
		copy(ws.tokens, tokens[100:116])
		copy(wt.tokens, tokens[100:116])
		ws.forward(1, 16)
		wt.forward(1, 16)
		var d float64
		for i, v := range ws.xs[2][:16*16] {
			e := float64(v - wt.xs[3][i])
			d += e * e
		}
		return d / (16 * 16)
	}
	opts := DefaultOptions()
	opts.Steps, opts.Batch, opts.Threads, opts.BOS, opts.Teacher, opts.LR = 30, 4, 2, enc.BOS(), teacher, 1e-2
	plain, _ := New(cfg, 1)
	if _, err := Train(plain, tokens, opts); err != nil {
		t.Fatal(err)
	}
	opts.HiddenLoss, opts.HiddenWeight, opts.HiddenLayers = "mse", 1000, []int{1}
	pulled, _ := New(cfg, 1)
	if _, err := Train(pulled, tokens, opts); err != nil {
		t.Fatal(err)
	}
	a, b := dist(plain), dist(pulled)
	t.Logf("mean squared distance to the teacher's last state: %.4f without, %.4f with the loss", a, b)
	if !(b < 0.5*a) {
		t.Errorf("the hidden-state loss left the distance at %.4f (%.4f without)", b, a)
	}
}
