package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/shrinkml/shrink/distill/lm"
	"github.com/shrinkml/shrink/distill/train"
	"github.com/shrinkml/shrink/format"
	"github.com/shrinkml/shrink/format/idx"
	"github.com/shrinkml/shrink/inference/tokenizer"
	"github.com/shrinkml/shrink/internal/progress"
	"github.com/shrinkml/shrink/model"
)

// trainReport is train's --json output.
type trainReport struct {
	SchemaVersion int    `json:"schema_version"`
	Model         string `json:"model"`
	Arch          string `json:"arch"`
	Sizes         []int  `json:"layer_sizes"`
	Activation    string `json:"activation"`
	Parameters    int64  `json:"parameters"`
	FileBytes     int64  `json:"file_bytes"`

	Dataset       string `json:"dataset"`
	DataDir       string `json:"data_dir"`
	TrainExamples int    `json:"train_examples"`
	ValExamples   int    `json:"val_examples"`
	TestExamples  int    `json:"test_examples"`

	Batch        int     `json:"batch"`
	LR           float64 `json:"lr"`
	Seed         uint64  `json:"seed"`
	train.Result         // steps, examples, threads, seconds and examples_per_s of the training, epochs
	ValAccuracy  float64 `json:"val_accuracy"`

	TestAccuracy     float64 `json:"test_accuracy"`
	TestExamplesPerS float64 `json:"test_examples_per_s"` // the inference engine's rate
	TotalSeconds     float64 `json:"total_seconds"`
}

