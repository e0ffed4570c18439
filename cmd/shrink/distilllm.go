package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/shrinkml/shrink/distill"
	"github.com/shrinkml/shrink/distill/lm"
	"github.com/shrinkml/shrink/distill/train"
	"github.com/shrinkml/shrink/evalsuite"
	"github.com/shrinkml/shrink/format"
	"github.com/shrinkml/shrink/inference/tokenizer"
	"github.com/shrinkml/shrink/internal/progress"
	"github.com/shrinkml/shrink/model"
)

// distillLMFlags are distill's flags for a llama-family teacher.
type distillLMFlags struct {
	text, heldout, fromTeacher  string
	dim, layers, heads, kvHeads int
	ctx                         int
	tied                        bool
}

// The distillation loss's defaults for a llama teacher (an MLP teacher's are
// train.DefaultOptions'): on stories260K they were the settings tried that
// beat training from scratch (see distill's help).
const (
	lmDistillTemperature = 1.0
	lmDistillAlpha       = 0.5
)

// lmDistillOnlyFlags are the flags an MLP teacher rejects, and
// mlpDistillOnlyFlags those a llama teacher rejects.
var (
	lmDistillOnlyFlags  = []string{"text", "heldout", "ctx", "student-dim", "student-layers", "student-heads", "student-kv-heads", "student-tied", "student-from-teacher"}
	mlpDistillOnlyFlags = []string{"data", "val", "limit", "epochs", "activation"}
)

func (lf *distillLMFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&lf.text, "text", "", "llama teacher: the UTF-8 text file to distill on")
	f.StringVar(&lf.heldout, "heldout", "", "llama teacher: a text file to measure held-out perplexity on (default: the last 10% of --text)")
	f.IntVar(&lf.ctx, "ctx", 128, "llama teacher: tokens per training window and evaluation window")
	f.IntVar(&lf.dim, "student-dim", 0, "llama teacher: the student's hidden size")
	f.IntVar(&lf.layers, "student-layers", 0, "llama teacher: the student's decoder layers")
	f.IntVar(&lf.heads, "student-heads", 4, "llama teacher: the student's attention heads")
	f.IntVar(&lf.kvHeads, "student-kv-heads", 2, "llama teacher: the student's key/value heads (a divisor of --student-heads)")
	f.BoolVar(&lf.tied, "student-tied", false, "llama teacher: the student shares its embedding with its output head")
	f.StringVar(&lf.fromTeacher, "student-from-teacher", "", `llama teacher: build the student from the teacher's own layers: "every-2nd-layer" (or every-3rd-layer, ...)`)
}

// lmDistillReport is distill's --json output for a llama teacher. Scratch and
// the gain appear only with --baseline.
type lmDistillReport struct {
	SchemaVersion int    `json:"schema_version"`
	Teacher       string `json:"teacher"`
	Student       string `json:"student"`
	Arch          string `json:"arch"`
	// StudentInit is "random" or "every-Nth-layer of the teacher".
	StudentInit string       `json:"student_init"`
	StudentCfg  studentShape `json:"student_shape"`

	Temperature  float64 `json:"temperature"`
	Alpha        float64 `json:"alpha"`
	HiddenLoss   string  `json:"hidden_loss,omitempty"`
	HiddenWeight float64 `json:"hidden_weight,omitempty"`
	Batch        int     `json:"batch"`
	Context      int     `json:"context"`
	LR           float64 `json:"lr"`
	Seed         uint64  `json:"seed"`

	Text          string `json:"text"`
	Heldout       string `json:"heldout"`
	TrainTokens   int    `json:"train_tokens"`
	HeldoutTokens int    `json:"heldout_tokens"`

	TeacherStats lmStats  `json:"teacher_stats"`
	StudentStats lmStats  `json:"student_stats"`
	ScratchStats *lmStats `json:"scratch_stats,omitempty"`
	// XSmaller is the teacher's parameters over the student's.
	XSmaller float64 `json:"x_smaller"`
	// PerplexityGain is the scratch student's held-out perplexity minus the
	// distilled one's: positive when distillation helped.
	PerplexityGain *float64 `json:"perplexity_gain,omitempty"`

	Train        lm.Result  `json:"train"`
	ScratchTrain *lm.Result `json:"scratch_train,omitempty"`
	TotalSeconds float64    `json:"total_seconds"`
}

