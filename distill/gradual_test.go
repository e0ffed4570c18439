package distill

import (
	"math"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/distill/train"
	"github.com/shrinkml/shrink/model"
)

// TestGradualPruneRecovers prunes a trained classifier to 90% gradually, with
// and without itself as the teacher: each matrix ends at exactly 90%, and the
// accuracy stays close to the dense model's, far above one-shot pruning's.
// Fine-tuning the one-shot model then keeps its zeros and recovers too.
func TestGradualPruneRecovers(t *testing.T) {
	d := blobs(2000, 3, 8, 1)
	test := blobs(1000, 3, 8, 2)
	tm := teacher(t, d, 64)
	accuracy := func(m *model.Model) float64 {
		n, err := train.FromModel(m)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := n.Accuracy(test.X, test.Y, 1)
		return a
	}
	dense := accuracy(tm)
	once, _ := train.FromModel(tm)
	once.PruneMagnitude(0.9, false)
	oneShot := once.Model(nil)

	opts := train.DefaultOptions()
	opts.Steps, opts.Batch, opts.LR, opts.Threads = 300, 32, 3e-3, 2
	opts.Prune = &train.Schedule{Final: 0.9, Every: 10, Count: 15}
	for _, teach := range []*model.Model{nil, tm} {
		r, err := GradualPrune(tm, d, RecoveryOptions{Train: opts, Teacher: teach})
		if err != nil {
			t.Fatal(err)
		}
		for l, s := range r.LayerSparsity {
			n := len(r.Model.Tensor(model.MLPWeight(l)).Data) / 4
			if want := math.Round(0.9*float64(n)) / float64(n); s != want {
				t.Errorf("layer %d: sparsity %g, want %g", l, s, want)
			}
		}
		got := accuracy(r.Model)
		t.Logf("teacher %v: accuracy %.3f dense, %.3f one-shot, %.3f gradual", teach != nil, dense, accuracy(oneShot), got)
		if got < dense-0.05 || got < accuracy(oneShot) {
			t.Errorf("teacher %v: accuracy %.3f dense, %.3f one-shot, %.3f gradual", teach != nil, dense, accuracy(oneShot), got)
		}
	}

	opts.Prune = nil
	r, err := Finetune(oneShot, d, RecoveryOptions{Train: opts})
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for l := range len(once.Sizes) - 1 {
		want += int(math.Round(0.9 * float64(once.Sizes[l]*once.Sizes[l+1])))
	}
	if r.Masked != want {
		t.Errorf("%d weights masked, want the one-shot model's %d zeros", r.Masked, want)
	}
	before, _ := once.Sparsity()
	for l, s := range r.LayerSparsity {
		if s != before[l] {
			t.Errorf("layer %d: sparsity %g after fine-tuning, %g before", l, s, before[l])
		}
	}
	if a := accuracy(r.Model); a < accuracy(oneShot) {
		t.Errorf("fine-tuning took the accuracy from %.3f to %.3f", accuracy(oneShot), a)
	}

	if _, err := GradualPrune(tm, d, RecoveryOptions{Train: opts}); err == nil || !strings.Contains(err.Error(), "needs a schedule") {
		t.Errorf("no schedule: error %v", err)
	}
	small := blobs(10, 3, 4, 1)
	if _, err := Finetune(tm, small, RecoveryOptions{Train: opts}); err == nil || !strings.Contains(err.Error(), "the model takes 8 features") {
		t.Errorf("4 features: error %v", err)
	}
}
