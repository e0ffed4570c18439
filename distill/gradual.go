package distill

import (
	"fmt"

	"github.com/shrinkml/shrink/distill/train"
	"github.com/shrinkml/shrink/model"
)

// RecoveryOptions set up GradualPrune and Finetune.
type RecoveryOptions struct {
	// Train runs the training; GradualPrune takes its schedule from
	// Train.Prune.
	Train train.Options
	// Teacher, when set, adds distillation from its soft targets to the
	// labels' loss, weighed by Train.Temperature and Train.Alpha as in
	// Distill; the dense model is the usual teacher of its pruned self.
	Teacher *model.Model
}

// Recovery is a pruned MLP classifier after its training.
type Recovery struct {
	Model *model.Model
	Train train.Result
	// Masked is how many weights were held at zero from the start: the
	// model's zeros.
	Masked int
	// LayerSparsity is the share of zero weights in each weight matrix,
	// Sparsity over all of them (biases are not counted).
	LayerSparsity []float64
	Sparsity      float64
}

// GradualPrune prunes the weight matrices of an MLP classifier by magnitude
// on the schedule opts.Train.Prune while training it on the examples of d,
// then trains the steps left with the masks fixed (Zhu & Gupta, 2017). Each
// matrix gets the schedule's sparsity, or with Prune.Global one threshold is
// set over all of them; biases are never pruned. Zeros the model already has
// stay zero.
func GradualPrune(m *model.Model, d train.Data, opts RecoveryOptions) (Recovery, error) {
	if opts.Train.Prune == nil {
		return Recovery{}, fmt.Errorf("prune %s: gradual pruning needs a schedule", m.Source)
	}
	return retrain(m, d, opts)
}

// Finetune trains a pruned MLP classifier on the examples of d with its zero
// weights (not biases) held at zero and their AdamW moments too, so that no
// pruned weight grows back.
func Finetune(m *model.Model, d train.Data, opts RecoveryOptions) (Recovery, error) {
	return retrain(m, d, opts)
}

// retrain masks the zeros of m and trains it with opts.
func retrain(m *model.Model, d train.Data, opts RecoveryOptions) (Recovery, error) {
	n, err := train.FromModel(m)
	if err != nil {
		return Recovery{}, err
	}
	if len(d.Y) == 0 || len(d.X) != len(d.Y)*n.Inputs() {
		return Recovery{}, fmt.Errorf("%s: %d feature values for %d examples; the model takes %d features", m.Source, len(d.X), len(d.Y), n.Inputs())
	}
	d.Soft = nil
	if opts.Teacher != nil {
		tn, err := train.FromModel(opts.Teacher)
		if err != nil {
			return Recovery{}, err
		}
		if tn.Inputs() != n.Inputs() || tn.Classes() != n.Classes() {
			return Recovery{}, fmt.Errorf("teacher %s maps %d features to %d classes, the model %d to %d",
				opts.Teacher.Source, tn.Inputs(), tn.Classes(), n.Inputs(), n.Classes())
		}
		if !(opts.Train.Temperature > 0) {
			return Recovery{}, fmt.Errorf("distill: temperature %g; want more than 0", opts.Train.Temperature)
		}
		logits, err := tn.Logits(d.X, opts.Train.Threads)
		if err != nil {
			return Recovery{}, err
		}
		d.Soft = train.SoftTargets(logits, tn.Classes(), opts.Train.Temperature)
	}
	r := Recovery{Masked: n.MaskZeros()}
	if r.Train, err = train.Train(n, d, opts.Train); err != nil {
		return Recovery{}, fmt.Errorf("%s: %w", m.Source, err)
	}
	r.LayerSparsity, r.Sparsity = n.Sparsity()
	r.Model = n.Model(m.Config.MLP.Labels)
	return r, nil
}
