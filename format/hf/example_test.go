package hf_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/shrinkml/shrink/format/hf"
	"github.com/shrinkml/shrink/model"
)

// A model built in memory is saved as a Hugging Face folder and loaded back.
func Example() {
	cfg := model.Config{
		Arch: "llama", HiddenSize: 8, IntermediateSize: 16, NumLayers: 1, NumHeads: 2, NumKVHeads: 1, HeadDim: 4,
		VocabSize: 16, ContextLength: 32, RMSNormEps: 1e-5, RopeTheta: 10000, TiedEmbeddings: true,
		RopeLayout: model.RopePairs, // as llama2.c stores q and k; Save permutes to Hugging Face's layout
	}
	m := &model.Model{Config: cfg, Metadata: map[string]any{"general.name": "tiny"}}
	for _, e := range cfg.Expected() {
		n := 1
		for _, s := range e.Shape {
			n *= s
		}
		m.Tensors = append(m.Tensors, model.NewF32(e.Name, e.Shape, make([]float32, n)))
	}

	tmp, err := os.MkdirTemp("", "hf-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "tiny")
	if err := hf.Save(dir, m, hf.SaveOptions{}); err != nil {
		log.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		fmt.Println(e.Name())
	}

	back, err := hf.Load(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer back.Close()
	c := back.Config
	fmt.Println(c.HFArchitecture, c.NumLayers, "layer(s),", len(back.Tensors), "tensors, rope layout", c.RopeLayout)
	fmt.Println(back.Metadata["general.name"])
	// Output:
	// config.json
	// model.safetensors
	// LlamaForCausalLM 1 layer(s), 11 tensors, rope layout half
	// tiny
}
