package prune

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/shrinkml/shrink/inference"
	"github.com/shrinkml/shrink/internal/calib"
	"github.com/shrinkml/shrink/model"
)

// A unit is what structured pruning keeps or removes whole: an FFN neuron (a
// row of gate and up, a column of down) or a KV group (the query heads that
// share one key/value head, that head, and their output-projection columns).
// Removing whole KV groups keeps grouped-query attention's shape (heads per KV
// head) unchanged, shrinks the KV cache, and needs no change to the engine.

// unitSlices says which rows of each row-pruned matrix and which columns of
// the column-pruned one belong to unit u.
type unitLayout struct {
	units   int
	rowMats []string // suffixes pruned by rows
	rowSpan func(suffix string, u int) (int, int)
	colMat  string // the suffix pruned by columns
	colSpan func(u int) (int, int)
	biases  map[string]string // row-pruned matrix suffix -> bias suffix
	group   inference.LinearGroup
}

func layout(cfg *model.Config, s Structure) unitLayout {
	if s == FFN {
		return unitLayout{
			units:   cfg.IntermediateSize,
			rowMats: []string{model.FFNGate, model.FFNUp},
			rowSpan: func(_ string, u int) (int, int) { return u, u + 1 },
			colMat:  model.FFNDown,
			colSpan: func(u int) (int, int) { return u, u + 1 },
			group:   inference.GroupDown,
		}
	}
	hd, per := cfg.HeadDim, cfg.NumHeads/cfg.NumKVHeads
	ul := unitLayout{
		units:   cfg.NumKVHeads,
		rowMats: []string{model.AttnQ, model.AttnK, model.AttnV},
		rowSpan: func(suffix string, u int) (int, int) {
			if suffix == model.AttnQ {
				return u * per * hd, (u + 1) * per * hd
			}
			return u * hd, (u + 1) * hd
		},
		colMat:  model.AttnO,
		colSpan: func(u int) (int, int) { return u * per * hd, (u + 1) * per * hd },
		group:   inference.GroupO,
	}
	if cfg.QKVBias {
		ul.biases = map[string]string{model.AttnQ: model.AttnQB, model.AttnK: model.AttnKB, model.AttnV: model.AttnVB}
	}
	return ul
}

