package evalsuite

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/inference"
	"github.com/shrinkml/shrink/model"
)

// linearClassifier is a one-layer MLP whose logits are w·x: with w a scaled
// permutation matrix it predicts a known class for each one-hot input.
func linearClassifier(t *testing.T, perm []int) *inference.MLP {
	t.Helper()
	k := len(perm)
	w := make([]float32, k*k)
	for i, p := range perm {
		w[p*k+i] = 10 // input i votes for class perm[i]
	}
	m := &model.Model{Config: model.Config{Arch: "mlp", MLP: &model.MLPConfig{Sizes: []int{k, k}, Activation: "relu"}}}
	m.Tensors = append(m.Tensors, model.NewF32(model.MLPWeight(0), []int{k, k}, w), model.NewF32(model.MLPBias(0), []int{k}, make([]float32, k)))
	c, err := inference.NewMLP(m, inference.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestClassify(t *testing.T) {
	// Six examples whose hot inputs are 0,1,2,0,1,2, labelled 0,1,2,1,1,0.
	hot := []int{0, 1, 2, 0, 1, 2}
	labels := []int{0, 1, 2, 1, 1, 0}
	x := make([]float32, 6*3)
	for i, h := range hot {
		x[i*3+h] = 1
	}
	model := linearClassifier(t, []int{0, 1, 2}) // predicts 0,1,2,0,1,2
	ref := linearClassifier(t, []int{1, 0, 2})   // predicts 1,0,2,1,0,2
	batches := 0
	r, err := Classify(model, x, labels, ClassifyOptions{Batch: 4, OnBatch: func(n int) { batches += n }}, ref)
	if err != nil {
		t.Fatal(err)
	}
	if r.Examples != 6 || batches != 6 || math.Abs(r.Accuracy-4.0/6) > 1e-12 {
		t.Errorf("%d examples, %d in batches, accuracy %g; want 6, 6, 4/6", r.Examples, batches, r.Accuracy)
	}
	wantConf := [][]int{{1, 0, 1}, {1, 2, 0}, {0, 0, 1}}
	for i := range wantConf {
		if !slices.Equal(r.Confusion[i], wantConf[i]) {
			t.Errorf("confusion row %d: %v, want %v", i, r.Confusion[i], wantConf[i])
		}
	}
	if !slices.Equal(r.PerClassAccuracy, []float64{0.5, 2.0 / 3, 1}) || !slices.Equal(r.PerClassExamples, []int{2, 3, 1}) {
		t.Errorf("per class %v %v", r.PerClassAccuracy, r.PerClassExamples)
	}
	// The reference is right on examples 2 and 3; the two agree on 2 and 5.
	if c := r.Ref; c == nil || math.Abs(c.Accuracy-2.0/6) > 1e-12 || math.Abs(c.Agreement-2.0/6) > 1e-12 ||
		math.Abs(c.AccuracyChangePoints-100*2.0/6) > 1e-9 {
		t.Errorf("comparison %+v", r.Ref)
	}
	if !(r.ExamplesPerS > 0) {
		t.Errorf("examples/s %g", r.ExamplesPerS)
	}

	for _, c := range []struct {
		x      []float32
		labels []int
		ref    *inference.MLP
		msg    string
	}{
		{x[:17], labels, nil, "feature values"},
		{nil, nil, nil, "no examples"},
		{x, []int{0, 1, 2, 3, 1, 0}, nil, "label 3 of example 3"},
		{x, labels, linearClassifier(t, []int{0, 1, 2, 3}), "reference model maps 4 features"},
	} {
		if _, err := Classify(model, c.x, c.labels, ClassifyOptions{}, c.ref); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("error %v, want %q", err, c.msg)
		}
	}
}
