// Package distill trains a small MLP classifier (the student) to match a
// larger one (the teacher): the student learns from the teacher's softened
// class probabilities as well as from the labels (Hinton et al., 2015).
// GradualPrune and Finetune recover a pruned classifier's accuracy by
// training it with its zeros held fixed.
package distill

import (
	"fmt"

	"github.com/shrinkml/shrink/distill/train"
	"github.com/shrinkml/shrink/model"
)

// Options set up a distillation.
type Options struct {
	// Hidden are the student's hidden layer widths.
	Hidden []int
	// Activation is the student's; empty means the teacher's.
	Activation train.Activation
	// Train runs the student's training; its Temperature and Alpha weigh
	// the loss Alpha·T²·KL(teacher_T || student_T) + (1-Alpha)·CE(labels),
	// where _T is the softmax of the logits divided by T. A HiddenLoss
	// matches the teacher's hidden layers unless HiddenTeacher says otherwise.
	Train train.Options
	// Baseline also trains the same student from scratch on the labels
	// alone, with the same data, steps, seed and schedule.
	Baseline bool
}

// Result holds the students and how their training went.
type Result struct {
	Student *model.Model
	Train   train.Result
	// Scratch is the student trained on the labels alone (with Baseline).
	Scratch      *model.Model
	ScratchTrain *train.Result
}

// Distill trains a student of the teacher's input and class counts on the
// examples of d (its Soft is ignored): the teacher's logits for them are
// computed once, then softened by the temperature.
func Distill(teacher *model.Model, d train.Data, opts Options) (Result, error) {
	tn, err := train.FromModel(teacher)
	if err != nil {
		return Result{}, err
	}
	if len(d.Y) == 0 || len(d.X) != len(d.Y)*tn.Inputs() {
		return Result{}, fmt.Errorf("distill: %d feature values for %d examples; the teacher takes %d features", len(d.X), len(d.Y), tn.Inputs())
	}
	if !(opts.Train.Temperature > 0) {
		return Result{}, fmt.Errorf("distill: temperature %g; want more than 0", opts.Train.Temperature)
	}
	act := opts.Activation
	if act == "" {
		act = tn.Act
	}
	sizes := append(append([]int{tn.Inputs()}, opts.Hidden...), tn.Classes())
	var labels []string
	if teacher.Config.MLP != nil {
		labels = teacher.Config.MLP.Labels
	}

	logits, err := tn.Logits(d.X, opts.Train.Threads)
	if err != nil {
		return Result{}, err
	}
	soft := d
	soft.Soft = train.SoftTargets(logits, tn.Classes(), opts.Train.Temperature)
	student, err := train.NewNetwork(sizes, act, opts.Train.Seed)
	if err != nil {
		return Result{}, err
	}
	o := opts.Train
	if o.HiddenLoss != "" && o.HiddenTeacher == nil {
		o.HiddenTeacher = tn
	}
	var r Result
	if r.Train, err = train.Train(student, soft, o); err != nil {
		return Result{}, err
	}
	r.Student = student.Model(labels)

	if opts.Baseline {
		scratch, _ := train.NewNetwork(sizes, act, opts.Train.Seed)
		plain := d
		plain.Soft = nil
		so := opts.Train
		// The scratch run has no teacher to match states with, and must
		// not write over or resume from the distillation's checkpoint.
		so.HiddenLoss, so.HiddenWeight, so.HiddenTeacher, so.HiddenLayers, so.HiddenMap = "", 0, nil, nil, nil
		so.Checkpoint, so.CheckpointEvery, so.Resume = "", 0, ""
		res, err := train.Train(scratch, plain, so)
		if err != nil {
			return Result{}, err
		}
		r.Scratch, r.ScratchTrain = scratch.Model(labels), &res
	}
	return r, nil
}