// studentShape is a llama student's shape in distill's report.
type studentShape struct {
	Dim     int  `json:"dim"`
	Layers  int  `json:"layers"`
	Heads   int  `json:"heads"`
	KVHeads int  `json:"kv_heads"`
	Hidden  int  `json:"hidden"`
	Vocab   int  `json:"vocab"`
	Context int  `json:"context"`
	Tied    bool `json:"tied"`
}

// lmStats is one language model's column of distill's table.
type lmStats struct {
	HeldoutLoss       float64 `json:"heldout_loss"`
	Perplexity        float64 `json:"heldout_perplexity"`
	Params            int64   `json:"parameters"`
	WeightBytes       int64   `json:"weight_bytes"`
	DecodeTokensPerS  float64 `json:"decode_tokens_per_s"`
	PrefillTokensPerS float64 `json:"prefill_tokens_per_s"`
}

// parseEveryNth reads --student-from-teacher: every-2nd-layer and the like.
func parseEveryNth(s string) (int, error) {
	for n := 2; n <= 16; n++ {
		if s == "every-"+ordinal(n)+"-layer" {
			return n, nil
		}
	}
	return 0, fmt.Errorf(`--student-from-teacher %q: want every-2nd-layer, every-3rd-layer, ... every-16th-layer`, s)
}

func ordinal(n int) string {
	switch n % 10 {
	case 2:
		if n%100 != 12 {
			return fmt.Sprintf("%dnd", n)
		}
	case 3:
		if n%100 != 13 {
			return fmt.Sprintf("%drd", n)
		}
	}
	return fmt.Sprintf("%dth", n)
}

