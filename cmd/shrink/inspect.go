package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shrinkml/shrink/format"
)

type inspectTensor struct {
	Name  string `json:"name"`
	DType string `json:"dtype"`
	Shape []int  `json:"shape"`
	Bytes int64  `json:"bytes"`
	// Sparsity is the fraction of a matrix's weights that are exactly zero,
	// present when any is; NM lists the N:M patterns ("2:4", "4:8") that hold
	// in every group of M consecutive weights of every row.
	Sparsity float64  `json:"sparsity,omitempty"`
	NM       []string `json:"nm,omitempty"`
}

type inspectDType struct {
	DType      string `json:"dtype"`
	Tensors    int    `json:"tensors"`
	Parameters int64  `json:"parameters"`
	Bytes      int64  `json:"bytes"`
}

type inspectConfig struct {
	HiddenSize       int      `json:"hidden_size,omitempty"`
	IntermediateSize int      `json:"intermediate_size,omitempty"`
	Layers           int      `json:"layers,omitempty"`
	Heads            int      `json:"heads,omitempty"`
	KVHeads          int      `json:"kv_heads,omitempty"`
	HeadDim          int      `json:"head_dim,omitempty"`
	VocabSize        int      `json:"vocab_size,omitempty"`
	ContextLength    int      `json:"context_length,omitempty"`
	RMSNormEps       float64  `json:"rms_norm_eps,omitempty"`
	RopeTheta        float64  `json:"rope_theta,omitempty"`
	RopeLayout       string   `json:"rope_layout,omitempty"`
	TiedEmbeddings   bool     `json:"tied_embeddings,omitempty"`
	QKVBias          bool     `json:"qkv_bias,omitempty"`
	LayerSizes       []int    `json:"layer_sizes,omitempty"`
	Activation       string   `json:"activation,omitempty"`
	Labels           []string `json:"labels,omitempty"`
}

// inspectReport is the JSON shape of `shrink inspect --json`.
type inspectReport struct {
	Path          string          `json:"path"`
	Format        string          `json:"format"`
	Architecture  string          `json:"architecture"`
	Parameters    int64           `json:"parameters"`
	FileBytes     int64           `json:"file_bytes"`
	TensorBytes   int64           `json:"tensor_bytes"`
	BitsPerWeight float64         `json:"bits_per_weight"`
	Config        inspectConfig   `json:"config"`
	Tokenizer     string          `json:"tokenizer,omitempty"`
	VocabSize     int             `json:"tokenizer_vocab_size,omitempty"`
	DTypes        []inspectDType  `json:"dtypes"`
	Tensors       []inspectTensor `json:"tensors"`
}

func newInspectCmd(g *globalFlags) *cobra.Command {
	var opts format.LoadOptions
	cmd := &cobra.Command{
		Use:   "inspect PATH",
		Short: "Show a checkpoint's architecture, size and tensors",
		Long: `inspect reads a checkpoint (GGUF file, Hugging Face directory, safetensors
file or llama2.c .bin) and prints its architecture, parameter count, bytes on
disk, bits per weight, a per-dtype breakdown and a table of every tensor; for
matrices with exact zeros, the fraction of zeros and the N:M patterns (2:4,
4:8) that hold in every group of every row.`,
		Example: `  shrink inspect stories260K.bin
  shrink inspect model.gguf --json | jq .parameters
  shrink inspect ./Llama-3.2-1B/`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := inspect(args[0], opts)
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			return printInspect(cmd.OutOrStdout(), rep)
		},
	}
	cmd.Flags().BoolVar(&g.json, "json", false, "print one JSON object instead of tables")
	cmd.Flags().StringVar(&opts.Arch, "arch", "", `architecture of a bare state dict ("mlp" for a PyTorch nn.Sequential)`)
	return cmd
}

func inspect(path string, opts format.LoadOptions) (*inspectReport, error) {
	m, kind, err := format.Load(path, opts)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	disk, err := format.DiskBytes(path)
	if err != nil {
		return nil, err
	}
	s := m.Summarize()
	c := m.Config
	rep := &inspectReport{
		Path: path, Format: string(kind), Architecture: s.Architecture,
		Parameters: s.Parameters, FileBytes: disk, TensorBytes: s.TensorBytes, BitsPerWeight: s.BitsPerWeight,
		DTypes: []inspectDType{}, Tensors: []inspectTensor{},
	}
	if c.Arch == "llama" {
		rep.Config = inspectConfig{HiddenSize: c.HiddenSize, IntermediateSize: c.IntermediateSize,
			Layers: c.NumLayers, Heads: c.NumHeads, KVHeads: c.NumKVHeads, HeadDim: c.HeadDim,
			VocabSize: c.VocabSize, ContextLength: c.ContextLength, RMSNormEps: c.RMSNormEps,
			RopeTheta: c.RopeTheta, RopeLayout: c.RopeLayout.String(), TiedEmbeddings: c.TiedEmbeddings,
			QKVBias: c.QKVBias}
	} else if c.MLP != nil {
		rep.Config = inspectConfig{LayerSizes: c.MLP.Sizes, Activation: c.MLP.Activation, Labels: c.MLP.Labels}
	}
	if t := m.Tokenizer; t != nil {
		rep.Tokenizer, rep.VocabSize = t.Kind, len(t.Tokens)
	}
	for _, d := range s.ByDType {
		rep.DTypes = append(rep.DTypes, inspectDType{d.DType.String(), d.Tensors, d.Elems, d.Bytes})
	}
	for _, t := range m.Tensors {
		it := inspectTensor{Name: t.Name, DType: t.DType.String(), Shape: append([]int{}, t.Shape...), Bytes: int64(len(t.Data))}
		if len(t.Shape) == 2 && (t.DType.Float() || t.DType.Quantized()) {
			if vals, err := t.Float32(); err == nil {
				it.Sparsity, it.NM = sparsity(vals, t.Shape[1])
			}
		}
		rep.Tensors = append(rep.Tensors, it)
	}
	return rep, nil
}

