package train

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/format/idx"
	"github.com/shrinkml/shrink/inference"
	"github.com/shrinkml/shrink/internal/gradcheck"
	"github.com/shrinkml/shrink/internal/shareddata"
)

// blobs returns n examples of k Gaussian clusters in dim features.
func blobs(n, k, dim int, seed uint64) Data {
	rng := rand.New(rand.NewPCG(seed, 9))
	centers := make([]float64, k*dim)
	for i := range centers {
		centers[i] = 2 * rng.NormFloat64()
	}
	d := Data{X: make([]float32, n*dim), Y: make([]int, n)}
	for t := range n {
		c := rng.IntN(k)
		d.Y[t] = c
		for j := range dim {
			d.X[t*dim+j] = float32(centers[c*dim+j] + 1.5*rng.NormFloat64())
		}
	}
	return d
}

func TestTrainLearnsBlobs(t *testing.T) {
	d := blobs(1200, 4, 20, 1)
	net, err := NewNetwork([]int{20, 32, 4}, ReLU, 3)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := net.Accuracy(d.X, d.Y, 1)
	opts := DefaultOptions()
	opts.Epochs, opts.Batch, opts.LR, opts.Threads = 4, 32, 3e-3, 2
	var losses []float64
	opts.OnStep = func(step, steps int, loss float64) { losses = append(losses, loss) }
	res, err := Train(net, d, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 4*(1200/32) || len(losses) != res.Steps || len(res.Epochs) != 4 || res.Examples != res.Steps*32 {
		t.Fatalf("result %+v, %d losses", res, len(losses))
	}
	first, last := res.Epochs[0].Loss, res.Epochs[3].Loss
	after, _ := net.Accuracy(d.X, d.Y, 1)
	t.Logf("loss %.4f -> %.4f, accuracy %.3f -> %.3f, %.0f examples/s", first, last, before, after, res.ExamplesPerS)
	if !(last < 0.5*first) || after < 0.9 {
		t.Errorf("loss %.4f -> %.4f, accuracy %.3f -> %.3f", first, last, before, after)
	}
}

// TestTrainFashionSubset trains a small MLP on 3,000 Fashion-MNIST images:
// the loss falls and the accuracy on 1,000 others rises well above chance.
func TestTrainFashionSubset(t *testing.T) {
	s, err := idx.LoadFashionMNIST(shareddata.FashionMNIST(t), idx.Test)
	if err != nil {
		t.Fatal(err)
	}
	tr, va := s.Slice(0, 3000), s.Slice(3000, 4000)
	d := Data{X: tr.Features(), Y: tr.Classes()}
	val := Data{X: va.Features(), Y: va.Classes()}
	net, _ := NewNetwork([]int{784, 32, 10}, ReLU, 1)
	opts := DefaultOptions()
	opts.Epochs, opts.Batch, opts.LR, opts.Val = 3, 64, 3e-3, &val
	res, err := Train(net, d, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range res.Epochs {
		t.Logf("epoch %d: loss %.4f, validation accuracy %.3f", e.Epoch, e.Loss, e.ValAccuracy)
	}
	if e := res.Epochs; !(e[2].Loss < e[0].Loss) || !(e[0].Loss < 1.5) || e[2].ValAccuracy < 0.7 {
		t.Errorf("epochs %+v", e)
	}
}

func TestTrainDeterministic(t *testing.T) {
	d := blobs(300, 3, 12, 2)
	run := func(threads int, seed uint64) []float32 {
		net, _ := NewNetwork([]int{12, 16, 8, 3}, GELU, seed)
		opts := DefaultOptions()
		opts.Epochs, opts.Batch, opts.Threads, opts.Seed = 2, 20, threads, seed
		d := d
		d.Soft = SoftTargets(d.X[:len(d.Y)*3], 3, 2) // any distributions will do
		if _, err := Train(net, d, opts); err != nil {
			t.Fatal(err)
		}
		return net.params
	}
	for _, threads := range []int{1, 2, 3} {
		a, b := run(threads, 4), run(threads, 4)
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				t.Fatalf("threads %d: parameter %d is %g, then %g", threads, i, a[i], b[i])
			}
		}
	}
	if slices.Equal(run(2, 4), run(2, 5)) {
		t.Errorf("seeds 4 and 5 trained the same weights")
	}
}

// TestShardsSumToBatchGradient checks that splitting a batch over goroutines
// changes the gradient by float32 rounding only.
func TestShardsSumToBatchGradient(t *testing.T) {
	d := blobs(50, 5, 30, 3)
	idx := make([]int, 37)
	for i := range idx {
		idx[i] = (i * 7) % 50
	}
	var first []float32
	for _, threads := range []int{1, 2, 4, 37} {
		net, _ := NewNetwork([]int{30, 40, 5}, ReLU, 1)
		opts := DefaultOptions()
		opts.Batch = len(idx)
		tr := newTrainer(net, opts, threads)
		tr.accumulate(d, idx)
		g := tr.work[0].grad
		if first == nil {
			first = slices.Clone(g)
			continue
		}
		for i := range g {
			if math.Abs(float64(g[i]-first[i])) > 1e-6*(1+math.Abs(float64(first[i]))) {
				t.Fatalf("threads %d: gradient %d is %g, with 1 thread %g", threads, i, g[i], first[i])
			}
		}
	}
}

