package quantize

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/shrinkml/shrink/inference"
	"github.com/shrinkml/shrink/internal/calib"
	"github.com/shrinkml/shrink/model"
)

// The activation-aware methods.
const (
	// AWQ scales each linear group's input channels by a power of their mean
	// activation before rounding with RTN, and divides the scales out of
	// what produces the input (Lin et al., 2023).
	AWQ Method = "awq"
	// AWQGPTQ applies AWQ's scales, then rounds the scaled matrices with GPTQ.
	AWQGPTQ Method = "awq+gptq"
)

// NeedsCalibration reports whether the method runs the model on calibration
// sequences: every method but RTN.
func (m Method) NeedsCalibration() bool { return m == GPTQ || m == AWQ || m == AWQGPTQ }

// usesGPTQ reports whether GPTQ rounds the decoder layers' matrices.
func (m Method) usesGPTQ() bool { return m == GPTQ || m == AWQGPTQ }

// usesAWQ reports whether AWQ scales the decoder layers' matrices first.
func (m Method) usesAWQ() bool { return m == AWQ || m == AWQGPTQ }

// AWQGroup is what AWQ chose for one linear group of one decoder layer: the
// input channels were scaled by s_j = mean|x_j|^Alpha (normalised so that
// max·min = 1). Loss is the group's mean squared output error per token under
// those scales with RTN, RTNLoss the same with no scaling (Alpha 0).
type AWQGroup struct {
	Layer   int     `json:"layer"`
	Group   string  `json:"group"`
	Alpha   float64 `json:"alpha"`
	Loss    float64 `json:"loss"`
	RTNLoss float64 `json:"rtn_loss"`
}

// awqGrid is the number of exponents searched: 0, 1/20, ..., 19/20, as
// AutoAWQ's n_grid.
const awqGrid = 20

// awqRows is the number of rows one search job scores.
const awqRows = 16

// awqStats accumulates Σ|x_j| of every linear group's inputs over a
// calibration pass.
type awqStats struct {
	abs  map[inference.LinearGroup][]float64
	rows map[inference.LinearGroup]int
}

func newAWQStats() *awqStats {
	return &awqStats{abs: map[inference.LinearGroup][]float64{}, rows: map[inference.LinearGroup]int{}}
}

// observe adds one input chunk; Calibration.Run calls it in a fixed order, so
// the sums do not depend on the thread count.
func (a *awqStats) observe(in inference.Input) {
	s := a.abs[in.Group]
	if s == nil {
		s = make([]float64, in.Cols)
		a.abs[in.Group] = s
	}
	for r := range in.Rows {
		for j, v := range in.X[r*in.Cols : (r+1)*in.Cols] {
			s[j] += math.Abs(float64(v))
		}
	}
	a.rows[in.Group] += in.Rows
}

// mean is mean|x_j| of group g's inputs.
func (a *awqStats) mean(g inference.LinearGroup) []float64 {
	out := make([]float64, len(a.abs[g]))
	for j, v := range a.abs[g] {
		out[j] = v / float64(max(1, a.rows[g]))
	}
	return out
}

// awqScales returns s_j = max(mean_j^alpha, 1e-4) / sqrt(max s · min s), as
// AutoAWQ normalises them; alpha 0 gives every s_j = 1 exactly.
func awqScales(mean []float64, alpha float64) []float64 {
	s := make([]float64, len(mean))
	lo, hi := math.Inf(1), 0.0
	for j, m := range mean {
		s[j] = max(math.Pow(m, alpha), 1e-4)
		lo, hi = min(lo, s[j]), max(hi, s[j])
	}
	norm := math.Sqrt(lo * hi)
	for j := range s {
		s[j] /= norm
	}
	return s
}