func newTrainCmd(g *globalFlags) *cobra.Command {
	var (
		arch, act string
		hidden    []int
		td        trainData
		opts      = train.DefaultOptions()
		force     bool
		lf        lmFlags
	)
	cmd := &cobra.Command{
		Use:   "train OUT",
		Short: "Train an MLP classifier on Fashion-MNIST, or a small llama language model on text, from scratch",
		Long: `train builds an MLP classifier (--arch mlp, the default) or a llama-family
language model (--arch llama) with seeded random weights and trains it.

--arch mlp trains on Fashion-MNIST with mini-batch AdamW: a linear warm-up
over the first --warmup share of the steps, then a cosine decay to zero, the
gradient clipped to a global L2 norm of --clip, weight decay on the weights
(not the biases). The inputs are the 784 pixels scaled to [0, 1].

The last --val images of the 60,000 training images (of the first --limit,
when set) are held out: the validation accuracy after each epoch is
reported, and the model is the one after the last epoch. The test accuracy is
measured on the 10,000 test images by the inference engine, on the model as
written.

Each step splits its --batch examples over --threads goroutines and adds
their gradients in a fixed order, so the same --seed and --threads write the
same bytes. --data is a folder holding the IDX files, or fashion-mnist for
the folder Debian's dataset-fashion-mnist package installs.

OUT is a Hugging Face folder (config.json with model_type "mlp", and
model.safetensors) that every shrink command loads; it is written atomically
and replaced only with --force. --json prints the summary as one object with
test_accuracy, parameters, seconds, examples_per_s and a row per epoch.

--arch llama trains a decoder (RMSNorm, rotary attention with --kv-heads
grouped key/value heads, a SwiGLU block of --hidden units, tied embeddings
with --tied) on the UTF-8 text of --text. The last 10% of the file's bytes,
from the start of a line, are held out, unless --heldout names a separate
file, in which case all of --text is trained on. A BPE tokenizer of --vocab
tokens (SentencePiece-style with byte fallback, as llama2.c's) is trained on
the training text, or --tokenizer MODEL reuses that model's. Each of --steps
steps draws --batch windows of --ctx tokens at random offsets; each window
starts with the tokenizer's BOS token, as generation does. AdamW with
--weight-decay on the matrices, a linear warm-up over --warmup of the steps
then a cosine decay, and the gradient clipped to a norm of --clip; unless
set, --steps is 1000, --batch 16, --lr 3e-3, --weight-decay 0.1 and --warmup
0.05, and --hidden is 192. The held-out perplexity is reported before and
after training. Each step splits its windows over --threads goroutines and
adds their gradients in a fixed order, so the same --seed and --threads write
the same bytes. OUT is a GGUF
file (.gguf) or a Hugging Face folder, written atomically and replaced only
with --force; shrink run generates text with it.

--checkpoint FILE writes the run's state (weights, AdamW moments, masks, the
step and the progress) to FILE, atomically, every --checkpoint-every steps
and after the last. After an interruption, the same command with --resume
FILE continues from the last checkpoint and writes the same bytes as a run
that was never interrupted; a checkpoint written with other data, another
shape, or other --steps, --batch, --seed, --threads or optimizer flags is
refused with the setting that differs.`,
		Example: `  shrink train --arch mlp --hidden 1200,1200 --data fashion-mnist ./fmnist-teacher
  shrink train --hidden 256 --epochs 5 --threads 2 --seed 3 ./small --json
  shrink train --hidden 64 --limit 5000 --val 1000 --epochs 2 ./quick --data ./my-fashion-mnist
  shrink train --arch llama --text corpus.txt --vocab 512 --steps 2000 --threads 2 tiny.gguf
  shrink train --arch llama --text train.txt --heldout held.txt --dim 96 --heads 6 --kv-heads 2 --hidden 256 --ctx 256 lm.gguf
  shrink train --hidden 256 --epochs 20 --threads 2 --checkpoint run.ckpt --checkpoint-every 500 ./long
  shrink train --hidden 256 --epochs 20 --threads 2 --checkpoint run.ckpt --resume run.ckpt ./long`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := args[0]
			fl := cmd.Flags()
			if err := checkCheckpointFlags(fl.Changed("checkpoint-every"), &opts); err != nil {
				return err
			}
			switch arch {
			case "llama":
				for _, name := range []string{"data", "val", "limit", "epochs", "activation"} {
					if fl.Changed(name) {
						return fmt.Errorf("--%s applies to --arch mlp, not llama", name)
					}
				}
				return trainLM(cmd, g, out, lf, hidden, opts, force)
			case "mlp":
				for _, name := range lmOnlyFlags {
					if fl.Changed(name) {
						return fmt.Errorf("--%s applies to --arch llama, not mlp", name)
					}
				}
			default:
				return fmt.Errorf("--arch %q: want mlp or llama", arch)
			}
			if len(hidden) == 0 {
				return fmt.Errorf("--hidden: give at least one hidden layer width, e.g. --hidden 1200,1200")
			}
			for _, h := range hidden {
				if h <= 0 || h > 1<<16 {
					return fmt.Errorf("--hidden %d: a width from 1 to %d", h, 1<<16)
				}
			}
			if err := checkTrainFlags(&opts, act, td); err != nil {
				return err
			}
			if err := checkOut(out, force); err != nil {
				return err
			}
			start := time.Now()
			tr, val, dir, err := td.load()
			if err != nil {
				return err
			}
			test, _, err := loadPart(td.data, idx.Test)
			if err != nil {
				return err
			}
			sizes := append(append([]int{tr.Rows * tr.Cols}, hidden...), len(idx.FashionMNISTClasses))
			net, err := train.NewNetwork(sizes, train.Activation(act), opts.Seed)
			if err != nil {
				return err
			}
			steps := trainSteps(opts, tr.N)
			if steps == 0 {
				return fmt.Errorf("--batch %d is more than the %d training images", opts.Batch, tr.N)
			}
			bar := newTrainBar("train", steps, opts.Batch, g.quiet)
			opts.OnStep = func(step, steps int, loss float64) {
				bar.onStep(step, steps, loss)
				trainStepHook(step)
			}
			valData := toTrain(val)
			opts.Val = &valData
			res, err := train.Train(net, toTrain(tr), opts)
			bar.finish()
			if err != nil {
				return err
			}
			m := net.Model(idx.FashionMNISTClasses)
			if err := format.Save("", out, m, format.SaveOptions{To: format.HF, Force: force}); err != nil {
				return err
			}
			saved, _, err := format.Load(out, format.LoadOptions{})
			if err != nil {
				return err
			}
			defer saved.Close()
			score, err := scoreMLP(saved, test, opts.Threads, "test", g.quiet)
			if err != nil {
				return err
			}
			disk, err := format.DiskBytes(out)
			if err != nil {
				return err
			}
			rep := trainReport{SchemaVersion: 1, Model: out, Arch: arch, Sizes: sizes, Activation: act,
				Parameters: saved.Parameters(), FileBytes: disk, Dataset: fashionMNIST, DataDir: dir,
				TrainExamples: tr.N, ValExamples: val.N, TestExamples: test.N,
				Batch: opts.Batch, LR: opts.LR, Seed: opts.Seed, Result: res,
				TestAccuracy: score.Accuracy, TestExamplesPerS: score.ExamplesPerS, TotalSeconds: time.Since(start).Seconds()}
			if n := len(res.Epochs); n > 0 {
				rep.ValAccuracy = res.Epochs[n-1].ValAccuracy
			}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			return writeTrainTable(cmd, rep)
		},
	}
	f := cmd.Flags()
	f.StringVar(&arch, "arch", "mlp", "architecture: mlp (classifier) or llama (language model)")
	f.IntSliceVar(&hidden, "hidden", []int{1200, 1200}, "hidden layer widths (mlp), or the one FFN width (llama, default 192)")
	f.StringVar(&act, "activation", "relu", "activation between layers: relu or gelu")
	addTrainFlags(cmd, &opts, &td)
	f.IntVar(&opts.Epochs, "epochs", 15, "passes over the training images (ignored with --steps)")
	f.BoolVar(&force, "force", false, "replace OUT if it exists")
	f.BoolVar(&g.json, "json", false, "print the summary as JSON")
	addCheckpointFlags(cmd, &opts)
	lf.add(cmd)
	return cmd
}

