package quantize

import (
	"math"

	"github.com/shrinkml/shrink/model"
)

// GPTQ's block scales. RTN's absmax scale maps a block's largest weight to
// the extreme code, which spends levels on one outlier and is blind to which
// weights matter. GPTQ instead tries a grid of scales around it (the largest
// weight mapped to the extreme code times 1 ± k·scaleStep, as llama.cpp's
// make_qx_quants does), takes for each the weighted least-squares scale (and
// Q4_1 minimum) of the codes it gives, rounds that to fp16 as stored, and
// keeps the candidate, RTN's own scale among them, that loses least: in
// column order the one under which GPTQ's own rounding of the block loses
// least (gptqScale), for act order's static scales the one of least
// Hessian-weighted error on the original weights (searchScale). Every
// candidate rounds each weight to its nearest level of the stored scale; no
// weight is pinned, since nothing needs the block to be RTN's.

// scaleSteps is the number of grid scales on each side of the absmax one,
// and scaleStep their relative spacing: ±11%, the grid of make_qx_quants.
// The least-squares fit refines each, so the grid need not be fine.
const (
	scaleSteps = 9
	scaleStep  = 0.0125
)

// gptqCandidates is the number of grid candidates, those of least error
// bound, that gptqScale simulates besides RTN's. A simulation costs 32²/2
// multiply-adds; on stories260K, simulating every candidate gave no better
// perplexity than the best three.
const gptqCandidates = 3

// scaleSearch holds one goroutine's buffers for choosing block scales.
type scaleSearch struct {
	cands []blockScale // RTN's scale first, then the grid's by error bound
	grid  []gridScale
	w     [1 + gptqCandidates][32]float64 // blockLosses' weights
}

// gridScale is a grid candidate: its fp16 scale and minimum as float64, and
// Σ h·(x - d·l - m)² - Σ h·x² for its grid codes l, which bounds its error
// with nearest codes from above.
type gridScale struct{ d, m, bound float64 }

// candidates fills s.cands with the scales to try for the 32 weights x,
// whose errors count with weights h (all 1 when no h is positive): RTN's
// absmax scale first, then up to n of the grid's least-squares scales by
// increasing error bound, without repeats. It fails where RTN's scale does
// not fit in fp16.
func (s *scaleSearch) candidates(sc Scheme, x []float32, h []float64, n int) error {
	rtn, err := chooseScale(sc, x)
	if err != nil {
		return err
	}
	x, h = x[:32:32], orOnes(h[:32:32])
	s.cands = append(s.cands[:0], nearestScale(sc, rtn.d, rtn.m))
	if rtn.d == 0 {
		// The weights are all equal (all zero for Q8_0 and Q4_0), or too
		// close together for any fp16 scale to tell apart.
		return nil
	}
	if sc == Q4_1 {
		s.affineGrid(x, h)
	} else {
		s.symmetricGrid(sc, x, h)
	}
	// Insertion sort: a score or so of finite bounds, stable.
	g := s.grid
	for i := 1; i < len(g); i++ {
		for j := i; j > 0 && g[j].bound < g[j-1].bound; j-- {
			g[j], g[j-1] = g[j-1], g[j]
		}
	}
next:
	for _, g := range s.grid {
		c := nearestScale(sc, float32(g.d), float32(g.m))
		for _, o := range s.cands {
			if o.dBits == c.dBits && o.mBits == c.mBits {
				continue next
			}
		}
		if s.cands = append(s.cands, c); len(s.cands) > n {
			break
		}
	}
	return nil
}

var ones = [32]float64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}

// orOnes is h, or all ones where no weight of h is positive (no input
// reaches the block), so that every weight counts the same.
func orOnes(h []float64) []float64 {
	for _, v := range h {
		if v > 0 {
			return h
		}
	}
	return ones[:len(h)]
}

