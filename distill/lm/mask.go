package lm

import (
	"fmt"
	"math"
	"slices"

	"github.com/shrinkml/shrink/model"
)

// Masks mark weights of the linear layers (q, k, v, o, gate, up and down of
// every decoder layer) that are zero and must stay zero: a pruned model is
// trained on without growing its pruned weights back. They live in one flat
// vector laid out as the parameters; the embedding, the norms and the head
// are never masked. The optimizer updates only the free weights of a masked
// tensor, and a model without masks trains exactly as it did before masks
// existed.

// linearSuffixes are the matrices of a decoder layer that masks and
// magnitude pruning apply to.
var linearSuffixes = []string{model.AttnQ, model.AttnK, model.AttnV, model.AttnO, model.FFNGate, model.FFNUp, model.FFNDown}

// prunable reports whether the tensor name is one of a decoder layer's
// linear matrices.
func prunable(name string) bool {
	return slices.ContainsFunc(linearSuffixes, func(s string) bool { return hasSuffix(name, "."+s) })
}

// PrunableTensors are the names of the tensors masks and PruneMagnitude
// apply to, the seven linear matrices of every decoder layer, in the order
// of the parameters; Sparsity reports them in this order.
func (m *Model) PrunableTensors() []string {
	var names []string
	for _, s := range m.segs {
		if prunable(s.name) {
			names = append(names, s.name)
		}
	}
	return names
}

// prunableSegs are the segments of PrunableTensors.
func (m *Model) prunableSegs() []segment {
	var segs []segment
	for _, s := range m.segs {
		if prunable(s.name) {
			segs = append(segs, s)
		}
	}
	return segs
}

// maskOf returns the view of the flat mask over segment s, making the mask
// on first use.
func (m *Model) maskOf(s segment) []bool {
	if m.mask == nil {
		m.mask = make([]bool, len(m.params))
	}
	return m.mask[s.off : s.off+s.len]
}

// SetMask holds the weights of the linear matrix name (row-major, as
// model.Model stores it, with q and k rows in the pair RoPE layout) at zero
// where pruned is true, and zeroes them; nil unmasks the tensor.
func (m *Model) SetMask(name string, pruned []bool) error {
	i := slices.IndexFunc(m.segs, func(s segment) bool { return s.name == name })
	if i < 0 || !prunable(name) {
		return fmt.Errorf("lm: %q is not a linear matrix of a decoder layer; only those are masked", name)
	}
	s := m.segs[i]
	if pruned == nil {
		if m.mask != nil {
			clear(m.maskOf(s))
			m.maskGen++
		}
		return nil
	}
	if len(pruned) != s.len {
		return fmt.Errorf("lm: a mask of %d values for %s of %d weights", len(pruned), name, s.len)
	}
	copy(m.maskOf(s), pruned)
	m.maskGen++
	p := m.params[s.off : s.off+s.len]
	for i, v := range pruned {
		if v {
			p[i] = 0
		}
	}
	return nil
}

// Mask returns a copy of the mask of tensor name: true where the weight is
// held at zero; nil when the model has no masks or no tensor of that name.
func (m *Model) Mask(name string) []bool {
	i := slices.IndexFunc(m.segs, func(s segment) bool { return s.name == name })
	if m.mask == nil || i < 0 {
		return nil
	}
	return slices.Clone(m.maskOf(m.segs[i]))
}

// MaskZeros masks every zero weight of the linear matrices, so that training
// keeps a pruned model's zeros, and returns how many it masked.
func (m *Model) MaskZeros() int {
	total := 0
	for _, s := range m.prunableSegs() {
		p := m.params[s.off : s.off+s.len]
		zeros := 0
		for _, v := range p {
			if v == 0 {
				zeros++
			}
		}
		if zeros == 0 {
			continue
		}
		total += zeros
		mask := m.maskOf(s)
		for i, v := range p {
			mask[i] = mask[i] || v == 0
		}
		m.maskGen++
	}
	return total
}

// Sparsity returns the share of zero weights in each of PrunableTensors and
// over all of them.
func (m *Model) Sparsity() (tensors []float64, all float64) {
	zeros, total := 0, 0
	for _, s := range m.prunableSegs() {
		z := 0
		for _, v := range m.params[s.off : s.off+s.len] {
			if v == 0 {
				z++
			}
		}
		tensors = append(tensors, float64(z)/float64(s.len))
		zeros += z
		total += s.len
	}
	return tensors, float64(zeros) / float64(total)
}

// PruneMagnitude masks and zeroes the weights of smallest |w| of the linear
// matrices until round(sparsity·n) of each one's n weights are masked, or
// with global round(sparsity·N) of all their N weights under one threshold.
// Masked weights are never unmasked: they are taken first, then the
// smallest |w|, the later weight first among equals (as package prune
// breaks ties), so the result depends on the values alone.
func (m *Model) PruneMagnitude(sparsity float64, global bool) error {
	if !(sparsity >= 0 && sparsity < 1) {
		return fmt.Errorf("lm: sparsity %g; want a fraction in [0, 1)", sparsity)
	}
	segs := m.prunableSegs()
	groups := make([][]segment, 0, len(segs)) // the tensors pruned under one threshold
	if global {
		groups = append(groups, segs)
	} else {
		for _, s := range segs {
			groups = append(groups, []segment{s})
		}
	}
	for _, g := range groups {
		total := 0
		for _, s := range g {
			total += s.len
		}
		k := min(total, int(math.Round(sparsity*float64(total))))
		if k == 0 {
			continue
		}
		// A key orders a weight by masked first, then |w| (the bits of a
		// non-negative float sort as the float does), then the later index
		// first; the low 32 bits give the index back.
		keys := make([]uint64, 0, total)
		pos := 0
		for _, s := range g {
			var mask []bool
			if m.mask != nil {
				mask = m.maskOf(s)
			}
			for i, v := range m.params[s.off : s.off+s.len] {
				key := uint64(math.Float32bits(v)&^(1<<31)) + 1
				if mask != nil && mask[i] {
					key = 0
				}
				keys = append(keys, key<<32|uint64(total-1-(pos+i)))
			}
			pos += s.len
		}
		slices.Sort(keys)
		m.maskGen++
		masks := make([][]bool, len(g))
		for j, s := range g {
			masks[j] = m.maskOf(s)
		}
		for _, key := range keys[:k] {
			i := total - 1 - int(uint32(key))
			for j, s := range g {
				if i < s.len {
					masks[j][i] = true
					m.params[s.off+i] = 0
					break
				}
				i -= s.len
			}
		}
	}
	return nil
}

// between returns the stretch of the sorted offsets free that lies in
// [lo, hi).
func between(free []int32, lo, hi int) []int32 {
	a, _ := slices.BinarySearch(free, int32(lo))
	b, _ := slices.BinarySearch(free, int32(hi))
	return free[a:b]
}
