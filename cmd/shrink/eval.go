package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/shrinkml/shrink/evalsuite"
	"github.com/shrinkml/shrink/format"
	"github.com/shrinkml/shrink/inference"
	"github.com/shrinkml/shrink/inference/tokenizer"
	"github.com/shrinkml/shrink/internal/progress"
	"github.com/shrinkml/shrink/model"
)

// evalReport is eval's --json output. The comparison's keys (ref_perplexity,
// kl_mean, kl_p99, top1_agreement, ...) appear only with --ref.
type evalReport struct {
	SchemaVersion    int     `json:"schema_version"`
	Model            string  `json:"model"`
	Text             string  `json:"text"`
	TextTokens       int     `json:"text_tokens"`
	Ctx              int     `json:"ctx"`
	Stride           int     `json:"stride"`
	Chunks           int     `json:"chunks"`
	ScoredTokens     int     `json:"scored_tokens"`
	Perplexity       float64 `json:"perplexity"`
	PerplexityStderr float64 `json:"perplexity_stderr"`
	NLL              float64 `json:"nll"`
	NLLStderr        float64 `json:"nll_stderr"`

	RefModel string `json:"ref_model,omitempty"`
	*evalsuite.Comparison
	PerplexityChangePct *float64 `json:"perplexity_change_pct,omitempty"`

	Threads int     `json:"threads"`
	KVCache string  `json:"kv_cache"`
	Seconds float64 `json:"seconds"`
	// LoadSeconds is the time from opening MODEL to an engine ready to run;
	// PeakRSSBytes the most memory the process held, reference included.
	LoadSeconds  float64 `json:"load_seconds"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
}

func newEvalCmd(g *globalFlags) *cobra.Command {
	var (
		textPath, refPath  string
		dataset, data      string
		threads, maxTokens int
		opts               evalsuite.PerplexityOptions
		lopts              format.LoadOptions
		kv                 inference.KVCache
	)
	cmd := &cobra.Command{
		Use:   "eval MODEL",
		Short: "Measure perplexity on a text, and divergence from a reference model",
		Long: `eval tokenizes the whole --text with the model's tokenizer (BOS prepended
when the tokenizer adds one) and measures perplexity with llama.cpp's
llama-perplexity protocol, so the numbers compare with llama.cpp's for the same
model, text and --ctx: the tokens are cut into floor(n/ctx) chunks, each starts
with BOS from an empty KV cache, and only the second half of each chunk is
scored. PPL is reported with its standard error and the number of scored
tokens.

--stride N scores with a sliding window instead: windows of --ctx tokens every
N tokens, each scoring only the tokens no earlier window scored, so every token
gets at least ctx-N tokens of context. It costs about ctx/N times as much and
compares only with the same --ctx and --stride.

--ref scores the same positions with a reference model (say, the model before
compression) and reports its PPL, the change, the mean and 99th-percentile
KL(ref || model) of the next-token distributions, and how often both models'
most likely token agrees.

