package inference

import (
	"fmt"
	"math"
	"sync"

	"github.com/shrinkml/shrink/inference/kernels"
	"github.com/shrinkml/shrink/model"
)

// activation is the nonlinearity between the layers of an MLP.
type activation uint8

const (
	actNone activation = iota
	actReLU
	actGELU
)

// apply runs the activation on x in place. GELU is the exact erf form,
// 0.5·x·(1+erf(x/√2)), evaluated in float64 and rounded once.
func (a activation) apply(x []float32) {
	switch a {
	case actReLU:
		for i, v := range x {
			if v < 0 {
				x[i] = 0
			}
		}
	case actGELU:
		for i, v := range x {
			f := float64(v)
			x[i] = float32(0.5 * f * (1 + math.Erf(f/math.Sqrt2)))
		}
	}
}

// mlpChunk is the most rows one batched step of MLP.Forward processes.
const mlpChunk = 256

// MLP is a classifier: Linear layers with an activation between them and a
// softmax over the classes at the end.
type MLP struct {
	cfg     model.Config
	sizes   []int
	act     activation
	weights []Weights
	biases  [][]float32
	threads int
	minWork int
	pool    *pool

	mu     sync.Mutex
	closed bool
	bufs   [2][]float32 // alternating layer outputs, [mlpChunk][widest layer]
	op     matOp
}

// NewMLP prepares the classifier m (Config.Arch "mlp") to run. m must stay
// open while the MLP is in use. Close the MLP to stop its worker threads.
func NewMLP(m *model.Model, opts Options) (*MLP, error) {
	cfg := m.Config
	src := sourceName(m)
	if cfg.Arch != "mlp" {
		return nil, fmt.Errorf("inference %s: architecture %q is not an mlp classifier", src, cfg.Arch)
	}
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("inference %s: %w", src, err)
	}
	c := &MLP{cfg: cfg, sizes: append([]int(nil), cfg.MLP.Sizes...), threads: opts.threads(), minWork: minParallelWork}
	switch cfg.MLP.Activation {
	case "relu":
		c.act = actReLU
	case "gelu":
		c.act = actGELU
	}
	widest := 0
	for i := 0; i+1 < len(c.sizes); i++ {
		in, out := c.sizes[i], c.sizes[i+1]
		w, err := loadMatrix(m, model.MLPWeight(i), out, in)
		if err != nil {
			return nil, fmt.Errorf("inference %s: %w", src, err)
		}
		b, err := loadVector(m, model.MLPBias(i), out)
		if err != nil {
			return nil, fmt.Errorf("inference %s: %w", src, err)
		}
		c.weights = append(c.weights, w)
		c.biases = append(c.biases, b)
		widest = max(widest, out)
	}
	c.bufs[0] = make([]float32, mlpChunk*widest)
	c.bufs[1] = make([]float32, mlpChunk*widest)
	c.pool = newPool(c.threads)
	stopWhenUnreachable(c, c.pool)
	return c, nil
}

// Close stops the worker threads. The MLP must not be used afterwards.
func (c *MLP) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.pool.close()
	return nil
}

// Threads is the number of threads each batch runs on.
func (c *MLP) Threads() int { return c.threads }

// Inputs is the number of features of one example.
func (c *MLP) Inputs() int { return c.sizes[0] }

// Classes is the number of outputs of one example.
func (c *MLP) Classes() int { return c.sizes[len(c.sizes)-1] }

// Forward runs a batch: x holds n examples of Inputs() features, row after
// row, and out receives n rows of Classes() probabilities.
func (c *MLP) Forward(x []float32, out []float32) error {
	in, classes := c.Inputs(), c.Classes()
	if len(x)%in != 0 {
		return fmt.Errorf("inference: mlp input of %d values is not a whole number of %d-feature rows", len(x), in)
	}
	n := len(x) / in
	if len(out) != n*classes {
		return fmt.Errorf("inference: mlp output holds %d values, want %d rows of %d classes", len(out), n, classes)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("inference: the mlp is closed")
	}
	for start := 0; start < n; start += mlpChunk {
		end := min(start+mlpChunk, n)
		c.forward(x[start*in:end*in], out[start*classes:end*classes], end-start)
	}
	return nil
}

func (c *MLP) forward(x, out []float32, n int) {
	cur := x
	last := len(c.weights) - 1
	for i, w := range c.weights {
		dst := out
		if i < last {
			dst = c.bufs[i%2][:n*w.Rows()]
		}
		c.op.set(cur, n, biasAct)
		c.op.add(w, dst)
		c.op.bias = c.biases[i]
		c.op.act = c.act
		if i == last {
			c.op.act = actNone
		}
		c.op.prepare(c.threads)
		if n*w.Rows()*w.Cols() < c.minWork {
			c.op.run(0, 1)
		} else {
			c.pool.run(&c.op)
		}
		cur = dst
	}
	classes := c.Classes()
	for t := 0; t < n; t++ {
		kernels.Softmax(out[t*classes : (t+1)*classes])
	}
}

// Predict returns the most probable class of each of the examples in x.
func (c *MLP) Predict(x []float32) ([]int, error) {
	in, classes := c.Inputs(), c.Classes()
	if len(x)%in != 0 {
		return nil, fmt.Errorf("inference: mlp input of %d values is not a whole number of %d-feature rows", len(x), in)
	}
	n := len(x) / in
	probs := make([]float32, n*classes)
	if err := c.Forward(x, probs); err != nil {
		return nil, err
	}
	labels := make([]int, n)
	for t := range labels {
		labels[t] = kernels.MaxIndex(probs[t*classes : (t+1)*classes])
	}
	return labels, nil
}
