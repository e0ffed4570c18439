package main

import (
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shrinkml/shrink/format"
	"github.com/shrinkml/shrink/internal/calib"
	"github.com/shrinkml/shrink/internal/progress"
	"github.com/shrinkml/shrink/model"
	"github.com/shrinkml/shrink/quantize"
)

// quantizeReport is quantize's --json output: the library's report (scheme,
// per-tensor rows, totals, warnings) with the files around it.
type quantizeReport struct {
	SchemaVersion int    `json:"schema_version"`
	Source        string `json:"source"`
	SourceKind    string `json:"source_format"`
	Dest          string `json:"dest"`
	DestKind      string `json:"dest_format"`
	FileBytes     int64  `json:"file_bytes"`
	*quantize.Report
	TotalSeconds float64 `json:"total_seconds"`
}

func newQuantizeCmd(g *globalFlags) *cobra.Command {
	var (
		scheme, method, to string
		types, keep        []string
		opts               quantize.Options
		force              bool
		sym, asym          bool
		lopts              format.LoadOptions
		calibPath          string
		calibTokens        int
		calibCtx           int
		seed               uint64
	)
	cmd := &cobra.Command{
		Use:   "quantize SRC DST",
		Short: "Quantize a model's matrices to Q8_0, Q4_0, Q4_1, int8 or int4 and write GGUF or safetensors",
		Long: `quantize stores the weight matrices of any checkpoint shrink can load in
GGUF's Q8_0, Q4_0 or Q4_1 blocks of 32 weights, rounding each weight to the
nearest level (--method rtn). The bytes are those llama.cpp's llama-quantize
writes for the same tensor and type.

--scheme int8 and int4 are the integer schemes of compressed-tensors (the
format llm-compressor writes and vLLM runs), rounded as it rounds them:
int8 gives every row (output channel) one fp16 scale, symmetric (8 bits plus
16 per row); int4 gives every --group of 32, 64 or 128 weights of a row
(default 128) an fp16 scale, symmetric (--sym, the default) or with an
integer zero point (--asym): 4.125 bits per weight at group 128, 4.5 at 32.
A matrix whose rows are not a whole number of groups gets the largest
smaller group that fits, with a warning, else int8. The output head gets int8
under int4 unless --pure. GGUF has no such types: write these to a folder,
where they are stored in compressed-tensors' int-quantized and
pack-quantized formats with a quantization_config in config.json (vLLM
quantizes linear layers only: add --keep 'embed_tokens|lm_head' for it). With
--method gptq their scales are searched as the blocks' are (below): an int4
group's when GPTQ reaches it, with integer zero points under --asym and
either sign of scale otherwise; an int8 row's up front, each weight's error
weighed by its input's mean square.

--method gptq (llama-family models) quantizes each decoder layer's matrices
with GPTQ instead: it runs the model layer by layer over --calib-tokens
tokens of the --calib text (windows of --calib-ctx tokens, each after a BOS,
picked with --seed), and rounds each matrix column by column, spreading every
column's rounding error over the columns still to come through the inverse
Hessian of the layer's inputs, so that the layer's outputs, not its weights,
stay close. Each later layer is fitted to the outputs of the quantized layers
before it. Each 32-weight block's scale is searched when GPTQ reaches the
block: a grid of scales around RTN's absmax one, each refitted by weighted
least squares to the codes it gives, and the scale under which GPTQ's
rounding of the block adds least to the layer's output error wins (RTN's own
scale is a candidate, so no block does worse than with it). --act-order
takes columns by decreasing activation instead, with every block's scale
searched up front on the original weights, each weight's error weighed by
its input's mean square. The output is an ordinary GGUF of the same block
types; the same flags give the same bytes. An untied output head gets GPTQ
after the last layer, fitted to the final norm's outputs; the token
embedding (and a tied head, which is the embedding) gets RTN. The summary adds
the calibration size and the Hessian dampening (1% of the mean diagonal,
raised tenfold where a Hessian does not factorize).

--method awq (activation-aware weight quantization, llama-family models)
runs the same layer-by-layer calibration and, for each group of matrices that
read one input (q, k and v; gate and up; down; o when every query head has its
own value head), scales input channel j by s_j = mean|x_j|^alpha, with alpha
searched over 0, 0.05, ..., 0.95 for the least output error of the group after
RTN (alpha 0 is RTN itself). The scales are folded in exactly: the matrices'
columns are multiplied by s and the norm weights (for o and down, v's and
up's rows) divided by it, so the model computes the same function before
rounding; the rewritten norms are stored as F32. --method awq+gptq rounds
the scaled matrices with GPTQ instead of RTN. The summary gives the mean alpha
per group and the layers' output error as a fraction of RTN's; --json lists
each layer's alpha.

Which tensors get what, first rule first:
  1. 1-D tensors (norms, biases) always stay as they are.
  2. --keep REGEX leaves matching tensors as they are.
  3. --type REGEX=SCHEME stores matching matrices with SCHEME (q8_0, q4_0,
     q4_1, int8, int4, or f16, bf16, f32); the first matching --type wins.
  4. --pure stores every other matrix, embeddings and output head included,
     with --scheme, as llama-quantize --pure does.
  5. Otherwise the defaults: every matrix gets --scheme, the token embedding
     included (a token reads only its own row), except the output head, the
     most sensitive matrix, which gets Q8_0 when --scheme is q4_0 or q4_1 and
     int8 when it is int4. A tied
     embedding is the output head too, so it is treated as the head. (A GGUF
     that stores the head as a copy of the embedding, as llama.cpp's llama2.c
     converter writes, has two matrices and keeps them, quantized apart.)
Patterns are unanchored regular expressions over Hugging Face tensor names,
e.g. model.layers.0.mlp.down_proj.weight or lm_head.weight; anchor them with ^
and $ to match whole names.

A matrix whose rows are not a multiple of 32 weights fits no block type; it is
stored as F16 instead (left as it is when already F16 or BF16), with a warning
naming it. Matrices that are already quantized are kept, with a warning. A NaN
or infinite weight is an error naming the tensor, row and column.

The work runs on --threads goroutines; the output does not depend on how many.
The summary reports tensors quantized, kept and fallen back, the size of the
tensor data before and after, bits per weight, and the worst and mean relative
RMSE ||W - dequant(quant(W))|| / ||W|| over the rewritten tensors; --json
prints it as one object with a row per tensor. Warnings go to stderr.

DST is a GGUF file when named *.gguf (or with --to gguf), which holds
llama-family models. Otherwise it is safetensors, with each quantized matrix
stored byte for byte as a U8 matrix of GGUF blocks and its block type and
shape recorded in the file's __metadata__ (shrink's quantized layout; see the
format/safetensors package): a DST named *.safetensors is a bare state dict,
for mlp classifiers, and any other DST (or --to hf) a Hugging Face folder with
config.json, for llama-family models and mlp classifiers alike. shrink loads
all three back with the same blocks. DST is written atomically, replaced only
with --force, and may never be SRC.`,
		Example: `  shrink quantize model.gguf model-q4_0.gguf --scheme q4_0
  shrink quantize ./fmnist-mlp ./fmnist-mlp-q8_0 --scheme q8_0
  shrink quantize ./SmolLM-135M ./SmolLM-135M-q4_0 --scheme q4_0 --to hf
  shrink quantize stories260K.bin stories260K-q8_0.gguf --scheme q8_0 --pure
  shrink quantize ./Llama-3.2-1B model-q4_1.gguf --scheme q4_1 --type 'mlp\.down_proj=q8_0' --keep '^model\.layers\.0\.'
  shrink quantize model.gguf out.gguf --scheme q4_0 --threads 4 --json --force
  shrink quantize model.gguf model-gptq-q4_0.gguf --scheme q4_0 --method gptq --calib train.txt --act-order
  shrink quantize model.gguf model-awq-q4_0.gguf --scheme q4_0 --method awq --calib train.txt
  shrink quantize ./SmolLM-135M ./SmolLM-135M-int4 --scheme int4 --group 128 --asym --keep 'embed_tokens|lm_head'
  shrink quantize ./SmolLM-135M ./SmolLM-135M-int8 --scheme int8`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, dst := args[0], args[1]
			if scheme == "" {
				return fmt.Errorf("--scheme is required: q8_0, q4_0, q4_1, int8 or int4")
			}
			var err error
			if opts.Scheme, err = quantize.ParseScheme(scheme); err != nil || !opts.Scheme.Block() {
				return fmt.Errorf("--scheme %q: want q8_0, q4_0, q4_1, int8 or int4", scheme)
			}
			usesInt4 := opts.Scheme == quantize.Int4
			for _, s := range types {
				usesInt4 = usesInt4 || strings.HasSuffix(strings.ToLower(s), "=int4")
			}
			switch fl := cmd.Flags(); {
			case sym && asym:
				return fmt.Errorf("--sym and --asym exclude each other")
			case !usesInt4 && (fl.Changed("group") || sym || asym):
				return fmt.Errorf("--group, --sym and --asym apply to int4 only (--scheme int4 or a --type REGEX=int4)")
			case opts.Group != 32 && opts.Group != 64 && opts.Group != 128:
				return fmt.Errorf("--group %d: want 32, 64 or 128", opts.Group)
			}
			opts.Asym = asym
			if opts.Method, err = quantize.ParseMethod(method); err != nil {
				return fmt.Errorf("--method: %w", err)
			}
			for _, s := range types {
				r, err := quantize.ParseRule(s)
				if err != nil {
					return fmt.Errorf("--type: %w", err)
				}
				opts.Rules = append(opts.Rules, r)
			}
			for _, s := range keep {
				re, err := regexp.Compile(s)
				if err != nil {
					return fmt.Errorf("--keep %q: %w", s, err)
				}
				opts.Keep = append(opts.Keep, re)
			}
			if opts.Threads < 0 {
				return fmt.Errorf("--threads %d: must not be negative", opts.Threads)
			}
			if opts.Method.NeedsCalibration() {
				if calibPath == "" {
					return fmt.Errorf("--method %s needs --calib FILE: a text to calibrate on", opts.Method)
				}
				if calibTokens <= 0 || calibCtx < 0 {
					return fmt.Errorf("--calib-tokens %d must be positive and --calib-ctx %d not negative", calibTokens, calibCtx)
				}
				if opts.ActOrder && opts.Method == quantize.AWQ {
					return fmt.Errorf("--act-order applies to --method gptq and awq+gptq only")
				}
			} else if calibPath != "" || opts.ActOrder {
				return fmt.Errorf("--calib and --act-order apply to --method gptq, awq and awq+gptq only")
			}
			kind, err := format.ParseOutputKind(to, dst)
			if err != nil {
				return err
			}
			// A *.safetensors DST is a bare state dict unless --to hf asks for a folder.
			if kind == format.HF && !strings.EqualFold(to, "hf") && strings.EqualFold(filepath.Ext(dst), ".safetensors") {
				kind = format.Safetensors
			}
			if kind == format.GGUF {
				for _, s := range append([]string{scheme}, types...) {
					if sc := strings.ToLower(s[strings.LastIndex(s, "=")+1:]); sc == "int8" || sc == "int4" {
						return fmt.Errorf("%s: GGUF has no %s type (per-channel int8, group int4): use --scheme q8_0 or q4_0 for GGUF, or write a Hugging Face folder (a DST not named *.gguf)", dst, sc)
					}
				}
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
			// Refuse what cannot be written before the work, not after.
			switch {
			case kind == format.GGUF && m.Config.Arch != "llama":
				return fmt.Errorf("%s: GGUF output holds llama-family models, not %q; write a safetensors folder (a DST not named *.gguf) instead", dst, m.Config.Arch)
			case kind == format.Safetensors && m.Config.Arch != "mlp":
				return fmt.Errorf("%s: a bare .safetensors file has no config.json, so it holds mlp classifiers only, not %q; write a folder (a DST not named *.safetensors, or --to hf) instead", dst, m.Config.Arch)
			}
			if opts.Method.NeedsCalibration() {
				if opts.Calibration, err = calibration(m, calibPath, calibTokens, calibCtx, seed, "lower --calib-tokens or --calib-ctx"); err != nil {
					return err
				}
			}
			var bar *progress.Bar
			var shown int64
			opts.Progress = func(done, total int64) {
				if bar == nil {
					label := "quantize "
					if opts.Method.NeedsCalibration() {
						label = string(opts.Method) + " "
					}
					bar = progress.New(label+filepath.Base(src), total, "weights", g.quiet)
				}
				bar.Add(done - shown)
				shown = done
			}
			q, rep, err := quantize.Quantize(m, opts)
			bar.Finish()
			if err != nil {
				return fmt.Errorf("%s: %w", src, err)
			}
			if err := format.Save(src, dst, q, format.SaveOptions{To: kind, Force: force}); err != nil {
				return err
			}
			disk, err := format.DiskBytes(dst)
			if err != nil {
				return err
			}
			for _, w := range rep.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
			}
			out := quantizeReport{SchemaVersion: 1, Source: src, SourceKind: string(srcKind), Dest: dst, DestKind: string(kind),
				FileBytes: disk, Report: &rep, TotalSeconds: time.Since(start).Seconds()}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			return writeQuantizeTable(cmd, out)
		},
	}
	f := cmd.Flags()
	f.StringVar(&scheme, "scheme", "", "storage for the matrices: q8_0, q4_0, q4_1, int8 or int4 (required)")
	f.IntVar(&opts.Group, "group", quantize.DefaultGroup, "int4: weights per scale, 32, 64 or 128")
	f.BoolVar(&sym, "sym", false, "int4: symmetric groups, no zero point (the default)")
	f.BoolVar(&asym, "asym", false, "int4: groups with an integer zero point")
	f.StringVar(&method, "method", string(quantize.RTN), "quantization method: rtn (round to nearest), gptq, awq or awq+gptq")
	f.StringVar(&calibPath, "calib", "", "text file to calibrate GPTQ and AWQ on (required with --method gptq, awq, awq+gptq)")
	f.IntVar(&calibTokens, "calib-tokens", 16384, "calibration tokens for GPTQ and AWQ")
	f.IntVar(&calibCtx, "calib-ctx", 0, "tokens per calibration window (default: min(512, context length))")
	f.Uint64Var(&seed, "seed", 1, "seed that picks the calibration windows")
	f.BoolVar(&opts.ActOrder, "act-order", false, "GPTQ: round columns by decreasing activation (static block scales)")
	f.Float64Var(&opts.Damp, "damp", calib.DefaultDamp, "GPTQ: Hessian dampening, a fraction of its mean diagonal")
	f.BoolVar(&opts.Pure, "pure", false, "use --scheme for every matrix, embeddings and output head included")
	f.StringArrayVar(&types, "type", nil, "REGEX=SCHEME: store matching matrices as SCHEME (repeatable; first match wins)")
	f.StringArrayVar(&keep, "keep", nil, "REGEX: leave matching tensors as they are (repeatable)")
	f.IntVar(&opts.Threads, "threads", 0, "threads (default: every core)")
	f.BoolVar(&force, "force", false, "replace DST if it exists")
	f.StringVar(&to, "to", "", "output format: gguf, or safetensors/hf (default: from DST: *.gguf GGUF, *.safetensors a bare state dict, else a folder)")
	f.BoolVar(&g.json, "json", false, "print the report as JSON")
	f.StringVar(&lopts.Arch, "arch", "", `architecture of a bare state dict ("mlp")`)
	return cmd
}

