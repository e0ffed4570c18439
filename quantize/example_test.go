package quantize_test

import (
	"fmt"

	"github.com/shrinkml/shrink/model"
	"github.com/shrinkml/shrink/quantize"
)

// A Q4_0 block stores 32 weights as one fp16 scale and 16 bytes of 4-bit
// codes. The scale is the largest weight (here -2) over -8, so -2 is exact,
// a weight halfway between two levels rounds up, and +2 would need code 16:
// the top of the block is clamped to code 15.
func Example_blockQ4_0() {
	w := make([]float32, 32)
	for i := range w {
		w[i] = float32(i-16) / 8 // -2 .. 1.875
	}
	blk := make([]byte, 18)
	if err := quantize.RowQ4_0(blk, w); err != nil {
		panic(err)
	}
	back := make([]float32, 32)
	if err := model.Dequantize(back, model.Q4_0, blk); err != nil {
		panic(err)
	}
	fmt.Printf("scale %#02x%02x, first codes % x\n", blk[1], blk[0], blk[2:6])
	fmt.Println(w[0], "->", back[0])
	fmt.Println(w[5], "->", back[5])
	fmt.Println(w[31], "->", back[31])
	// Output:
	// scale 0x3400, first codes 80 91 91 a2
	// -2 -> -2
	// -1.375 -> -1.25
	// 1.875 -> 1.75
}

// Quantize picks the storage of every tensor and reports what it did.
func ExampleQuantize() {
	cfg := model.Config{Arch: "llama", HiddenSize: 64, IntermediateSize: 96, NumLayers: 1, NumHeads: 4,
		NumKVHeads: 4, HeadDim: 16, VocabSize: 128, ContextLength: 64, RMSNormEps: 1e-5, RopeTheta: 10000}
	m, err := model.Synthesize(cfg, 1)
	if err != nil {
		panic(err)
	}
	q, rep, err := quantize.Quantize(m, quantize.Options{Scheme: quantize.Q4_0})
	if err != nil {
		panic(err)
	}
	for _, t := range rep.Tensors {
		fmt.Printf("%-46s %s -> %-4s %-9s %s\n", t.Name, t.From, t.To, t.Action, t.Why)
	}
	fmt.Printf("%d -> %d bytes, %.2f bits per weight\n", rep.BytesBefore, q.TensorBytes(), rep.BitsPerWeight)
	// Output:
	// model.embed_tokens.weight                      F32 -> Q4_0 quantized default
	// model.layers.0.input_layernorm.weight          F32 -> F32  kept      1-D
	// model.layers.0.self_attn.q_proj.weight         F32 -> Q4_0 quantized default
	// model.layers.0.self_attn.k_proj.weight         F32 -> Q4_0 quantized default
	// model.layers.0.self_attn.v_proj.weight         F32 -> Q4_0 quantized default
	// model.layers.0.self_attn.o_proj.weight         F32 -> Q4_0 quantized default
	// model.layers.0.post_attention_layernorm.weight F32 -> F32  kept      1-D
	// model.layers.0.mlp.gate_proj.weight            F32 -> Q4_0 quantized default
	// model.layers.0.mlp.up_proj.weight              F32 -> Q4_0 quantized default
	// model.layers.0.mlp.down_proj.weight            F32 -> Q4_0 quantized default
	// model.norm.weight                              F32 -> F32  kept      1-D
	// lm_head.weight                                 F32 -> Q8_0 quantized output head
	// 205568 -> 33664 bytes, 5.24 bits per weight
}
