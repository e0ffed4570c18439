package main

import (
	"fmt"
	"math"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/shrinkml/shrink/distill"
	"github.com/shrinkml/shrink/distill/train"
	"github.com/shrinkml/shrink/format"
	"github.com/shrinkml/shrink/format/idx"
	"github.com/shrinkml/shrink/model"
	"github.com/shrinkml/shrink/prune"
)

// recoveryReport is the --json output of prune --gradual and of finetune.
// Schedule and one_shot_accuracy appear only with prune --gradual, teacher,
// temperature and alpha only with distillation.
type recoveryReport struct {
	SchemaVersion int    `json:"schema_version"`
	Command       string `json:"command"`
	Source        string `json:"source"`
	SourceKind    string `json:"source_format"`
	Dest          string `json:"dest"`
	DestKind      string `json:"dest_format"`
	FileBytes     int64  `json:"file_bytes"`
	Sizes         []int  `json:"layer_sizes"`
	Activation    string `json:"activation"`

	Schedule    *scheduleReport `json:"schedule,omitempty"`
	Teacher     string          `json:"teacher,omitempty"`
	Temperature float64         `json:"temperature,omitempty"`
	Alpha       float64         `json:"alpha,omitempty"`

	Dataset       string       `json:"dataset"`
	DataDir       string       `json:"data_dir"`
	TrainExamples int          `json:"train_examples"`
	ValExamples   int          `json:"val_examples"`
	TestExamples  int          `json:"test_examples"`
	Batch         int          `json:"batch"`
	LR            float64      `json:"lr"`
	Seed          uint64       `json:"seed"`
	Train         train.Result `json:"train"`

	// MaskedAtStart is how many of the source's weights were zero and held
	// there from the first step.
	MaskedAtStart   int              `json:"masked_at_start"`
	Matrices        []matrixSparsity `json:"matrices"`
	Weights         int64            `json:"weights"`
	WeightsKept     int64            `json:"weights_kept"`
	ReachedSparsity float64          `json:"reached_sparsity"`

	AccuracyBefore float64 `json:"test_accuracy_before"`
	// OneShotAccuracy is the source pruned by magnitude to the same sparsity
	// (and scope) at once, without training: what the training recovered.
	OneShotAccuracy      *float64 `json:"one_shot_accuracy,omitempty"`
	Accuracy             float64  `json:"test_accuracy"`
	AccuracyChangePoints float64  `json:"accuracy_change_points"`
	ValAccuracy          float64  `json:"val_accuracy"`
	TotalSeconds         float64  `json:"total_seconds"`
}

// scheduleReport is the pruning schedule prune --gradual ran.
type scheduleReport struct {
	InitialSparsity float64 `json:"initial_sparsity"`
	FinalSparsity   float64 `json:"final_sparsity"`
	Start           int     `json:"start_step"`
	Every           int     `json:"every"`
	Count           int     `json:"count"`
	End             int     `json:"end_step"`
	Scope           string  `json:"scope"`
}

// matrixSparsity is one weight matrix of the output.
type matrixSparsity struct {
	Name     string  `json:"name"`
	Shape    []int   `json:"shape"`
	Params   int64   `json:"params"`
	Kept     int64   `json:"kept"`
	Sparsity float64 `json:"sparsity"`
}

// gradualFlags are prune --gradual's schedule flags.
type gradualFlags struct {
	initial, final     float64
	rampStart, rampEnd float64
	every, prunings    int
	global             bool
	selfDistill        bool
}

// defaultPrunings is how many pruning intervals the ramp is cut into when
// neither --prune-every nor --prunings is given.
const defaultPrunings = 30

// schedule turns the flags into a train.Schedule for a run of steps steps:
// the ramp runs from step round(start·steps) to round(end·steps), capped at
// the last step, in --prunings intervals or intervals of --prune-every steps.
func (f *gradualFlags) schedule(steps int) (*train.Schedule, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	s := &train.Schedule{Initial: f.initial, Final: f.final, Global: f.global,
		Start: min(int(math.Round(f.rampStart*float64(steps))), steps-1)}
	end := min(int(math.Round(f.rampEnd*float64(steps))), steps-1)
	span := end - s.Start
	switch {
	case f.every > 0:
		s.Every, s.Count = f.every, span/f.every
	case span == 0:
	default:
		n := f.prunings
		if n == 0 {
			n = defaultPrunings
		}
		s.Every = max(1, span/n)
		s.Count = span / s.Every
	}
	if s.Count == 0 {
		s.Every = 0
	}
	return s, nil
}

