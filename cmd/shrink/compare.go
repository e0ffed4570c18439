package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shrinkml/shrink/evalsuite"
	"github.com/shrinkml/shrink/format"
	"github.com/shrinkml/shrink/format/gguf"
	"github.com/shrinkml/shrink/inference"
	"github.com/shrinkml/shrink/inference/tokenizer"
	"github.com/shrinkml/shrink/internal/calib"
	"github.com/shrinkml/shrink/internal/progress"
	"github.com/shrinkml/shrink/model"
)

// The decode measurement of each variant: decodeTokens tokens after a
// prompt of decodePrompt, the median of at least decodeRepeats runs, and of
// more when the runs are so short that timer noise would decide.
const (
	decodePrompt  = 16
	decodeTokens  = 32
	decodeRepeats = 3
	decodeMinTime = 0.25 // seconds of timed decoding per variant, at least
	decodeMaxRuns = 301
)

// compareConfig is what compare's flags ask for.
type compareConfig struct {
	base, text   string
	dataset      string // a classifier's data set, instead of text
	data         string // the data set's folder
	recipes      []recipe
	models       []string
	ctx, threads int
	maxTokens    int
	seed         uint64
	kvCache      inference.KVCache // of every engine that scores or times a variant
	// extra are variants made by the caller, measured after the recipes.
	extra []variantSpec
	// calibPath is the calibration text ("" for the text beyond the scored
	// tokens); calibTokens and calibCtx size its windows.
	calibPath             string
	calibTokens, calibCtx int
	lopts                 format.LoadOptions
	quiet                 bool
}

