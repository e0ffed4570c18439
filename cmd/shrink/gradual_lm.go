package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/shrinkml/shrink/distill"
	"github.com/shrinkml/shrink/distill/lm"
	"github.com/shrinkml/shrink/format"
	"github.com/shrinkml/shrink/inference/tokenizer"
	"github.com/shrinkml/shrink/internal/progress"
	"github.com/shrinkml/shrink/model"
	"github.com/shrinkml/shrink/prune"
)

// lmRecoveryFlags are the flags of prune --gradual and finetune for a
// llama-family model.
type lmRecoveryFlags struct {
	text, heldout string
	ctx           int
}

// lmRecoveryOnly are the recovery flags an mlp classifier rejects, and
// mlpRecoveryOnly those a llama model rejects.
var (
	lmRecoveryOnly  = []string{"text", "heldout", "ctx"}
	mlpRecoveryOnly = []string{"data", "val", "limit", "epochs"}
)

// lmRecoverySteps is the default length of a llama model's recovery
// training, which starts from a trained model; its other defaults are
// lm.DefaultOptions'. On stories260K pruned gradually to 70% in 300 steps,
// lr 3e-3 left a held-out perplexity of 9.1, 1e-3 11.7 and 3e-4 18.8; 1e-2
// gave 8.4, but 3e-3 is kept as the rate training from scratch uses.
const lmRecoverySteps = 500

func (lf *lmRecoveryFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&lf.text, "text", "", "llama: the UTF-8 text file to train on")
	f.StringVar(&lf.heldout, "heldout", "", "llama: a text file to measure held-out perplexity on (default: the last 10% of --text)")
	f.IntVar(&lf.ctx, "ctx", 128, "llama: tokens per training window and evaluation window")
}

// lmRecoveryReport is the --json output of prune --gradual and finetune for
// a llama model. Schedule and one_shot_perplexity appear only with prune
// --gradual; teacher, temperature and alpha only with distillation;
// teacher_perplexity only with finetune --teacher.
type lmRecoveryReport struct {
	SchemaVersion int    `json:"schema_version"`
	Command       string `json:"command"`
	Arch          string `json:"arch"`
	Source        string `json:"source"`
	SourceKind    string `json:"source_format"`
	Dest          string `json:"dest"`
	DestKind      string `json:"dest_format"`
	FileBytes     int64  `json:"file_bytes"`

	Schedule    *scheduleReport `json:"schedule,omitempty"`
	Teacher     string          `json:"teacher,omitempty"`
	Temperature float64         `json:"temperature,omitempty"`
	Alpha       float64         `json:"alpha,omitempty"`

	Text          string    `json:"text"`
	Heldout       string    `json:"heldout"` // a file, or "last 10% of text"
	TrainTokens   int       `json:"train_tokens"`
	HeldoutTokens int       `json:"heldout_tokens"`
	Batch         int       `json:"batch"`
	Context       int       `json:"context"`
	LR            float64   `json:"lr"`
	Seed          uint64    `json:"seed"`
	Train         lm.Result `json:"train"`

	// MaskedAtStart is how many of the source's linear weights were zero
	// and held there from the first step.
	MaskedAtStart   int              `json:"masked_at_start"`
	Matrices        []matrixSparsity `json:"matrices"`
	Weights         int64            `json:"weights"`
	WeightsKept     int64            `json:"weights_kept"`
	ReachedSparsity float64          `json:"reached_sparsity"`

	LossBefore       float64 `json:"heldout_loss_before"`
	PerplexityBefore float64 `json:"heldout_perplexity_before"`
	// OneShotPerplexity is the source pruned by magnitude to the same
	// sparsity (and scope) at once, without training: what the training
	// recovered from.
	OneShotPerplexity *float64 `json:"one_shot_perplexity,omitempty"`
	TeacherPerplexity *float64 `json:"teacher_perplexity,omitempty"`
	Loss              float64  `json:"heldout_loss"`
	Perplexity        float64  `json:"heldout_perplexity"`
	TotalSeconds      float64  `json:"total_seconds"`
}