// check reports the first unusable schedule flag.
func (f *gradualFlags) check() error {
	switch {
	case !(f.initial >= 0 && f.initial <= f.final):
		return fmt.Errorf("--initial-sparsity %g: want a fraction from 0 to --sparsity %g", f.initial, f.final)
	case !(f.rampStart >= 0 && f.rampStart <= f.rampEnd && f.rampEnd <= 1):
		return fmt.Errorf("--ramp-start %g and --ramp-end %g: want shares of the steps with 0 <= start <= end <= 1", f.rampStart, f.rampEnd)
	case f.every < 0 || f.prunings < 0:
		return fmt.Errorf("--prune-every %d and --prunings %d must not be negative", f.every, f.prunings)
	case f.every > 0 && f.prunings > 0:
		return fmt.Errorf("--prune-every and --prunings both given: give one")
	}
	return nil
}

// recoveryRun is one prune --gradual or finetune.
type recoveryRun struct {
	command     string
	src, dst    string
	kind        format.Kind
	force       bool
	dense       bool
	lopts       format.LoadOptions
	td          trainData
	opts        train.Options
	gradual     *gradualFlags // nil for finetune
	teacherPath string        // finetune --teacher
	lf          lmRecoveryFlags
}

// run loads the model and the data, trains, writes DST and reports.
func (r *recoveryRun) run(cmd *cobra.Command, g *globalFlags) error {
	start := time.Now()
	m, srcKind, err := format.Load(r.src, r.lopts)
	if err != nil {
		return err
	}
	defer m.Close()
	switch m.Config.Arch {
	case "llama":
		return r.runLM(cmd, g, m, srcKind, start)
	case "mlp":
	default:
		return fmt.Errorf("%s: %s trains mlp classifiers and llama-family models, not %q models", r.src, r.command, m.Config.Arch)
	}
	for _, name := range lmRecoveryOnly {
		if cmd.Flags().Changed(name) {
			return fmt.Errorf("--%s applies to a llama model; %s is an mlp classifier, trained on --data", name, r.src)
		}
	}
	if r.kind != format.HF {
		return fmt.Errorf("%s: %s writes a Hugging Face folder; GGUF holds no mlp classifier", r.dst, r.command)
	}
	tr, val, dir, err := r.td.load()
	if err != nil {
		return err
	}
	test, _, err := loadPart(r.td.data, idx.Test)
	if err != nil {
		return err
	}
	if s := m.Config.MLP.Sizes; s[0] != tr.Rows*tr.Cols || s[len(s)-1] != len(idx.FashionMNISTClasses) {
		return fmt.Errorf("%s: the model maps %d features to %d classes; Fashion-MNIST has %d pixels and %d classes",
			r.src, s[0], s[len(s)-1], tr.Rows*tr.Cols, len(idx.FashionMNISTClasses))
	}
	steps := trainSteps(r.opts, tr.N)
	if steps == 0 {
		return fmt.Errorf("--batch %d is more than the %d training images", r.opts.Batch, tr.N)
	}
	rep := recoveryReport{SchemaVersion: 1, Command: r.command, Source: r.src, SourceKind: string(srcKind), Dest: r.dst, DestKind: string(r.kind),
		Sizes: m.Config.MLP.Sizes, Activation: m.Config.MLP.Activation, Dataset: fashionMNIST, DataDir: dir,
		TrainExamples: tr.N, ValExamples: val.N, TestExamples: test.N, Batch: r.opts.Batch, LR: r.opts.LR, Seed: r.opts.Seed}
	ropts := distill.RecoveryOptions{Train: r.opts}
	if r.gradual != nil {
		if ropts.Train.Prune, err = r.gradual.schedule(steps); err != nil {
			return err
		}
		rep.Schedule = newScheduleReport(ropts.Train.Prune)
		if r.gradual.selfDistill {
			ropts.Teacher, rep.Teacher = m, r.src
		}
	}
	if r.teacherPath != "" {
		tm, _, err := format.Load(r.teacherPath, r.lopts)
		if err != nil {
			return err
		}
		defer tm.Close()
		if tm.Config.Arch != "mlp" {
			return fmt.Errorf("%s: the teacher must be an mlp classifier, not %q", r.teacherPath, tm.Config.Arch)
		}
		ropts.Teacher, rep.Teacher = tm, r.teacherPath
	}
	if ropts.Teacher != nil {
		rep.Temperature, rep.Alpha = r.opts.Temperature, r.opts.Alpha
	}

	before, err := scoreMLP(m, test, r.opts.Threads, "before", g.quiet)
	if err != nil {
		return err
	}
	rep.AccuracyBefore = before.Accuracy
	if s := ropts.Train.Prune; s != nil {
		scope := prune.PerTensor
		if s.Global {
			scope = prune.Global
		}
		once, _, err := prune.Prune(m, prune.Options{Method: prune.Magnitude, Sparsity: s.Final, Scope: scope, Threads: r.opts.Threads})
		if err != nil {
			return fmt.Errorf("%s: %w", r.src, err)
		}
		c, err := scoreMLP(once, test, r.opts.Threads, "one-shot", g.quiet)
		if err != nil {
			return err
		}
		rep.OneShotAccuracy = &c.Accuracy
	}

	label := "finetune"
	if r.gradual != nil {
		label = "gradual"
	}
	bar := newTrainBar(label, steps, r.opts.Batch, g.quiet)
	ropts.Train.OnStep = func(step, steps int, loss float64) {
		bar.onStep(step, steps, loss)
		trainStepHook(step)
	}
	valData := toTrain(val)
	ropts.Train.Val = &valData
	var res distill.Recovery
	if r.gradual != nil {
		res, err = distill.GradualPrune(m, toTrain(tr), ropts)
	} else {
		res, err = distill.Finetune(m, toTrain(tr), ropts)
	}
	bar.finish()
	if err != nil {
		return err
	}
	rep.Train, rep.MaskedAtStart = res.Train, res.Masked
	if n := len(res.Train.Epochs); n > 0 {
		rep.ValAccuracy = res.Train.Epochs[n-1].ValAccuracy
	}
	if err := format.Save(r.src, r.dst, res.Model, saveOptions(r.kind, r.force, r.dense)); err != nil {
		return err
	}
	saved, _, err := format.Load(r.dst, format.LoadOptions{})
	if err != nil {
		return err
	}
	defer saved.Close()
	if err := rep.countZeros(saved); err != nil {
		return err
	}
	after, err := scoreMLP(saved, test, r.opts.Threads, "after", g.quiet)
	if err != nil {
		return err
	}
	rep.Accuracy = after.Accuracy
	rep.AccuracyChangePoints = 100 * (after.Accuracy - before.Accuracy)
	if rep.FileBytes, err = format.DiskBytes(r.dst); err != nil {
		return err
	}
	rep.TotalSeconds = time.Since(start).Seconds()
	if g.json {
		return writeJSON(cmd.OutOrStdout(), rep)
	}
	return writeRecoveryTable(cmd, rep)
}