// addCheckpointFlags adds the flags of a training run's checkpoints:
// --checkpoint, --checkpoint-every and --resume.
func addCheckpointFlags(cmd *cobra.Command, opts *train.Options) {
	f := cmd.Flags()
	f.StringVar(&opts.Checkpoint, "checkpoint", "", "write the run's state to this file as it trains, for --resume")
	f.IntVar(&opts.CheckpointEvery, "checkpoint-every", 100, "steps between --checkpoint writes (0: only after the last)")
	f.StringVar(&opts.Resume, "resume", "", "continue the run a --checkpoint file holds; give the flags it was started with")
}

// trainStepHook is called after each training step of train, prune --gradual
// and finetune; it runs afterTrainStep when a test has set it.
func trainStepHook(step int) {
	if afterTrainStep != nil {
		afterTrainStep(step)
	}
}

// afterTrainStep, when set, is called after each of train's steps: tests
// stop a run there as an interruption would.
var afterTrainStep func(step int)

// checkCheckpointFlags reports unusable --checkpoint, --checkpoint-every and
// --resume flags before any work: the checkpoint's folder must exist and the
// file to resume from must.
func checkCheckpointFlags(everySet bool, opts *train.Options) error {
	switch {
	case everySet && opts.Checkpoint == "":
		return fmt.Errorf("--checkpoint-every applies to --checkpoint FILE; give one")
	case opts.CheckpointEvery < 0:
		return fmt.Errorf("--checkpoint-every %d must not be negative", opts.CheckpointEvery)
	}
	if opts.Checkpoint != "" {
		if st, err := os.Stat(filepath.Dir(opts.Checkpoint)); err != nil || !st.IsDir() {
			return fmt.Errorf("--checkpoint %s: the folder %s does not exist", opts.Checkpoint, filepath.Dir(opts.Checkpoint))
		}
	}
	if opts.Resume != "" {
		if _, err := os.Stat(opts.Resume); err != nil {
			return fmt.Errorf("--resume: %w", err)
		}
	}
	return nil
}