func writeQuantizeTable(cmd *cobra.Command, r quantizeReport) error {
	stored := map[model.DType]int{}
	for _, t := range r.Tensors {
		if t.Action == quantize.Quantized {
			stored[t.To]++
		}
	}
	var parts []string
	for _, d := range slices.Sorted(maps.Keys(stored)) {
		parts = append(parts, fmt.Sprintf("%d %s", stored[d], d))
	}
	scheme := fmt.Sprintf("%s (%s)", r.Scheme, r.Method)
	if r.Group > 0 {
		sym := "symmetric"
		if r.Asym {
			sym = "asymmetric"
		}
		scheme = fmt.Sprintf("%s, groups of %d, %s (%s)", r.Scheme, r.Group, sym, r.Method)
	}
	if r.Pure {
		scheme += ", pure"
	}
	quantized := commas(int64(r.Quantized))
	if len(parts) > 0 {
		quantized += " (" + strings.Join(parts, ", ") + ")"
	}
	ratio := "n/a"
	if r.BytesAfter > 0 {
		ratio = fmt.Sprintf("%.2fx smaller", float64(r.BytesBefore)/float64(r.BytesAfter))
	}
	rows := [][]string{
		{"source", fmt.Sprintf("%s (%s)", filepath.Base(r.Source), r.SourceKind)},
		{"output", fmt.Sprintf("%s (%s, %s on disk)", filepath.Base(r.Dest), r.DestKind, humanBytes(r.FileBytes))},
		{"scheme", scheme},
		{"tensors quantized", quantized},
		{"tensors kept", commas(int64(r.Kept))},
		{"tensors fallen back to 16-bit", commas(int64(r.Fallback))},
	}
	if r.Converted > 0 {
		rows = append(rows, []string{"tensors converted", commas(int64(r.Converted))})
	}
	if r.Method == quantize.AWQ {
		rows = append(rows, []string{"calibration", fmt.Sprintf("%s tokens", commas(int64(r.CalibrationTokens)))})
	}
	if r.Method == quantize.GPTQ || r.Method == quantize.AWQGPTQ {
		order := "column order, block scales searched as GPTQ reaches each block"
		if r.ActOrder {
			order = "act order, block scales searched up front"
		}
		if r.BlockScales == "absmax" {
			order = strings.Replace(order, "searched", "as RTN's (absmax)", 1)
		}
		rows = append(rows,
			[]string{"calibration", fmt.Sprintf("%s tokens, %s", commas(int64(r.CalibrationTokens)), order)},
			[]string{"dampening", fmt.Sprintf("%g of the mean Hessian diagonal (largest used)", r.MaxDamp)},
		)
	}
	if len(r.AWQ) > 0 {
		rows = append(rows, []string{"awq scales", awqSummary(r.AWQ)})
	}
	rows = append(rows,
		[]string{"tensor data", fmt.Sprintf("%s -> %s (%s)", humanBytes(r.BytesBefore), humanBytes(r.BytesAfter), ratio)},
		[]string{"bits per weight", fmt.Sprintf("%.2f -> %.2f", r.BitsPerWeightBefore, r.BitsPerWeight)},
	)
	if r.WorstTensor != "" {
		rows = append(rows,
			[]string{"worst relative RMSE", fmt.Sprintf("%.4f (%s)", r.WorstRelRMSE, r.WorstTensor)},
			[]string{"mean relative RMSE", fmt.Sprintf("%.4f", r.MeanRelRMSE)},
		)
	}
	secs := func(s float64) time.Duration { return time.Duration(s * 1e9).Round(time.Millisecond) }
	rows = append(rows, []string{"time", fmt.Sprintf("%v quantizing on %d threads, %v in all", secs(r.Seconds), r.Threads, secs(r.TotalSeconds))})
	return writeTable(cmd.OutOrStdout(), []string{"", "value"}, rows)
}

