package inference

import (
	"fmt"

	"github.com/shrinkml/shrink/inference/kernels"
	"github.com/shrinkml/shrink/model"
)

// LinearGroup names the linear layers of a decoder layer that read the same
// input: the query, key and value projections read the normalized residual,
// the output projection reads the attention output, gate and up read the
// normalized residual after attention, and down reads SwiGLU's output.
type LinearGroup int

// The linear groups of a decoder layer, in the order a forward pass reaches
// them, and the output head, which reads the final norm's output (see
// Calibration.Head).
const (
	GroupQKV LinearGroup = iota
	GroupO
	GroupGateUp
	GroupDown
	GroupHead
)

// Tensors returns the short names (model.AttnQ, ...) of the matrices in g, a
// decoder layer's group; none for GroupHead.
func (g LinearGroup) Tensors() []string {
	switch g {
	case GroupQKV:
		return []string{model.AttnQ, model.AttnK, model.AttnV}
	case GroupO:
		return []string{model.AttnO}
	case GroupGateUp:
		return []string{model.FFNGate, model.FFNUp}
	case GroupDown:
		return []string{model.FFNDown}
	}
	return nil
}

func (g LinearGroup) String() string {
	switch g {
	case GroupQKV:
		return "qkv"
	case GroupO:
		return "o"
	case GroupGateUp:
		return "gate_up"
	case GroupDown:
		return "down"
	case GroupHead:
		return "head"
	}
	return fmt.Sprintf("LinearGroup(%d)", int(g))
}

// Calibration runs a llama model one decoder layer at a time over a fixed set
// of token sequences, for methods that fit each layer to the activations it
// really sees (GPTQ, AWQ, Wanda, SparseGPT). It keeps every sequence's hidden
// states between layers, so a layer's inputs come from the layers before it as
// they are after compression, and memory stays at one layer's activations.
type Calibration struct {
	l      *Llama
	seqs   [][]int
	hidden [][]float32 // per sequence: [len][dim], the input of layer c.next
	next   int
	s      *State
}

// Input is what a Calibration pass shows of one linear group: X holds Rows
// activation rows of Cols values, the input every matrix of the group
// multiplies, for up to one engine chunk of one sequence.
type Input struct {
	Layer      int
	Group      LinearGroup
	X          []float32 // Rows × Cols, row-major; valid only during the call
	Rows, Cols int
}

// NewCalibration embeds the sequences (each at most the model's context
// length) and stands before the first layer. The Llama must stay open while
// the Calibration is used.
func (l *Llama) NewCalibration(seqs [][]int) (*Calibration, error) {
	if len(seqs) == 0 {
		return nil, fmt.Errorf("inference: calibration needs at least one sequence")
	}
	longest := 0
	for i, seq := range seqs {
		if len(seq) == 0 || len(seq) > l.cfg.ContextLength {
			return nil, fmt.Errorf("inference: calibration sequence %d has %d tokens; want 1 to %d",
				i, len(seq), l.cfg.ContextLength)
		}
		for j, t := range seq {
			if t < 0 || t >= l.vocab {
				return nil, fmt.Errorf("inference: calibration sequence %d: token %d at index %d is outside the vocabulary of %d",
					i, t, j, l.vocab)
			}
		}
		longest = max(longest, len(seq))
	}
	c := &Calibration{l: l, seqs: seqs, hidden: make([][]float32, len(seqs))}
	for i, seq := range seqs {
		h := make([]float32, len(seq)*l.dim)
		for t, tok := range seq {
			l.embed.Row(h[t*l.dim:(t+1)*l.dim], tok)
		}
		c.hidden[i] = h
	}
	// One layer runs at a time, so every layer's KV cache can be the same
	// buffer: a sequence fills it before the next one starts.
	c.s = l.newState(longest, 1)
	return c, nil
}

// Layer is the index of the decoder layer the next pass runs; it equals the
// number of layers when every layer has been run.
func (c *Calibration) Layer() int { return c.next }

