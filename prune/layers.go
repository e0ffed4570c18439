package prune

import (
	"fmt"
	"slices"

	"github.com/shrinkml/shrink/inference"
	"github.com/shrinkml/shrink/internal/calib"
	"github.com/shrinkml/shrink/model"
)

// pruneWeights zeroes single weights (unstructured or N:M) in the selected
// tensors of out.
func pruneWeights(m, out *model.Model, o *Options) ([]*target, error) {
	var targets []*target
	var total int64
	for i, t := range m.Tensors {
		layer, suffix, ok := selected(&m.Config, t.Name, o)
		if !ok {
			continue
		}
		vals, err := loadValues(t)
		if err != nil {
			return nil, err
		}
		if err := checkPattern(t.Name, t.Cols(), o.Pattern); err != nil {
			return nil, err
		}
		targets = append(targets, &target{index: i, name: t.Name, layer: layer, suffix: suffix,
			rows: t.Rows(), cols: t.Cols(), dtype: t.DType, w: vals})
		total += int64(t.Elems())
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("no tensor is selected for pruning (check --include and --exclude)")
	}
	pc := &progressCounter{total: total, fn: o.Progress}
	calibrated := len(o.Calibration) > 0

	// Magnitude needs no activations: it does every target here (and, with
	// Wanda or SparseGPT, the tensors outside the decoder layers, which no
	// calibration pass shows the inputs of).
	var mag [][]float32
	var magTargets []*target
	for _, t := range targets {
		if o.Method == Magnitude || t.suffix == "" {
			t.out = slices.Clone(t.w)
			mag = append(mag, t.out)
			magTargets = append(magTargets, t)
		}
	}
	switch {
	case !o.Pattern.IsZero():
		for _, t := range magTargets {
			magnitudeRows(t.out, t.rows, t.cols, o.Pattern)
		}
	case o.Scope == Global:
		magnitude(mag, o.Sparsity)
	default:
		for _, v := range mag {
			magnitude([][]float32{v}, o.Sparsity)
		}
	}
	for _, t := range magTargets {
		if !calibrated || t.suffix == "" {
			pc.add(int64(len(t.w)))
		}
	}

	if calibrated {
		err := eachLayer(m, o, func(li int, c *inference.Calibration, l *inference.Llama) error {
			if o.Method == Magnitude {
				// The weights do not depend on the inputs: replace them all,
				// then one pass shows every group its inputs as pruned.
				var ts []*target
				for _, t := range targets {
					if t.layer == li && t.suffix != "" {
						ts = append(ts, t)
						if err := l.SetWeights(t.name, model.NewF32(t.name, []int{t.rows, t.cols}, t.out)); err != nil {
							return err
						}
					}
				}
				if len(ts) == 0 {
					return nil
				}
				cl := calib.NewLayer(o.Threads)
				if err := c.Run(cl.Observe, false); err != nil {
					return err
				}
				for _, t := range ts {
					e := relOutputError(t.w, t.out, t.rows, t.cols, cl.Hessians[groupOf(t.suffix)].Sym(), o.Threads)
					t.relErr = &e
					pc.add(int64(len(t.w)))
				}
				return nil
			}
			for _, g := range []inference.LinearGroup{inference.GroupQKV, inference.GroupO, inference.GroupGateUp, inference.GroupDown} {
				var ts []*target
				for _, t := range targets {
					if t.layer == li && t.suffix != "" && slices.Contains(g.Tensors(), t.suffix) {
						ts = append(ts, t)
					}
				}
				if len(ts) == 0 {
					continue
				}
				// The group's inputs, with the groups before it already pruned.
				cl := calib.NewLayer(o.Threads)
				cl.Groups = map[inference.LinearGroup]bool{g: true}
				if err := c.Run(cl.Observe, false); err != nil {
					return err
				}
				hess := cl.Hessians[g]
				h := hess.Sym()
				for _, t := range ts {
					switch o.Method {
					case Wanda:
						t.out = slices.Clone(t.w)
						wanda(t.out, t.rows, t.cols, hess.ColumnNorms(), o.Sparsity, o.Pattern, o.Threads)
					case SparseGPT:
						t.out = slices.Clone(t.w)
						damp, err := sparseGPT(t.out, t.rows, t.cols, h, o.Sparsity, o.Pattern, o.Damp, o.BlockSize, o.Threads)
						if err != nil {
							return fmt.Errorf("tensor %q: %w", t.name, err)
						}
						t.damp = damp
					}
					e := relOutputError(t.w, t.out, t.rows, t.cols, h, o.Threads)
					t.relErr = &e
					if err := l.SetWeights(t.name, model.NewF32(t.name, []int{t.rows, t.cols}, t.out)); err != nil {
						return err
					}
					pc.add(int64(len(t.w)))
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for _, t := range targets {
		nt, err := newTensor(m.Tensors[t.index], m.Tensors[t.index].Shape, t.out)
		if err != nil {
			return nil, err
		}
		out.Tensors[t.index] = nt
	}
	return targets, nil
}

// eachLayer runs m's decoder layers one at a time over the calibration
// sequences: fn sees the Calibration standing before layer li (and may
// observe it and replace that layer's weights); the layer's outputs, with
// the replaced weights, then become the next layer's inputs.
func eachLayer(m *model.Model, o *Options, fn func(li int, c *inference.Calibration, l *inference.Llama) error) error {
	l, err := inference.NewLlama(m, inference.Options{Threads: o.Threads})
	if err != nil {
		return err
	}
	defer l.Close()
	c, err := l.NewCalibration(o.Calibration)
	if err != nil {
		return err
	}
	for li := range m.Config.NumLayers {
		if err := fn(li, c, l); err != nil {
			return fmt.Errorf("layer %d: %w", li, err)
		}
		if err := c.Run(nil, true); err != nil {
			return fmt.Errorf("layer %d: %w", li, err)
		}
	}
	return nil
}

// groupOf is the linear group a layer matrix belongs to.
func groupOf(suffix string) inference.LinearGroup {
	switch suffix {
	case model.AttnO:
		return inference.GroupO
	case model.FFNGate, model.FFNUp:
		return inference.GroupGateUp
	case model.FFNDown:
		return inference.GroupDown
	}
	return inference.GroupQKV
}
