package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shrinkml/shrink/distill/lm"
	"github.com/shrinkml/shrink/distill/train"
	"github.com/shrinkml/shrink/evalsuite"
	"github.com/shrinkml/shrink/format/idx"
	"github.com/shrinkml/shrink/inference"
	"github.com/shrinkml/shrink/internal/progress"
	"github.com/shrinkml/shrink/model"
)

// fashionMNIST is the one data set train, distill and eval --dataset know.
const fashionMNIST = "fashion-mnist"

// dataDir resolves --data: a folder holding the IDX files, or the name
// fashion-mnist for the folder Debian's dataset-fashion-mnist installs.
func dataDir(data string) (string, error) {
	if st, err := os.Stat(data); err == nil && st.IsDir() {
		return data, nil
	}
	if data == "" || data == fashionMNIST {
		return idx.FashionMNISTDir, nil
	}
	return "", fmt.Errorf("--data %s: not a folder; give a folder holding the Fashion-MNIST IDX files, or %q for %s", data, fashionMNIST, idx.FashionMNISTDir)
}

// loadPart reads one part of the data set --data names.
func loadPart(data string, part idx.Part) (*idx.Images, string, error) {
	dir, err := dataDir(data)
	if err != nil {
		return nil, "", err
	}
	s, err := idx.LoadFashionMNIST(dir, part)
	if err != nil {
		return nil, "", fmt.Errorf("--data %s: %w", data, err)
	}
	if s.Rows*s.Cols != 784 {
		return nil, "", fmt.Errorf("--data %s: images of %dx%d pixels; Fashion-MNIST's are 28x28", data, s.Rows, s.Cols)
	}
	return s, dir, nil
}

// trainData is the training and validation split of the flags shared by
// train and distill.
type trainData struct {
	data       string
	val, limit int
}

func (f *trainData) check() error {
	if f.val < 0 || f.limit < 0 {
		return fmt.Errorf("--val %d and --limit %d must not be negative", f.val, f.limit)
	}
	return nil
}

// load reads the training images and holds out the last --val of them (of
// the first --limit, when set) for validation.
func (f *trainData) load() (tr, val *idx.Images, dir string, err error) {
	s, dir, err := loadPart(f.data, idx.Train)
	if err != nil {
		return nil, nil, "", err
	}
	n := s.N
	if f.limit > 0 {
		n = min(n, f.limit)
	}
	if f.val >= n {
		return nil, nil, "", fmt.Errorf("--val %d leaves none of the %d training images to train on", f.val, n)
	}
	return s.Slice(0, n-f.val), s.Slice(n-f.val, n), dir, nil
}

func toTrain(s *idx.Images) train.Data { return train.Data{X: s.Features(), Y: s.Classes()} }

// classifierStats are the columns train and distill report for a model.
type classifierStats struct {
	Accuracy     float64 `json:"test_accuracy"`
	Params       int64   `json:"parameters"`
	WeightBytes  int64   `json:"weight_bytes"`
	ExamplesPerS float64 `json:"examples_per_s"`
}

// scoreMLP runs the classifier m over the test images with the inference
// engine.
func scoreMLP(m *model.Model, test *idx.Images, threads int, label string, quiet bool) (evalsuite.Classification, error) {
	c, err := inference.NewMLP(m, inference.Options{Threads: threads})
	if err != nil {
		return evalsuite.Classification{}, err
	}
	defer c.Close()
	if c.Inputs() != test.Rows*test.Cols || c.Classes() != len(idx.FashionMNISTClasses) {
		return evalsuite.Classification{}, fmt.Errorf("%s: the model maps %d features to %d classes; Fashion-MNIST has %d pixels and %d classes",
			m.Source, c.Inputs(), c.Classes(), test.Rows*test.Cols, len(idx.FashionMNISTClasses))
	}
	bar := progress.New(label, int64(test.N), "examples", quiet)
	defer bar.Finish()
	return evalsuite.Classify(c, test.Features(), test.Classes(), evalsuite.ClassifyOptions{OnBatch: func(n int) { bar.Add(int64(n)) }}, nil)
}

func statsOf(m *model.Model, r evalsuite.Classification) classifierStats {
	return classifierStats{Accuracy: r.Accuracy, Params: m.Parameters(), WeightBytes: m.TensorBytes(), ExamplesPerS: r.ExamplesPerS}
}

// trainBar shows a training run's progress with its loss.
type trainBar struct {
	bar   *progress.Bar
	label string
	loss  float64
	steps int
	batch int
}

func newTrainBar(label string, steps, batch int, quiet bool) *trainBar {
	return &trainBar{bar: progress.New(label, int64(steps*batch), "examples", quiet), label: label, batch: batch, loss: -1}
}

// onStep is a train.Options.OnStep: the label shows a running mean of the loss.
func (b *trainBar) onStep(step, steps int, loss float64) {
	if b.loss < 0 {
		b.loss = loss
		b.bar.Add(int64((step - 1) * b.batch)) // a resumed run starts the bar where it stopped
	}
	b.loss = 0.98*b.loss + 0.02*loss
	b.bar.Label(fmt.Sprintf("%s loss %.4f", b.label, b.loss))
	b.bar.Add(int64(b.batch))
}

func (b *trainBar) finish() { b.bar.Finish() }

// heldOutShare is the share of --text held out without --heldout.
const heldOutShare = 0.1

// splitText reads the training text and the held-out text: --heldout's
// file, or else the lines of --text that begin in its last 10% of bytes.
func splitText(text, heldout string) (trainText, heldText, heldName string, err error) {
	raw, err := os.ReadFile(text)
	if err != nil {
		return "", "", "", err
	}
	trainText, heldName = string(raw), fmt.Sprintf("last %g%% of text", 100*heldOutShare)
	if heldout != "" {
		h, err := os.ReadFile(heldout)
		if err != nil {
			return "", "", "", err
		}
		heldText, heldName = string(h), heldout
	} else {
		cut := int(float64(len(raw)) * (1 - heldOutShare))
		if i := strings.IndexByte(trainText[cut:], '\n'); i >= 0 {
			cut += i + 1
		}
		trainText, heldText = trainText[:cut], trainText[cut:]
	}
	if trainText == "" || heldText == "" {
		return "", "", "", fmt.Errorf("%s: %d bytes leave no training or held-out text", text, len(raw))
	}
	return trainText, heldText, heldName, nil
}

// lmDefaults gives the training flags shared with MLP training that the user
// left unset a llama model's defaults: lm.DefaultOptions' learning rate,
// weight decay, warm-up and batch, steps steps, and with distill the
// distillation loss's temperature and alpha.
func lmDefaults(cmd *cobra.Command, opts *train.Options, steps int, distill bool) {
	fl := cmd.Flags()
	def := lm.DefaultOptions()
	unset := func(name string, dst *float64, v float64) {
		if !fl.Changed(name) {
			*dst = v
		}
	}
	unset("lr", &opts.LR, def.LR)
	unset("weight-decay", &opts.WeightDecay, def.WeightDecay)
	unset("warmup", &opts.Warmup, def.Warmup)
	if distill {
		unset("temperature", &opts.Temperature, lmDistillTemperature)
		unset("alpha", &opts.Alpha, lmDistillAlpha)
	}
	if !fl.Changed("steps") {
		opts.Steps = steps
	}
	if !fl.Changed("batch") {
		opts.Batch = def.Batch
	}
}
