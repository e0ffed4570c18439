package main

import (
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/shrinkml/shrink/distill/train"
	"github.com/shrinkml/shrink/format"
	"github.com/shrinkml/shrink/internal/progress"
	"github.com/shrinkml/shrink/model"
	"github.com/shrinkml/shrink/prune"
)

// pruneReport is prune's --json output: the library's report with the files
// and the calibration around it.
type pruneReport struct {
	SchemaVersion int    `json:"schema_version"`
	Source        string `json:"source"`
	SourceKind    string `json:"source_format"`
	Dest          string `json:"dest"`
	DestKind      string `json:"dest_format"`
	FileBytes     int64  `json:"file_bytes"`
	CalibText     string `json:"calib_text,omitempty"`
	*prune.Report
	IntermediateSize int     `json:"intermediate_size"`
	NumHeads         int     `json:"num_heads"`
	NumKVHeads       int     `json:"num_kv_heads"`
	TotalSeconds     float64 `json:"total_seconds"`
}

// calibWindow is the longest calibration window: the model's context, at most
// this many tokens.
const calibWindow = 512

func newPruneCmd(g *globalFlags) *cobra.Command {
	var (
		method, pattern, structured, scope string
		include, exclude, calibPath        string
		calibTokens                        int
		dense, force, gradual              bool
		opts                               prune.Options
		lopts                              format.LoadOptions
		gf                                 gradualFlags
		td                                 trainData
		lf                                 lmRecoveryFlags
		topts                              = train.DefaultOptions()
	)
	cmd := &cobra.Command{
		Use:   "prune SRC DST",
		Short: "Zero a model's weights (unstructured or N:M) or remove FFN neurons and attention heads",
		Long: `prune sets weights of a model to zero, or removes whole FFN neurons or
attention heads, and writes the result as GGUF or a Hugging Face folder.

Methods (--method):
  magnitude  drops the weights of smallest |w|. --scope layer (the default)
             gives every matrix the same sparsity; --scope global sets one
             threshold over all selected matrices.
  wanda      drops the weights of smallest |W_ij|·||X_j||₂ within each output
             row, X being the matrix's inputs on the calibration text.
  sparsegpt  chooses the mask by w²/[H⁻¹]_jj² per block of 128 columns and
             updates the remaining weights of the row to make up for each
             pruned one (Frantar & Alistarh 2023), H = XᵀX.
wanda and sparsegpt need --calib FILE. They run the model one decoder layer at
a time over --calib-tokens tokens of it (windows of the model's context, at
most 512 tokens, starting with BOS, at seeded offsets spread over the text:
--seed), so each layer is fitted to the outputs of the pruned layers before
it; within a layer the q/k/v, o, gate/up and down groups are pruned in that
order, each seeing the inputs of the already pruned groups before it.
Magnitude with --calib only adds the output errors to the report.

What is zeroed:
  --sparsity S     a fraction S in [0, 1) of the weights.
  --pattern N:M    in every group of M consecutive weights along a row, keep N
                   (2:4, 4:8; semi-structured sparsity that hardware can use).
                   M must divide the row length.
  --structured ffn remove the fraction --sparsity of FFN neurons (rows of gate
                   and up, columns of down) from every layer; the model gets a
                   smaller intermediate size.
  --structured heads
                   remove the fraction --sparsity of KV groups from every
                   layer: each group is one key/value head with the query
                   heads that share it, so grouped-query attention keeps its
                   shape and the KV cache shrinks too (for a model without
                   GQA a group is one head).
Structured importance: magnitude uses ||gate_k||·||up_k||·||down_:k|| for a
neuron and ||O_:G||·||V_G|| for a group; wanda and sparsegpt use the unit's
contribution to the layer's output on the calibration text, and sparsegpt then
refits the kept down (or o) columns by least squares.

Which tensors: the seven linear matrices of every decoder layer (an MLP's
weights); --include REGEX adds tensors (embeddings, the head: these are
pruned by magnitude whatever the method), --exclude REGEX removes them and
wins. Patterns are unanchored searches over Hugging Face tensor names.

The report has a row per layer with each matrix's sparsity and, with
calibration, its relative output error ||WX - ŴX|| / ||WX|| on the
calibration inputs, then a summary: parameters kept, and the size before and
after. The same flags give the same bytes, whatever --threads.

Gradual pruning (--gradual) prunes while it trains (Zhu & Gupta 2017): an mlp
classifier on Fashion-MNIST, a llama-family model on the text of --text.
Before steps t0, t0+dt, ..., t0+n*dt, every weight matrix of an mlp (not the
biases), or every linear matrix of a llama model (q, k, v, o, gate, up and
down of each layer; not the embedding, the norms or the head), is pruned
by magnitude to

  s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n*dt))^3

from --initial-sparsity s_i to --sparsity s_f; t0 is the --ramp-start share
of the steps, t0+n*dt the --ramp-end share, dt --prune-every (by default the
ramp is cut into 30 intervals). Each matrix gets the same sparsity, or with
--scope global one threshold is set over all. A pruned weight never comes
back: it and its AdamW moments stay zero while the training goes on, and the
steps after the ramp fine-tune with the masks fixed. --distill adds SRC's own
soft targets to the labels' loss (--temperature, --alpha, as distill does).
For an mlp the training flags (--steps or --epochs, --batch, --lr, --data,
--val, --limit, ...) work as train's; --seed orders the examples. The report
gives the test accuracy of SRC, of SRC pruned by magnitude in one shot to the
same sparsity, and of the result, with each matrix's sparsity.

For a llama model, --text FILE is tokenized with the model's tokenizer and
held out as train --arch llama does (--heldout FILE, or the lines that begin
in the last 10% of --text's bytes); each of --steps steps (default 500) draws
--batch windows (default 16) of --ctx tokens (default 128) that start with
BOS, at seeded offsets (--seed). Unless set, --lr is 3e-3, --weight-decay 0.1,
--warmup 0.05, and --distill's --temperature 1 and --alpha 0.5. The report
gives the held-out perplexity (windows of --ctx tokens) of SRC, of SRC pruned
by magnitude in one shot to the same sparsity, and of the result, with the
sparsity of every layer's matrices. --data, --val, --limit and --epochs are
refused for a llama model, --text, --heldout and --ctx for an mlp.
--checkpoint, --checkpoint-every and --resume work as train's: an interrupted
run resumed from its checkpoint with the same flags writes the same bytes.

DST is a .gguf file or a Hugging Face folder (from its name). A folder stores
its sparse matrices in compressed-tensors' layouts (2:4, or a bitmask), which
Hugging Face tools read, unless --dense; GGUF has no sparse layout, so its
zeros are stored densely. The output is written atomically, replaced only with
--force, and may never be SRC.`,
		Example: `  shrink prune stories260K.bin pruned.gguf --method magnitude --sparsity 0.5
  shrink prune stories260K.bin pruned.gguf --method sparsegpt --pattern 2:4 --calib tinystories.txt
  shrink prune model.gguf small.gguf --method wanda --structured ffn --sparsity 0.3 --calib wiki.txt
  shrink prune ./Llama-3.2-1B ./pruned --method magnitude --sparsity 0.6 --scope global --exclude 'layers\.0\.'
  shrink prune --gradual --sparsity 0.9 --distill --data fashion-mnist ./fmnist-teacher ./fmnist-90
  shrink prune --gradual --sparsity 0.7 --text tinystories.txt --steps 300 stories260K.bin stories-70.gguf`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, dst := args[0], args[1]
			var err error
			if opts.Method, err = prune.ParseMethod(method); err != nil {
				return fmt.Errorf("--method: %w", err)
			}
			if !(opts.Sparsity >= 0 && opts.Sparsity < 1) {
				return fmt.Errorf("--sparsity %g: want a fraction in [0, 1)", opts.Sparsity)
			}
			if pattern != "" {
				if opts.Pattern, err = prune.ParsePattern(pattern); err != nil {
					return fmt.Errorf("--pattern: %w", err)
				}
				if cmd.Flags().Changed("sparsity") {
					return fmt.Errorf("--sparsity and --pattern both given: the pattern %s fixes the sparsity", pattern)
				}
			} else if !cmd.Flags().Changed("sparsity") {
				return fmt.Errorf("--sparsity or --pattern is required")
			}
			if structured != "" {
				if opts.Structured, err = prune.ParseStructure(structured); err != nil {
					return fmt.Errorf("--structured: %w", err)
				}
			}
			switch scope {
			case "layer", "global":
				opts.Scope = prune.Scope(scope)
			default:
				return fmt.Errorf("--scope %q: want layer or global", scope)
			}
			if gradual {
				for _, name := range []string{"pattern", "structured", "calib", "calib-tokens", "include", "exclude"} {
					if cmd.Flags().Changed(name) {
						return fmt.Errorf("--%s does not apply to --gradual: it prunes every weight matrix of an mlp classifier, or the seven linear matrices of every layer of a llama model, by magnitude", name)
					}
				}
				if opts.Method != prune.Magnitude {
					return fmt.Errorf("--method %s: --gradual prunes by magnitude", opts.Method)
				}
				if err := checkSoftTargets(&topts); err != nil {
					return err
				}
				gf.final, gf.global = opts.Sparsity, opts.Scope == prune.Global
				if err := gf.check(); err != nil {
					return err
				}
				if err := checkTrainFlags(&topts, "", td); err != nil {
					return err
				}
				if err := checkCheckpointFlags(cmd.Flags().Changed("checkpoint-every"), &topts); err != nil {
					return err
				}
				kind, err := format.ParseOutputKind("", dst)
				if err != nil {
					return err
				}
				if err := checkOut(dst, force); err != nil {
					return err
				}
				r := recoveryRun{command: "prune --gradual", src: src, dst: dst, kind: kind, force: force, dense: dense,
					lopts: lopts, td: td, opts: topts, gradual: &gf, lf: lf}
				return r.run(cmd, g)
			}
			for _, name := range gradualOnly {
				if cmd.Flags().Changed(name) {
					return fmt.Errorf("--%s applies to --gradual only", name)
				}
			}
			opts.Threads = topts.Threads
			for _, re := range []struct {
				flag, s string
				dst     **regexp.Regexp
			}{{"--include", include, &opts.Include}, {"--exclude", exclude, &opts.Exclude}} {
				if re.s == "" {
					continue
				}
				if *re.dst, err = regexp.Compile(re.s); err != nil {
					return fmt.Errorf("%s %q: %w", re.flag, re.s, err)
				}
			}
			if opts.Threads < 0 {
				return fmt.Errorf("--threads %d: must not be negative", opts.Threads)
			}
			if calibTokens <= 0 {
				return fmt.Errorf("--calib-tokens %d: want a positive count", calibTokens)
			}
			if opts.Method.NeedsCalibration() && calibPath == "" {
				return fmt.Errorf("--method %s needs --calib FILE: a text to run the model on", opts.Method)
			}
			kind, err := format.ParseOutputKind("", dst)
			if err != nil {
				return err
			}
			if err := refuseExisting(dst, force); err != nil {
				return err
			}

			start := time.Now()
			m, srcKind, err := format.Load(src, lopts)
			if err != nil {
				return err
			}
			defer m.Close()
			if calibPath != "" {
				if m.Config.Arch != "llama" {
					return fmt.Errorf("%s: calibration runs a llama-family model, not %q", src, m.Config.Arch)
				}
				length := min(m.Config.ContextLength, calibWindow, calibTokens)
				if opts.Calibration, err = calibration(m, calibPath, calibTokens, length, topts.Seed,
					"lower --calib-tokens or use a longer text"); err != nil {
					return err
				}
			}
			var bar *progress.Bar
			var shown int64
			opts.Progress = func(done, total int64) {
				if bar == nil {
					bar = progress.New("prune "+filepath.Base(src), total, "weights", g.quiet)
				}
				bar.Add(done - shown)
				shown = done
			}
			p, rep, err := prune.Prune(m, opts)
			bar.Finish()
			if err != nil {
				return fmt.Errorf("%s: %w", src, err)
			}
			if err := format.Save(src, dst, p, saveOptions(kind, force, dense)); err != nil {
				return err
			}
			disk, err := format.DiskBytes(dst)
			if err != nil {
				return err
			}
			for _, w := range rep.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
			}
			out := pruneReport{SchemaVersion: 1, Source: src, SourceKind: string(srcKind), Dest: dst, DestKind: string(kind),
				FileBytes: disk, CalibText: calibPath, Report: &rep, IntermediateSize: p.Config.IntermediateSize,
				NumHeads: p.Config.NumHeads, NumKVHeads: p.Config.NumKVHeads, TotalSeconds: time.Since(start).Seconds()}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			return writePruneTables(cmd, out, m.Config)
		},
	}
	f := cmd.Flags()
	f.StringVar(&method, "method", string(prune.Magnitude), "magnitude, wanda or sparsegpt")
	f.Float64Var(&opts.Sparsity, "sparsity", 0, "fraction of weights (or, with --structured, of neurons or KV groups) to remove, in [0, 1)")
	f.StringVar(&pattern, "pattern", "", "N:M: keep N of every M consecutive weights along a row (e.g. 2:4)")
	f.StringVar(&structured, "structured", "", "remove whole units: ffn (neurons) or heads (KV groups)")
	f.StringVar(&calibPath, "calib", "", "calibration text file (needed by wanda and sparsegpt)")
	f.IntVar(&calibTokens, "calib-tokens", 32768, "calibration tokens, in windows of the model's context (at most 512)")
	f.StringVar(&scope, "scope", "layer", "magnitude threshold: layer (one per matrix) or global (one over all)")
	f.StringVar(&include, "include", "", "REGEX: also prune matching tensors (embeddings, head)")
	f.StringVar(&exclude, "exclude", "", "REGEX: leave matching tensors as they are")
	f.BoolVar(&dense, "dense", false, "store zeros densely in a Hugging Face folder too (default: compressed-tensors sparse layouts)")
	f.BoolVar(&force, "force", false, "replace DST if it exists")
	f.BoolVar(&g.json, "json", false, "print the report as JSON")
	f.StringVar(&lopts.Arch, "arch", "", `architecture of a bare state dict ("mlp")`)

	f.BoolVar(&gradual, "gradual", false, "prune gradually while training: an mlp classifier on Fashion-MNIST, a llama model on --text")
	f.Float64Var(&gf.initial, "initial-sparsity", 0, "sparsity of the first pruning")
	f.Float64Var(&gf.rampStart, "ramp-start", 0, "share of the steps before the first pruning")
	f.Float64Var(&gf.rampEnd, "ramp-end", 0.5, "share of the steps by which --sparsity is reached; the rest fine-tune")
	f.IntVar(&gf.every, "prune-every", 0, "steps between prunings (default: the ramp in 30 intervals)")
	f.IntVar(&gf.prunings, "prunings", 0, "cut the ramp into this many intervals (default 30)")
	f.BoolVar(&gf.selfDistill, "distill", false, "also learn from SRC's soft targets (self-distillation)")
	f.Float64Var(&topts.Temperature, "temperature", topts.Temperature, "softmax temperature of --distill's soft targets")
	f.Float64Var(&topts.Alpha, "alpha", topts.Alpha, "weight of --distill's term (1-alpha weighs the labels)")
	// One-shot pruning seeds its calibration windows from 0, as it did
	// before --seed also ordered --gradual's examples.
	topts.Seed = 0
	addTrainFlags(cmd, &topts, &td)
	addCheckpointFlags(cmd, &topts)
	f.IntVar(&topts.Epochs, "epochs", 20, "passes over the training images (ignored with --steps)")
	lf.add(cmd)
	for _, name := range gradualOnly {
		fl := f.Lookup(name)
		fl.Usage = "--gradual: " + fl.Usage
	}
	f.Lookup("seed").Usage = "seed of the calibration windows' offsets; with --gradual, of the order of the examples"
	f.Lookup("threads").Usage = "threads (default: every core)"
	return cmd
}

