package train

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

// refHiddenStates returns the outputs of a network's hidden layers for the
// n rows of x in float64, from a flat parameter vector laid out as
// Network.params.
func refHiddenStates(sizes []int, act Activation, params, x []float64, n int) [][]float64 {
	var states [][]float64
	cur := x
	off := 0
	for l := 0; l+2 < len(sizes); l++ {
		in, out := sizes[l], sizes[l+1]
		w, b := params[off:off+out*in], params[off+out*in:off+out*in+out]
		off += out*in + out
		cur = refAct(act, refLinear(cur, w, b, n, in, out))
		states = append(states, cur)
	}
	return states
}

// refHiddenLoss is the summed hidden-state loss of pairs of student and
// teacher states, proj holding each pair's projection or nil entries.
func refHiddenLoss(loss string, weight float64, s, t [][]float64, pairs [][2]int, proj [][]float64, n int) float64 {
	var total float64
	for i, p := range pairs {
		x, h := s[p[0]], t[p[1]]
		in, out := len(x)/n, len(h)/n
		y := x
		if proj[i] != nil {
			y = refLinear(x, proj[i], make([]float64, out), n, in, out)
		}
		for r := range n {
			yr, hr := y[r*out:(r+1)*out], h[r*out:(r+1)*out]
			if loss == "mse" {
				var q float64
				for j := range yr {
					q += (yr[j] - hr[j]) * (yr[j] - hr[j])
				}
				total += weight * q / float64(out)
			} else {
				c := gradcheck.Dot64(yr, hr) / math.Max(math.Sqrt(gradcheck.Dot64(yr, yr)*gradcheck.Dot64(hr, hr)), 1e-8)
				total += weight * (1 - c)
			}
		}
	}
	return total
}

// TestHiddenLossGradient checks the gradient of the loss with a
// hidden-state term, with respect to the weights and the projections,
// against central differences of the float64 loss.
func TestHiddenLossGradient(t *testing.T) {
	for _, c := range []struct {
		loss           string
		sizes, tsizes  []int
		layers, remap  []int
		threads        int
		distill        bool
		act            Activation
		wantProjection int
	}{
		{"mse", []int{6, 5, 4}, []int{6, 5, 7, 4}, nil, []int{0}, 1, false, GELU, 0},
		{"cosine", []int{6, 9, 7, 4}, []int{6, 9, 4}, nil, nil, 2, true, GELU, 7 * 9},
		{"mse", []int{6, 9, 7, 4}, []int{6, 11, 8, 4}, nil, nil, 3, true, ReLU, 9*11 + 7*8},
		{"cosine", []int{6, 9, 7, 4}, []int{6, 11, 8, 4}, []int{1}, []int{0}, 2, false, GELU, 7 * 11},
	} {
		t.Run(fmt.Sprintf("%s %v to %v layers %v->%v threads=%d", c.loss, c.sizes, c.tsizes, c.layers, c.remap, c.threads), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			net, _ := NewNetwork(c.sizes, c.act, 5)
			for i := range net.params {
				net.params[i] = float32(2*rng.Float64() - 1)
			}
			teacher, _ := NewNetwork(c.tsizes, GELU, 6)
			const batch = 7
			in, k := c.sizes[0], c.sizes[len(c.sizes)-1]
			d := Data{X: gradcheck.F32(gradcheck.RandSlice(rng, batch*in, 1)), Y: make([]int, batch)}
			for i := range d.Y {
				d.Y[i] = rng.IntN(k)
			}
			opts := DefaultOptions()
			opts.Batch = batch
			var soft []float64
			if c.distill {
				soft = distribution(rng, batch, k)
				d.Soft = gradcheck.F32(soft)
				for i, v := range d.Soft {
					soft[i] = float64(v)
				}
				opts.Temperature, opts.Alpha = 3, 0.6
			}
			opts.HiddenLoss, opts.HiddenWeight, opts.HiddenTeacher, opts.HiddenLayers, opts.HiddenMap = c.loss, 0.7, teacher, c.layers, c.remap
			tr := newTrainer(net, opts, c.threads)
			if len(tr.hid.Params) != c.wantProjection {
				t.Fatalf("%d projection parameters, want %d", len(tr.hid.Params), c.wantProjection)
			}
			for i := range tr.hid.Params {
				tr.hid.Params[i] = float32(0.5 * (2*rng.Float64() - 1))
			}
			tr.hid.Refresh()
			loss, sumsq := tr.accumulate(d, []int{0, 1, 2, 3, 4, 5, 6})

			params, proj, x := f64(net.params), f64(tr.hid.Params), f64(d.X)
			tstates := refHiddenStates(teacher.Sizes, teacher.Act, f64(teacher.params), x, batch)
			var pairs [][2]int
			for _, p := range tr.hid.Pairs {
				pairs = append(pairs, [2]int{p.Student, p.Teacher})
			}
			ref := func() float64 {
				l := refNetworkLoss(c.sizes, c.act, params, x, d.Y, soft, opts.Temperature, opts.Alpha)
				pr := make([][]float64, len(pairs))
				off := 0
				for i, p := range tr.hid.Pairs {
					if p.In != p.Out {
						pr[i] = proj[off : off+p.In*p.Out]
						off += p.In * p.Out
					}
				}
				s := refHiddenStates(c.sizes, c.act, params, x, batch)
				return l + refHiddenLoss(c.loss, opts.HiddenWeight, s, tstates, pairs, pr, batch)/batch
			}
			if want := ref(); math.Abs(loss-want) > 1e-5*math.Max(1, want) {
				t.Errorf("loss %g, float64 reference %g", loss, want)
			}
			grad := append(append([]float32(nil), tr.work[0].grad...), tr.hs[0].Grad...)
			const h = 1e-6
			var ss, worst float64
			i := 0
			for _, vec := range []*[]float64{&params, &proj} {
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
			t.Logf("pairs %v, worst relative error %.2g", pairs, worst)
		})
	}
}

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// TestHiddenLoss trains a narrow student against a wide teacher's hidden
// layers, through projections: a run interrupted and resumed from a
// checkpoint gives the same weights, the loss changes the weights, and bad
// options are refused.
func TestHiddenLoss(t *testing.T) {
	d := blobs(400, 4, 12, 1)
	teacher, _ := NewNetwork([]int{12, 24, 16, 4}, ReLU, 9)
	if _, err := Train(teacher, d, Options{Epochs: 3, Batch: 32, LR: 1e-2, Threads: 2}); err != nil {
		t.Fatal(err)
	}
	for _, loss := range []string{"mse", "cosine"} {
		t.Run(loss, func(t *testing.T) {
			opts := DefaultOptions()
			opts.Steps, opts.Batch, opts.LR, opts.Threads = 40, 32, 1e-2, 2
			opts.HiddenLoss, opts.HiddenWeight, opts.HiddenTeacher = loss, 2, teacher
			a, _ := NewNetwork([]int{12, 8, 4}, ReLU, 1)
			if _, err := Train(a, d, opts); err != nil {
				t.Fatal(err)
			}
			b, _ := NewNetwork([]int{12, 8, 4}, ReLU, 1)
			opts.Checkpoint, opts.CheckpointEvery = filepath.Join(t.TempDir(), "h.ckpt"), 10
			if _, stopped := trainUntil(t, b, d, opts, 25); !stopped {
				t.Fatal("not interrupted")
			}
			opts.Resume = opts.Checkpoint
			if _, err := Train(b, d, opts); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(a.params, b.params) {
				t.Error("a resumed hidden-state run differs from an uninterrupted one")
			}
			plain, _ := NewNetwork([]int{12, 8, 4}, ReLU, 1)
			o := opts
			o.HiddenLoss, o.HiddenWeight, o.HiddenTeacher, o.Checkpoint, o.Resume = "", 0, nil, "", ""
			if _, err := Train(plain, d, o); err != nil {
				t.Fatal(err)
			}
			if slices.Equal(plain.params, a.params) {
				t.Error("the hidden-state loss changed nothing")
			}
			o.Resume = opts.Checkpoint
			if _, err := Train(plain, d, o); err == nil || !strings.Contains(err.Error(), "hidden loss") {
				t.Errorf("resuming a hidden-state run without one: %v", err)
			}
		})
	}
	n, _ := NewNetwork([]int{12, 8, 4}, ReLU, 1)
	other, _ := NewNetwork([]int{10, 8, 4}, ReLU, 1)
	flat, _ := NewNetwork([]int{12, 4}, ReLU, 1)
	for _, c := range []struct {
		edit func(o *Options)
		msg  string
	}{
		{func(o *Options) { o.HiddenTeacher = nil }, "needs HiddenTeacher"},
		{func(o *Options) { o.HiddenTeacher = other }, "takes 10 features"},
		{func(o *Options) { o.HiddenTeacher = flat }, "the teacher 0"},
		{func(o *Options) { o.HiddenLoss = "l2" }, "loss \"l2\""},
		{func(o *Options) { o.HiddenWeight = -1 }, "weight -1"},
		{func(o *Options) { o.HiddenLayers = []int{1} }, "student layer 1 of 1"},
		{func(o *Options) { o.HiddenLoss = "" }, "apply to a HiddenLoss"},
	} {
		o := DefaultOptions()
		o.Steps, o.Batch, o.HiddenLoss, o.HiddenWeight, o.HiddenTeacher = 1, 8, "mse", 1, teacher
		c.edit(&o)
		if _, err := Train(n, d, o); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%v; want %q", err, c.msg)
		}
	}
}