func newCompareCmd(g *globalFlags) *cobra.Command {
	var (
		cfg                  compareConfig
		recipes              []string
		formatName, plotPath string
		force                bool
	)
	cmd := &cobra.Command{
		Use:   "compare BASE --recipe R... (--text FILE | --dataset fashion-mnist)",
		Short: "Build compressed variants of a model and compare quality, size and speed",
		Long: `compare builds a variant of BASE for each --recipe, adds the model files of
--models as they are, and measures every one, BASE included, the same way:

  size      bytes as a GGUF file (a GGUF's own size; anything else is
            written as one and measured; int8 and int4 models, which GGUF
            cannot hold, as a Hugging Face folder), bits per weight of the tensor
            data, and how many times smaller than BASE
  quality   perplexity on the same tokens of --text (llama.cpp's chunk
            protocol with --ctx, as shrink eval), its change from BASE, and
            with BASE as the reference the mean and 99th-percentile
            KL(BASE || variant) and the top-1 agreement
  speed     median decode tokens/s of ` + fmt.Sprint(decodeTokens) + ` tokens after a ` + fmt.Sprint(decodePrompt) + `-token prompt, over
            ` + fmt.Sprint(decodeRepeats) + ` runs or as many more as take ` + fmt.Sprint(decodeMinTime) + ` s, the variants' runs taken
            in turn (one run of each, then the next round) so that a
            slower or busier spell of the machine falls on all of them
            alike; the speedup over BASE, the
            95th percentile of one token's time (p50 too in JSON and CSV),
            and (JSON, CSV) the seconds from opening the file to a ready
            engine

Only the first --max-tokens tokens of the text are scored (default 100,000,
about 50,000 scored tokens at any --ctx; 0 scores all of it), which keeps six
recipes on a small model within a couple of minutes on two cores. Every variant
is built (as a GGUF in a temporary folder, removed at the end) before any is
measured, so a recipe that cannot be built stops compare at once.

Recipes with gptq, awq, wanda or sparsegpt calibrate on --calib-tokens tokens in
windows of --calib-ctx, picked with --seed as shrink quantize picks them. They
come from --calib when it is given, and otherwise from the part of --text
after the scored tokens, so no scored token is ever calibrated on; a text too
short for both is an error that asks for --calib.

--dataset fashion-mnist compares MLP classifiers instead of language models:
every variant (saved as a Hugging Face folder to measure its size) classifies
the 10,000 test images, and the table gives its accuracy, the change in
points, its agreement with BASE's predictions, examples/s and the speedup.
Classifiers take the rtn and magnitude recipes.

` + recipeHelp + `

--format table (default), markdown (a GitHub table), json (the comparison
report, schema_version 1, that shrink check reads) or csv; --json is
--format json. --plot FILE.svg or FILE.png draws perplexity against size and
against decode speed, with BASE marked and the Pareto front drawn; it is
written atomically and replaces a file only with --force.`,
		Example: `  shrink compare stories260K.bin --text tinystories_val_first.txt --ctx 128 \
      --recipe q8_0 --recipe q4_0 --recipe q4_1 --plot tradeoff.svg
  shrink compare model.gguf --recipe q8_0,q4_0 --models llama.cpp-Q4_K_M.gguf --text wiki.test.raw --format markdown
  shrink compare model.gguf --recipe q4_0 --text wiki.test.raw --format json > compare.json
  shrink compare stories260K.bin --text tinystories_val_first.txt --ctx 128 --max-tokens 50000 \
      --recipe q8_0,q4_0,q4_0:gptq,prune:wanda:0.5,prune:2:4+q8_0
  shrink compare ./fmnist-teacher --dataset fashion-mnist --recipe prune:magnitude:0.5,prune:magnitude:0.9 --models ./student`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.base, cfg.quiet = args[0], g.quiet
			if g.json {
				if cmd.Flags().Changed("format") && formatName != "json" {
					return fmt.Errorf("--json and --format %s disagree", formatName)
				}
				formatName = "json"
			}
			if !slices.Contains(evalsuite.Formats, formatName) {
				return fmt.Errorf("--format %q: want %s", formatName, strings.Join(evalsuite.Formats, ", "))
			}
			if cfg.dataset != "" || cmd.Flags().Changed("data") {
				if cfg.text != "" {
					return fmt.Errorf("--text and --dataset: give one, a text for a language model or a data set for a classifier")
				}
				if cfg.dataset != fashionMNIST {
					return fmt.Errorf("--dataset %q: want %s", cfg.dataset, fashionMNIST)
				}
			} else if cfg.text == "" {
				return fmt.Errorf("--text is required: the text file to score (or --dataset for a classifier)")
			}
			if len(recipes) == 0 && len(cfg.models) == 0 {
				return fmt.Errorf("nothing to compare with: give at least one --recipe or --models file")
			}
			seen := map[string]bool{}
			for _, s := range recipes {
				r, err := parseRecipe(s)
				if err != nil {
					return err
				}
				if seen[r.text] {
					return fmt.Errorf("recipe %q is given twice", s)
				}
				seen[r.text] = true
				cfg.recipes = append(cfg.recipes, r)
			}
			if cfg.threads < 0 || cfg.maxTokens < 0 {
				return fmt.Errorf("--threads %d and --max-tokens %d must not be negative", cfg.threads, cfg.maxTokens)
			}
			if cfg.calibTokens <= 0 || cfg.calibCtx < 0 {
				return fmt.Errorf("--calib-tokens %d must be positive and --calib-ctx %d not negative", cfg.calibTokens, cfg.calibCtx)
			}
			var plotFormat string
			if plotPath != "" {
				var err error
				if plotFormat, err = evalsuite.PlotFormat(plotPath); err != nil {
					return fmt.Errorf("--plot: %w", err)
				}
				if err := refuseExisting(plotPath, force); err != nil {
					return err
				}
			}

			compare := compareVariants
			if cfg.dataset != "" {
				compare = compareClassifiers
			}
			rep, err := compare(cfg)
			if err != nil {
				return err
			}
			if plotPath != "" {
				err := writeFileAtomic(plotPath, force, func(w io.Writer) error { return evalsuite.WritePlot(w, rep, plotFormat) })
				if err != nil {
					return fmt.Errorf("--plot %s: %w", plotPath, err)
				}
			}
			return evalsuite.WriteReport(cmd.OutOrStdout(), rep, formatName)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&recipes, "recipe", nil, "a recipe to build and compare (repeatable, or comma-separated)")
	f.StringSliceVar(&cfg.models, "models", nil, "model files to compare as they are (repeatable, or comma-separated)")
	f.StringVar(&cfg.text, "text", "", "text file to score (or --dataset)")
	f.StringVar(&cfg.dataset, "dataset", "", "compare MLP classifiers on a data set's test images instead: fashion-mnist")
	f.StringVar(&cfg.data, "data", fashionMNIST, "with --dataset: a folder holding the IDX files, or fashion-mnist")
	f.IntVar(&cfg.ctx, "ctx", 128, "tokens per perplexity chunk")
	f.IntVar(&cfg.maxTokens, "max-tokens", 100000, "score only the text's first N tokens, BOS included (0: all)")
	f.IntVar(&cfg.threads, "threads", 0, "threads (default: every core)")
	addKVCacheFlag(cmd, &cfg.kvCache)
	f.Uint64Var(&cfg.seed, "seed", 1, "seed of the calibration windows and of the token ids the speed runs decode")
	f.StringVar(&cfg.calibPath, "calib", "", "calibration text for gptq, awq, wanda and sparsegpt (default: --text after the scored tokens)")
	f.IntVar(&cfg.calibTokens, "calib-tokens", 16384, "calibration tokens")
	f.IntVar(&cfg.calibCtx, "calib-ctx", 0, "tokens per calibration window (default: min(512, context length))")
	f.StringVar(&formatName, "format", "table", "output: table, markdown, json or csv")
	f.BoolVar(&g.json, "json", false, "same as --format json")
	f.StringVar(&plotPath, "plot", "", "also draw the trade-offs to FILE.svg or FILE.png")
	f.BoolVar(&force, "force", false, "replace the --plot file if it exists")
	f.StringVar(&cfg.lopts.Arch, "arch", "", "architecture of a bare state dict")
	return cmd
}