// awqEligible lists the groups of a layer AWQ can scale, given the short names
// of the layer's matrices being quantized: every matrix that reads the
// group's input, and the matrix whose rows make it (v for o, up for down),
// must be among them. o is scaled only where every query head has its own
// value head, so that each of o's input channels is one row of v.
func awqEligible(cfg model.Config, quantized map[string]bool) []inference.LinearGroup {
	var out []inference.LinearGroup
	for _, g := range linearGroups {
		ok := true
		for _, s := range g.Tensors() {
			ok = ok && quantized[s]
		}
		switch g {
		case inference.GroupO:
			ok = ok && quantized[model.AttnV] && cfg.NumHeads == cfg.NumKVHeads
		case inference.GroupDown:
			ok = ok && quantized[model.FFNUp]
		}
		if ok {
			out = append(out, g)
		}
	}
	return out
}

// awqFold returns layer li's tensors with the scales folded in, by name, as
// float32 values: each scaled group's matrices have their columns multiplied
// by s, and what makes the group's input is divided by s (the attention and
// FFN norm weights for qkv and gate_up, v's rows and bias for o, up's rows
// for down). The model computes the same function, up to float rounding.
func awqFold(m *model.Model, li int, scales map[inference.LinearGroup][]float64) (map[string][]float32, error) {
	cols := map[string][]float64{} // short name -> column multipliers
	rows := map[string][]float64{} // short name -> row (or vector) divisors
	for g, s := range scales {
		for _, name := range g.Tensors() {
			cols[name] = s
		}
		switch g {
		case inference.GroupQKV:
			rows[model.AttnNorm] = s
		case inference.GroupGateUp:
			rows[model.FFNNorm] = s
		case inference.GroupO:
			rows[model.AttnV] = s
			if m.Config.QKVBias {
				rows[model.AttnVB] = s
			}
		case inference.GroupDown:
			rows[model.FFNUp] = s
		}
	}
	out := map[string][]float32{}
	for _, short := range []string{model.AttnNorm, model.AttnQ, model.AttnK, model.AttnV, model.AttnVB, model.AttnO,
		model.FFNNorm, model.FFNGate, model.FFNUp, model.FFNDown} {
		cs, rd := cols[short], rows[short]
		if cs == nil && rd == nil {
			continue
		}
		name := model.LayerTensor(li, short)
		t := m.Tensor(name)
		if t == nil {
			return nil, fmt.Errorf("awq: tensor %q is missing", name)
		}
		src, err := t.Float32()
		if err != nil {
			return nil, fmt.Errorf("awq: %w", err)
		}
		v := make([]float32, len(src))
		if len(t.Shape) == 1 {
			for j, x := range src {
				v[j] = float32(float64(x) / rd[j])
			}
		} else {
			c := t.Cols()
			for i, x := range src {
				y := float64(x)
				if cs != nil {
					y *= cs[i%c]
				}
				if rd != nil {
					y /= rd[i/c]
				}
				v[i] = float32(y)
			}
		}
		out[name] = v
	}
	return out, nil
}

// awqMatrix is one matrix of a group the search rounds.
type awqMatrix struct {
	t *model.Tensor
	p *tensorPlan
}