// addTrainFlags adds the flags train and distill share.
func addTrainFlags(cmd *cobra.Command, opts *train.Options, td *trainData) {
	f := cmd.Flags()
	f.StringVar(&td.data, "data", fashionMNIST, "the data set: fashion-mnist, or a folder holding its IDX files")
	f.IntVar(&td.val, "val", 6000, "training images held out for validation (the last ones)")
	f.IntVar(&td.limit, "limit", 0, "use only the first N training images (0: all)")
	f.IntVar(&opts.Steps, "steps", 0, "optimizer steps (0: --epochs passes)")
	f.IntVar(&opts.Batch, "batch", opts.Batch, "examples per step")
	f.Float64Var(&opts.LR, "lr", opts.LR, "peak learning rate")
	f.Float64Var(&opts.WeightDecay, "weight-decay", opts.WeightDecay, "AdamW weight decay")
	f.Float64Var(&opts.Warmup, "warmup", opts.Warmup, "share of the steps spent warming the learning rate up")
	f.Float64Var(&opts.Clip, "clip", opts.Clip, "clip the gradient to this global L2 norm (0: never)")
	f.Uint64Var(&opts.Seed, "seed", opts.Seed, "seeds the initial weights and the order of the examples")
	f.IntVar(&opts.Threads, "threads", 0, "threads a batch is split over (default: every core)")
}

// checkTrainFlags reports the first unusable training flag.
func checkTrainFlags(opts *train.Options, act string, td trainData) error {
	switch {
	case act != "" && act != string(train.ReLU) && act != string(train.GELU):
		return fmt.Errorf("--activation %q: want relu or gelu", act)
	case opts.Epochs < 0 || opts.Steps < 0 || (opts.Epochs == 0 && opts.Steps == 0):
		return fmt.Errorf("--epochs %d and --steps %d: give a positive number of one", opts.Epochs, opts.Steps)
	}
	if err := checkOptimizerFlags(opts); err != nil {
		return err
	}
	return td.check()
}

// checkOptimizerFlags reports the first unusable flag of the optimizer and
// its schedule, which MLP and llama training share.
func checkOptimizerFlags(opts *train.Options) error {
	switch {
	case opts.Batch < 1:
		return fmt.Errorf("--batch %d: must be at least 1", opts.Batch)
	case !(opts.LR > 0) || opts.LR > 1:
		return fmt.Errorf("--lr %g: want a rate above 0 and at most 1", opts.LR)
	case opts.WeightDecay < 0:
		return fmt.Errorf("--weight-decay %g must not be negative", opts.WeightDecay)
	case opts.Warmup < 0 || opts.Warmup >= 1:
		return fmt.Errorf("--warmup %g: want a share from 0 to below 1", opts.Warmup)
	case opts.Clip < 0:
		return fmt.Errorf("--clip %g must not be negative", opts.Clip)
	case opts.Threads < 0:
		return fmt.Errorf("--threads %d must not be negative", opts.Threads)
	}
	return nil
}

// checkSoftTargets reports unusable distillation weights: a temperature
// above 0 and at most 100, and alpha from 0 to 1.
func checkSoftTargets(opts *train.Options) error {
	if !(opts.Temperature > 0) || opts.Temperature > 100 || !(opts.Alpha >= 0 && opts.Alpha <= 1) {
		return fmt.Errorf("--temperature %g and --alpha %g: want a temperature above 0 and at most 100, alpha from 0 to 1", opts.Temperature, opts.Alpha)
	}
	return nil
}

// trainSteps is how many steps train.Train will run on n examples.
func trainSteps(opts train.Options, n int) int {
	if opts.Steps > 0 {
		return opts.Steps
	}
	return opts.Epochs * (n / opts.Batch)
}

func writeTrainTable(cmd *cobra.Command, r trainReport) error {
	rows := [][]string{
		{"model", r.Model},
		{"layers", fmt.Sprintf("%v, %s", r.Sizes, r.Activation)},
		{"parameters", commas(r.Parameters)},
		{"file", humanBytes(r.FileBytes)},
		{"data", fmt.Sprintf("%s: %s train, %s validation, %s test images", filepath.Base(r.DataDir), commas(int64(r.TrainExamples)), commas(int64(r.ValExamples)), commas(int64(r.TestExamples)))},
		{"steps", fmt.Sprintf("%s of %d examples, %d epochs, lr %g, seed %d", commas(int64(r.Steps)), r.Batch, len(r.Epochs), r.LR, r.Seed)},
	}
	for _, e := range r.Epochs {
		rows = append(rows, []string{fmt.Sprintf("epoch %d", e.Epoch), fmt.Sprintf("loss %.4f, validation accuracy %.2f%%", e.Loss, 100*e.ValAccuracy)})
	}
	rows = append(rows,
		[]string{"test accuracy", fmt.Sprintf("%.2f%%", 100*r.TestAccuracy)},
		[]string{"training", fmt.Sprintf("%.1f s, %.0f examples/s, %d threads", r.Seconds, r.ExamplesPerS, r.Threads)},
		[]string{"inference", fmt.Sprintf("%.0f examples/s", r.TestExamplesPerS)},
	)
	return writeTable(cmd.OutOrStdout(), []string{"", "value"}, rows)
}