--json prints one object with schema_version, perplexity, perplexity_stderr,
nll, scored_tokens, ctx and chunks, load_seconds (opening MODEL to a ready
engine) and peak_rss_bytes (the process's most resident memory), and with
--ref ref_perplexity, kl_mean, kl_p99 and top1_agreement.

--dataset fashion-mnist scores an MLP classifier instead of a text: its most
probable class for each of the 10,000 Fashion-MNIST test images (pixels
scaled to [0, 1]) against the labels. It reports the accuracy, the accuracy
of each class, the confusion matrix (rows: true class, columns: predicted)
and the inference engine's examples/s; with --ref, the reference
classifier's accuracy, the change in points, and how often the two predict
the same class. --data is a folder holding the IDX files, or fashion-mnist
for the folder Debian's dataset-fashion-mnist package installs. --json
prints schema_version, accuracy (a fraction), per_class_accuracy,
confusion, examples_per_s and test_examples, and with --ref ref_accuracy,
ref_agreement and accuracy_change_points.`,
		Example: `  shrink eval stories260K.bin --text tinystories_val_first.txt --ctx 128
  shrink eval model-q4_0.gguf --text wiki.test.raw --ref model-f16.gguf
  shrink eval model.gguf --text wiki.test.raw --ctx 1024 --stride 512 --max-tokens 100000 --json
  shrink eval ./student --dataset fashion-mnist --ref ./fmnist-teacher`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dataset != "" || cmd.Flags().Changed("data") {
				if textPath != "" {
					return fmt.Errorf("--text and --dataset: give one, a text for a language model or a data set for a classifier")
				}
				return evalClassifier(cmd, g, args[0], refPath, dataset, data, threads, lopts)
			}
			if textPath == "" {
				return fmt.Errorf("--text is required: the text file to score (or --dataset for a classifier)")
			}
			if threads < 0 || maxTokens < 0 {
				return fmt.Errorf("--threads %d and --max-tokens %d must not be negative", threads, maxTokens)
			}
			text, err := os.ReadFile(textPath)
			if err != nil {
				return fmt.Errorf("--text: %w", err)
			}
			loadStart := time.Now()
			m, l, err := loadLlama(args[0], lopts, inference.Options{Threads: threads, KVCache: kv})
			if err != nil {
				return err
			}
			loadSeconds := time.Since(loadStart).Seconds()
			defer m.Close()
			defer l.Close()
			if m.Tokenizer == nil {
				return fmt.Errorf("%s: the model has no tokenizer", args[0])
			}
			tok, err := tokenizer.New(m.Tokenizer)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			var ref *inference.Llama
			if refPath != "" {
				rm, rl, err := loadLlama(refPath, lopts, inference.Options{Threads: threads, KVCache: kv})
				if err != nil {
					return err
				}
				defer rm.Close()
				defer rl.Close()
				if rm.Tokenizer != nil && !slices.Equal(rm.Tokenizer.Tokens, m.Tokenizer.Tokens) {
					return fmt.Errorf("%s and %s have different vocabularies", refPath, args[0])
				}
				ref = rl
			}

			addBOS := m.Tokenizer.AddBOS && m.Tokenizer.BOS >= 0
			tokens := tok.Encode(string(text), addBOS)
			if maxTokens > 0 && len(tokens) > maxTokens {
				tokens = tokens[:maxTokens]
			}
			opts.NoBOS = !addBOS
			bar := progress.New("eval", int64(opts.Chunks(len(tokens))), "chunks", g.quiet)
			opts.OnChunk = func() { bar.Add(1) }
			start := time.Now()
			r, err := evalsuite.Perplexity(l, tokens, opts, ref)
			bar.Finish()
			if err != nil {
				return fmt.Errorf("%s on %s: %w", args[0], textPath, err)
			}
			rep := evalReport{
				SchemaVersion: 1, Model: args[0], Text: textPath, TextTokens: len(tokens),
				Ctx: r.Ctx, Stride: r.Stride, Chunks: r.Chunks, ScoredTokens: r.ScoredTokens,
				Perplexity: r.Perplexity, PerplexityStderr: r.PerplexityStderr, NLL: r.NLL, NLLStderr: r.NLLStderr,
				Threads: l.Threads(), KVCache: l.KVCache().String(), Seconds: time.Since(start).Seconds(),
				LoadSeconds: loadSeconds, PeakRSSBytes: evalsuite.PeakRSS(),
			}
			if r.Ref != nil {
				rep.RefModel, rep.Comparison = refPath, r.Ref
				change := 100 * (r.Perplexity/r.Ref.Perplexity - 1)
				rep.PerplexityChangePct = &change
			}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			return writeEvalTable(cmd, rep)
		},
	}
	f := cmd.Flags()
	f.StringVar(&textPath, "text", "", "text file to score (required)")
	f.IntVar(&opts.Ctx, "ctx", 512, "tokens per chunk")
	f.IntVar(&opts.Stride, "stride", 0, "score with a sliding window moving this many tokens (0: llama.cpp's chunks)")
	f.StringVar(&refPath, "ref", "", "reference model to compare with (KL divergence, top-1 agreement)")
	f.IntVar(&threads, "threads", 0, "threads (default: every core)")
	addKVCacheFlag(cmd, &kv)
	f.IntVar(&maxTokens, "max-tokens", 0, "score only the text's first N tokens, BOS included (0: all)")
	f.BoolVar(&g.json, "json", false, "print JSON")
	f.StringVar(&lopts.Arch, "arch", "", `architecture of a bare state dict`)
	f.StringVar(&dataset, "dataset", "", "score an MLP classifier on a data set's test images: fashion-mnist")
	f.StringVar(&data, "data", fashionMNIST, "with --dataset: a folder holding the IDX files, or fashion-mnist")
	return cmd
}

// loadLlama loads a llama-family model and prepares it to run.
func loadLlama(path string, lopts format.LoadOptions, opts inference.Options) (*model.Model, *inference.Llama, error) {
	m, _, err := format.Load(path, lopts)
	if err != nil {
		return nil, nil, err
	}
	if m.Config.Arch != "llama" {
		m.Close()
		hint := ""
		if m.Config.Arch == "mlp" {
			hint = " (score a classifier with --dataset fashion-mnist)"
		}
		return nil, nil, fmt.Errorf("%s: eval scores text and needs a llama-family model, not %q%s", path, m.Config.Arch, hint)
	}
	l, err := inference.NewLlama(m, opts)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return m, l, nil
}

func writeEvalTable(cmd *cobra.Command, r evalReport) error {
	w := cmd.OutOrStdout()
	protocol := fmt.Sprintf("%s chunks of %d tokens (llama.cpp protocol)", commas(int64(r.Chunks)), r.Ctx)
	if r.Stride > 0 {
		protocol = fmt.Sprintf("%s windows of %d tokens, stride %d", commas(int64(r.Chunks)), r.Ctx, r.Stride)
	}
	rows := [][]string{
		{"model", filepath.Base(r.Model)},
		{"text", fmt.Sprintf("%s, %s tokens", filepath.Base(r.Text), commas(int64(r.TextTokens)))},
		{"chunks", protocol},
		{"scored tokens", commas(int64(r.ScoredTokens))},
		{"perplexity", fmt.Sprintf("%.4f ± %.4f", r.Perplexity, r.PerplexityStderr)},
	}
	if c := r.Comparison; c != nil {
		rows = append(rows,
			[]string{"reference", filepath.Base(r.RefModel)},
			[]string{"ref perplexity", fmt.Sprintf("%.4f ± %.4f", c.Perplexity, c.PerplexityStderr)},
			[]string{"perplexity change", fmt.Sprintf("%+.2f%%", *r.PerplexityChangePct)},
			[]string{"mean KL(ref || model)", fmt.Sprintf("%.6f ± %.6f", c.KLMean, c.KLStderr)},
			[]string{"99th percentile KL", fmt.Sprintf("%.6f", c.KLP99)},
			[]string{"top-1 agreement", fmt.Sprintf("%.2f%%", 100*c.Top1Agreement)},
		)
	}
	rows = append(rows, []string{"time", fmt.Sprintf("%.1f s, %d threads; loading took %.3f s", r.Seconds, r.Threads, r.LoadSeconds)})
	if r.PeakRSSBytes > 0 {
		rows = append(rows, []string{"peak memory", humanBytes(r.PeakRSSBytes) + " resident"})
	}
	return writeTable(w, []string{"", "value"}, rows)
}