// pruneStructured removes the same number of units from every layer by
// importance and returns a physically smaller model in out.
//
// Importance without calibration (magnitude): for a neuron
// ||gate_k||·||up_k||·||down_:k||, a bound on its output for a unit input;
// for a KV group ||O_:G||_F·||V_G||_F (attention weights sum to one, so the
// group's output is bounded by these). With calibration (wanda, sparsegpt):
// the unit's contribution to the layer output on the calibration data,
// ||W_:G X_G||_F, from the Hessian of the column-pruned matrix's inputs.
// SparseGPT then refits the kept columns by least squares,
// Ŵ_:K = (W H_:K + λW_:K)(H_KK + λI)⁻¹, so they absorb what the removed ones did.
func pruneStructured(m, out *model.Model, o *Options) ([]*target, error) {
	cfg := m.Config
	ul := layout(&cfg, o.Structured)
	remove := min(pruneCount(ul.units, o.Sparsity), ul.units-1)
	type layerW struct {
		mats   map[string]*target
		keep   []bool
		colOut []float32 // the column-pruned matrix after a SparseGPT refit
	}
	layers := make([]layerW, cfg.NumLayers)
	var targets []*target
	var total int64
	for li := range layers {
		layers[li].mats = map[string]*target{}
		for _, s := range append(slices.Clone(ul.rowMats), ul.colMat) {
			name := model.LayerTensor(li, s)
			idx := slices.IndexFunc(m.Tensors, func(t *model.Tensor) bool { return t.Name == name })
			if idx < 0 {
				return nil, fmt.Errorf("tensor %q is missing", name)
			}
			t := m.Tensors[idx]
			vals, err := loadValues(t)
			if err != nil {
				return nil, err
			}
			tg := &target{index: idx, name: name, layer: li, suffix: s, rows: t.Rows(), cols: t.Cols(), dtype: t.DType, w: vals}
			layers[li].mats[s] = tg
			targets = append(targets, tg)
			total += int64(t.Elems())
		}
	}
	pc := &progressCounter{total: total, fn: o.Progress}

	// choose picks layer li's units, given its column-pruned matrix's input
	// Hessian (nil without calibration).
	choose := func(li int, hess *calib.Hessian) error {
		L := &layers[li]
		col := L.mats[ul.colMat]
		score := make([]float64, ul.units)
		var h *mat.SymDense
		if hess != nil {
			h = hess.Sym()
		}
		for u := range score {
			c0, c1 := ul.colSpan(u)
			if h != nil && o.Method != Magnitude {
				score[u] = math.Sqrt(max(0, blockEnergy(col.w, col.rows, col.cols, c0, c1, h)))
				continue
			}
			s := frobCols(col.w, col.rows, col.cols, c0, c1)
			if o.Structured == FFN {
				for _, rm := range ul.rowMats {
					r0, r1 := ul.rowSpan(rm, u)
					t := L.mats[rm]
					s *= frobRows(t.w, t.cols, r0, r1)
				}
			} else {
				t := L.mats[model.AttnV]
				r0, r1 := ul.rowSpan(model.AttnV, u)
				s *= frobRows(t.w, t.cols, r0, r1)
			}
			score[u] = s
		}
		drop := make([]bool, ul.units)
		lowestIndices(score, 0, ul.units, remove, drop, make([]int, ul.units))
		L.keep = make([]bool, ul.units)
		for u := range drop {
			L.keep[u] = !drop[u]
		}
		// The zeroed (and, for SparseGPT, refitted) matrices, of the original shapes.
		for _, rm := range ul.rowMats {
			t := L.mats[rm]
			t.out = slices.Clone(t.w)
			for u, k := range L.keep {
				if !k {
					r0, r1 := ul.rowSpan(rm, u)
					clear(t.out[r0*t.cols : r1*t.cols])
				}
			}
		}
		col.out = slices.Clone(col.w)
		for u, k := range L.keep {
			if !k {
				c0, c1 := ul.colSpan(u)
				for r := range col.rows {
					clear(col.out[r*col.cols+c0 : r*col.cols+c1])
				}
			}
		}
		if h != nil && o.Method == SparseGPT {
			keepCols := make([]bool, col.cols)
			for u, k := range L.keep {
				c0, c1 := ul.colSpan(u)
				for c := c0; c < c1; c++ {
					keepCols[c] = k
				}
			}
			damp := o.Damp
			if damp == 0 {
				damp = calib.DefaultDamp
			}
			d, err := refit(col.w, col.out, col.rows, col.cols, h, keepCols, damp)
			if err != nil {
				return fmt.Errorf("tensor %q: %w", col.name, err)
			}
			col.damp = d
		}
		return nil
	}

	if len(o.Calibration) > 0 {
		err := eachLayer(m, o, func(li int, c *inference.Calibration, l *inference.Llama) error {
			cl := calib.NewLayer(o.Threads)
			if err := c.Run(cl.Observe, false); err != nil {
				return err
			}
			if err := choose(li, cl.Hessians[ul.group]); err != nil {
				return err
			}
			for _, t := range layers[li].mats {
				e := relOutputError(t.w, t.out, t.rows, t.cols, cl.Hessians[groupOf(t.suffix)].Sym(), o.Threads)
				t.relErr = &e
			}
			// Zero columns of the column-pruned matrix compute what the
			// smaller model will; the next layer sees that.
			col := layers[li].mats[ul.colMat]
			for _, rm := range ul.rowMats {
				pc.add(int64(len(layers[li].mats[rm].w)))
			}
			pc.add(int64(len(col.w)))
			return l.SetWeights(col.name, model.NewF32(col.name, []int{col.rows, col.cols}, col.out))
		})
		if err != nil {
			return nil, err
		}
	} else {
		for li := range layers {
			if err := choose(li, nil); err != nil {
				return nil, err
			}
			for _, t := range layers[li].mats {
				pc.add(int64(len(t.w)))
			}
		}
	}

	// Cut the removed units out.
	kept := ul.units - remove
	for li := range layers {
		L := &layers[li]
		for _, rm := range ul.rowMats {
			t := L.mats[rm]
			var vals []float32
			for u, k := range L.keep {
				if k {
					r0, r1 := ul.rowSpan(rm, u)
					vals = append(vals, t.out[r0*t.cols:r1*t.cols]...)
				}
			}
			src := m.Tensors[t.index]
			nt, err := newTensor(src, []int{len(vals) / t.cols, t.cols}, vals)
			if err != nil {
				return nil, err
			}
			out.Tensors[t.index] = nt
			if b, ok := ul.biases[rm]; ok {
				if err := cutBias(m, out, model.LayerTensor(li, b), L.keep, func(u int) (int, int) { return ul.rowSpan(rm, u) }); err != nil {
					return nil, err
				}
			}
		}
		col := L.mats[ul.colMat]
		var vals []float32
		for r := range col.rows {
			for u, k := range L.keep {
				if k {
					c0, c1 := ul.colSpan(u)
					vals = append(vals, col.out[r*col.cols+c0:r*col.cols+c1]...)
				}
			}
		}
		nt, err := newTensor(m.Tensors[col.index], []int{col.rows, len(vals) / col.rows}, vals)
		if err != nil {
			return nil, err
		}
		out.Tensors[col.index] = nt
	}
	if o.Structured == FFN {
		out.Config.IntermediateSize = kept
	} else {
		per := cfg.NumHeads / cfg.NumKVHeads
		out.Config.NumKVHeads = kept
		out.Config.NumHeads = kept * per
	}
	return targets, nil
}

