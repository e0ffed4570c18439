package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/shrinkml/shrink/evalsuite"
	"github.com/shrinkml/shrink/format"
	"github.com/shrinkml/shrink/internal/progress"
)

func newBenchCmd(g *globalFlags) *cobra.Command {
	var (
		threads []int
		opts    evalsuite.SpeedOptions
		lopts   format.LoadOptions
	)
	cmd := &cobra.Command{
		Use:   "bench MODEL",
		Short: "Measure prefill and decode speed against the machine's bounds",
		Long: `bench times a batched prefill of --prompt-tokens tokens and the one-token
decode of --gen-tokens more, --repeats times after a warm-up, and reports the
medians. In the same run it measures the streaming-read bandwidth of as many
threads over a buffer the size of the weights (decode reads every weight once
per token, so this bounds it) and one core's float32 FMA peak (which bounds
prefill). Token ids are seeded random ids: speed does not depend on them.

--threads takes one count or a list (--threads 1,2); --json prints one object
for one count and an array of them for a list, with the keys
prefill_tokens_per_s, decode_tokens_per_s, bytes_per_token,
bandwidth_bytes_per_s, bandwidth_fraction, threads, prefill_flops_per_s,
peak_flops_per_core, prefill_peak_fraction, kv_cache and kv_bytes_per_token.

Weight bytes are what the fraction counts; attention also reads the KV cache,
4 bytes per key and value element with --kv-cache f32 (the default, exact) and
2 with f16 (llama.cpp's default cache type): at positions 128-192 of a
llama-134m that is 9-14 MB a token in f32 (against 62 MB of q4_0 weights).
--kv-cache f16 is the setting to compare with llama.cpp's llama-bench.`,
		Example: `  shrink synth llama-134m.gguf --preset llama-134m
  shrink bench llama-134m.gguf --threads 1,2
  shrink bench llama-134m-q4_0.gguf --threads 1,2 --kv-cache f16
  shrink bench stories260K.bin --prompt-tokens 64 --gen-tokens 128 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(threads) == 0 {
				threads = []int{max(1, min(runtime.NumCPU(), runtime.GOMAXPROCS(0)))}
			}
			for _, t := range threads {
				if t <= 0 {
					return fmt.Errorf("--threads %d: want a positive count", t)
				}
			}
			if opts.PromptTokens <= 0 || opts.GenTokens <= 0 || opts.Repeats <= 0 {
				return fmt.Errorf("--prompt-tokens, --gen-tokens and --repeats must be positive")
			}
			m, _, err := format.Load(args[0], lopts)
			if err != nil {
				return err
			}
			defer m.Close()
			bar := progress.New("bench", int64(len(threads)*(opts.Repeats+1)), "runs", g.quiet)
			opts.OnRepeat = func() { bar.Add(1) }
			var results []evalsuite.Speed
			for _, t := range threads {
				o := opts
				o.Threads = t
				sp, err := evalsuite.MeasureSpeed(m, o)
				if err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
				results = append(results, sp)
			}
			bar.Finish()
			if g.json {
				if len(results) == 1 {
					return writeJSON(cmd.OutOrStdout(), results[0])
				}
				return writeJSON(cmd.OutOrStdout(), results)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s: %s parameters, %s of weights and %s of %s KV cache read per token; %d+%d tokens, median of %d; kernels %s\n",
				args[0], commas(m.Parameters()), humanBytes(results[0].BytesPerToken), humanBytes(results[0].KVBytesPerToken),
				results[0].KVCache, opts.PromptTokens, opts.GenTokens, opts.Repeats, results[0].Kernels)
			rows := make([][]string, 0, len(results))
			for _, r := range results {
				peak := "-"
				if r.PeakFLOPSPerCore > 0 {
					peak = fmt.Sprintf("%.0f%% of %.0f", 100*r.PrefillPeakFraction, r.PeakFLOPSPerCore/1e9)
				}
				rows = append(rows, []string{
					fmt.Sprint(r.Threads),
					fmt.Sprintf("%.1f", r.PrefillTokensPerS),
					fmt.Sprintf("%.1f", r.PrefillFLOPsPerS/1e9/float64(r.Threads)),
					peak,
					fmt.Sprintf("%.2f", r.DecodeTokensPerS),
					fmt.Sprintf("%.2f", r.DecodeTokensPerS*float64(r.BytesPerToken)/1e9),
					fmt.Sprintf("%.2f", r.BandwidthBytesPerS/1e9),
					fmt.Sprintf("%.0f%%", 100*r.BandwidthFraction),
				})
			}
			return writeTable(w, []string{"threads", "prefill tok/s", "GFLOP/s/core", "of FMA peak (GFLOP/s)",
				"decode tok/s", "weights GB/s", "stream GB/s", "of bandwidth"}, rows, 0, 1, 2, 3, 4, 5, 6, 7)
		},
	}
	f := cmd.Flags()
	addKVCacheFlag(cmd, &opts.KVCache)
	f.IntSliceVar(&threads, "threads", nil, "threads, one count or a list such as 1,2 (default: every core)")
	f.IntVar(&opts.PromptTokens, "prompt-tokens", 128, "tokens in the batched prefill")
	f.IntVar(&opts.GenTokens, "gen-tokens", 64, "tokens decoded one at a time")
	f.IntVar(&opts.Repeats, "repeats", 5, "timed repetitions (medians are reported)")
	f.Uint64Var(&opts.Seed, "seed", 0, "seed of the random token ids")
	f.BoolVar(&g.json, "json", false, "print JSON")
	f.StringVar(&lopts.Arch, "arch", "", `architecture of a bare state dict`)
	return cmd
}