// awqSearch picks the exponent of the grid whose scales give the group's
// matrices the least output error Σ_rows e H eᵀ / 2, e = Q(w·s)/s − w being
// a row's error after RTN with the matrix's own block type, H = 2/N XᵀX the
// group's Hessian and mean its inputs' mean magnitudes. advance is told how
// many weights each finished job covered. Ties go to the smaller exponent, so
// where no scaling helps the result is RTN's.
func awqSearch(mats []awqMatrix, h *mat.SymDense, mean []float64, threads int, advance func(int64)) (best int, losses []float64, err error) {
	cols := len(mean)
	grid := make([][]float64, awqGrid)
	for k := range grid {
		grid[k] = awqScales(mean, float64(k)/awqGrid)
	}
	H := h.RawSymmetric()
	type job struct{ mat, r0, rows int }
	var jobs []job
	for i, mt := range mats {
		if mt.t.Cols() != cols {
			return 0, nil, fmt.Errorf("awq: tensor %q has %d columns, its inputs %d", mt.t.Name, mt.t.Cols(), cols)
		}
		for r := 0; r < mt.t.Rows(); r += awqRows {
			jobs = append(jobs, job{i, r, min(awqRows, mt.t.Rows()-r)})
		}
	}
	jobLoss := make([][awqGrid]float64, len(jobs))
	errs := make([]error, len(jobs))
	runJobs(threads, len(jobs), func() func(j int) {
		var w, row, deq []float32
		var e, g []float64
		var enc []byte
		return func(j int) {
			jb := jobs[j]
			mt := mats[jb.mat]
			t, n := mt.t, jb.rows*cols
			if cap(w) < n {
				w, e, g = make([]float32, n), make([]float64, n), make([]float64, n)
			}
			w, e, g = w[:n], e[:n], g[:n]
			if len(row) != cols {
				row, deq = make([]float32, cols), make([]float32, cols)
			}
			size, err := model.ByteSize(mt.p.to, []int{1, cols})
			if err != nil {
				errs[j] = err
				return
			}
			if int64(len(enc)) < size {
				enc = make([]byte, size)
			}
			inRow := len(t.Data) / t.Rows()
			if err := model.Dequantize(w, t.DType, t.Data[jb.r0*inRow:(jb.r0+jb.rows)*inRow]); err != nil {
				errs[j] = fmt.Errorf("tensor %q: %w", t.Name, err)
				return
			}
			for i, v := range w {
				if !finite(v) {
					errs[j] = fmt.Errorf("tensor %q: row %d, column %d: %v: %w", t.Name, jb.r0+i/cols, i%cols, v, ErrNotFinite)
					break
				}
			}
			if errs[j] != nil {
				return
			}
		grid:
			for k, s := range grid {
				for r := range jb.rows {
					wr := w[r*cols : (r+1)*cols]
					for c, v := range wr {
						row[c] = float32(float64(v) * s[c])
					}
					if err := mt.p.rows(enc[:size], row); err != nil {
						if k == 0 {
							errs[j] = fmt.Errorf("tensor %q: row %d: %w", t.Name, jb.r0+r, err)
							break grid
						}
						jobLoss[j][k] = math.Inf(1) // the scales overflow the block type
						continue grid
					}
					if err := model.Dequantize(deq, mt.p.to, enc[:size]); err != nil {
						errs[j] = err
						break grid
					}
					for c, v := range wr {
						e[r*cols+c] = float64(deq[c])/s[c] - float64(v)
					}
				}
				// g = e·H; the loss is Σ e∘g / 2.
				blas64.Symm(blas.Right, 1, H, blas64.General{Rows: jb.rows, Cols: cols, Stride: cols, Data: e},
					0, blas64.General{Rows: jb.rows, Cols: cols, Stride: cols, Data: g})
				var sum float64
				for i, v := range e {
					sum += v * g[i]
				}
				if !(sum <= math.MaxFloat64) { // NaN or +Inf: an overflow in the scaled weights
					sum = math.Inf(1)
				}
				jobLoss[j][k] = sum / 2
			}
			advance(int64(n))
		}
	})
	losses = make([]float64, awqGrid)
	for j, err := range errs {
		if err != nil {
			return 0, nil, err
		}
		for k := range losses {
			losses[k] += jobLoss[j][k]
		}
	}
	for k, l := range losses {
		if l < losses[best] {
			best = k
		}
	}
	return best, losses, nil
}