// awqSummary gives AWQ's mean exponent per linear group over the layers and
// the output error the scales left, as a fraction of RTN's.
func awqSummary(groups []quantize.AWQGroup) string {
	var order []string
	sum, n := map[string]float64{}, map[string]int{}
	var loss, rtn float64
	for _, g := range groups {
		if n[g.Group] == 0 {
			order = append(order, g.Group)
		}
		sum[g.Group] += g.Alpha
		n[g.Group]++
		loss += g.Loss
		rtn += g.RTNLoss
	}
	var parts []string
	for _, g := range order {
		parts = append(parts, fmt.Sprintf("%s %.2f", g, sum[g]/float64(n[g])))
	}
	s := "mean alpha " + strings.Join(parts, ", ")
	if rtn > 0 {
		s += fmt.Sprintf("; layer output error %.2fx RTN's", loss/rtn)
	}
	return s
}

// calibration tokenizes the --calib text with m's tokenizer and cuts it into
// tokens/ctx windows of ctx tokens (ctx 0: min(512, context length)). hint
// ends the message when the text is too short, naming the flags to change.
func calibration(m *model.Model, path string, tokens, ctx int, seed uint64, hint string) ([][]int, error) {
	if ctx == 0 {
		ctx = min(512, m.Config.ContextLength)
	}
	if ctx > m.Config.ContextLength {
		return nil, fmt.Errorf("--calib-ctx %d: the model's context is %d tokens", ctx, m.Config.ContextLength)
	}
	text, bos, err := calib.TokenizeFile(m, path)
	if err != nil {
		return nil, fmt.Errorf("--calib %s: %w", path, err)
	}
	n := max(1, (tokens+ctx-1)/ctx)
	w, err := calib.Windows(text, n, ctx, bos, seed)
	if err != nil {
		return nil, fmt.Errorf("--calib %s: %w (%s)", path, err, hint)
	}
	return w, nil
}