// variantSpec is one row to build and measure.
type variantSpec struct {
	name   string
	recipe *recipe // nil for a model file
	path   string  // the model file
	base   bool
	// built is a variant made by the caller (shrink demo's trained ones),
	// measured like a recipe's; how says how it was made.
	built *model.Model
	how   string
}

// compareVariants builds every variant cfg asks for, then measures each.
// Building them all first stops on a recipe that cannot be built before any
// time goes into measuring.
func compareVariants(cfg compareConfig) (*evalsuite.Report, error) {
	text, err := os.ReadFile(cfg.text)
	if err != nil {
		return nil, fmt.Errorf("--text: %w", err)
	}
	loadStart := time.Now()
	base, baseKind, err := format.Load(cfg.base, cfg.lopts)
	if err != nil {
		return nil, err
	}
	defer base.Close()
	if base.Config.Arch != "llama" {
		return nil, fmt.Errorf("%s: compare scores text and needs a llama-family model, not %q", cfg.base, base.Config.Arch)
	}
	if base.Tokenizer == nil {
		return nil, fmt.Errorf("%s: the model has no tokenizer", cfg.base)
	}
	tok, err := tokenizer.New(base.Tokenizer)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.base, err)
	}
	ref, err := inference.NewLlama(base, inference.Options{Threads: cfg.threads, KVCache: cfg.kvCache})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.base, err)
	}
	defer ref.Close()
	baseLoad := time.Since(loadStart).Seconds()

	specs := variantSpecs(cfg)

	addBOS := base.Tokenizer.AddBOS && base.Tokenizer.BOS >= 0
	tokens := tok.Encode(string(text), addBOS)
	var rest []int // the text after the scored tokens
	if cfg.maxTokens > 0 && len(tokens) > cfg.maxTokens {
		tokens, rest = tokens[:cfg.maxTokens], tokens[cfg.maxTokens:]
	}
	var windows [][]int
	build := variantBuild{threads: cfg.threads, calib: func() ([][]int, error) {
		if windows == nil {
			var err error
			windows, err = compareCalibration(cfg, base, len(tokens), rest)
			if err != nil {
				return nil, err
			}
		}
		return windows, nil
	}}

	tmp, err := os.MkdirTemp("", "shrink-compare-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	variants := make([]evalsuite.Variant, len(specs))
	files := make([]string, len(specs))
	for i, s := range specs {
		// Names of one length: GGUF stores the name, so it counts in the size.
		file := filepath.Join(tmp, fmt.Sprintf("variant-%03d.gguf", i))
		label := fmt.Sprintf("[%d/%d] build %s", i+1, len(specs), s.name)
		var bar *progress.Bar
		var shown int64
		build.progress = func(step string, done, total int64) {
			if bar == nil {
				bar = progress.New(label, total, "weights", cfg.quiet)
			}
			if done < shown { // a new step
				shown = 0
			}
			bar.Label(label + ": " + step)
			bar.Add(done - shown)
			shown = done
		}
		variants[i], files[i], err = prepareVariant(cfg, s, base, baseKind, file, build)
		bar.Finish()
		if err != nil {
			return nil, err
		}
	}
	variants[0].LoadSeconds = baseLoad
	popts := evalsuite.PerplexityOptions{Ctx: cfg.ctx, NoBOS: !addBOS}

	rep := &evalsuite.Report{
		SchemaVersion: evalsuite.ReportSchemaVersion, Base: cfg.base, Text: cfg.text, TextTokens: len(tokens),
		Ctx: cfg.ctx, DecodeTokens: decodeTokens, Threads: ref.Threads(),
	}
	if cfg.kvCache != inference.KVF32 {
		rep.KVCache = cfg.kvCache.String()
	}
	for i := range variants {
		label := fmt.Sprintf("[%d/%d] %s", i+1, len(specs), specs[i].name)
		if rep.ScoredTokens, err = measureVariant(cfg, &variants[i], files[i], label, base, ref, tokens, popts); err != nil {
			return nil, err
		}
	}
	if err := measureSpeeds(cfg, variants, files, base); err != nil {
		return nil, err
	}
	rep.Variants = variants
	rep.Relate()
	return rep, nil
}