func TestLearningRate(t *testing.T) {
	const steps, peak = 100, 1e-3
	for _, c := range []struct {
		step int
		want float64
	}{{0, peak / 10}, {4, peak / 2}, {9, peak}, {10, peak}, {99, 0}} {
		if got := LearningRate(c.step, steps, peak, 0.1); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("step %d: %g, want %g", c.step, got, c.want)
		}
	}
	mid := LearningRate(10+45, steps, peak, 0.1) // halfway down the cosine
	if math.Abs(mid-peak*0.5*(1+math.Cos(math.Pi*45/89))) > 1e-12 {
		t.Errorf("cosine: %g", mid)
	}
	if got := LearningRate(0, 1, peak, 0); got != peak {
		t.Errorf("one step: %g", got)
	}
}

func TestModelRoundTrip(t *testing.T) {
	net, _ := NewNetwork([]int{7, 5, 3}, GELU, 9)
	m := net.Model([]string{"a", "b", "c"})
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	back, err := FromModel(m)
	if err != nil || !slices.Equal(back.params, net.params) || back.Act != GELU {
		t.Fatalf("round trip: %v", err)
	}
	// The inference engine gives the same probabilities as the network's logits.
	x := gradcheck.F32(gradcheck.RandSlice(rand.New(rand.NewPCG(1, 1)), 7*300, 2))
	logits, _ := net.Logits(x, 3)
	one, _ := net.Logits(x, 1)
	if !slices.Equal(logits, one) {
		t.Errorf("Logits depends on the thread count")
	}
	mlp, err := inference.NewMLP(m, inference.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer mlp.Close()
	probs := make([]float32, 300*3)
	if err := mlp.Forward(x, probs); err != nil {
		t.Fatal(err)
	}
	p := SoftTargets(logits, 3, 1)
	for i := range p {
		if math.Abs(float64(p[i]-probs[i])) > 1e-6 {
			t.Fatalf("probability %d: %g here, %g from inference", i, p[i], probs[i])
		}
	}
	m.Config.Arch = "llama"
	if _, err := FromModel(m); err == nil {
		t.Errorf("a llama model: no error")
	}
}

func TestTrainErrors(t *testing.T) {
	net, _ := NewNetwork([]int{4, 3, 2}, ReLU, 1)
	d := Data{X: make([]float32, 40), Y: make([]int, 10)}
	for _, c := range []struct {
		edit func(*Options, *Data)
		msg  string
	}{
		{func(o *Options, d *Data) { d.X = d.X[:39] }, "feature values"},
		{func(o *Options, d *Data) { d.Y[3] = 2 }, "label 2 of example 3"},
		{func(o *Options, d *Data) { o.Batch = 11 }, "more than the 10 examples"},
		{func(o *Options, d *Data) { o.Epochs, o.Steps = 0, 0 }, "positive number"},
		{func(o *Options, d *Data) { o.Warmup = 1 }, "out of range"},
		{func(o *Options, d *Data) { d.Soft = make([]float32, 20); o.Alpha = 2 }, "alpha"},
		{func(o *Options, d *Data) { d.Soft = make([]float32, 19) }, "soft-target"},
	} {
		opts := DefaultOptions()
		opts.Batch = 5
		dd := d
		dd.Y = slices.Clone(d.Y)
		c.edit(&opts, &dd)
		if _, err := Train(net, dd, opts); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("error %v, want %q", err, c.msg)
		}
	}
	for _, c := range []struct {
		sizes []int
		act   Activation
	}{{[]int{3}, ReLU}, {[]int{3, 0}, ReLU}, {[]int{3, 2}, "tanh"}} {
		if _, err := NewNetwork(c.sizes, c.act, 1); err == nil {
			t.Errorf("NewNetwork(%v, %s): no error", c.sizes, c.act)
		}
	}
}

func TestTrainDiverges(t *testing.T) {
	d := blobs(64, 2, 4, 1)
	net, _ := NewNetwork([]int{4, 8, 2}, ReLU, 1)
	opts := DefaultOptions()
	opts.Batch, opts.Epochs, opts.LR, opts.Clip = 16, 4, 1e38, 0
	if _, err := Train(net, d, opts); err == nil || !strings.Contains(err.Error(), "the loss became") {
		t.Errorf("learning rate 1e38: error %v", err)
	}
	d.X[5] = float32(math.Inf(1))
	if _, err := Train(net, d, opts); err == nil || !strings.Contains(err.Error(), "feature 1 of example 1 is +Inf") {
		t.Errorf("a corrupt feature: error %v", err)
	}
}