// distillLM is distill with a llama-family teacher. opts holds the flags
// shared with MLP distillation; those left unset get the language model's
// defaults.
func distillLM(cmd *cobra.Command, g *globalFlags, teacherPath string, tm *model.Model, out string,
	lf distillLMFlags, hidden []int, opts train.Options, baseline, force bool) error {
	fl := cmd.Flags()
	for _, name := range mlpDistillOnlyFlags {
		if fl.Changed(name) {
			return fmt.Errorf("--%s applies to an MLP teacher; %s is a llama model", name, teacherPath)
		}
	}
	def := lm.DefaultOptions()
	lmDefaults(cmd, &opts, def.Steps, true)
	if opts.Steps < 1 {
		return fmt.Errorf("--steps %d: want at least 1", opts.Steps)
	}
	if err := checkOptimizerFlags(&opts); err != nil {
		return err
	}
	if !(opts.Temperature > 0) || opts.Temperature > 100 {
		return fmt.Errorf("--temperature %g: want more than 0 and at most 100", opts.Temperature)
	}
	if !(opts.Alpha >= 0 && opts.Alpha <= 1) {
		return fmt.Errorf("--alpha %g: want a weight from 0 to 1", opts.Alpha)
	}
	if err := checkHiddenLoss(cmd, &opts.HiddenLoss, &opts.HiddenWeight); err != nil {
		return err
	}
	tc := tm.Config
	dopts := distill.LMOptions{Baseline: baseline}
	init := "random"
	switch {
	case lf.text == "":
		return fmt.Errorf("--text is required with a llama teacher: the text to distill on")
	case tm.Tokenizer == nil:
		return fmt.Errorf("%s: the teacher has no tokenizer, so the text cannot be tokenized as it would be", teacherPath)
	case lf.ctx < 2 || lf.ctx > tc.ContextLength:
		return fmt.Errorf("--ctx %d: want 2 to the teacher's context of %d", lf.ctx, tc.ContextLength)
	case lf.fromTeacher != "":
		for _, name := range []string{"student-dim", "student-layers", "student-heads", "student-kv-heads", "student-hidden", "student-tied"} {
			if fl.Changed(name) {
				return fmt.Errorf("--%s and --student-from-teacher: the student's shape is the teacher's; give one", name)
			}
		}
		n, err := parseEveryNth(lf.fromTeacher)
		if err != nil {
			return err
		}
		dopts.EveryNth, init = n, fmt.Sprintf("%s of the teacher", lf.fromTeacher)
	default:
		if lf.dim <= 0 || lf.layers <= 0 || len(hidden) != 1 {
			return fmt.Errorf("a llama student needs --student-dim, --student-layers and one --student-hidden (FFN width), or --student-from-teacher every-2nd-layer")
		}
		dopts.Student = lm.Config{Dim: lf.dim, Layers: lf.layers, Heads: lf.heads, KVHeads: lf.kvHeads,
			Hidden: hidden[0], Context: lf.ctx, Tied: lf.tied}
		c := dopts.Student
		c.Vocab, c.RopeTheta, c.NormEps = tc.VocabSize, tc.RopeTheta, tc.RMSNormEps
		if err := c.Check(); err != nil {
			return fmt.Errorf("--student-dim, --student-layers, --student-heads, --student-kv-heads, --student-hidden: %w", err)
		}
	}
	kind, err := format.ParseOutputKind("", out)
	if err != nil {
		return err
	}
	if err := checkOut(out, force); err != nil {
		return err
	}
	start := time.Now()
	trainText, heldText, heldName, err := splitText(lf.text, lf.heldout)
	if err != nil {
		return err
	}
	enc, err := tokenizer.New(tm.Tokenizer)
	if err != nil {
		return fmt.Errorf("%s: %w", teacherPath, err)
	}
	trainToks, heldToks := enc.Encode(trainText, false), enc.Encode(heldText, false)
	bos := enc.BOS()

	lo := def
	lo.Steps, lo.Batch, lo.Context = opts.Steps, opts.Batch, lf.ctx
	lo.LR, lo.WeightDecay, lo.Warmup, lo.Clip = opts.LR, opts.WeightDecay, opts.Warmup, opts.Clip
	lo.Temperature, lo.Alpha = opts.Temperature, opts.Alpha
	lo.HiddenLoss, lo.HiddenWeight = opts.HiddenLoss, opts.HiddenWeight
	lo.BOS, lo.Seed, lo.Threads = bos, opts.Seed, opts.Threads
	perStep := int64(lo.Batch * lo.Context)
	runs := int64(1)
	if baseline {
		runs = 2
	}
	bar := progress.New("distill", runs*int64(lo.Steps)*perStep, "tokens", g.quiet)
	label, smooth := "distill", -1.0
	dopts.OnRun = func(run string) { label, smooth = run, -1 }
	lo.OnStep = func(s lm.Step) {
		if smooth < 0 {
			smooth = s.Loss
		}
		smooth = 0.95*smooth + 0.05*s.Loss
		bar.Label(fmt.Sprintf("%s loss %.3f, %.0f tokens/s", label, smooth, s.TokensPerSec))
		bar.Add(perStep)
	}
	dopts.Train = lo
	r, err := distill.DistillLM(tm, trainToks, dopts)
	bar.Finish()
	if err != nil {
		return fmt.Errorf("%s: %w", teacherPath, err)
	}
	sm := r.Student.Model(tm.Tokenizer)
	if err := format.Save(teacherPath, out, sm, format.SaveOptions{To: kind, Force: force}); err != nil {
		return err
	}
	sm.Source = out

	rep := lmDistillReport{SchemaVersion: 1, Teacher: teacherPath, Student: out, Arch: "llama",
		StudentInit: init, StudentCfg: shapeOf(r.Student.Config),
		Temperature: lo.Temperature, Alpha: lo.Alpha, HiddenLoss: lo.HiddenLoss, HiddenWeight: lo.HiddenWeight, Batch: lo.Batch, Context: lo.Context, LR: lo.LR, Seed: lo.Seed,
		Text: lf.text, Heldout: heldName, TrainTokens: len(trainToks), HeldoutTokens: len(heldToks),
		XSmaller: float64(tm.Parameters()) / float64(sm.Parameters()), Train: r.Train, ScratchTrain: r.ScratchTrain}
	score := func(m *model.Model, what string) (lmStats, error) {
		tl, err := lm.FromModel(m)
		if err != nil {
			return lmStats{}, err
		}
		ev, err := lm.Evaluate(tl, heldToks, lf.ctx, bos, opts.Threads)
		if err != nil {
			return lmStats{}, fmt.Errorf("%s on the held-out text: %w", what, err)
		}
		half := max(1, min(64, m.Config.ContextLength/2))
		sp, err := evalsuite.MeasureSpeed(m, evalsuite.SpeedOptions{Threads: opts.Threads, PromptTokens: half,
			GenTokens: half, Seed: opts.Seed})
		if err != nil {
			return lmStats{}, fmt.Errorf("%s: %w", what, err)
		}
		return lmStats{HeldoutLoss: ev.Loss, Perplexity: ev.Perplexity, Params: m.Parameters(), WeightBytes: m.TensorBytes(),
			DecodeTokensPerS: sp.DecodeTokensPerS, PrefillTokensPerS: sp.PrefillTokensPerS}, nil
	}
	if rep.TeacherStats, err = score(tm, "the teacher"); err != nil {
		return err
	}
	if rep.StudentStats, err = score(sm, "the distilled student"); err != nil {
		return err
	}
	if r.Scratch != nil {
		scr := r.Scratch.Model(tm.Tokenizer)
		scr.Source = "the scratch student"
		s, err := score(scr, "the scratch student")
		if err != nil {
			return err
		}
		gain := s.Perplexity - rep.StudentStats.Perplexity
		rep.ScratchStats, rep.PerplexityGain = &s, &gain
	}
	rep.TotalSeconds = time.Since(start).Seconds()
	if g.json {
		return writeJSON(cmd.OutOrStdout(), rep)
	}
	return writeLMDistillTable(cmd, rep)
}