// prepareVariant builds a recipe's variant into the GGUF file tmp, or checks
// a model file, and returns the variant with its size and parameters, and
// the file to measure it from ("" for the base, which is measured as loaded).
func prepareVariant(cfg compareConfig, s variantSpec, base *model.Model, baseKind format.Kind, tmp string, build variantBuild) (evalsuite.Variant, string, error) {
	v := evalsuite.Variant{Name: s.name, Base: s.base}
	m, file := base, ""
	var err error
	switch {
	case s.base:
		v.Recipe = s.recipe.text
		v.SizeBytes, err = ggufBytes(base, baseKind, cfg.base, cfg.base, tmp)
	case s.recipe != nil || s.built != nil:
		if s.built != nil {
			m, v.Recipe = s.built, s.how
		} else {
			v.Recipe = s.recipe.text
			if m, err = buildVariant(base, *s.recipe, build); err != nil {
				return v, "", err
			}
		}
		to := format.GGUF
		if !ggufHolds(m) {
			// GGUF has no int8/int4 types: a Hugging Face folder instead.
			to, tmp = format.HF, strings.TrimSuffix(tmp, ".gguf")
		}
		if err := format.Save(cfg.base, tmp, m, format.SaveOptions{To: to}); err != nil {
			return v, "", err
		}
		file = tmp
		v.SizeBytes, err = format.DiskBytes(tmp)
	default:
		v.Model, file = s.path, s.path
		var kind format.Kind
		if m, kind, err = format.Load(s.path, cfg.lopts); err != nil {
			return v, "", err
		}
		defer m.Close()
		if m.Config.Arch != "llama" {
			return v, "", fmt.Errorf("%s: compare needs a llama-family model, not %q", s.path, m.Config.Arch)
		}
		if m.Tokenizer != nil && !slices.Equal(m.Tokenizer.Tokens, base.Tokenizer.Tokens) {
			return v, "", fmt.Errorf("%s and %s have different vocabularies", s.path, cfg.base)
		}
		v.SizeBytes, err = ggufBytes(m, kind, s.path, cfg.base, tmp)
	}
	if err != nil {
		return v, "", err
	}
	v.Params = m.Parameters()
	if v.Params > 0 {
		v.BitsPerWeight = 8 * float64(m.TensorBytes()) / float64(v.Params)
	}
	return v, file, nil
}

