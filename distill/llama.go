package distill

import (
	"fmt"

	"github.com/shrinkml/shrink/distill/lm"
	"github.com/shrinkml/shrink/model"
)

// LMOptions set up the distillation of a llama-family language model.
type LMOptions struct {
	// Student is the student's shape. Its Vocab is the teacher's; a zero
	// Context means the teacher's, RopeTheta and NormEps zero the teacher's.
	// It is ignored with EveryNth.
	Student lm.Config
	// EveryNth, when positive, builds the student from the teacher itself:
	// its layers 0, n, 2n, ... with the embedding, final norm and head, as
	// DistilBERT was initialized.
	EveryNth int
	// Train runs the student's training; its Temperature and Alpha weigh the
	// loss Alpha·T²·KL(teacher_T || student_T) + (1-Alpha)·CE(next tokens).
	// Its Teacher and TeacherLogits must be unset: the teacher is given to
	// DistillLM.
	Train lm.Options
	// Baseline also trains the same student shape from scratch, from seeded
	// random weights on the next tokens alone, with the same windows,
	// steps, seed and schedule (without Train's hidden-state loss and
	// checkpoints).
	Baseline bool
	// OnRun, when set, is called before each training run with "distill"
	// or "scratch".
	OnRun func(run string)
}

// LMResult holds the trained students and how their training went.
type LMResult struct {
	Student *lm.Model
	Train   lm.Result
	// Scratch is the student trained on the next tokens alone (Baseline).
	Scratch      *lm.Model
	ScratchTrain *lm.Result
}

// DistillLM trains a student language model on the token stream tokens to
// match teacher, whose next-token distributions are computed for every
// training window as the student sees it.
func DistillLM(teacher *model.Model, tokens []int, opts LMOptions) (LMResult, error) {
	if opts.Train.Teacher != nil || opts.Train.TeacherLogits != nil {
		return LMResult{}, fmt.Errorf("distill: the teacher is DistillLM's argument, not an option")
	}
	tm, err := lm.FromModel(teacher)
	if err != nil {
		return LMResult{}, err
	}
	var student *lm.Model
	if opts.EveryNth > 0 {
		if student, err = EveryNthLayer(tm, opts.EveryNth); err != nil {
			return LMResult{}, err
		}
	} else {
		cfg := opts.Student
		tc := tm.Config
		cfg.Vocab = tc.Vocab
		if cfg.Context == 0 {
			cfg.Context = tc.Context
		}
		if cfg.RopeTheta == 0 {
			cfg.RopeTheta = tc.RopeTheta
		}
		if cfg.NormEps == 0 {
			cfg.NormEps = tc.NormEps
		}
		if student, err = lm.New(cfg, opts.Train.Seed); err != nil {
			return LMResult{}, fmt.Errorf("distill: the student: %w", err)
		}
	}
	var r LMResult
	if opts.Baseline {
		// The scratch student is built first so that a shape error
		// surfaces before any training.
		r.Scratch, err = lm.New(student.Config, opts.Train.Seed)
		if err != nil {
			return LMResult{}, fmt.Errorf("distill: the student: %w", err)
		}
	}
	o := opts.Train
	o.Teacher = tm
	if opts.OnRun != nil {
		opts.OnRun("distill")
	}
	if r.Train, err = lm.Train(student, tokens, o); err != nil {
		return LMResult{}, err
	}
	r.Student = student
	if r.Scratch != nil {
		if opts.OnRun != nil {
			opts.OnRun("scratch")
		}
		so := opts.Train
		// The scratch run has no teacher to match states with, and must not
		// write over or resume from the distillation's checkpoint.
		so.HiddenLoss, so.HiddenWeight, so.HiddenLayers, so.HiddenMap = "", 0, nil, nil
		so.Checkpoint, so.CheckpointEvery, so.Resume = "", 0, ""
		res, err := lm.Train(r.Scratch, tokens, so)
		if err != nil {
			return LMResult{}, err
		}
		r.ScratchTrain = &res
	}
	return r, nil
}

// EveryNthLayer returns a copy of teacher that keeps its decoder layers 0, n,
// 2n, ... and its embedding, final norm and output head.
func EveryNthLayer(teacher *lm.Model, n int) (*lm.Model, error) {
	c := teacher.Config
	if n < 1 || n > c.Layers {
		return nil, fmt.Errorf("distill: keeping one layer in %d needs a teacher with at least %d layers; it has %d", n, n, c.Layers)
	}
	src := teacher.Model(nil)
	keep := (c.Layers + n - 1) / n
	dst := &model.Model{Config: src.Config, Metadata: src.Metadata}
	dst.Config.NumLayers = keep
	for _, t := range src.Tensors {
		l, rest, ok := model.ParseLayerTensor(t.Name)
		if !ok {
			dst.Tensors = append(dst.Tensors, t)
			continue
		}
		if l%n != 0 {
			continue
		}
		c := *t
		c.Name = model.LayerTensor(l/n, rest)
		dst.Tensors = append(dst.Tensors, &c)
	}
	return lm.FromModel(dst)
}