// runLM is prune --gradual or finetune on m, a llama-family model loaded
// from r.src. r.opts holds the flags shared with mlp classifiers; those left
// unset get the language model's defaults.
func (r *recoveryRun) runLM(cmd *cobra.Command, g *globalFlags, m *model.Model, srcKind format.Kind, start time.Time) error {
	fl := cmd.Flags()
	for _, name := range mlpRecoveryOnly {
		if fl.Changed(name) {
			return fmt.Errorf("--%s applies to an mlp classifier; %s is a llama model, trained on --text", name, r.src)
		}
	}
	opts, lf := r.opts, r.lf
	def := lm.DefaultOptions()
	lmDefaults(cmd, &opts, lmRecoverySteps, true)
	if opts.Steps < 1 {
		return fmt.Errorf("--steps %d: want at least 1", opts.Steps)
	}
	if err := checkOptimizerFlags(&opts); err != nil {
		return err
	}
	if err := checkSoftTargets(&opts); err != nil {
		return err
	}
	switch {
	case lf.text == "":
		return fmt.Errorf("--text is required with a llama model: the text to train on (%s is one)", r.src)
	case m.Tokenizer == nil:
		return fmt.Errorf("%s: the model has no tokenizer, so the text cannot be tokenized as it would be", r.src)
	case lf.ctx < 2 || lf.ctx > m.Config.ContextLength:
		return fmt.Errorf("--ctx %d: want 2 to the model's context of %d", lf.ctx, m.Config.ContextLength)
	}
	var ropts distill.LMRecoveryOptions
	rep := lmRecoveryReport{SchemaVersion: 1, Command: r.command, Arch: "llama", Source: r.src, SourceKind: string(srcKind),
		Dest: r.dst, DestKind: string(r.kind), Text: lf.text, Batch: opts.Batch, Context: lf.ctx, LR: opts.LR, Seed: opts.Seed}
	if r.gradual != nil {
		s, err := r.gradual.schedule(opts.Steps)
		if err != nil {
			return err
		}
		ropts.Train.Prune = s
		rep.Schedule = newScheduleReport(s)
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
		if tm.Config.Arch != "llama" {
			return fmt.Errorf("%s: the teacher of a llama model must be one, not %q", r.teacherPath, tm.Config.Arch)
		}
		if tm.Config.VocabSize != m.Config.VocabSize {
			return fmt.Errorf("%s: the teacher's vocabulary of %d differs from %s's %d", r.teacherPath, tm.Config.VocabSize, r.src, m.Config.VocabSize)
		}
		ropts.Teacher, rep.Teacher = tm, r.teacherPath
	}
	if ropts.Teacher != nil {
		rep.Temperature, rep.Alpha = opts.Temperature, opts.Alpha
	}

	trainText, heldText, heldName, err := splitText(lf.text, lf.heldout)
	if err != nil {
		return err
	}
	enc, err := tokenizer.New(m.Tokenizer)
	if err != nil {
		return fmt.Errorf("%s: %w", r.src, err)
	}
	trainToks, heldToks := enc.Encode(trainText, false), enc.Encode(heldText, false)
	bos := enc.BOS()
	rep.Heldout, rep.TrainTokens, rep.HeldoutTokens = heldName, len(trainToks), len(heldToks)
	score := func(m *model.Model, what string) (lm.Eval, error) {
		n, err := lm.FromModel(m)
		if err != nil {
			return lm.Eval{}, fmt.Errorf("%s: %w", what, err)
		}
		ev, err := lm.Evaluate(n, heldToks, lf.ctx, bos, opts.Threads)
		if err != nil {
			return lm.Eval{}, fmt.Errorf("%s on the held-out text: %w", what, err)
		}
		return ev, nil
	}
	before, err := score(m, r.src)
	if err != nil {
		return err
	}
	rep.LossBefore, rep.PerplexityBefore = before.Loss, before.Perplexity
	if s := ropts.Train.Prune; s != nil {
		scope := prune.PerTensor
		if s.Global {
			scope = prune.Global
		}
		once, _, err := prune.Prune(m, prune.Options{Method: prune.Magnitude, Sparsity: s.Final, Scope: scope, Threads: opts.Threads})
		if err != nil {
			return fmt.Errorf("%s: %w", r.src, err)
		}
		ev, err := score(once, "the one-shot pruned model")
		if err != nil {
			return err
		}
		rep.OneShotPerplexity = &ev.Perplexity
	}
	if r.teacherPath != "" {
		ev, err := score(ropts.Teacher, r.teacherPath)
		if err != nil {
			return err
		}
		rep.TeacherPerplexity = &ev.Perplexity
	}

	lo := def
	lo.Steps, lo.Batch, lo.Context = opts.Steps, opts.Batch, lf.ctx
	lo.LR, lo.WeightDecay, lo.Warmup, lo.Clip = opts.LR, opts.WeightDecay, opts.Warmup, opts.Clip
	lo.Temperature, lo.Alpha = opts.Temperature, opts.Alpha
	lo.BOS, lo.Seed, lo.Threads, lo.Prune = bos, opts.Seed, opts.Threads, ropts.Train.Prune
	lo.Checkpoint, lo.CheckpointEvery, lo.Resume = opts.Checkpoint, opts.CheckpointEvery, opts.Resume
	label := "finetune"
	if r.gradual != nil {
		label = "gradual"
	}
	perStep := int64(lo.Batch * lo.Context)
	bar := progress.New(label, int64(lo.Steps)*perStep, "tokens", g.quiet)
	smooth := -1.0
	lo.OnStep = func(s lm.Step) {
		if smooth < 0 {
			smooth = s.Loss
			bar.Add(int64(s.Step-1) * perStep) // a resumed run starts the bar where it stopped
		}
		smooth = 0.95*smooth + 0.05*s.Loss
		bar.Label(fmt.Sprintf("%s loss %.3f, %.0f tokens/s", label, smooth, s.TokensPerSec))
		bar.Add(perStep)
		trainStepHook(s.Step)
	}
	ropts.Train = lo
	var res distill.LMRecovery
	if r.gradual != nil {
		res, err = distill.GradualPruneLM(m, trainToks, ropts)
	} else {
		res, err = distill.FinetuneLM(m, trainToks, ropts)
	}
	bar.Finish()
	if err != nil {
		return err
	}
	rep.Train, rep.MaskedAtStart = res.Train, res.Masked
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
	after, err := score(saved, r.dst)
	if err != nil {
		return err
	}
	rep.Loss, rep.Perplexity = after.Loss, after.Perplexity
	if rep.FileBytes, err = format.DiskBytes(r.dst); err != nil {
		return err
	}
	rep.TotalSeconds = time.Since(start).Seconds()
	if g.json {
		return writeJSON(cmd.OutOrStdout(), rep)
	}
	return writeLMRecoveryTables(cmd, rep)
}

