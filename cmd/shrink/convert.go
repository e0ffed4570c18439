package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/shrinkml/shrink/format"
	"github.com/shrinkml/shrink/model"
)

type convertReport struct {
	Source     string  `json:"source"`
	SourceKind string  `json:"source_format"`
	Dest       string  `json:"dest"`
	DestKind   string  `json:"dest_format"`
	Tensors    int     `json:"tensors"`
	Parameters int64   `json:"parameters"`
	FileBytes  int64   `json:"file_bytes"`
	Seconds    float64 `json:"seconds"`
}

func newConvertCmd(g *globalFlags) *cobra.Command {
	var (
		to, dtype string
		force     bool
		lopts     format.LoadOptions
	)
	cmd := &cobra.Command{
		Use:   "convert SRC DST",
		Short: "Convert a checkpoint to GGUF, a Hugging Face safetensors directory or llama2.c",
		Long: `convert reads any checkpoint shrink can load and writes it as a GGUF file, as
a Hugging Face directory (config.json, safetensors, tokenizer files) or as a
llama2.c checkpoint (float32, version 0; the tokenizer goes beside it as
tok<vocab>.bin, where llama2.c and shrink look for it, unless a different one
is already there). The output format comes from --to, else from DST: a name
ending in .gguf is GGUF, one ending in .bin llama2.c, anything else a
directory. Q and K projection rows are permuted between the Hugging Face and
GGUF/llama2.c RoPE layouts as needed, so every output loads in its tools.
Output is written atomically; an existing DST is replaced only with --force,
and DST may never be SRC.`,
		Example: `  shrink convert stories260K.bin stories260K.gguf
  shrink convert stories260K.bin ./stories260K-hf --dtype f16
  shrink convert model.gguf ./model-hf --to safetensors --force
  shrink convert ./SmolLM-135M ./llama2c/smollm.bin`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, dst := args[0], args[1]
			opts := format.SaveOptions{Force: force}
			var err error
			if opts.To, err = format.ParseOutputKind(to, dst); err != nil {
				return err
			}
			if dtype != "" {
				if opts.DType, err = model.ParseDType(dtype); err != nil || !opts.DType.Float() {
					return fmt.Errorf("--dtype %q: want f32, f16 or bf16", dtype)
				}
			}
			start := time.Now()
			m, kind, err := format.Load(src, lopts)
			if err != nil {
				return err
			}
			defer m.Close()
			if err := format.Save(src, dst, m, opts); err != nil {
				return err
			}
			disk, err := format.DiskBytes(dst)
			if err != nil {
				return err
			}
			rep := convertReport{src, string(kind), dst, string(opts.To), len(m.Tensors), m.Parameters(), disk, time.Since(start).Seconds()}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%s, %d tensors, %s parameters, %s) in %.2fs\n",
				dst, rep.DestKind, rep.Tensors, commas(rep.Parameters), humanBytes(disk), rep.Seconds)
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "output format: gguf, safetensors or llama2c (default: from DST)")
	cmd.Flags().StringVar(&dtype, "dtype", "", "store float tensors as f32, f16 or bf16 (default: unchanged)")
	cmd.Flags().BoolVar(&force, "force", false, "replace DST if it exists")
	cmd.Flags().BoolVar(&g.json, "json", false, "print a JSON summary")
	cmd.Flags().StringVar(&lopts.Arch, "arch", "", `architecture of a bare state dict ("mlp")`)
	return cmd
}