// cutBias keeps the spans of the kept units of a 1-D bias.
func cutBias(m, out *model.Model, name string, keep []bool, span func(int) (int, int)) error {
	idx := slices.IndexFunc(m.Tensors, func(t *model.Tensor) bool { return t.Name == name })
	if idx < 0 {
		return fmt.Errorf("tensor %q is missing", name)
	}
	v, err := loadValues(m.Tensors[idx])
	if err != nil {
		return err
	}
	var vals []float32
	for u, k := range keep {
		if k {
			a, b := span(u)
			vals = append(vals, v[a:b]...)
		}
	}
	nt, err := newTensor(m.Tensors[idx], []int{len(vals)}, vals)
	if err != nil {
		return err
	}
	out.Tensors[idx] = nt
	return nil
}

// frobRows is the Frobenius norm of rows [r0, r1) of a matrix of cols columns.
func frobRows(w []float32, cols, r0, r1 int) float64 {
	var s float64
	for _, v := range w[r0*cols : r1*cols] {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s)
}

// frobCols is the Frobenius norm of columns [c0, c1).
func frobCols(w []float32, rows, cols, c0, c1 int) float64 {
	var s float64
	for r := range rows {
		for _, v := range w[r*cols+c0 : r*cols+c1] {
			s += float64(v) * float64(v)
		}
	}
	return math.Sqrt(s)
}

// blockEnergy is Σ_rows w_G H_GG w_Gᵀ for the columns G = [c0, c1): the
// squared contribution of those inputs to the output, up to H's scale.
func blockEnergy(w []float32, rows, cols, c0, c1 int, h *mat.SymDense) float64 {
	var s float64
	for r := range rows {
		row := w[r*cols : (r+1)*cols]
		for i := c0; i < c1; i++ {
			if row[i] == 0 {
				continue
			}
			var t float64
			for j := c0; j < c1; j++ {
				t += h.At(i, j) * float64(row[j])
			}
			s += float64(row[i]) * t
		}
	}
	return s
}

// refit sets the kept columns K of out to the least-squares fit of the
// original output, W H_:K H_KK⁻¹ (dampened), and leaves the others zero. λ starts
// at damp × mean(diag H_KK) and grows tenfold until the system factors.
func refit(w, out []float32, rows, cols int, h *mat.SymDense, keep []bool, damp float64) (float64, error) {
	var K []int
	for c, k := range keep {
		if k {
			K = append(K, c)
		}
	}
	n := len(K)
	var mean float64
	for _, c := range K {
		mean += h.At(c, c)
	}
	mean /= float64(n)
	if mean == 0 {
		return 0, nil // the kept inputs are always zero: nothing to fit
	}
	// B = (W H_:K)ᵀ, n × rows.
	W := mat.NewDense(rows, cols, nil)
	for r := range rows {
		for c := range cols {
			W.Set(r, c, float64(w[r*cols+c]))
		}
	}
	HK := mat.NewDense(cols, n, nil)
	for i := range cols {
		for j, c := range K {
			HK.Set(i, j, h.At(i, c))
		}
	}
	var WH mat.Dense
	WH.Mul(W, HK)
	for frac := damp; frac <= calib.MaxDamp*(1+1e-9); frac *= 10 {
		a := mat.NewSymDense(n, nil)
		for i, ci := range K {
			for j := i; j < n; j++ {
				a.SetSym(i, j, h.At(ci, K[j]))
			}
			a.SetSym(i, i, a.At(i, i)+frac*mean)
		}
		var chol mat.Cholesky
		if !chol.Factorize(a) {
			continue
		}
		// The dampening pulls toward the original weights rather than
		// toward zero: (W H_:K + λ W_:K)(H_KK + λI)⁻¹, so kept columns that
		// need no change (the removed ones never mattered) keep their values.
		rhs := mat.NewDense(n, rows, nil)
		for j, c := range K {
			for r := range rows {
				rhs.Set(j, r, WH.At(r, j)+frac*mean*float64(w[r*cols+c]))
			}
		}
		var Z mat.Dense
		if err := chol.SolveTo(&Z, rhs); err != nil {
			continue
		}
		clear(out)
		for r := range rows {
			for j, c := range K {
				out[r*cols+c] = float32(Z.At(j, r))
			}
		}
		return frac, nil
	}
	return 0, fmt.Errorf("the kept columns' Hessian does not factor even with dampening %g", calib.MaxDamp)
}
