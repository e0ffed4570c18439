package llama2c_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/shrinkml/shrink/format/llama2c"
	"github.com/shrinkml/shrink/model"
)

// A llama2.c checkpoint loads as a model.Model whose tensors carry Hugging
// Face names; Save writes one back.
func ExampleLoad() {
	dir, err := os.MkdirTemp("", "llama2c-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// A tiny model made in code: dim 8, 2 layers, 2 heads sharing 1 KV head;
	// 1448 parameters, and 28 + 4*(1448 + 2*64*2) bytes with the RoPE tables.
	cfg := model.Config{
		Arch: "llama", HiddenSize: 8, IntermediateSize: 16, NumLayers: 2, NumHeads: 2,
		NumKVHeads: 1, HeadDim: 4, VocabSize: 32, ContextLength: 64,
		RMSNormEps: llama2c.RMSNormEps, RopeTheta: llama2c.RopeTheta, TiedEmbeddings: true,
	}
	src := &model.Model{Config: cfg}
	for _, e := range cfg.Expected() {
		n := 1
		for _, d := range e.Shape {
			n *= d
		}
		src.Tensors = append(src.Tensors, model.NewF32(e.Name, e.Shape, make([]float32, n)))
	}
	path := filepath.Join(dir, "tiny.bin")
	if err := llama2c.Save(path, src, false); err != nil {
		log.Fatal(err)
	}

	m, err := llama2c.Load(path)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	st, _ := os.Stat(path)
	fmt.Println("file bytes:", st.Size())
	fmt.Println("parameters:", m.Parameters())
	fmt.Println("q_proj shape:", m.Tensor(model.LayerTensor(0, model.AttnQ)).Shape)
	fmt.Println("tied classifier:", m.Config.TiedEmbeddings, "tokenizer found:", m.Tokenizer != nil)
	// Output:
	// file bytes: 6844
	// parameters: 1448
	// q_proj shape: [8 8]
	// tied classifier: true tokenizer found: false
}