// Tokens is the total number of tokens in the calibration sequences.
func (c *Calibration) Tokens() int {
	n := 0
	for _, s := range c.seqs {
		n += len(s)
	}
	return n
}

// Hidden returns the current hidden states of sequence i, [len][dim]: the
// input of layer Layer(), or the final residual stream once every layer has
// run. The slice is the Calibration's own; do not modify it.
func (c *Calibration) Hidden(i int) []float32 { return c.hidden[i] }

// Run passes every sequence through layer Layer() with its current weights.
// observe, when not nil, is called on the calling goroutine with the input of
// each linear group, sequence by sequence and chunk by chunk, in a fixed
// order. With advance, the layer's outputs become the hidden states and
// Layer moves on; without it, the hidden states stay as they were, so a
// caller can replace some of the layer's weights (SetWeights) and observe it
// again.
func (c *Calibration) Run(observe func(Input), advance bool) error {
	l := c.l
	if c.next >= len(l.layers) {
		return fmt.Errorf("inference: calibration has run all %d layers", len(l.layers))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("inference: the model is closed")
	}
	li, s, dim := c.next, c.s, l.dim
	var obs func(g LinearGroup, x []float32, n int)
	if observe != nil {
		cols := map[LinearGroup]int{GroupQKV: dim, GroupO: l.qDim, GroupGateUp: dim, GroupDown: l.ffn}
		obs = func(g LinearGroup, x []float32, n int) {
			observe(Input{Layer: li, Group: g, X: x, Rows: n, Cols: cols[g]})
		}
	}
	for i, h := range c.hidden {
		n := len(c.seqs[i])
		for start := 0; start < n; start += prefillChunk {
			end := min(start+prefillChunk, n)
			copy(s.x, h[start*dim:end*dim])
			l.rotary(s, start, end-start)
			l.layer(s, li, end-start, start, obs)
			if advance {
				copy(h[start*dim:end*dim], s.x[:(end-start)*dim])
			}
		}
	}
	if advance {
		c.next++
	}
	return nil
}

// Head shows observe the output head's input for every calibration token:
// the final RMSNorm of the hidden states the last layer left, as Forward
// computes it, chunk by chunk (Group GroupHead, Layer the number of layers).
// It fails until every layer has run with advance.
func (c *Calibration) Head(observe func(Input)) error {
	l := c.l
	if c.next < len(l.layers) {
		return fmt.Errorf("inference: calibration is before layer %d of %d; the head's inputs come after the last", c.next, len(l.layers))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("inference: the model is closed")
	}
	dim, buf := l.dim, c.s.xb
	for _, h := range c.hidden {
		n := len(h) / dim
		for start := 0; start < n; start += prefillChunk {
			end := min(start+prefillChunk, n)
			for t := start; t < end; t++ {
				kernels.RMSNorm(buf[(t-start)*dim:(t-start+1)*dim], h[t*dim:(t+1)*dim], l.norm, l.eps)
			}
			observe(Input{Layer: len(l.layers), Group: GroupHead, X: buf[:(end-start)*dim], Rows: end - start, Cols: dim})
		}
	}
	return nil
}

// SetWeights replaces the matrix named name (a full tensor name such as
// "blk.3.attn_q.weight", or the untied output head) with t, which must have
// the same shape; t's data must stay valid while the Llama is in use. The
// token embedding cannot be replaced.
func (l *Llama) SetWeights(name string, t *model.Tensor) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	dst, ok := l.mats[name]
	if !ok {
		return fmt.Errorf("inference: %q is not a replaceable weight matrix of the model", name)
	}
	old := *dst
	if len(t.Shape) != 2 || t.Shape[0] != old.Rows() || t.Shape[1] != old.Cols() {
		return fmt.Errorf("inference: tensor %q has shape %v, want [%d %d]", name, t.Shape, old.Rows(), old.Cols())
	}
	w, err := LoadWeights(t)
	if err != nil {
		return fmt.Errorf("inference: %w", err)
	}
	*dst = w
	return nil
}
