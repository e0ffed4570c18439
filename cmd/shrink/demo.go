package main

import (
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shrinkml/shrink/distill"
	"github.com/shrinkml/shrink/distill/train"
	"github.com/shrinkml/shrink/evalsuite"
	"github.com/shrinkml/shrink/format"
	"github.com/shrinkml/shrink/format/idx"
	"github.com/shrinkml/shrink/model"
)

// demoData holds the demo's embedded models and data; demodata/README.md
// says where each file comes from and the commands that remake it.
//
//go:embed demodata/golm demodata/fmnist-teacher demodata/fashion-mnist
var demoData embed.FS

// The embedded files, relative to demodata.
const (
	demoLM      = "golm/golm.gguf"
	demoHeldout = "golm/heldout.txt"
	demoCalib   = "golm/calib.txt"
	demoTeacher = "fmnist-teacher"
	demoFashion = "fashion-mnist"
)

// The demo's recipes: every compression method shrink has that applies.
var (
	demoLMRecipes    = []string{"q8_0", "q4_0", "q4_0:gptq", "prune:wanda:0.5", "prune:2:4+q8_0"}
	demoClassRecipes = []string{"q8_0", "q4_0", "prune:magnitude:0.5", "prune:magnitude:2:4", "prune:magnitude:0.9"}
)

// The student the demo distills from the teacher, and how it trains.
var demoStudentHidden = []int{32}

const (
	demoStudentEpochs = 20
	demoGradualEpochs = 20
	demoGradualTarget = 0.9
)

// demoReport is demo --json's output and the demo.json it writes.
type demoReport struct {
	SchemaVersion int               `json:"schema_version"`
	LanguageModel *evalsuite.Report `json:"language_model"`
	Classifier    *evalsuite.Report `json:"classifier,omitempty"`
	Files         []string          `json:"files"`
	Seconds       float64           `json:"seconds"`
}

