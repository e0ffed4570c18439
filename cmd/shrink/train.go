package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/shrinkml/shrink/distill/train"
	"github.com/shrinkml/shrink/format"
	"github.com/shrinkml/shrink/format/idx"
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
	)
	cmd := &cobra.Command{
		Use:   "train OUT",
		Short: "Train an MLP classifier on Fashion-MNIST from scratch",
		Long: `train builds an MLP classifier with seeded random weights and trains it on
Fashion-MNIST with mini-batch AdamW: a linear warm-up over the first --warmup
share of the steps, then a cosine decay to zero, the gradient clipped to a
global L2 norm of --clip, weight decay on the weights (not the biases). The
inputs are the 784 pixels scaled to [0, 1].

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
test_accuracy, parameters, seconds, examples_per_s and a row per epoch.`,
		Example: `  shrink train --arch mlp --hidden 1200,1200 --data fashion-mnist ./fmnist-teacher
  shrink train --hidden 256 --epochs 5 --threads 2 --seed 3 ./small --json
  shrink train --hidden 64 --limit 5000 --val 1000 --epochs 2 ./quick --data ./my-fashion-mnist`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := args[0]
			if arch != "mlp" {
				return fmt.Errorf("--arch %q: train builds mlp classifiers only", arch)
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
			opts.OnStep = bar.onStep
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
	f.StringVar(&arch, "arch", "mlp", "architecture: mlp")
	f.IntSliceVar(&hidden, "hidden", []int{1200, 1200}, "hidden layer widths")
	f.StringVar(&act, "activation", "relu", "activation between layers: relu or gelu")
	addTrainFlags(cmd, &opts, &td)
	f.IntVar(&opts.Epochs, "epochs", 15, "passes over the training images (ignored with --steps)")
	f.BoolVar(&force, "force", false, "replace OUT if it exists")
	f.BoolVar(&g.json, "json", false, "print the summary as JSON")
	return cmd
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
	return td.check()
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