// checkOut fails before the work, not after it, when OUT cannot be written.
func checkOut(out string, force bool) error {
	if err := refuseExisting(out, force); err != nil {
		return err
	}
	if st, err := os.Stat(filepath.Dir(out)); err != nil || !st.IsDir() {
		return fmt.Errorf("%s: the folder %s does not exist", out, filepath.Dir(out))
	}
	return nil
}

// lmFlags are train's flags for --arch llama.
type lmFlags struct {
	text, heldout, tokenizer         string
	vocab, dim, layers, heads, kvHds int
	ctx                              int
	tied                             bool
}

// lmOnlyFlags are the flags --arch mlp rejects.
var lmOnlyFlags = []string{"text", "heldout", "tokenizer", "vocab", "dim", "layers", "heads", "kv-heads", "ctx", "tied"}

func (lf *lmFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&lf.text, "text", "", "llama: the UTF-8 text file to train on")
	f.StringVar(&lf.heldout, "heldout", "", "llama: a text file to measure held-out perplexity on (default: the last 10% of --text)")
	f.StringVar(&lf.tokenizer, "tokenizer", "", "llama: reuse this model's tokenizer instead of training one")
	f.IntVar(&lf.vocab, "vocab", 512, "llama: size of the trained BPE vocabulary")
	f.IntVar(&lf.dim, "dim", 64, "llama: hidden size")
	f.IntVar(&lf.layers, "layers", 4, "llama: decoder layers")
	f.IntVar(&lf.heads, "heads", 4, "llama: attention heads")
	f.IntVar(&lf.kvHds, "kv-heads", 2, "llama: key/value heads (a divisor of --heads)")
	f.IntVar(&lf.ctx, "ctx", 128, "llama: context length, the tokens of each training window")
	f.BoolVar(&lf.tied, "tied", false, "llama: share the token embedding with the output head")
}

// lmTrainReport is train --arch llama's --json output.
type lmTrainReport struct {
	SchemaVersion int    `json:"schema_version"`
	Model         string `json:"model"`
	Arch          string `json:"arch"`
	Dim           int    `json:"dim"`
	Layers        int    `json:"layers"`
	Heads         int    `json:"heads"`
	KVHeads       int    `json:"kv_heads"`
	Hidden        int    `json:"hidden"`
	Vocab         int    `json:"vocab"`
	Context       int    `json:"context"`
	Tied          bool   `json:"tied"`
	Parameters    int64  `json:"parameters"`
	FileBytes     int64  `json:"file_bytes"`

	Text          string `json:"text"`
	Heldout       string `json:"heldout"`   // a file, or "last 10% of text"
	Tokenizer     string `json:"tokenizer"` // "trained", or the model it came from
	TrainBytes    int    `json:"train_bytes"`
	HeldoutBytes  int    `json:"heldout_bytes"`
	TrainTokens   int    `json:"train_tokens"`
	HeldoutTokens int    `json:"heldout_tokens"`

	Batch     int     `json:"batch"`
	LR        float64 `json:"lr"`
	Seed      uint64  `json:"seed"`
	lm.Result         // steps, tokens, threads, seconds, tokens_per_s, first_loss, last_loss

	HeldoutLossBefore float64 `json:"heldout_loss_before"`
	HeldoutLossAfter  float64 `json:"heldout_loss_after"`
	PerplexityBefore  float64 `json:"heldout_perplexity_before"`
	PerplexityAfter   float64 `json:"heldout_perplexity_after"`
	TotalSeconds      float64 `json:"total_seconds"`
}