// gradualOnly are prune's flags that only --gradual uses.
var gradualOnly = []string{"initial-sparsity", "ramp-start", "ramp-end", "prune-every", "prunings", "distill", "temperature", "alpha",
	"data", "val", "limit", "steps", "epochs", "batch", "lr", "weight-decay", "warmup", "clip", "text", "heldout", "ctx",
	"checkpoint", "checkpoint-every", "resume"}

// saveOptions are the format options of prune's output: a Hugging Face
// folder stores its sparse matrices in compressed-tensors' layouts unless
// --dense; GGUF has no sparse layout.
func saveOptions(kind format.Kind, force, dense bool) format.SaveOptions {
	return format.SaveOptions{To: kind, Force: force, Sparse: kind == format.HF && !dense}
}

// matrixColumns are the short names of a layer table's columns.
var matrixColumns = []struct{ suffix, label string }{
	{model.AttnQ, "q"}, {model.AttnK, "k"}, {model.AttnV, "v"}, {model.AttnO, "o"},
	{model.FFNGate, "gate"}, {model.FFNUp, "up"}, {model.FFNDown, "down"},
}

func writePruneTables(cmd *cobra.Command, r pruneReport, before model.Config) error {
	w := cmd.OutOrStdout()
	cell := func(mr prune.MatrixReport) string {
		s := fmt.Sprintf("%.1f%%", 100*mr.Sparsity)
		if mr.RelOutputError != nil {
			s += fmt.Sprintf(" %.4f", *mr.RelOutputError)
		}
		return s
	}
	byLayer := map[int]map[string]prune.MatrixReport{}
	var others [][]string
	var sumErr float64
	var nErr int
	for _, mr := range r.Matrices {
		if mr.RelOutputError != nil {
			sumErr += *mr.RelOutputError
			nErr++
		}
		suffix := ""
		if mr.Layer >= 0 {
			suffix = mr.Name[len(model.LayerTensor(mr.Layer, "")):]
		}
		known := false
		for _, c := range matrixColumns {
			known = known || c.suffix == suffix
		}
		if !known {
			others = append(others, []string{mr.Name, shapeString(mr.ShapeBefore) + " -> " + shapeString(mr.Shape), cell(mr)})
			continue
		}
		if byLayer[mr.Layer] == nil {
			byLayer[mr.Layer] = map[string]prune.MatrixReport{}
		}
		byLayer[mr.Layer][suffix] = mr
	}
	if len(byLayer) > 0 {
		what := "sparsity per matrix"
		if nErr > 0 {
			what += ", then relative output error ||WX-ŴX||/||WX|| on the calibration text"
		}
		fmt.Fprintln(w, what)
		headers := []string{"layer"}
		for _, c := range matrixColumns {
			headers = append(headers, c.label)
		}
		var rows [][]string
		for l := range before.NumLayers {
			ms, ok := byLayer[l]
			if !ok {
				continue
			}
			row := []string{strconv.Itoa(l)}
			for _, c := range matrixColumns {
				if mr, ok := ms[c.suffix]; ok {
					row = append(row, cell(mr))
				} else {
					row = append(row, "-")
				}
			}
			rows = append(rows, row)
		}
		if err := writeTable(w, headers, rows, 1, 2, 3, 4, 5, 6, 7); err != nil {
			return err
		}
	}
	if len(others) > 0 {
		if err := writeTable(w, []string{"tensor", "shape", "sparsity"}, others, 2); err != nil {
			return err
		}
	}

	how := string(r.Method)
	switch {
	case r.Structured != "":
		how += fmt.Sprintf(", structured %s, %.0f%% removed", r.Structured, 100*r.Sparsity)
	case r.Pattern != "":
		how += ", " + r.Pattern + " pattern"
	default:
		how += fmt.Sprintf(", %.1f%% unstructured", 100*r.Sparsity)
		if r.Scope == prune.Global {
			how += ", global threshold"
		}
	}
	ratio := func(a, b int64) string {
		if b == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2fx", float64(a)/float64(b))
	}
	rows := [][]string{
		{"source", fmt.Sprintf("%s (%s)", filepath.Base(r.Source), r.SourceKind)},
		{"output", fmt.Sprintf("%s (%s, %s on disk)", filepath.Base(r.Dest), r.DestKind, humanBytes(r.FileBytes))},
		{"method", how},
	}
	if r.CalibSequences > 0 {
		rows = append(rows, []string{"calibration", fmt.Sprintf("%s: %d windows, %s tokens", filepath.Base(r.CalibText), r.CalibSequences, commas(int64(r.CalibTokens)))})
	}
	rows = append(rows,
		[]string{"pruned matrices", fmt.Sprintf("%d, %s of %s weights kept (%.2f%% sparse)", len(r.Matrices), commas(r.SelectedKept), commas(r.Selected), 100*r.ReachedSparsity)},
		[]string{"parameters kept", fmt.Sprintf("%s of %s (%.2f%%)", commas(r.ParametersKept), commas(r.ParametersBefore), 100*float64(r.ParametersKept)/math.Max(1, float64(r.ParametersBefore)))},
	)
	if r.Structured != "" {
		rows = append(rows, []string{"shape", fmt.Sprintf("FFN %d -> %d, heads %d/%d -> %d/%d (q/kv)",
			before.IntermediateSize, r.IntermediateSize, before.NumHeads, before.NumKVHeads, r.NumHeads, r.NumKVHeads)})
	}
	rows = append(rows, []string{"tensor data", fmt.Sprintf("%s -> %s (%s smaller)", humanBytes(r.BytesBefore), humanBytes(r.BytesAfter), ratio(r.BytesBefore, r.BytesAfter))})
	if nErr > 0 {
		rows = append(rows, []string{"mean relative output error", fmt.Sprintf("%.4f", sumErr/float64(nErr))})
	}
	secs := func(s float64) time.Duration { return time.Duration(s * 1e9).Round(time.Millisecond) }
	rows = append(rows, []string{"time", fmt.Sprintf("%v pruning on %d threads, %v in all", secs(r.Seconds), r.Threads, secs(r.TotalSeconds))})
	return writeTable(w, []string{"", "value"}, rows)
}