// TestHiddenLossPullsStates trains against a teacher's hidden layer of the
// same width with a heavy mean-square weight: the student's hidden outputs
// end much closer to the teacher's than without the loss.
func TestHiddenLossPullsStates(t *testing.T) {
	d := blobs(400, 4, 12, 1)
	teacher, _ := NewNetwork([]int{12, 8, 4}, GELU, 9)
	dist := func(n *Network) float64 {
		x := f64(d.X[:100*12])
		s := refHiddenStates(n.Sizes, n.Act, f64(n.params), x, 100)[0]
		h := refHiddenStates(teacher.Sizes, teacher.Act, f64(teacher.params), x, 100)[0]
		var q float64
		for i := range s {
			q += (s[i] - h[i]) * (s[i] - h[i])
		}
		return q / float64(len(s))
	}
	opts := DefaultOptions()
	opts.Steps, opts.Batch, opts.LR, opts.Threads = 60, 32, 1e-2, 2
	plain, _ := NewNetwork([]int{12, 8, 4}, GELU, 1)
	if _, err := Train(plain, d, opts); err != nil {
		t.Fatal(err)
	}
	opts.HiddenLoss, opts.HiddenWeight, opts.HiddenTeacher = "mse", 20, teacher
	pulled, _ := NewNetwork([]int{12, 8, 4}, GELU, 1)
	if _, err := Train(pulled, d, opts); err != nil {
		t.Fatal(err)
	}
	a, b := dist(plain), dist(pulled)
	t.Logf("mean squared distance to the teacher's hidden outputs: %.4f without, %.4f with the loss", a, b)
	if !(b < 0.5*a) {
		t.Errorf("the hidden-state loss left the distance at %.4f (%.4f without)", b, a)
	}
}
