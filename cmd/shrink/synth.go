package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shrinkml/shrink/format"
	"github.com/shrinkml/shrink/model"
)

// maxSynthBytes caps the F32 size of a synthetic model, which is built in
// memory before it is written.
const maxSynthBytes = 16 << 30

type synthReport struct {
	Path       string  `json:"path"`
	Format     string  `json:"format"`
	Preset     string  `json:"preset,omitempty"`
	Seed       uint64  `json:"seed"`
	Parameters int64   `json:"parameters"`
	FileBytes  int64   `json:"file_bytes"`
	Seconds    float64 `json:"seconds"`
}

func newSynthCmd(g *globalFlags) *cobra.Command {
	var (
		preset, to, dtype string
		seed              uint64
		force, tied       bool
		c                 model.Config
	)
	cmd := &cobra.Command{
		Use:   "synth OUT",
		Short: "Write a seeded random-weight llama model of a real shape",
		Long: `synth writes a llama-family model with random weights (normal, standard
deviation 0.02; norms one) and a byte-fallback vocabulary, for speed work and
tests without downloading anything. The shape comes from --preset, and any
explicit shape flag overrides it; without a preset, --dim, --layers, --heads,
--ffn and --vocab are required. The same shape and --seed give the same
bytes. OUT is a GGUF file (a .gguf name, or --to gguf) or a Hugging Face
directory.

Presets: ` + strings.Join(model.PresetNames(), ", ") + `.
llama-134m is dim 768, 12 layers, 12 heads, 12 KV heads, FFN 2048, vocab
32000, context 2048 and an untied output head: 134.1M parameters.`,
		Example: `  shrink synth llama-134m.gguf --preset llama-134m
  shrink synth ./tiny-hf --dim 256 --layers 4 --heads 8 --kv-heads 2 --ffn 688 --vocab 4096 --tied
  shrink synth wide.gguf --preset llama-134m --ffn 3072 --seed 2 --dtype f16`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := args[0]
			cfg := model.Config{Arch: "llama", ContextLength: 2048, RMSNormEps: 1e-5, RopeTheta: 10000}
			if preset != "" {
				p, ok := model.Presets[preset]
				if !ok {
					return fmt.Errorf("--preset %q: want one of %s", preset, strings.Join(model.PresetNames(), ", "))
				}
				cfg = p
			}
			fl := cmd.Flags()
			set := func(name string, dst *int, v int) {
				if fl.Changed(name) {
					*dst = v
				}
			}
			set("dim", &cfg.HiddenSize, c.HiddenSize)
			set("layers", &cfg.NumLayers, c.NumLayers)
			set("heads", &cfg.NumHeads, c.NumHeads)
			set("kv-heads", &cfg.NumKVHeads, c.NumKVHeads)
			set("ffn", &cfg.IntermediateSize, c.IntermediateSize)
			set("vocab", &cfg.VocabSize, c.VocabSize)
			set("ctx", &cfg.ContextLength, c.ContextLength)
			if fl.Changed("tied") {
				cfg.TiedEmbeddings = tied
			}
			if preset == "" {
				for _, name := range []string{"dim", "layers", "heads", "ffn", "vocab"} {
					if !fl.Changed(name) {
						return fmt.Errorf("--%s is required without --preset", name)
					}
				}
			}
			if !fl.Changed("kv-heads") && (preset == "" || fl.Changed("heads")) {
				cfg.NumKVHeads = cfg.NumHeads
			}
			if cfg.NumHeads <= 0 || cfg.HiddenSize%cfg.NumHeads != 0 {
				return fmt.Errorf("--dim %d is not a multiple of --heads %d", cfg.HiddenSize, cfg.NumHeads)
			}
			cfg.HeadDim = cfg.HiddenSize / cfg.NumHeads
			if err := cfg.Check(); err != nil {
				return err
			}
			// Counted in float64 from the shape, so that no size overflows
			// or allocates before the check.
			d, q, kv := float64(cfg.HiddenSize), float64(cfg.NumHeads*cfg.HeadDim), float64(cfg.NumKVHeads*cfg.HeadDim)
			heads := 2.0
			if cfg.TiedEmbeddings {
				heads = 1
			}
			params := float64(cfg.NumLayers)*(d*(2*q+2*kv)+3*d*float64(cfg.IntermediateSize)+2*d) +
				heads*float64(cfg.VocabSize)*d + d
			if 4*params > maxSynthBytes {
				return fmt.Errorf("that shape has %.4g parameters (%.4g GB in F32); synth builds at most %s in memory",
					params, 4*params/1e9, humanBytes(maxSynthBytes))
			}
			opts := format.SaveOptions{Force: force}
			var err error
			if opts.To, err = format.ParseOutputKind(to, out); err != nil {
				return err
			}
			if dtype != "" {
				if opts.DType, err = model.ParseDType(dtype); err != nil || !opts.DType.Float() {
					return fmt.Errorf("--dtype %q: want f32, f16 or bf16", dtype)
				}
			}
			start := time.Now()
			m, err := model.Synthesize(cfg, seed)
			if err != nil {
				return err
			}
			if preset != "" {
				m.Metadata["general.name"] = "synthetic-" + preset
			}
			if err := format.Save("", out, m, opts); err != nil {
				return err
			}
			disk, err := format.DiskBytes(out)
			if err != nil {
				return err
			}
			rep := synthReport{out, string(opts.To), preset, seed, m.Parameters(), disk, time.Since(start).Seconds()}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%s, %s parameters, %s) in %.2fs\n",
				out, rep.Format, commas(rep.Parameters), humanBytes(disk), rep.Seconds)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&preset, "preset", "", "model shape: "+strings.Join(model.PresetNames(), ", "))
	f.IntVar(&c.HiddenSize, "dim", 0, "hidden size")
	f.IntVar(&c.NumLayers, "layers", 0, "number of layers")
	f.IntVar(&c.NumHeads, "heads", 0, "attention heads")
	f.IntVar(&c.NumKVHeads, "kv-heads", 0, "key/value heads (default: --heads)")
	f.IntVar(&c.IntermediateSize, "ffn", 0, "FFN (intermediate) size")
	f.IntVar(&c.VocabSize, "vocab", 0, "vocabulary size")
	f.IntVar(&c.ContextLength, "ctx", 2048, "context length")
	f.BoolVar(&tied, "tied", false, "share the token embedding with the output head")
	f.Uint64Var(&seed, "seed", 1, "random seed for the weights")
	f.StringVar(&to, "to", "", "output format: gguf or safetensors (default: from OUT)")
	f.StringVar(&dtype, "dtype", "", "store weights as f32, f16 or bf16 (default f32)")
	f.BoolVar(&force, "force", false, "replace OUT if it exists")
	f.BoolVar(&g.json, "json", false, "print a JSON summary")
	return cmd
}
