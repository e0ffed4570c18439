package inference_test

import (
	"fmt"
	"log"
	"os"

	"github.com/shrinkml/shrink/format/llama2c"
	"github.com/shrinkml/shrink/inference"
	"github.com/shrinkml/shrink/inference/tokenizer"
	"github.com/shrinkml/shrink/model"
)

// Generate a story greedily with a llama2.c checkpoint, as run.c -t 0 does.
func ExampleGenerate() {
	m, err := llama2c.Load("stories260K.bin") // tok512.bin beside it is picked up
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	l, err := inference.NewLlama(m, inference.Options{}) // all cores
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	tok, err := tokenizer.New(m.Tokenizer)
	if err != nil {
		log.Fatal(err)
	}
	st, err := inference.Generate(l, tok, "", 256, inference.Greedy(), func(piece []byte) { os.Stdout.Write(piece) })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("\n%.0f tok/s\n", st.DecodeRate())
}

// Score a sequence: one batched Forward returns the logits of every position.
func ExampleLlama_Forward() {
	m, err := llama2c.Load("stories260K.bin")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	l, err := inference.NewLlama(m, inference.Options{Threads: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	tokens := []int{1, 403, 407, 261}
	vocab := m.Config.VocabSize
	logits := make([]float32, len(tokens)*vocab) // or vocab for the last position only
	s := l.NewState(0)
	if err := l.Forward(s, tokens, logits); err != nil {
		log.Fatal(err)
	}
	fmt.Println("next token after the prompt:", inference.Greedy().Sample(logits[(len(tokens)-1)*vocab:]))
}

func ExampleSampler() {
	logits := []float32{0.5, 2.5, 1.0, -3}
	fmt.Println(inference.Greedy().Sample(logits))
	s, err := inference.NewSampler(inference.SamplerOptions{Temperature: 0.8, TopK: 2, Seed: 42})
	if err != nil {
		log.Fatal(err)
	}
	counts := map[int]int{}
	for range 1000 {
		counts[s.Sample(logits)]++
	}
	fmt.Println("only the two best tokens:", len(counts), counts[0] == 0 && counts[3] == 0)
	// Output:
	// 1
	// only the two best tokens: 2 true
}

// A two-feature classifier: class 0 when x0 > x1, class 1 otherwise.
func ExampleMLP() {
	m := &model.Model{
		Config: model.Config{Arch: "mlp", MLP: &model.MLPConfig{Sizes: []int{2, 2}, Activation: "relu"}},
		Tensors: []*model.Tensor{
			model.NewF32(model.MLPWeight(0), []int{2, 2}, []float32{4, -4, -4, 4}),
			model.NewF32(model.MLPBias(0), []int{2}, []float32{0, 0}),
		},
	}
	c, err := inference.NewMLP(m, inference.Options{Threads: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	x := []float32{1, 0, 0, 1, 0.5, 0.5} // three examples
	probs := make([]float32, 3*2)
	if err := c.Forward(x, probs); err != nil {
		log.Fatal(err)
	}
	labels, _ := c.Predict(x)
	fmt.Printf("%.4f\n%v\n", probs, labels)
	// Output:
	// [0.9997 0.0003 0.0003 0.9997 0.5000 0.5000]
	// [0 1 0]
}