// symmetricGrid fills s.grid for Q8_0 and Q4_0, whose levels are d·k for
// the codes k in [lo, hi].
func (s *scaleSearch) symmetricGrid(sc Scheme, x []float32, h []float64) {
	lo, hi, top := -127.0, 127.0, 127.0
	if sc == Q4_0 {
		// RTN maps the signed extreme to -8, the code with no positive twin.
		lo, hi, top = -8, 7, -8
	}
	var amax, m float32
	for _, v := range x {
		if a := abs32(v); amax < a {
			amax, m = a, v
		}
	}
	s.grid = s.grid[:0]
	for k := -scaleSteps; k <= scaleSteps; k++ {
		iscale := top * (1 + float64(k)*scaleStep) / float64(m)
		// Two halves summed apart: the sums' latency, not the work, bounds
		// this loop.
		var sxl, sll, sxl2, sll2 float64
		for j := range 16 {
			v, v2 := float64(x[j]), float64(x[j+16])
			l, l2 := gridCode(v*iscale, lo, hi), gridCode(v2*iscale, lo, hi)
			hl, hl2 := h[j]*l, h[j+16]*l2
			sxl += hl * v
			sll += hl * l
			sxl2 += hl2 * v2
			sll2 += hl2 * l2
		}
		sxl, sll = sxl+sxl2, sll+sll2
		if !(sll > 0) {
			continue
		}
		d, ok := f16(sxl / sll)
		if !ok {
			continue
		}
		s.grid = append(s.grid, gridScale{d: d, bound: d*d*sll - 2*d*sxl})
	}
}

// gridCode is t rounded to the nearest integer (halves up) within [lo, hi],
// for codes no larger than 128 in magnitude; cheaper than math.Floor.
func gridCode(t, lo, hi float64) float64 {
	if t <= lo {
		return lo
	}
	if t >= hi {
		return hi
	}
	return float64(int(t+256.5) - 256)
}

// affineGrid fills s.grid for Q4_1, whose levels are m + d·k for k in
// [0, 15]: each grid scale's codes get the weighted least-squares d and m.
func (s *scaleSearch) affineGrid(x []float32, h []float64) {
	lo, hi := x[0], x[0]
	for _, v := range x {
		lo, hi = min(lo, v), max(hi, v)
	}
	var sw, sx float64
	for j, v := range x {
		sw += h[j]
		sx += h[j] * float64(v)
	}
	s.grid = s.grid[:0]
	for k := -scaleSteps; k <= scaleSteps; k++ {
		iscale := 15 * (1 + float64(k)*scaleStep) / (float64(hi) - float64(lo))
		var sl, sll, sxl, sl2, sll2, sxl2 float64
		for j := range 16 {
			v, v2 := float64(x[j]), float64(x[j+16])
			l := gridCode((v-float64(lo))*iscale, 0, 15)
			l2 := gridCode((v2-float64(lo))*iscale, 0, 15)
			hl, hl2 := h[j]*l, h[j+16]*l2
			sl += hl
			sll += hl * l
			sxl += hl * v
			sl2 += hl2
			sll2 += hl2 * l2
			sxl2 += hl2 * v2
		}
		sl, sll, sxl = sl+sl2, sll+sll2, sxl+sxl2
		det := sw*sll - sl*sl
		if !(det > 0) {
			continue
		}
		d, okd := f16((sw*sxl - sx*sl) / det)
		m, okm := f16((sll*sx - sl*sxl) / det)
		if !okd || !okm {
			continue
		}
		s.grid = append(s.grid, gridScale{d, m, d*d*sll + m*m*sw + 2*d*m*sl - 2*d*sxl - 2*m*sx})
	}
}

// f16 is v rounded to fp16 as a block stores it; ok is false where it does
// not fit (or is NaN).
func f16(v float64) (float64, bool) {
	h := model.F32ToF16(float32(v))
	if h&0x7fff >= 0x7c00 {
		return 0, false
	}
	return float64(model.F16ToF32(h)), true
}

// nearestScale is the blockScale that stores the scale d (and Q4_1 minimum
// m) as fp16 and rounds every weight to its nearest level of the stored
// values. d and m must fit in fp16.
func nearestScale(sc Scheme, d, m float32) blockScale {
	var bs blockScale
	bs.pins[0].col, bs.pins[1].col = -1, -1
	bs.dBits = model.F32ToF16(d)
	bs.d = model.F16ToF32(bs.dBits)
	if bs.d != 0 {
		bs.id = 1 / bs.d
	}
	if sc == Q4_1 {
		bs.mBits = model.F32ToF16(m)
		bs.m = model.F16ToF32(bs.mBits)
		bs.lo = bs.m
	}
	return bs
}

