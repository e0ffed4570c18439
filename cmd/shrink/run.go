package main

import (
	"bufio"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/shrinkml/shrink/format"
	"github.com/shrinkml/shrink/format/llama2c"
	"github.com/shrinkml/shrink/inference"
	"github.com/shrinkml/shrink/inference/tokenizer"
)

type runReport struct {
	Text              string  `json:"text"`
	PromptTokens      int     `json:"prompt_tokens"`
	GeneratedTokens   int     `json:"generated_tokens"`
	PrefillTokensPerS float64 `json:"prefill_tokens_per_s"`
	DecodeTokensPerS  float64 `json:"decode_tokens_per_s"`
	Threads           int     `json:"threads"`
}

func newRunCmd(g *globalFlags) *cobra.Command {
	var (
		prompt, tokPath string
		n, threads      int
		sopts           inference.SamplerOptions
		lopts           format.LoadOptions
		kv              inference.KVCache
	)
	cmd := &cobra.Command{
		Use:   "run MODEL",
		Short: "Generate text with a llama-family model on the CPU",
		Long: `run continues --prompt (or starts from BOS) with up to -n tokens and streams
the text to stdout as it is generated, stopping early at an end-of-text token.
Prefill and decode speeds are printed on stderr at the end.

The default is greedy decoding (--temp 0), which is deterministic; with a
temperature, --top-k and --top-p narrow the choice and --seed fixes it.
A llama2.c .bin finds its tokenizer (tokenizer.bin or tok<vocab>.bin) beside
it; --tokenizer names one elsewhere.`,
		Example: `  shrink run stories260K.bin
  shrink run stories260K.gguf --prompt "Once upon a time" -n 64
  shrink run model.gguf --temp 0.8 --top-p 0.9 --seed 7 --threads 2`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if n < 0 || threads < 0 {
				return fmt.Errorf("-n %d and --threads %d must not be negative", n, threads)
			}
			m, _, err := format.Load(args[0], lopts)
			if err != nil {
				return err
			}
			defer m.Close()
			if m.Config.Arch != "llama" {
				return fmt.Errorf("%s: run generates text and needs a llama-family model, not %q", args[0], m.Config.Arch)
			}
			if tokPath != "" {
				if m.Tokenizer, err = llama2c.LoadTokenizer(tokPath, m.Config.VocabSize); err != nil {
					return err
				}
			}
			if m.Tokenizer == nil {
				return fmt.Errorf("%s: the model has no tokenizer; give one with --tokenizer", args[0])
			}
			tok, err := tokenizer.New(m.Tokenizer)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			sampler, err := inference.NewSampler(sopts)
			if err != nil {
				return err
			}
			l, err := inference.NewLlama(m, inference.Options{Threads: threads, KVCache: kv})
			if err != nil {
				return err
			}
			defer l.Close()

			out := bufio.NewWriter(cmd.OutOrStdout())
			var text []byte
			emit := func(piece []byte) {
				if g.json {
					text = append(text, piece...)
					return
				}
				out.Write(piece)
				out.Flush() // stream token by token
			}
			st, err := inference.Generate(l, tok, prompt, n, sampler, emit)
			if err != nil {
				return err
			}
			rep := runReport{string(text), st.PrefillTokens, st.Generated, st.PrefillRate(), st.DecodeRate(), l.Threads()}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			fmt.Fprintln(out)
			if err := out.Flush(); err != nil {
				return err
			}
			if !g.quiet {
				fmt.Fprintf(cmd.ErrOrStderr(), "prefill: %d tokens, %.1f tok/s; decode: %d tokens, %.1f tok/s (%d threads)\n",
					st.PrefillTokens, st.PrefillRate(), st.DecodeTokens, st.DecodeRate(), l.Threads())
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&prompt, "prompt", "p", "", "text to continue (default: start from BOS)")
	f.IntVarP(&n, "tokens", "n", 256, "most tokens to generate")
	f.Float64Var(&sopts.Temperature, "temp", 0, "sampling temperature; 0 is greedy")
	f.IntVar(&sopts.TopK, "top-k", 0, "sample from the K most likely tokens (0: all)")
	f.Float64Var(&sopts.TopP, "top-p", 0, "sample from the smallest set of tokens with this much probability (0 or 1: all)")
	f.Uint64Var(&sopts.Seed, "seed", 0, "random seed for sampling")
	f.IntVar(&threads, "threads", 0, "threads (default: every core)")
	addKVCacheFlag(cmd, &kv)
	f.StringVar(&tokPath, "tokenizer", "", "llama2.c tokenizer file (tok*.bin) to use")
	f.BoolVar(&g.json, "json", false, "print the text and speeds as JSON instead of streaming")
	f.StringVar(&lopts.Arch, "arch", "", `architecture of a bare state dict`)
	return cmd
}
