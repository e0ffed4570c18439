package train

import (
	"fmt"
	"math"
	"slices"
)

// Masks mark weights of a network that are zero and must stay zero: a pruned
// network is fine-tuned without growing its pruned weights back. They are
// kept in one flat vector laid out as the parameters (biases are never
// masked). The optimizer updates only the free weights of a masked tensor, and
// a tensor without a masked weight trains exactly as it did before masks
// existed.

// layerMask returns layer l's view of the flat mask, making the mask on first
// use.
func (n *Network) layerMask(l int) []bool {
	if n.mask == nil {
		n.mask = make([]bool, len(n.params))
	}
	off := 0
	for i := range l {
		off += len(n.w[i]) + len(n.b[i])
	}
	return n.mask[off : off+len(n.w[l])]
}

// SetMask fixes the weights of layer l (the matrix [out, in], row-major, as
// model.MLPWeight stores it) where pruned is true at zero, and zeroes them;
// nil unmasks the layer.
func (n *Network) SetMask(l int, pruned []bool) error {
	if l < 0 || l >= len(n.w) {
		return fmt.Errorf("train: layer %d of a network of %d", l, len(n.w))
	}
	if pruned == nil {
		if n.mask != nil {
			clear(n.layerMask(l))
			n.maskGen++
		}
		return nil
	}
	if len(pruned) != len(n.w[l]) {
		return fmt.Errorf("train: a mask of %d values for layer %d of %d weights", len(pruned), l, len(n.w[l]))
	}
	copy(n.layerMask(l), pruned)
	n.maskGen++
	for i, p := range pruned {
		if p {
			n.w[l][i] = 0
		}
	}
	return nil
}

// Mask returns a copy of layer l's mask: true where the weight is held at
// zero; nil when the network has no masks.
func (n *Network) Mask(l int) []bool {
	if n.mask == nil {
		return nil
	}
	return slices.Clone(n.layerMask(l))
}

// MaskZeros masks every weight that is zero, so that training keeps a pruned
// network's zeros, and returns how many it masked (biases are left free).
func (n *Network) MaskZeros() int {
	count := 0
	for l, w := range n.w {
		for _, v := range w {
			if v == 0 {
				count++
			}
		}
		if count > 0 {
			n.maskGen++
			m := n.layerMask(l)
			for i, v := range w {
				m[i] = m[i] || v == 0
			}
		}
	}
	return count
}

// Sparsity returns the share of zero weights in each weight matrix and over
// all of them; biases are not counted.
func (n *Network) Sparsity() (layers []float64, all float64) {
	zeros, total := 0, 0
	for _, w := range n.w {
		z := 0
		for _, v := range w {
			if v == 0 {
				z++
			}
		}
		layers = append(layers, float64(z)/float64(len(w)))
		zeros += z
		total += len(w)
	}
	return layers, float64(zeros) / float64(total)
}

// PruneMagnitude masks and zeroes the weights of smallest |w| until
// round(sparsity·n) of each matrix's n weights are masked, or with global
// round(sparsity·N) of all N weights under one threshold. Masked weights are
// never unmasked: they are taken first, then the smallest |w|, the later
// weight first among equals, so the result depends on the values alone.
func (n *Network) PruneMagnitude(sparsity float64, global bool) error {
	if !(sparsity >= 0 && sparsity < 1) {
		return fmt.Errorf("train: sparsity %g; want a fraction in [0, 1)", sparsity)
	}
	groups := make([][]int, 0, len(n.w)) // the layers pruned under one threshold
	if global {
		all := make([]int, len(n.w))
		for l := range all {
			all[l] = l
		}
		groups = append(groups, all)
	} else {
		for l := range n.w {
			groups = append(groups, []int{l})
		}
	}
	for _, g := range groups {
		total := 0
		for _, l := range g {
			total += len(n.w[l])
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
		for _, l := range g {
			var m []bool
			if n.mask != nil {
				m = n.layerMask(l)
			}
			for i, v := range n.w[l] {
				key := uint64(math.Float32bits(v)&^(1<<31)) + 1
				if m != nil && m[i] {
					key = 0
				}
				keys = append(keys, key<<32|uint64(total-1-(pos+i)))
			}
			pos += len(n.w[l])
		}
		slices.Sort(keys)
		n.maskGen++
		masks := make([][]bool, len(g))
		for j, l := range g {
			masks[j] = n.layerMask(l)
		}
		for _, key := range keys[:k] {
			i := total - 1 - int(uint32(key))
			for j, l := range g {
				if i < len(n.w[l]) {
					masks[j][i] = true
					n.w[l][i] = 0
					break
				}
				i -= len(n.w[l])
			}
		}
	}
	return nil
}

// count is how many of m are true.
func count(m []bool) int {
	c := 0
	for _, v := range m {
		if v {
			c++
		}
	}
	return c
}