// countZeros fills in the sparsity of the written model's linear matrices.
func (rep *lmRecoveryReport) countZeros(m *model.Model) error {
	var names []string
	for l := range m.Config.NumLayers {
		for _, c := range matrixColumns {
			names = append(names, model.LayerTensor(l, c.suffix))
		}
	}
	var err error
	rep.Matrices, rep.Weights, rep.WeightsKept, rep.ReachedSparsity, err = countMatrixZeros(m, names)
	return err
}

// writeLMRecoveryTables prints the sparsity of every layer's matrices, then
// the summary.
func writeLMRecoveryTables(cmd *cobra.Command, r lmRecoveryReport) error {
	w := cmd.OutOrStdout()
	fmt.Fprintln(w, "sparsity per matrix")
	headers := []string{"layer"}
	for _, c := range matrixColumns {
		headers = append(headers, c.label)
	}
	var rows [][]string
	for i, ms := range r.Matrices {
		c := i % len(matrixColumns)
		if c == 0 {
			rows = append(rows, []string{strconv.Itoa(i / len(matrixColumns))})
		}
		rows[len(rows)-1] = append(rows[len(rows)-1], fmt.Sprintf("%.1f%%", 100*ms.Sparsity))
	}
	if err := writeTable(w, headers, rows, 1, 2, 3, 4, 5, 6, 7); err != nil {
		return err
	}

	rows = [][]string{
		{"source", fmt.Sprintf("%s (%s), llama", filepath.Base(r.Source), r.SourceKind)},
		{"output", fmt.Sprintf("%s (%s, %s on disk)", filepath.Base(r.Dest), r.DestKind, humanBytes(r.FileBytes))},
	}
	rows = append(rows, methodRows(r.Schedule, " of the linear matrices", r.MaskedAtStart, r.Teacher, r.Temperature, r.Alpha)...)
	rows = append(rows,
		[]string{"text", fmt.Sprintf("%s: %s training tokens; held out: %s, %s tokens", filepath.Base(r.Text), commas(int64(r.TrainTokens)), r.Heldout, commas(int64(r.HeldoutTokens)))},
		[]string{"steps", fmt.Sprintf("%s of %d windows of %d tokens, lr %g, seed %d", commas(int64(r.Train.Steps)), r.Batch, r.Context, r.LR, r.Seed)},
		[]string{"sparsity reached", fmt.Sprintf("%.2f%% of the linear matrices, %s of %s weights kept", 100*r.ReachedSparsity, commas(r.WeightsKept), commas(r.Weights))},
		[]string{"held-out perplexity before", fmt.Sprintf("%.4f", r.PerplexityBefore)},
	)
	if r.TeacherPerplexity != nil {
		rows = append(rows, []string{"teacher perplexity", fmt.Sprintf("%.4f", *r.TeacherPerplexity)})
	}
	if r.OneShotPerplexity != nil {
		rows = append(rows, []string{"one-shot magnitude", fmt.Sprintf("%.4f (same sparsity, no training)", *r.OneShotPerplexity)})
	}
	rows = append(rows,
		[]string{"held-out perplexity after", fmt.Sprintf("%.4f (%+.4f)", r.Perplexity, r.Perplexity-r.PerplexityBefore)},
		[]string{"training", fmt.Sprintf("%.1f s, %.0f tokens/s, %d threads; %.1f s in all", r.Train.Seconds, r.Train.TokensPerSec, r.Train.Threads, r.TotalSeconds)},
	)
	return writeTable(w, []string{"", "value"}, rows)
}