func newDemoCmd(g *globalFlags) *cobra.Command {
	var (
		out, modelPath, textPath, calibPath string
		threads                             int
		seed                                uint64
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Compress the embedded models every way shrink can, and compare",
		Long: `demo runs shrink's whole job on two small models embedded in the binary, with
no network and no data installed:

  a language model (llama-family, trained by shrink train on Go's own
  source code) is quantized (q8_0, q4_0 by round-to-nearest, q4_0 by GPTQ)
  and pruned (Wanda to 50%, Wanda 2:4 then q8_0); every variant is scored on
  held-out Go source (perplexity, KL and top-1 agreement against the
  original) and timed, as shrink compare does;

  a Fashion-MNIST classifier (an MLP trained by shrink train) is quantized
  (q8_0, q4_0), pruned by magnitude at once (50%, 2:4, 90%) and gradually
  to 90% while it trains on a sample of the training images, and distilled
  into a student ` + fmt.Sprint(demoStudentHidden) + ` units wide that is compared with the same student
  trained from scratch; every variant classifies a held-out sample of the
  test set. (Its first layer's 784 inputs are no multiple of 32, so q8_0 and
  q4_0 keep that matrix in F16.)

Every figure is measured in the run. The two tables are printed, and the
reports (JSON) and plots (SVG) are written to --out, a folder that demo
creates, or one that holds an earlier demo's files, which it replaces.

--model PATH --text FILE runs the language-model part on your model and text
instead (calibrating GPTQ and Wanda on --calib, or on the text after the
scored tokens, as shrink compare does), and skips the classifier.`,
		Example: `  shrink demo
  shrink demo --out /tmp/demo --threads 2
  shrink demo --model stories260K.bin --text tinystories_val_first.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (modelPath == "") != (textPath == "") {
				return fmt.Errorf("--model and --text go together: a language model and a text to score it on")
			}
			if calibPath != "" && modelPath == "" {
				return fmt.Errorf("--calib goes with --model and --text")
			}
			if threads < 0 {
				return fmt.Errorf("--threads %d must not be negative", threads)
			}
			if err := demoOutDir(out); err != nil {
				return err
			}
			start := time.Now()
			work, err := os.MkdirTemp("", "shrink-demo-*")
			if err != nil {
				return err
			}
			defer os.RemoveAll(work)
			sub, err := fs.Sub(demoData, "demodata")
			if err != nil {
				return err
			}
			if err := os.CopyFS(work, sub); err != nil {
				return fmt.Errorf("demo: unpacking the embedded files: %w", err)
			}

			lm := compareConfig{base: filepath.Join(work, demoLM), text: filepath.Join(work, demoHeldout),
				calibPath: filepath.Join(work, demoCalib), ctx: 128, threads: threads, seed: seed,
				calibTokens: 8192, quiet: g.quiet}
			if modelPath != "" {
				lm.base, lm.text, lm.calibPath, lm.maxTokens = modelPath, textPath, calibPath, 100000
			}
			for _, s := range demoLMRecipes {
				r, err := parseRecipe(s)
				if err != nil {
					return err
				}
				lm.recipes = append(lm.recipes, r)
			}
			rep := demoReport{SchemaVersion: 1}
			if rep.LanguageModel, err = compareVariants(lm); err != nil {
				return err
			}
			if modelPath == "" {
				if rep.Classifier, err = demoClassifier(work, threads, seed, g.quiet); err != nil {
					return err
				}
			}
			if rep.Files, err = writeDemoFiles(out, &rep); err != nil {
				return err
			}
			rep.Seconds = time.Since(start).Seconds()
			if g.json {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			return writeDemo(cmd.OutOrStdout(), &rep, out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "shrink-demo", "folder for the reports and plots")
	f.StringVar(&modelPath, "model", "", "your language model, instead of the embedded one (with --text)")
	f.StringVar(&textPath, "text", "", "the text to score --model on")
	f.StringVar(&calibPath, "calib", "", "with --model: calibration text for GPTQ and Wanda (default: --text after the scored tokens)")
	f.IntVar(&threads, "threads", 0, "threads (default: every core)")
	f.Uint64Var(&seed, "seed", 1, "seed of the calibration windows, the students' training and the speed runs")
	f.BoolVar(&g.json, "json", false, "print the reports as one JSON object")
	return cmd
}

// demoClassifier compares the embedded Fashion-MNIST teacher with its
// quantized, pruned, gradually pruned and distilled variants on the
// embedded test sample.
func demoClassifier(work string, threads int, seed uint64, quiet bool) (*evalsuite.Report, error) {
	data := filepath.Join(work, demoFashion)
	tr, err := idx.LoadFashionMNIST(data, idx.Train)
	if err != nil {
		return nil, fmt.Errorf("demo: the embedded training sample: %w", err)
	}
	teacherPath := filepath.Join(work, demoTeacher)
	teacher, _, err := format.Load(teacherPath, format.LoadOptions{})
	if err != nil {
		return nil, err
	}
	defer teacher.Close()
	d := toTrain(tr)

	opts := train.DefaultOptions()
	opts.Seed, opts.Threads, opts.Epochs, opts.LR = seed, threads, demoStudentEpochs, 1e-2 // shrink distill's rate
	steps := trainSteps(opts, tr.N)
	bar := newTrainBar("distill", 2*steps, opts.Batch, quiet)
	opts.OnStep = func(step, total int, loss float64) {
		if step == 1 && bar.loss >= 0 {
			bar.label, bar.loss = "scratch", -1
		}
		bar.onStep(step, total, loss)
	}
	dr, err := distill.Distill(teacher, d, distill.Options{Hidden: demoStudentHidden, Train: opts, Baseline: true})
	bar.finish()
	if err != nil {
		return nil, fmt.Errorf("demo: distilling: %w", err)
	}

	gradual, err := demoGradual(teacher, d, threads, seed, quiet)
	if err != nil {
		return nil, err
	}

	cfg := compareConfig{base: teacherPath, dataset: fashionMNIST, data: data, threads: threads, seed: seed, quiet: quiet}
	for _, s := range demoClassRecipes {
		r, err := parseRecipe(s)
		if err != nil {
			return nil, err
		}
		cfg.recipes = append(cfg.recipes, r)
	}
	width := fmt.Sprint(demoStudentHidden[0])
	cfg.extra = []variantSpec{
		{name: fmt.Sprintf("gradual:%g", demoGradualTarget), built: gradual,
			how: fmt.Sprintf("magnitude pruning to %g sparsity on a cubic schedule over half of %d epochs of training", demoGradualTarget, demoGradualEpochs)},
		{name: "distilled:" + width, built: dr.Student,
			how: fmt.Sprintf("a [784 %s 10] student distilled from the base for %d epochs", width, demoStudentEpochs)},
		{name: "scratch:" + width, built: dr.Scratch,
			how: fmt.Sprintf("the same student trained on the labels alone for %d epochs", demoStudentEpochs)},
	}
	return compareClassifiers(cfg)
}

// demoOutDir checks that out can take the demo's files: a new folder, an
// empty one, or one holding an earlier demo's files (demo.json).
func demoOutDir(out string) error {
	entries, err := os.ReadDir(out)
	switch {
	case os.IsNotExist(err):
		return nil
	case err != nil:
		return fmt.Errorf("--out %s: %w", out, err)
	case len(entries) == 0:
		return nil
	}
	if _, err := os.Stat(filepath.Join(out, "demo.json")); err != nil {
		return fmt.Errorf("--out %s: the folder exists and holds other files than an earlier demo's; name a new folder", out)
	}
	return nil
}

// writeDemoFiles writes the reports and plots to out, each atomically, and
// returns their paths.
func writeDemoFiles(out string, rep *demoReport) ([]string, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	var files []string
	write := func(name string, fn func(w io.Writer) error) error {
		path := filepath.Join(out, name)
		files = append(files, path)
		return writeFileAtomic(path, true, fn)
	}
	for _, r := range []struct {
		name string
		rep  *evalsuite.Report
	}{{"language-model", rep.LanguageModel}, {"classifier", rep.Classifier}} {
		if r.rep == nil {
			continue
		}
		if err := write(r.name+".json", r.rep.WriteJSON); err != nil {
			return nil, err
		}
		if err := write(r.name+".svg", func(w io.Writer) error { return evalsuite.WritePlot(w, r.rep, "svg") }); err != nil {
			return nil, err
		}
	}
	// demo.json lists the files, itself included, and marks the folder as
	// the demo's own.
	files = append(files, filepath.Join(out, "demo.json"))
	err := writeFileAtomic(files[len(files)-1], true, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	})
	return files, err
}

// writeDemo prints the two tables and where the files went.
func writeDemo(w io.Writer, rep *demoReport, out string) error {
	fmt.Fprintln(w, "Language model: quantized and pruned, scored on held-out text")
	if err := rep.LanguageModel.WriteTable(w); err != nil {
		return err
	}
	if rep.Classifier != nil {
		fmt.Fprintln(w, "\nClassifier: quantized, pruned, gradually pruned and distilled, scored on held-out test images")
		if err := rep.Classifier.WriteTable(w); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\nReports and plots in %s/: %s (%.0f s)\n", out, filesIn(rep.Files), rep.Seconds)
	return nil
}

// filesIn lists the base names of files, sorted and comma-separated.
func filesIn(files []string) string {
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = filepath.Base(f)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// demoGradual trains a copy of the teacher on while pruning it to
// demoGradualTarget sparsity by magnitude on the cubic schedule, in 30
// steps over the first half of the training, then with its masks fixed.
func demoGradual(teacher *model.Model, d train.Data, threads int, seed uint64, quiet bool) (*model.Model, error) {
	opts := train.DefaultOptions()
	opts.Seed, opts.Threads, opts.Epochs = seed, threads, demoGradualEpochs
	steps := trainSteps(opts, len(d.Y))
	every := max(1, steps/2/30)
	opts.Prune = &train.Schedule{Final: demoGradualTarget, Every: every, Count: max(1, steps/2/every)}
	bar := newTrainBar(fmt.Sprintf("gradual pruning to %g", demoGradualTarget), steps, opts.Batch, quiet)
	opts.OnStep = bar.onStep
	r, err := distill.GradualPrune(teacher, d, distill.RecoveryOptions{Train: opts})
	bar.finish()
	if err != nil {
		return nil, fmt.Errorf("demo: gradual pruning: %w", err)
	}
	return r.Model, nil
}