// countZeros fills in the sparsity of the written model's weight matrices.
func (rep *recoveryReport) countZeros(m *model.Model) error {
	var names []string
	for l := range len(m.Config.MLP.Sizes) - 1 {
		names = append(names, model.MLPWeight(l))
	}
	var err error
	rep.Matrices, rep.Weights, rep.WeightsKept, rep.ReachedSparsity, err = countMatrixZeros(m, names)
	return err
}

// countMatrixZeros returns the sparsity of each named matrix of m, their
// weights and nonzero weights in all, and the share of zeros over them.
func countMatrixZeros(m *model.Model, names []string) (ms []matrixSparsity, weights, kept int64, sparsity float64, err error) {
	for _, name := range names {
		t := m.Tensor(name)
		if t == nil {
			return nil, 0, 0, 0, fmt.Errorf("%s: tensor %q is missing", m.Source, name)
		}
		v, err := t.Float32()
		if err != nil {
			return nil, 0, 0, 0, fmt.Errorf("%s: tensor %q: %w", m.Source, name, err)
		}
		s := matrixSparsity{Name: name, Shape: t.Shape, Params: int64(len(v))}
		for _, x := range v {
			if x != 0 {
				s.Kept++
			}
		}
		s.Sparsity = 1 - float64(s.Kept)/float64(s.Params)
		ms = append(ms, s)
		weights += s.Params
		kept += s.Kept
	}
	return ms, weights, kept, 1 - float64(kept)/float64(weights), nil
}