// awqLayer searches the scales of every eligible group of layer li and folds
// them in. It returns the members' scaled matrices (F32, by tensor index), the
// scales by group, and the report's rows; the norm weights and v's bias it
// rewrote get F32 data in their (kept) plans and are set in the engine l.
func awqLayer(m *model.Model, plans []tensorPlan, index map[string]int, li int, hessians map[inference.LinearGroup]*calib.Hessian,
	stats *awqStats, l *inference.Llama, threads int, advance func(int64)) (map[int]*model.Tensor, map[inference.LinearGroup][]float64, []AWQGroup, error) {
	quantized := map[string]bool{}
	for _, g := range linearGroups {
		for _, short := range g.Tensors() {
			if i, ok := index[model.LayerTensor(li, short)]; ok && plans[i].gptq {
				quantized[short] = true
			}
		}
	}
	scales := map[inference.LinearGroup][]float64{}
	var rep []AWQGroup
	for _, g := range awqEligible(m.Config, quantized) {
		h := hessians[g]
		if h == nil {
			return nil, nil, nil, fmt.Errorf("awq: layer %d: the calibration showed no %s inputs", li, g)
		}
		var mats []awqMatrix
		for _, short := range g.Tensors() {
			i := index[model.LayerTensor(li, short)]
			mats = append(mats, awqMatrix{m.Tensors[i], &plans[i]})
		}
		mean := stats.mean(g)
		best, losses, err := awqSearch(mats, h.Sym(), mean, threads, advance)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("awq: layer %d, %s: %w", li, g, err)
		}
		alpha := float64(best) / awqGrid
		if best > 0 {
			scales[g] = awqScales(mean, alpha)
		}
		rep = append(rep, AWQGroup{Layer: li, Group: g.String(), Alpha: alpha, Loss: losses[best], RTNLoss: losses[0]})
	}
	var unsearched int64 // the progress of matrices no search covered
	eligible := awqEligible(m.Config, quantized)
	for short := range quantized {
		if !slices.ContainsFunc(eligible, func(g inference.LinearGroup) bool { return slices.Contains(g.Tensors(), short) }) {
			unsearched += int64(m.Tensor(model.LayerTensor(li, short)).Elems())
		}
	}
	advance(unsearched)
	folded, err := awqFold(m, li, scales)
	if err != nil {
		return nil, nil, nil, err
	}
	src := map[int]*model.Tensor{}
	for name, v := range folded {
		i := index[name]
		t := m.Tensors[i]
		if len(t.Shape) == 2 {
			src[i] = model.NewF32(name, t.Shape, v)
			continue
		}
		p := &plans[i]
		p.to, p.data = model.F32, make([]byte, 4*len(v))
		encodeFloat(p.data, model.F32, v)
		p.why += "; AWQ scales divided out"
		if err := l.SetVector(name, v); err != nil {
			return nil, nil, nil, fmt.Errorf("awq: %w", err)
		}
	}
	return src, scales, rep, nil
}

// rtnMatrices rounds the given matrices (by tensor index, each from src when
// there, else from m) with their plans' RTN, as run does.
func rtnMatrices(m *model.Model, plans []tensorPlan, idx []int, src map[int]*model.Tensor, threads int) error {
	ts := make([]*model.Tensor, len(idx))
	ps := make([]tensorPlan, len(idx))
	for k, i := range idx {
		ts[k] = m.Tensors[i]
		if t := src[i]; t != nil {
			ts[k] = t
		}
		ps[k] = plans[i]
		ps[k].gptq = false
	}
	if err := run(ts, ps, threads, nil); err != nil {
		return err
	}
	for k, i := range idx {
		plans[i].data, plans[i].sumErr, plans[i].sumSq = ps[k].data, ps[k].sumErr, ps[k].sumSq
	}
	return nil
}

// scaleHessian turns H of inputs x into that of the scaled inputs x/s:
// H_ij / (s_i s_j).
func scaleHessian(h *mat.SymDense, s []float64) {
	n := h.SymmetricDim()
	for i := range n {
		for j := i; j < n; j++ {
			h.SetSym(i, j, h.At(i, j)/(s[i]*s[j]))
		}
	}
}