// nmPatterns are the N:M patterns inspect looks for.
var nmPatterns = [][2]int{{2, 4}, {4, 8}}

// sparsity returns the fraction of exact zeros of a row-major matrix of cols
// columns and, when it has any, the N:M patterns that hold in every group of
// every row (M must divide cols).
func sparsity(vals []float32, cols int) (float64, []string) {
	if len(vals) == 0 || cols <= 0 {
		return 0, nil
	}
	zeros := 0
	for _, v := range vals {
		if v == 0 {
			zeros++
		}
	}
	if zeros == 0 {
		return 0, nil
	}
	var nm []string
	for _, p := range nmPatterns {
		n, m := p[0], p[1]
		if cols%m != 0 {
			continue
		}
		ok := true
		for g := 0; g < len(vals) && ok; g += m {
			nz := 0
			for _, v := range vals[g : g+m] {
				if v != 0 {
					nz++
				}
			}
			ok = nz <= n
		}
		if ok {
			nm = append(nm, fmt.Sprintf("%d:%d", n, m))
		}
	}
	return float64(zeros) / float64(len(vals)), nm
}

func printInspect(w io.Writer, r *inspectReport) error {
	c := r.Config
	fmt.Fprintf(w, "%s (%s)\n\n", filepath.Base(r.Path), r.Format)
	fmt.Fprintf(w, "  architecture   %s\n", r.Architecture)
	if r.Architecture == "llama" {
		tied := "separate output head"
		if c.TiedEmbeddings {
			tied = "tied embeddings"
		}
		fmt.Fprintf(w, "  shape          dim %d, %d layers, %d heads (%d kv, head dim %d), ffn %d, vocab %d, context %d\n",
			c.HiddenSize, c.Layers, c.Heads, c.KVHeads, c.HeadDim, c.IntermediateSize, c.VocabSize, c.ContextLength)
		fmt.Fprintf(w, "  norms, rope    rms eps %g, rope theta %g (%s layout), %s\n", c.RMSNormEps, c.RopeTheta, c.RopeLayout, tied)
	} else if len(c.LayerSizes) > 0 {
		fmt.Fprintf(w, "  layers         %v, %s\n", c.LayerSizes, c.Activation)
	}
	if r.Tokenizer != "" {
		fmt.Fprintf(w, "  tokenizer      %s, %d tokens\n", r.Tokenizer, r.VocabSize)
	}
	fmt.Fprintf(w, "  parameters     %s\n", commas(r.Parameters))
	fmt.Fprintf(w, "  on disk        %s (%s bytes)\n", humanBytes(r.FileBytes), commas(r.FileBytes))
	fmt.Fprintf(w, "  bits/weight    %.2f\n\n", r.BitsPerWeight)

	var rows [][]string
	for _, d := range r.DTypes {
		share := 0.0
		if r.TensorBytes > 0 {
			share = 100 * float64(d.Bytes) / float64(r.TensorBytes)
		}
		rows = append(rows, []string{d.DType, fmt.Sprint(d.Tensors), commas(d.Parameters), humanBytes(d.Bytes), fmt.Sprintf("%.1f%%", share)})
	}
	if err := writeTable(w, []string{"dtype", "tensors", "parameters", "bytes", "share"}, rows, 1, 2, 3, 4); err != nil {
		return err
	}
	fmt.Fprintln(w)
	rows = rows[:0]
	sparse := false
	for _, t := range r.Tensors {
		sparse = sparse || t.Sparsity > 0
	}
	for _, t := range r.Tensors {
		row := []string{t.Name, t.DType, shapeString(t.Shape), commas(t.Bytes)}
		if sparse {
			zeros, nm := "", strings.Join(t.NM, " ")
			if t.Sparsity > 0 {
				zeros = fmt.Sprintf("%.1f%%", 100*t.Sparsity)
			}
			row = append(row, zeros, nm)
		}
		rows = append(rows, row)
	}
	if sparse {
		return writeTable(w, []string{"tensor", "dtype", "shape", "bytes", "zeros", "n:m"}, rows, 3, 4)
	}
	return writeTable(w, []string{"tensor", "dtype", "shape", "bytes"}, rows, 3)
}