// compareCalibration picks the calibration windows: from --calib when given,
// else from rest, the tokens of --text after the scored ones.
func compareCalibration(cfg compareConfig, base *model.Model, scored int, rest []int) ([][]int, error) {
	if cfg.calibPath != "" {
		return calibration(base, cfg.calibPath, cfg.calibTokens, cfg.calibCtx, cfg.seed, "lower --calib-tokens or --calib-ctx")
	}
	ctx := cfg.calibCtx
	if ctx == 0 {
		ctx = min(512, base.Config.ContextLength)
	}
	if ctx > base.Config.ContextLength {
		return nil, fmt.Errorf("--calib-ctx %d: the model's context is %d tokens", ctx, base.Config.ContextLength)
	}
	bos := -1
	if base.Tokenizer.AddBOS && base.Tokenizer.BOS >= 0 {
		bos = base.Tokenizer.BOS
	}
	if len(rest) == 0 {
		return nil, fmt.Errorf("no calibration text: --calib is not given and every one of the %d tokens of --text is scored (--max-tokens %d); give --calib FILE or lower --max-tokens",
			scored, cfg.maxTokens)
	}
	w, err := calib.Windows(rest, max(1, (cfg.calibTokens+ctx-1)/ctx), ctx, bos, cfg.seed)
	if err != nil {
		return nil, fmt.Errorf("calibrating on the %d tokens of %s after the %d scored (--max-tokens): %w; give --calib FILE, or lower --max-tokens or --calib-tokens",
			len(rest), cfg.text, scored, err)
	}
	return w, nil
}

// measureVariant measures v's quality against ref (the base: v's own
// perplexity for the base itself), loading it from file unless that is "".
// It returns the number of scored tokens.
func measureVariant(cfg compareConfig, v *evalsuite.Variant, file, label string, base *model.Model,
	ref *inference.Llama, tokens []int, popts evalsuite.PerplexityOptions) (int, error) {
	m, where := base, cfg.base
	var l *inference.Llama
	if file != "" {
		where = v.Name
		if v.Model != "" {
			where = v.Model
		}
		start := time.Now()
		var err error
		if m, _, err = format.Load(file, cfg.lopts); err != nil {
			return 0, err
		}
		defer m.Close()
		if l, err = inference.NewLlama(m, inference.Options{Threads: cfg.threads, KVCache: cfg.kvCache}); err != nil {
			return 0, fmt.Errorf("%s: %w", where, err)
		}
		defer l.Close()
		v.LoadSeconds = time.Since(start).Seconds()
	}
	bar := progress.New(label, int64(popts.Chunks(len(tokens))), "chunks", cfg.quiet)
	defer bar.Finish()
	popts.OnChunk = func() { bar.Add(1) }
	var r evalsuite.PerplexityResult
	if v.Base {
		var err error
		if r, err = evalsuite.Perplexity(ref, tokens, popts, nil); err != nil {
			return 0, fmt.Errorf("%s on %s: %w", where, cfg.text, err)
		}
		v.Top1Agreement = 1
	} else {
		var err error
		r, err = evalsuite.Perplexity(l, tokens, popts, ref)
		if err != nil {
			return 0, fmt.Errorf("%s on %s: %w", where, cfg.text, err)
		}
		v.KLMean, v.KLP99, v.Top1Agreement = r.Ref.KLMean, r.Ref.KLP99, r.Ref.Top1Agreement
	}
	v.Perplexity, v.PerplexityStderr = r.Perplexity, r.PerplexityStderr
	return r.ScoredTokens, nil
}

