// Package train trains MLP classifiers on the CPU: reverse-mode gradients
// for Linear layers, ReLU and GELU, softmax cross-entropy and a
// temperature-scaled KL divergence to a teacher's soft targets; AdamW with a
// linear warm-up and cosine decay, gradient clipping, and mini-batches split
// over cores. The matrix products run on inference/kernels. A run is
// deterministic for a given seed and thread count. Masks hold a pruned
// network's zeros fixed, and a Schedule prunes by magnitude as it trains.
package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/shrinkml/shrink/model"
)

// Network is an MLP being trained: Linear layers with an activation between
// them, stored as model.MLPWeight and model.MLPBias tensors are, in one flat
// vector so that the optimizer runs over every parameter at once.
type Network struct {
	Sizes []int // inputs, hidden widths, classes
	Act   Activation

	params []float32
	w, b   [][]float32 // views into params: layer l's [out, in] weights and [out] bias
	mask   []bool      // laid out as params: true where a weight is held at zero; nil for none
	// maskGen counts the changes to mask, so that a trainer sees them.
	maskGen int
}

// NewNetwork returns a network of the given sizes with seeded random
// weights: He-uniform (bound √(6/in)) before an activation, uniform within
// ±1/√in for the last layer, biases zero.
func NewNetwork(sizes []int, act Activation, seed uint64) (*Network, error) {
	n, err := newNetwork(sizes, act)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, streamInit))
	for l, w := range n.w {
		in := float64(sizes[l])
		bound := math.Sqrt(6 / in)
		if l == len(n.w)-1 {
			bound = 1 / math.Sqrt(in)
		}
		for i := range w {
			w[i] = float32(bound * (2*rng.Float64() - 1))
		}
	}
	return n, nil
}

// The PCG streams of a seed: one for the initial weights, one for the order
// of the examples.
const (
	streamInit    = 0x73687269_6e6b0001
	streamShuffle = 0x73687269_6e6b0002
)

// maxParams bounds the networks train builds in memory (with the optimizer
// state and per-thread gradients, about 6 + threads floats each).
const maxParams = 1 << 28

func newNetwork(sizes []int, act Activation) (*Network, error) {
	if len(sizes) < 2 {
		return nil, fmt.Errorf("train: an mlp needs at least an input and an output size, got %v", sizes)
	}
	if act != ReLU && act != GELU {
		return nil, fmt.Errorf("train: activation %q; want relu or gelu", act)
	}
	total := 0
	for i, s := range sizes {
		if s <= 0 || s > 1<<20 {
			return nil, fmt.Errorf("train: layer size %d is out of range", s)
		}
		if i > 0 {
			total += sizes[i-1]*s + s
			if total > maxParams {
				return nil, fmt.Errorf("train: sizes %v have more than %d parameters", sizes, maxParams)
			}
		}
	}
	n := &Network{Sizes: append([]int(nil), sizes...), Act: act, params: make([]float32, total)}
	off := 0
	for l := 0; l+1 < len(sizes); l++ {
		in, out := sizes[l], sizes[l+1]
		n.w = append(n.w, n.params[off:off+out*in:off+out*in])
		off += out * in
		n.b = append(n.b, n.params[off:off+out:off+out])
		off += out
	}
	return n, nil
}

// FromModel copies the weights of an MLP classifier (Config.Arch "mlp").
func FromModel(m *model.Model) (*Network, error) {
	if m.Config.Arch != "mlp" || m.Config.MLP == nil {
		return nil, fmt.Errorf("train %s: architecture %q is not an mlp classifier", m.Source, m.Config.Arch)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("train %s: %w", m.Source, err)
	}
	n, err := newNetwork(m.Config.MLP.Sizes, Activation(m.Config.MLP.Activation))
	if err != nil {
		return nil, fmt.Errorf("train %s: %w", m.Source, err)
	}
	for l := range n.w {
		for _, c := range []struct {
			name string
			dst  []float32
		}{{model.MLPWeight(l), n.w[l]}, {model.MLPBias(l), n.b[l]}} {
			v, err := m.Tensor(c.name).Float32()
			if err != nil {
				return nil, fmt.Errorf("train %s: tensor %q: %w", m.Source, c.name, err)
			}
			copy(c.dst, v)
		}
	}
	return n, nil
}

