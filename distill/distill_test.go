package distill

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/distill/train"
	"github.com/shrinkml/shrink/format/idx"
	"github.com/shrinkml/shrink/internal/shareddata"
	"github.com/shrinkml/shrink/model"
)

// blobs returns n examples of k overlapping Gaussian clusters in dim
// features; the seed picks the points, not the centres.
func blobs(n, k, dim int, seed uint64) train.Data {
	crng := rand.New(rand.NewPCG(1, 1))
	centers := make([]float64, k*dim)
	for i := range centers {
		centers[i] = crng.NormFloat64()
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	d := train.Data{X: make([]float32, n*dim), Y: make([]int, n)}
	for t := range n {
		c := rng.IntN(k)
		d.Y[t] = c
		for j := range dim {
			d.X[t*dim+j] = float32(centers[c*dim+j] + 0.8*rng.NormFloat64())
		}
	}
	return d
}

func teacher(t *testing.T, d train.Data, hidden int) *model.Model {
	t.Helper()
	dim := len(d.X) / len(d.Y)
	net, err := train.NewNetwork([]int{dim, hidden, hidden, 3}, train.ReLU, 1)
	if err != nil {
		t.Fatal(err)
	}
	opts := train.DefaultOptions()
	opts.Epochs, opts.Batch, opts.LR = 8, 32, 3e-3
	if _, err := train.Train(net, d, opts); err != nil {
		t.Fatal(err)
	}
	return net.Model([]string{"in", "mid", "out"})
}

func TestDistill(t *testing.T) {
	d := blobs(2000, 3, 8, 1)
	test := blobs(1000, 3, 8, 2)
	tm := teacher(t, d, 64)
	tn, _ := train.FromModel(tm)
	tacc, _ := tn.Accuracy(test.X, test.Y, 1)

	opts := Options{Hidden: []int{4}, Train: train.DefaultOptions(), Baseline: true}
	opts.Train.Epochs, opts.Train.Batch, opts.Train.LR, opts.Train.Threads = 4, 32, 3e-3, 2
	r, err := Distill(tm, d, opts)
	if err != nil {
		t.Fatal(err)
	}
	if r.Scratch == nil || r.ScratchTrain == nil || r.Train.Steps != r.ScratchTrain.Steps {
		t.Fatalf("result %+v", r)
	}
	if got := r.Student.Config.MLP; !slices.Equal(got.Sizes, []int{8, 4, 3}) || got.Activation != "relu" || got.Labels[2] != "out" {
		t.Errorf("student config %+v", got)
	}
	sn, _ := train.FromModel(r.Student)
	sacc, _ := sn.Accuracy(test.X, test.Y, 1)
	t.Logf("teacher %.3f, student %.3f", tacc, sacc)
	if sacc < 0.6 {
		t.Errorf("the distilled student's accuracy is %.3f", sacc)
	}

	// With alpha 0 the teacher's targets weigh nothing: distilling is
	// training from scratch, to the bit.
	opts.Train.Alpha = 0
	r, err = Distill(tm, d, opts)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := train.FromModel(r.Student)
	b, _ := train.FromModel(r.Scratch)
	la, _ := a.Logits(test.X, 1)
	lb, _ := b.Logits(test.X, 1)
	if !slices.Equal(la, lb) {
		t.Errorf("alpha 0: the distilled student differs from the one trained from scratch")
	}
}

// TestDistillFashionSubset distills a small teacher trained on part of the
// Fashion-MNIST test images into a student of 16 hidden units.
func TestDistillFashionSubset(t *testing.T) {
	s, err := idx.LoadFashionMNIST(shareddata.FashionMNIST(t), idx.Test)
	if err != nil {
		t.Fatal(err)
	}
	tr, te := s.Slice(0, 3000), s.Slice(3000, 4000)
	d := train.Data{X: tr.Features(), Y: tr.Classes()}
	net, _ := train.NewNetwork([]int{784, 64, 10}, train.ReLU, 1)
	topts := train.DefaultOptions()
	topts.Epochs, topts.Batch, topts.LR = 3, 64, 3e-3
	if _, err := train.Train(net, d, topts); err != nil {
		t.Fatal(err)
	}
	opts := Options{Hidden: []int{16}, Train: topts}
	r, err := Distill(net.Model(idx.FashionMNISTClasses), d, opts)
	if err != nil {
		t.Fatal(err)
	}
	sn, _ := train.FromModel(r.Student)
	acc, _ := sn.Accuracy(te.Features(), te.Classes(), 0)
	t.Logf("student accuracy %.3f, epochs %+v", acc, r.Train.Epochs)
	if acc < 0.6 || r.Student.Parameters() != 784*16+16+16*10+10 {
		t.Errorf("accuracy %.3f, %d parameters", acc, r.Student.Parameters())
	}
}

func TestDistillErrors(t *testing.T) {
	d := blobs(100, 3, 8, 1)
	net, _ := train.NewNetwork([]int{8, 5, 3}, train.ReLU, 1)
	tm := net.Model(nil)
	opts := Options{Hidden: []int{4}, Train: train.DefaultOptions()}
	opts.Train.Batch = 10
	bad := d
	bad.X = bad.X[:80]
	for _, c := range []struct {
		m    *model.Model
		d    train.Data
		edit func(*Options)
		msg  string
	}{
		{tm, bad, func(*Options) {}, "the teacher takes 8 features"},
		{tm, d, func(o *Options) { o.Train.Temperature = 0 }, "temperature 0"},
		{tm, d, func(o *Options) { o.Hidden = []int{0} }, "out of range"},
		{&model.Model{Config: model.Config{Arch: "llama"}}, d, func(*Options) {}, "not an mlp"},
	} {
		o := opts
		c.edit(&o)
		if _, err := Distill(c.m, c.d, o); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("error %v, want %q", err, c.msg)
		}
	}
}