// trainLM is train --arch llama. opts holds the flags shared with --arch mlp;
// those left unset get the language model's defaults.
func trainLM(cmd *cobra.Command, g *globalFlags, out string, lf lmFlags, hidden []int, opts train.Options, force bool) error {
	fl := cmd.Flags()
	def := lm.DefaultOptions()
	ffn := 192
	if fl.Changed("hidden") {
		if len(hidden) != 1 {
			return fmt.Errorf("--hidden %v: --arch llama takes one FFN width", hidden)
		}
		ffn = hidden[0]
	}
	lmDefaults(cmd, &opts, def.Steps, false)
	cfg := lm.Config{Dim: lf.dim, Layers: lf.layers, Heads: lf.heads, KVHeads: lf.kvHds, Hidden: ffn,
		Vocab: lf.vocab, Context: lf.ctx, RopeTheta: 10000, NormEps: 1e-5, Tied: lf.tied}
	switch {
	case lf.text == "":
		return fmt.Errorf("--text is required with --arch llama: the text file to train on")
	case lf.tokenizer != "" && fl.Changed("vocab"):
		return fmt.Errorf("--vocab and --tokenizer: the vocabulary is the tokenizer's; give one")
	case lf.tokenizer == "" && lf.vocab < lm.MinVocab:
		return fmt.Errorf("--vocab %d: want at least %d (3 special tokens, 256 byte tokens and U+2581)", lf.vocab, lm.MinVocab)
	case opts.Steps < 1:
		return fmt.Errorf("--steps %d: want at least 1", opts.Steps)
	}
	if err := checkOptimizerFlags(&opts); err != nil {
		return err
	}
	if lf.ctx < 2 || lf.ctx > 1<<16 {
		return fmt.Errorf("--ctx %d: want 2 to %d", lf.ctx, 1<<16)
	}
	if cfg.Vocab < lm.MinVocab {
		cfg.Vocab = lm.MinVocab // checked for real once the tokenizer is known
	}
	if err := cfg.Check(); err != nil {
		return fmt.Errorf("--dim, --layers, --heads, --kv-heads, --hidden: %w", err)
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
	var tok *model.Tokenizer
	tokName := "trained"
	if lf.tokenizer != "" {
		src, _, err := format.Load(lf.tokenizer, format.LoadOptions{})
		if err != nil {
			return err
		}
		defer src.Close()
		if src.Tokenizer == nil {
			return fmt.Errorf("--tokenizer %s: the model has no tokenizer", lf.tokenizer)
		}
		tok, tokName = src.Tokenizer, lf.tokenizer
	} else if tok, err = lm.TrainTokenizer(trainText, lf.vocab); err != nil {
		return err
	}
	enc, err := tokenizer.New(tok)
	if err != nil {
		return err
	}
	trainToks, heldToks := enc.Encode(trainText, false), enc.Encode(heldText, false)
	cfg.Vocab = enc.VocabSize()
	m, err := lm.New(cfg, opts.Seed)
	if err != nil {
		return err
	}
	bos := enc.BOS()
	before, err := lm.Evaluate(m, heldToks, 0, bos, opts.Threads)
	if err != nil {
		return fmt.Errorf("held-out text: %w", err)
	}

	lopts := def
	lopts.Steps, lopts.Batch, lopts.Context = opts.Steps, opts.Batch, lf.ctx
	lopts.LR, lopts.WeightDecay, lopts.Warmup, lopts.Clip = opts.LR, opts.WeightDecay, opts.Warmup, opts.Clip
	lopts.BOS, lopts.Seed, lopts.Threads = bos, opts.Seed, opts.Threads
	lopts.Checkpoint, lopts.CheckpointEvery, lopts.Resume = opts.Checkpoint, opts.CheckpointEvery, opts.Resume
	perStep := int64(lopts.Batch * lopts.Context)
	bar := progress.New("train", int64(lopts.Steps)*perStep, "tokens", g.quiet)
	smooth := -1.0
	lopts.OnStep = func(s lm.Step) {
		if smooth < 0 {
			smooth = s.Loss
			bar.Add(int64(s.Step-1) * perStep) // a resumed run starts the bar where it stopped
		}
		smooth = 0.95*smooth + 0.05*s.Loss
		bar.Label(fmt.Sprintf("train loss %.3f, %.0f tokens/s", smooth, s.TokensPerSec))
		bar.Add(perStep)
		trainStepHook(s.Step)
	}
	res, err := lm.Train(m, trainToks, lopts)
	bar.Finish()
	if err != nil {
		return fmt.Errorf("%s: %w", lf.text, err)
	}
	after, err := lm.Evaluate(m, heldToks, 0, bos, opts.Threads)
	if err != nil {
		return err
	}

	mm := m.Model(tok)
	if err := format.Save("", out, mm, format.SaveOptions{To: kind, Force: force}); err != nil {
		return err
	}
	saved, _, err := format.Load(out, format.LoadOptions{})
	if err != nil {
		return err
	}
	defer saved.Close()
	disk, err := format.DiskBytes(out)
	if err != nil {
		return err
	}
	rep := lmTrainReport{SchemaVersion: 1, Model: out, Arch: "llama", Dim: cfg.Dim, Layers: cfg.Layers, Heads: cfg.Heads,
		KVHeads: cfg.KVHeads, Hidden: cfg.Hidden, Vocab: cfg.Vocab, Context: cfg.Context, Tied: cfg.Tied,
		Parameters: saved.Parameters(), FileBytes: disk, Text: lf.text, Heldout: heldName, Tokenizer: tokName,
		TrainBytes: len(trainText), HeldoutBytes: len(heldText), TrainTokens: len(trainToks), HeldoutTokens: len(heldToks),
		Batch: lopts.Batch, LR: lopts.LR, Seed: lopts.Seed, Result: res,
		HeldoutLossBefore: before.Loss, HeldoutLossAfter: after.Loss, PerplexityBefore: before.Perplexity,
		PerplexityAfter: after.Perplexity, TotalSeconds: time.Since(start).Seconds()}
	if g.json {
		return writeJSON(cmd.OutOrStdout(), rep)
	}
	return writeLMTrainTable(cmd, rep)
}

func writeLMTrainTable(cmd *cobra.Command, r lmTrainReport) error {
	tied := ""
	if r.Tied {
		tied = ", tied embeddings"
	}
	rows := [][]string{
		{"model", r.Model},
		{"shape", fmt.Sprintf("llama: dim %d, %d layers, %d heads, %d kv heads, hidden %d, vocab %d, context %d%s",
			r.Dim, r.Layers, r.Heads, r.KVHeads, r.Hidden, r.Vocab, r.Context, tied)},
		{"parameters", commas(r.Parameters)},
		{"file", humanBytes(r.FileBytes)},
		{"tokenizer", r.Tokenizer},
		{"train text", fmt.Sprintf("%s: %s bytes, %s tokens", r.Text, commas(int64(r.TrainBytes)), commas(int64(r.TrainTokens)))},
		{"held-out text", fmt.Sprintf("%s: %s bytes, %s tokens", r.Heldout, commas(int64(r.HeldoutBytes)), commas(int64(r.HeldoutTokens)))},
		{"steps", fmt.Sprintf("%s of %d windows of %d tokens, lr %g, seed %d", commas(int64(r.Steps)), r.Batch, r.Context, r.LR, r.Seed)},
		{"train loss", fmt.Sprintf("%.4f -> %.4f", r.FirstLoss, r.LastLoss)},
		{"held-out loss", fmt.Sprintf("%.4f -> %.4f", r.HeldoutLossBefore, r.HeldoutLossAfter)},
		{"held-out perplexity", fmt.Sprintf("%.2f -> %.2f", r.PerplexityBefore, r.PerplexityAfter)},
		{"training", fmt.Sprintf("%.1f s, %.0f tokens/s, %d threads", r.Seconds, r.TokensPerSec, r.Threads)},
	}
	return writeTable(cmd.OutOrStdout(), []string{"", "value"}, rows)
}