// Model returns the network as an F32 MLP classifier with the given class
// names (nil for none), sharing no memory with the network.
func (n *Network) Model(labels []string) *model.Model {
	m := &model.Model{Config: model.Config{Arch: "mlp", MLP: &model.MLPConfig{
		Sizes: append([]int(nil), n.Sizes...), Activation: string(n.Act), Labels: append([]string(nil), labels...)}}}
	if len(labels) == 0 {
		m.Config.MLP.Labels = nil
	}
	for l := range n.w {
		in, out := n.Sizes[l], n.Sizes[l+1]
		m.Tensors = append(m.Tensors,
			model.NewF32(model.MLPWeight(l), []int{out, in}, append([]float32(nil), n.w[l]...)),
			model.NewF32(model.MLPBias(l), []int{out}, append([]float32(nil), n.b[l]...)))
	}
	return m
}

// Params is the number of weights and biases.
func (n *Network) Params() int { return len(n.params) }

// Inputs is the number of features of one example.
func (n *Network) Inputs() int { return n.Sizes[0] }

// Classes is the number of outputs.
func (n *Network) Classes() int { return n.Sizes[len(n.Sizes)-1] }

// evalChunk is how many rows Logits runs at once on one thread.
const evalChunk = 256

// Logits returns the network's outputs before the softmax for the examples
// in x (rows of Inputs() features), computed on threads goroutines (0: every
// core). The result does not depend on threads.
func (n *Network) Logits(x []float32, threads int) ([]float32, error) {
	in, k := n.Inputs(), n.Classes()
	if len(x)%in != 0 {
		return nil, fmt.Errorf("train: input of %d values is not a whole number of %d-feature rows", len(x), in)
	}
	rows := len(x) / in
	out := make([]float32, rows*k)
	chunks := (rows + evalChunk - 1) / evalChunk
	threads = min(resolveThreads(threads), max(chunks, 1))
	widest := 0
	for _, s := range n.Sizes[1:] {
		widest = max(widest, s)
	}
	var wg sync.WaitGroup
	for th := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bufs := [2][]float32{make([]float32, evalChunk*widest), make([]float32, evalChunk*widest)}
			for c := th; c < chunks; c += threads {
				r0, r1 := c*evalChunk, min((c+1)*evalChunk, rows)
				n.forward(out[r0*k:r1*k], x[r0*in:r1*in], r1-r0, bufs)
			}
		}()
	}
	wg.Wait()
	return out, nil
}

// forward sets out to the logits of the rows of x, using bufs for the
// hidden layers.
func (n *Network) forward(out, x []float32, rows int, bufs [2][]float32) {
	cur := x
	last := len(n.w) - 1
	for l := range n.w {
		in, o := n.Sizes[l], n.Sizes[l+1]
		dst := out
		if l < last {
			dst = bufs[l%2][:rows*o]
		}
		linearForward(dst, cur, n.w[l], n.b[l], rows, in, o)
		if l < last {
			n.Act.forward(dst, dst)
		}
		cur = dst
	}
}

// Accuracy returns the share of the examples in x whose largest logit is
// their label.
func (n *Network) Accuracy(x []float32, y []int, threads int) (float64, error) {
	z, err := n.Logits(x, threads)
	if err != nil {
		return 0, err
	}
	k := n.Classes()
	if len(z) != len(y)*k {
		return 0, fmt.Errorf("train: %d examples but %d labels", len(z)/k, len(y))
	}
	if len(y) == 0 {
		return 0, nil
	}
	right := 0
	for t, label := range y {
		if argmax(z[t*k:(t+1)*k]) == label {
			right++
		}
	}
	return float64(right) / float64(len(y)), nil
}

// argmax returns the index of the largest element, the first on ties.
func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

func resolveThreads(t int) int {
	if t <= 0 {
		return runtime.NumCPU()
	}
	return t
}