// newScheduleReport is the report of the pruning schedule s.
func newScheduleReport(s *train.Schedule) *scheduleReport {
	r := &scheduleReport{InitialSparsity: s.Initial, FinalSparsity: s.Final, Start: s.Start, Every: s.Every,
		Count: s.Count, End: s.End(), Scope: string(prune.PerTensor)}
	if s.Global {
		r.Scope = string(prune.Global)
	}
	return r
}

// methodRows are a recovery table's rows saying how the model was pruned or
// fine-tuned (what names the matrices pruned, or is empty) and distilled.
func methodRows(s *scheduleReport, what string, masked int, teacher string, temp, alpha float64) [][]string {
	var rows [][]string
	if s != nil {
		scope := "each matrix"
		if s.Scope == string(prune.Global) {
			scope = "one threshold over all matrices"
		}
		how := fmt.Sprintf("gradual magnitude, %.1f%% -> %.1f%%%s, %s", 100*s.InitialSparsity, 100*s.FinalSparsity, what, scope)
		when := fmt.Sprintf("before step %d only, then fixed", s.Start)
		if s.Count > 0 {
			when = fmt.Sprintf("before steps %d, %d, ..., %d (%d prunings, cubic), then fixed", s.Start, s.Start+s.Every, s.End, s.Count+1)
		}
		rows = append(rows, []string{"method", how}, []string{"schedule", when})
	} else {
		rows = append(rows, []string{"method", fmt.Sprintf("fine-tuning with %s zero weights held at zero", commas(int64(masked)))})
	}
	if teacher != "" {
		rows = append(rows, []string{"distillation", fmt.Sprintf("from %s, T %g, alpha %g", filepath.Base(teacher), temp, alpha)})
	}
	return rows
}

func writeRecoveryTable(cmd *cobra.Command, r recoveryReport) error {
	rows := [][]string{
		{"source", fmt.Sprintf("%s (%s), %v, %s", filepath.Base(r.Source), r.SourceKind, r.Sizes, r.Activation)},
		{"output", fmt.Sprintf("%s (%s, %s on disk)", filepath.Base(r.Dest), r.DestKind, humanBytes(r.FileBytes))},
	}
	rows = append(rows, methodRows(r.Schedule, "", r.MaskedAtStart, r.Teacher, r.Temperature, r.Alpha)...)
	rows = append(rows,
		[]string{"data", fmt.Sprintf("%s: %s train, %s validation, %s test images", filepath.Base(r.DataDir), commas(int64(r.TrainExamples)), commas(int64(r.ValExamples)), commas(int64(r.TestExamples)))},
		[]string{"steps", fmt.Sprintf("%s of %d examples, %d epochs, lr %g, seed %d", commas(int64(r.Train.Steps)), r.Batch, len(r.Train.Epochs), r.LR, r.Seed)},
	)
	for _, ms := range r.Matrices {
		rows = append(rows, []string{ms.Name + " " + shapeString(ms.Shape), fmt.Sprintf("%.2f%% sparse, %s of %s kept", 100*ms.Sparsity, commas(ms.Kept), commas(ms.Params))})
	}
	rows = append(rows,
		[]string{"sparsity reached", fmt.Sprintf("%.2f%% of the weight matrices, %s of %s weights kept", 100*r.ReachedSparsity, commas(r.WeightsKept), commas(r.Weights))},
		[]string{"test accuracy before", fmt.Sprintf("%.2f%%", 100*r.AccuracyBefore)},
	)
	if r.OneShotAccuracy != nil {
		rows = append(rows, []string{"one-shot magnitude", fmt.Sprintf("%.2f%% (same sparsity, no training)", 100**r.OneShotAccuracy)})
	}
	rows = append(rows,
		[]string{"test accuracy after", fmt.Sprintf("%.2f%% (%+.2f points)", 100*r.Accuracy, r.AccuracyChangePoints)},
		[]string{"validation accuracy", fmt.Sprintf("%.2f%%", 100*r.ValAccuracy)},
		[]string{"training", fmt.Sprintf("%.1f s, %.0f examples/s, %d threads; %.1f s in all", r.Train.Seconds, r.Train.ExamplesPerS, r.Train.Threads, r.TotalSeconds)},
	)
	return writeTable(cmd.OutOrStdout(), []string{"", "value"}, rows)
}