// searchScale returns the candidate scale of least Σ h[j]·(x[j] - q[j])² for
// the block's 32 weights x, q[j] being the level quantizeWeight gives x[j]
// and h[j] the Hessian diagonal of its input (the input's second moment).
// RTN's scale is the first candidate and wins ties, so the result is never
// worse than it. GPTQ uses it for act order's static scales.
func (s *scaleSearch) searchScale(sc Scheme, x []float32, h []float64) (blockScale, error) {
	if err := s.candidates(sc, x, h, 2*scaleSteps+1); err != nil {
		return blockScale{}, err
	}
	h = orOnes(h[:32])
	best, bestErr := 0, math.Inf(1)
	for i := range s.cands {
		if e := blockError(sc, &s.cands[i], x, h); e < bestErr {
			best, bestErr = i, e
		}
	}
	return s.cands[best], nil
}

// blockError is Σ h[j]·(x[j] - q[j])² for the levels q[j] that quantizeWeight
// gives x[j] under bs.
func blockError(sc Scheme, bs *blockScale, x []float32, h []float64) float64 {
	var e float64
	for j, v := range x[:32] {
		_, q := quantizeWeight(sc, bs, j, v)
		d := float64(v) - float64(q)
		e += h[j] * (d * d)
	}
	return e
}

// gptqScale returns the candidate scale under which GPTQ's rounding of a
// block loses least, for GPTQ in column order: the block's 32 weights x sit
// at consecutive processing positions, and u is U from the block's first
// diagonal entry on (row stride ldu). The candidates are made with the
// weights 1/U_jj², GPTQ's cost of a unit error in column j, and scored by
// blockLosses. RTN's scale is the first candidate and wins ties.
func (s *scaleSearch) gptqScale(sc Scheme, x []float64, u []float64, ldu int) (blockScale, error) {
	var xf [32]float32
	var h [32]float64
	for j := range 32 {
		xf[j] = float32(x[j])
		ujj := u[j*ldu+j]
		h[j] = 1 / (ujj * ujj)
	}
	if err := s.candidates(sc, xf[:], h[:], gptqCandidates); err != nil {
		return blockScale{}, err
	}
	loss := s.blockLosses(sc, x, u, ldu)
	best := 0
	for i := range s.cands {
		if loss[i] < loss[best] {
			best = i
		}
	}
	return s.cands[best], nil
}

// blockLosses returns, for each of s.cands (at most 1+gptqCandidates), GPTQ's
// loss Σ ((w_j - q_j)/U_jj)² over one block: GPTQ's rounding of the block's
// weights x under the candidate simulated as quantizeRows does it, to the
// bit, each weight's error spread over the block's later weights through U
// (the block's first diagonal entry on, row stride ldu). That is exactly the
// block's share of the layer's output error; the part of its error passed
// on to later blocks is theirs. Each simulation is one long chain (round,
// divide, next weight), so the candidates run side by side.
func (s *scaleSearch) blockLosses(sc Scheme, x, u []float64, ldu int) [1 + gptqCandidates]float64 {
	const n = 1 + gptqCandidates
	var bs [n]*blockScale
	w := &s.w
	for c := range n {
		bs[c] = &s.cands[min(c, len(s.cands)-1)]
		copy(w[c][:], x[:32])
	}
	var loss [n]float64
	for p := range 32 {
		urow := (*[32]float64)(u[p*ldu : p*ldu+32])
		var e [n]float64
		for c := range n {
			q := nearestLevel(sc, bs[c], float32(w[c][p]))
			e[c] = (w[c][p] - float64(q)) / urow[p]
			loss[c] += e[c] * e[c]
		}
		for k := p + 1; k < 32; k++ {
			uk := urow[k]
			for c := range n {
				w[c][k] -= e[c] * uk
			}
		}
	}
	return loss
}

// nearestLevel is the value quantizeWeight gives x under bs, for a bs that
// pins no weight.
func nearestLevel(sc Scheme, bs *blockScale, x float32) float32 {
	switch sc {
	case Q8_0:
		return float32(roundClamp(float32(x*bs.id), 127)) * bs.d
	case Q4_0:
		return float32(truncClamp(float32(x*bs.id)+8.5)-8) * bs.d
	default: // Q4_1
		return float32(float32(truncClamp(float32((x-bs.lo)*bs.id)+0.5))*bs.d) + bs.m
	}
}
