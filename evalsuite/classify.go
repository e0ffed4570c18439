package evalsuite

import (
	"fmt"
	"time"

	"github.com/shrinkml/shrink/inference"
)

// ClassifyOptions sets up a classification measurement.
type ClassifyOptions struct {
	// Batch is how many examples one Predict call gets; 0 means 1000.
	Batch int
	// OnBatch, when set, is called after each batch with its size.
	OnBatch func(n int)
}

// Classification is what Classify found. Accuracies are fractions 0..1.
type Classification struct {
	Examples         int       `json:"test_examples"`
	Accuracy         float64   `json:"accuracy"`
	PerClassAccuracy []float64 `json:"per_class_accuracy"` // 0 for a class without examples
	PerClassExamples []int     `json:"per_class_examples"`
	// Confusion[i][j] counts the examples of class i predicted as class j.
	Confusion [][]int `json:"confusion"`
	// ExamplesPerS is the model's prediction rate over the whole set, the
	// reference model's time not counted.
	ExamplesPerS float64 `json:"examples_per_s"`

	// Ref compares the model with a reference model; nil without one.
	Ref *ClassComparison `json:"-"`
}

// ClassComparison compares a classifier with a reference classifier on the
// same examples.
type ClassComparison struct {
	Accuracy float64 `json:"ref_accuracy"`
	// Agreement is the share of examples both models put in the same class.
	Agreement float64 `json:"ref_agreement"`
	// AccuracyChangePoints is 100·(accuracy - reference accuracy).
	AccuracyChangePoints float64 `json:"accuracy_change_points"`
}

// Classify runs c over the examples in x (rows of c.Inputs() features) and
// scores its most probable class against labels; with a reference model it
// also measures how often the two agree.
func Classify(c *inference.MLP, x []float32, labels []int, opts ClassifyOptions, ref *inference.MLP) (Classification, error) {
	in, k := c.Inputs(), c.Classes()
	n := len(labels)
	switch {
	case len(x) != n*in:
		return Classification{}, fmt.Errorf("classify: %d feature values for %d examples of %d features", len(x), n, in)
	case n == 0:
		return Classification{}, fmt.Errorf("classify: no examples")
	case ref != nil && (ref.Inputs() != in || ref.Classes() != k):
		return Classification{}, fmt.Errorf("classify: the reference model maps %d features to %d classes, the model %d to %d",
			ref.Inputs(), ref.Classes(), in, k)
	}
	for i, l := range labels {
		if l < 0 || l >= k {
			return Classification{}, fmt.Errorf("classify: label %d of example %d is not one of the model's %d classes", l, i, k)
		}
	}
	batch := opts.Batch
	if batch <= 0 {
		batch = 1000
	}
	r := Classification{Examples: n, PerClassAccuracy: make([]float64, k), PerClassExamples: make([]int, k), Confusion: make([][]int, k)}
	for i := range r.Confusion {
		r.Confusion[i] = make([]int, k)
	}
	var (
		right, refRight, agree int
		elapsed                time.Duration
	)
	for s := 0; s < n; s += batch {
		e := min(s+batch, n)
		start := time.Now()
		pred, err := c.Predict(x[s*in : e*in])
		elapsed += time.Since(start)
		if err != nil {
			return Classification{}, fmt.Errorf("classify: %w", err)
		}
		var refPred []int
		if ref != nil {
			if refPred, err = ref.Predict(x[s*in : e*in]); err != nil {
				return Classification{}, fmt.Errorf("classify: reference model: %w", err)
			}
		}
		for i, p := range pred {
			l := labels[s+i]
			r.Confusion[l][p]++
			if p == l {
				right++
			}
			if refPred != nil {
				if refPred[i] == l {
					refRight++
				}
				if refPred[i] == p {
					agree++
				}
			}
		}
		if opts.OnBatch != nil {
			opts.OnBatch(e - s)
		}
	}
	r.Accuracy = float64(right) / float64(n)
	for i, row := range r.Confusion {
		for _, v := range row {
			r.PerClassExamples[i] += v
		}
		if r.PerClassExamples[i] > 0 {
			r.PerClassAccuracy[i] = float64(row[i]) / float64(r.PerClassExamples[i])
		}
	}
	if s := elapsed.Seconds(); s > 0 {
		r.ExamplesPerS = float64(n) / s
	}
	if ref != nil {
		r.Ref = &ClassComparison{Accuracy: float64(refRight) / float64(n), Agreement: float64(agree) / float64(n)}
		r.Ref.AccuracyChangePoints = 100 * (r.Accuracy - r.Ref.Accuracy)
	}
	return r, nil
}