// measureSpeeds times the decode of every variant (loaded from its file,
// the base as loaded) in rounds of one run each, after a warm-up run each,
// until every variant has decodeRepeats runs and decodeMinTime seconds of
// timed decoding (at most decodeMaxRuns runs).
func measureSpeeds(cfg compareConfig, variants []evalsuite.Variant, files []string, base *model.Model) error {
	o := evalsuite.SpeedOptions{Threads: cfg.threads, PromptTokens: decodePrompt, GenTokens: decodeTokens, Seed: cfg.seed, KVCache: cfg.kvCache}
	timers := make([]*evalsuite.DecodeTimer, 0, len(variants))
	defer func() {
		for _, t := range timers {
			t.Close()
		}
	}()
	warm := math.Inf(1) // the shortest warm-up, to size the bar
	for i := range variants {
		m := base
		if files[i] != "" {
			var err error
			if m, _, err = format.Load(files[i], cfg.lopts); err != nil {
				return err
			}
			defer m.Close()
		}
		t, err := evalsuite.NewDecodeTimer(m, o)
		if err != nil {
			return fmt.Errorf("%s: %w", variants[i].Name, err)
		}
		timers = append(timers, t)
		start := time.Now()
		if err := t.Run(false); err != nil {
			return fmt.Errorf("%s: %w", variants[i].Name, err)
		}
		warm = min(warm, time.Since(start).Seconds())
	}
	rounds := max(decodeRepeats, min(decodeMaxRuns, int(decodeMinTime/warm)+1))
	bar := progress.New("speed", int64(rounds*len(timers)), "runs", cfg.quiet)
	defer bar.Finish()
	for done := false; !done; {
		done = true
		for i, t := range timers {
			if err := t.Run(true); err != nil {
				return fmt.Errorf("%s: %w", variants[i].Name, err)
			}
			bar.Add(1)
			done = done && (t.Runs() >= decodeMaxRuns || t.Runs() >= decodeRepeats && t.Seconds() >= decodeMinTime)
		}
	}
	for i, t := range timers {
		v := &variants[i]
		v.DecodeTokensPerS, v.LatencyP50Ms, v.LatencyP95Ms = t.DecodeTokensPerS(), t.LatencyMs(0.50), t.LatencyMs(0.95)
	}
	return nil
}

// ggufHolds reports whether GGUF has a type for every tensor of m: it has
// none for the int8 and int4 schemes' INT types.
func ggufHolds(m *model.Model) bool {
	for _, t := range m.Tensors {
		if _, ok := gguf.GGMLTypeOf(t.DType); !ok && t.DType.Quantized() {
			return false
		}
	}
	return true
}

// ggufBytes is the size of m as a GGUF file: path's own size when it already
// is one, else the size of m written to the file tmp, which is then removed.
// A model GGUF cannot hold (int8, int4) counts as the files at path.
func ggufBytes(m *model.Model, kind format.Kind, path, base, tmp string) (int64, error) {
	if kind == format.GGUF || !ggufHolds(m) {
		return format.DiskBytes(path)
	}
	defer os.Remove(tmp)
	if err := format.Save(base, tmp, m, format.SaveOptions{To: format.GGUF, Force: true}); err != nil {
		return 0, err
	}
	return format.DiskBytes(tmp)
}

// writeFileAtomic writes path through a temporary file beside it, synced and
// renamed into place; an existing path is replaced only with force.
func writeFileAtomic(path string, force bool, fn func(w io.Writer) error) (err error) {
	if err := refuseExisting(path, force); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = fn(f); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
