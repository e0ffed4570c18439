package model

import "fmt"

// RopeLayout says which query/key dimensions RoPE rotates together.
type RopeLayout uint8

const (
	// RopePairs rotates consecutive pairs (2i, 2i+1), as llama.cpp and llama2.c do.
	RopePairs RopeLayout = iota
	// RopeHalf rotates dimension i with i+head_dim/2, as Hugging Face checkpoints do.
	RopeHalf
)

func (l RopeLayout) String() string {
	if l == RopeHalf {
		return "half"
	}
	return "pairs"
}

// Config describes a model's architecture. Arch is "llama" for the llama family
// (Llama, Mistral, Qwen2, SmolLM, TinyLlama, llama2.c) or "mlp" for classifiers.
type Config struct {
	Arch string
	// HFArchitecture is the Hugging Face class name, e.g. "LlamaForCausalLM";
	// empty means LlamaForCausalLM for llama models.
	HFArchitecture string

	HiddenSize       int
	IntermediateSize int
	NumLayers        int
	NumHeads         int
	NumKVHeads       int
	HeadDim          int
	VocabSize        int
	ContextLength    int
	RMSNormEps       float64
	RopeTheta        float64
	// RopeLayout is the layout the q and k projection rows are stored in.
	RopeLayout     RopeLayout
	TiedEmbeddings bool
	// QKVBias is set for models with biases on the q, k and v projections (Qwen2).
	QKVBias bool

	// MLP describes a classifier when Arch is "mlp".
	MLP *MLPConfig
}

// MLPConfig describes a stack of Linear layers: Sizes[0] inputs, Sizes[len-1]
// classes, an activation between layers and a softmax at the end.
type MLPConfig struct {
	Sizes      []int
	Activation string // "relu" or "gelu"
	Labels     []string
}

// KVDim is the width of the key and value projections.
func (c *Config) KVDim() int { return c.NumKVHeads * c.HeadDim }

// Check reports the first inconsistency in c that would make the model unusable.
func (c *Config) Check() error {
	switch c.Arch {
	case "llama":
		type field struct {
			name string
			v    int
		}
		for _, f := range []field{{"hidden size", c.HiddenSize}, {"intermediate size", c.IntermediateSize},
			{"layer count", c.NumLayers}, {"head count", c.NumHeads}, {"kv head count", c.NumKVHeads},
			{"head dim", c.HeadDim}, {"vocab size", c.VocabSize}, {"context length", c.ContextLength}} {
			if f.v <= 0 || f.v > 1<<24 {
				return fmt.Errorf("config: %s %d is out of range", f.name, f.v)
			}
		}
		if c.NumHeads%c.NumKVHeads != 0 {
			return fmt.Errorf("config: %d heads is not a multiple of %d kv heads", c.NumHeads, c.NumKVHeads)
		}
		if c.HeadDim%2 != 0 {
			return fmt.Errorf("config: head dim %d is odd; RoPE needs pairs", c.HeadDim)
		}
		if !(c.RMSNormEps > 0 && c.RMSNormEps < 1) {
			return fmt.Errorf("config: rms norm eps %g is out of range", c.RMSNormEps)
		}
		if !(c.RopeTheta > 0) {
			return fmt.Errorf("config: rope theta %g is out of range", c.RopeTheta)
		}
	case "mlp":
		if c.MLP == nil || len(c.MLP.Sizes) < 2 {
			return fmt.Errorf("config: an mlp needs at least an input and an output size")
		}
		for _, s := range c.MLP.Sizes {
			if s <= 0 || s > 1<<24 {
				return fmt.Errorf("config: mlp layer size %d is out of range", s)
			}
		}
		switch c.MLP.Activation {
		case "relu", "gelu":
		default:
			return fmt.Errorf("config: unknown mlp activation %q", c.MLP.Activation)
		}
		if n := len(c.MLP.Labels); n != 0 && n != c.MLP.Sizes[len(c.MLP.Sizes)-1] {
			return fmt.Errorf("config: %d labels for %d classes", n, c.MLP.Sizes[len(c.MLP.Sizes)-1])
		}
	default:
		return fmt.Errorf("config: unknown architecture %q", c.Arch)
	}
	return nil
}
