package inference

import (
	"fmt"

	"github.com/shrinkml/shrink/model"
)

// SetVector replaces the 1-D tensor named name (a decoder layer's norm weight
// or QKV bias, such as "model.layers.3.input_layernorm.weight") with v, which
// must have the same length; the Llama keeps v, so it must not be modified
// while the Llama is in use. AWQ divides its scales out of the norms this way.
func (l *Llama) SetVector(name string, v []float32) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.layers {
		L := &l.layers[i]
		for _, c := range []struct {
			dst    *[]float32
			suffix string
		}{{&L.attnNorm, model.AttnNorm}, {&L.ffnNorm, model.FFNNorm}, {&L.bq, model.AttnQB}, {&L.bk, model.AttnKB}, {&L.bv, model.AttnVB}} {
			if *c.dst == nil || model.LayerTensor(i, c.suffix) != name {
				continue
			}
			if len(v) != len(*c.dst) {
				return fmt.Errorf("inference: vector %q has %d values, want %d", name, len(v), len(*c.dst))
			}
			*c.dst = v
			return nil
		}
	}
	return fmt.Errorf("inference: %q is not a replaceable vector of the model", name)
}