func shapeOf(c lm.Config) studentShape {
	return studentShape{Dim: c.Dim, Layers: c.Layers, Heads: c.Heads, KVHeads: c.KVHeads, Hidden: c.Hidden,
		Vocab: c.Vocab, Context: c.Context, Tied: c.Tied}
}

func writeLMDistillTable(cmd *cobra.Command, r lmDistillReport) error {
	w := cmd.OutOrStdout()
	headers := []string{"", "teacher", "distilled"}
	cols := []lmStats{r.TeacherStats, r.StudentStats}
	if r.ScratchStats != nil {
		headers = []string{"", "teacher", "scratch", "distilled"}
		cols = []lmStats{r.TeacherStats, *r.ScratchStats, r.StudentStats}
	}
	row := func(name string, f func(lmStats) string) []string {
		out := []string{name}
		for _, c := range cols {
			out = append(out, f(c))
		}
		return out
	}
	rows := [][]string{
		row("held-out perplexity", func(c lmStats) string { return fmt.Sprintf("%.3f", c.Perplexity) }),
		row("parameters", func(c lmStats) string { return commas(c.Params) }),
		row("weights", func(c lmStats) string { return humanBytes(c.WeightBytes) }),
		row("decode tokens/s", func(c lmStats) string { return fmt.Sprintf("%.0f", c.DecodeTokensPerS) }),
	}
	if err := writeTable(w, headers, rows, 1, 2, 3); err != nil {
		return err
	}
	c := r.StudentCfg
	fmt.Fprintf(w, "student %s: dim %d, %d layers, %d heads, %d kv heads, hidden %d (%s), %.1fx fewer parameters than %s\n",
		r.Student, c.Dim, c.Layers, c.Heads, c.KVHeads, c.Hidden, r.StudentInit, r.XSmaller, filepath.Base(r.Teacher))
	fmt.Fprintf(w, "%s steps of %d windows of %d tokens (%s training tokens, held out: %s, %s tokens), T %g, alpha %g, seed %d: %.1f s, %.0f tokens/s\n",
		commas(int64(r.Train.Steps)), r.Batch, r.Context, commas(int64(r.TrainTokens)), r.Heldout, commas(int64(r.HeldoutTokens)),
		r.Temperature, r.Alpha, r.Seed, r.Train.Seconds, r.Train.TokensPerSec)
	if r.PerplexityGain != nil {
		fmt.Fprintf(w, "distillation gain over scratch: %+.3f perplexity\n", *r.PerplexityGain)
	}
	return nil
}
