package model

import "fmt"

// WithRopeLayout returns a model whose q and k projection rows (and biases)
// are stored in the given RoPE layout. It is a shallow copy: tensors that need
// no change are shared with m. Converting Hugging Face checkpoints to GGUF is
// the pairs direction; the reverse restores the original rows exactly.
func (m *Model) WithRopeLayout(to RopeLayout) (*Model, error) {
	out := *m
	out.Tensors = append([]*Tensor(nil), m.Tensors...)
	if m.Config.Arch != "llama" || m.Config.RopeLayout == to {
		out.Config.RopeLayout = to
		return &out, nil
	}
	heads := map[string]int{}
	for l := 0; l < m.Config.NumLayers; l++ {
		heads[LayerTensor(l, AttnQ)] = m.Config.NumHeads
		heads[LayerTensor(l, AttnQB)] = m.Config.NumHeads
		heads[LayerTensor(l, AttnK)] = m.Config.NumKVHeads
		heads[LayerTensor(l, AttnKB)] = m.Config.NumKVHeads
	}
	for i, t := range out.Tensors {
		h, ok := heads[t.Name]
		if !ok {
			continue
		}
		p, err := permuteRopeRows(t, h, to)
		if err != nil {
			return nil, err
		}
		out.Tensors[i] = p
	}
	out.Config.RopeLayout = to
	return &out, nil
}

// permuteRopeRows reorders the rows of a q or k projection (or the elements of
// its bias) between the rotate-half and the interleaved-pair layouts. Viewing
// the rows of each head as [2][hd/2], the pairs layout is its transpose [hd/2][2].
func permuteRopeRows(t *Tensor, heads int, to RopeLayout) (*Tensor, error) {
	if err := t.Check(); err != nil {
		return nil, err
	}
	var nrows int
	switch len(t.Shape) {
	case 1:
		nrows = t.Shape[0]
	case 2:
		nrows = t.Shape[0]
	default:
		return nil, fmt.Errorf("tensor %q: cannot permute RoPE rows of shape %v", t.Name, t.Shape)
	}
	if heads <= 0 || nrows%(2*heads) != 0 {
		return nil, fmt.Errorf("tensor %q: %d rows do not split into %d heads of pairs", t.Name, nrows, heads)
	}
	if nrows == 0 {
		return t, nil
	}
	rowBytes := len(t.Data) / nrows
	half := nrows / heads / 2
	data := make([]byte, len(t.Data))
	for h := 0; h < heads; h++ {
		base := h * 2 * half
		for i := 0; i < half; i++ {
			for j := 0; j < 2; j++ {
				halfRow := base + j*half + i // row in rotate-half order
				pairRow := base + 2*i + j    // row in pair order
				src, dst := halfRow, pairRow
				if to == RopeHalf {
					src, dst = pairRow, halfRow
				}
				copy(data[dst*rowBytes:(dst+1)*rowBytes], t.Data[src*rowBytes:(src+1)*rowBytes])
			}
		}
	}
	return &Tensor{Name: t.Name, DType: t.DType, Shape: append([]int(nil), t.Shape...), Data: data}, nil
}
