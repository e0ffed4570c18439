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
//
// The int schemes' int4 groups (32, 64 or 128 weights) and int8 rows are
// searched the same way. A symmetric scale may be negative, so that the
// signed extreme can take the code -8 (-128) that has no positive twin, as
// in Q4_0; an asymmetric group's candidates clip or widen RTN's range and
// refit the scale to the integer zero point that gives (zeroPointGrid). An
// int8 row's scale is fixed before any of its columns is rounded, so it is
// always searched as act order's are.

// scaleSteps is the number of grid scales on each side of the absmax one,
// and scaleStep their relative spacing: ±11%, the grid of make_qx_quants.
// The least-squares fit refines each, so the grid need not be fine.
const (
	scaleSteps = 9
	scaleStep  = 0.0125
)

// gptqCandidates is the number of grid candidates, those of least error
// bound, that gptqScale simulates besides RTN's. A simulation costs n²/2
// multiply-adds for a block of n weights; on stories260K, simulating every
// candidate gave no better perplexity than the best three, for Q4_0 and for
// int4 groups of 32.
const gptqCandidates = 3

// scaleSearch holds one goroutine's buffers for choosing block scales.
type scaleSearch struct {
	cands []blockScale // RTN's scale first, then the grid's by error bound
	grid  []gridScale
	w     []float64 // blockLosses' weights, one block per candidate
	xf    []float32 // gptqScale's weights as float32
	h     []float64 // gptqScale's weights of errors
	one   []float64 // all ones, for blocks no input reaches
}

// gridScale is a grid candidate: its fp16 scale and minimum (an int
// group's zero point) as float64, and a score that orders the block's
// candidates by their error with nearest codes: Σ h·(x - d·l - m)² - Σ h·x²
// for the grid codes l, which bounds that error from above, or for the
// asymmetric int4 groups the error itself.
type gridScale struct{ d, m, bound float64 }

// allCandidates asks candidates for every grid scale.
const allCandidates = math.MaxInt

// candidates fills s.cands with the scales to try for the weights x of a
// block (32 weights), int4 group or int8 row of the type d, whose errors
// count with weights h (all 1 when no h is positive): RTN's scale first,
// then up to n of the grid's least-squares scales by increasing error
// bound, without repeats. It fails where RTN's scale does not fit in fp16.
func (s *scaleSearch) candidates(d model.DType, x []float32, h []float64, n int) error {
	var rtn blockScale
	var err error
	if isInt(d) {
		rtn, err = chooseIntScale(d, x)
	} else {
		x, h = x[:32:32], h[:32:32]
		rtn, err = chooseScale(schemeOf(d), x)
		rtn = nearestScale(schemeOf(d), rtn.d, rtn.m)
	}
	if err != nil {
		return err
	}
	h = s.orOnes(h)
	s.cands = append(s.cands[:0], rtn)
	if rtn.d == 0 {
		// The weights are all equal (all zero for the symmetric types), or
		// too close together for any fp16 scale to tell apart.
		return nil
	}
	s.grid = s.grid[:0]
	_, asym, _ := Int4Layout(d)
	switch d {
	case model.Q8_0:
		s.symmetricGrid(x, h, -127, 127, 127)
	case model.Q4_0:
		// RTN maps the signed extreme to -8, the code with no positive twin.
		s.symmetricGrid(x, h, -8, 7, -8)
	case model.Q4_1:
		s.affineGrid(x, h)
	case model.Int8Ch:
		// The stored scale may be negative, which maps the signed extreme
		// to -128 as Q4_0 maps it to -8; both signs are tried.
		s.symmetricGrid(x, h, -128, 127, -128)
		s.symmetricGrid(x, h, -128, 127, 127)
	default:
		if asym {
			s.zeroPointGrid(d, x, h)
		} else {
			s.symmetricGrid(x, h, -8, 7, -8)
			s.symmetricGrid(x, h, -8, 7, 7)
		}
	}
	// Insertion sort: a few dozen finite bounds at most, stable.
	g := s.grid
	for i := 1; i < len(g); i++ {
		for j := i; j > 0 && g[j].bound < g[j-1].bound; j-- {
			g[j], g[j-1] = g[j-1], g[j]
		}
	}
next:
	for _, g := range s.grid {
		var c blockScale
		if isInt(d) {
			c = intScale(d, float32(g.d), int(g.m))
		} else {
			c = nearestScale(schemeOf(d), float32(g.d), float32(g.m))
		}
		for _, o := range s.cands {
			if o.dBits == c.dBits && o.mBits == c.mBits && o.zero == c.zero {
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
func (s *scaleSearch) orOnes(h []float64) []float64 {
	for _, v := range h {
		if v > 0 {
			return h
		}
	}
	if len(h) <= len(ones) {
		return ones[:len(h)]
	}
	for len(s.one) < len(h) {
		s.one = append(s.one, 1)
	}
	return s.one[:len(h)]
}

// symmetricGrid appends to s.grid the candidates for levels d·k with the
// codes k in [lo, hi] (Q8_0, Q4_0, the symmetric int types): the signed
// extreme weight mapped to the code top times 1 ± k·scaleStep.
func (s *scaleSearch) symmetricGrid(x []float32, h []float64, lo, hi, top float64) {
	var amax, m float32
	for _, v := range x {
		if a := abs32(v); amax < a {
			amax, m = a, v
		}
	}
	half := len(x) / 2
	for k := -scaleSteps; k <= scaleSteps; k++ {
		iscale := top * (1 + float64(k)*scaleStep) / float64(m)
		// Two halves summed apart: the sums' latency, not the work, bounds
		// this loop.
		var sxl, sll, sxl2, sll2 float64
		for j := range half {
			v, v2 := float64(x[j]), float64(x[j+half])
			l, l2 := gridCode(v*iscale, lo, hi), gridCode(v2*iscale, lo, hi)
			hl, hl2 := h[j]*l, h[j+half]*l2
			sxl += hl * v
			sll += hl * l
			sxl2 += hl2 * v2
			sll2 += hl2 * l2
		}
		if len(x)%2 == 1 { // an int8 row of odd length
			v := float64(x[len(x)-1])
			l := gridCode(v*iscale, lo, hi)
			hl := h[len(x)-1] * l
			sxl2 += hl * v
			sll2 += hl * l
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

// affineGrid appends to s.grid the candidates for levels m + d·k with k in
// [0, 15] (Q4_1): each grid scale's codes get the weighted least-squares d
// and m.
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
	half := len(x) / 2
	for k := -scaleSteps; k <= scaleSteps; k++ {
		iscale := 15 * (1 + float64(k)*scaleStep) / (float64(hi) - float64(lo))
		var sl, sll, sxl, sl2, sll2, sxl2 float64
		for j := range half {
			v, v2 := float64(x[j]), float64(x[j+half])
			l := gridCode((v-float64(lo))*iscale, 0, 15)
			l2 := gridCode((v2-float64(lo))*iscale, 0, 15)
			hl, hl2 := h[j]*l, h[j+half]*l2
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

// zeroPointGrid fills s.grid for an asymmetric int4 group, whose levels are
// (k - z)·d for codes k in [-8, 7] and an integer zero point z in [-8, 7],
// so zero is always a level. RTN spreads the 16 levels over the range of
// the weights and zero; the grid scales that range about zero by
// 1 + k·scaleStep, clipping down to 77.5% (where the gains of clipping
// outliers lie) and widening up to 111%, puts the zero point nearest the
// range's low end, and refits d by weighted least squares to the codes
// that gives, the zero point kept. Both are candidates, scored by their
// error with nearest codes.
func (s *scaleSearch) zeroPointGrid(t model.DType, x []float32, h []float64) {
	var lo, hi float64
	for _, v := range x {
		lo, hi = min(lo, float64(v)), max(hi, float64(v))
	}
	for k := -2 * scaleSteps; k <= scaleSteps; k++ {
		f := 1 + float64(k)*scaleStep
		d, ok := f16((hi - lo) / 15 * f)
		if !ok || d == 0 {
			continue
		}
		z := float64(zeroPoint(d, lo*f))
		e, sxl, sll := zeroPointFit(x, h, d, z)
		s.grid = append(s.grid, gridScale{d, z, e})
		if d, ok := f16(sxl / sll); ok && sll > 0 && d != 0 {
			e, _, _ := zeroPointFit(x, h, d, z)
			s.grid = append(s.grid, gridScale{d, z, e})
		}
	}
}

// zeroPointFit rounds the weights x to the levels (k - z)·d, k in [-8, 7],
// and returns the weighted error Σ h·(x - d·l)² and the sums Σ h·l·x and
// Σ h·l² of the least-squares scale, l = k - z. It rounds halves up, with
// a product for quantizeWeight's quotient: close enough to rank candidates,
// which are scored exactly by the caller.
func zeroPointFit(x []float32, h []float64, d, z float64) (e, sxl, sll float64) {
	id := 1 / d
	for j, v := range x {
		v := float64(v)
		l := gridCode(v*id+z, -8, 7) - z
		r := v - l*d
		hl := h[j] * l
		e += h[j] * r * r
		sxl += hl * v
		sll += hl * l
	}
	return e, sxl, sll
}

// zeroPoint is the integer zero point in [-8, 7] nearest to the one that
// puts the levels of scale d at m + d·l for l in [0, 15].
func zeroPoint(d, m float64) int {
	return int(max(-8, min(7, math.RoundToEven(-8-m/d))))
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

// intScale is the blockScale of an int8 row or int4 group of the type t
// that stores the scale d as fp16 and the zero point zero (0 for the
// symmetric types). d must fit in fp16.
func intScale(t model.DType, d float32, zero int) blockScale {
	bs := blockScale{intType: t, zero: zero}
	bs.pins[0].col, bs.pins[1].col = -1, -1
	bs.dBits = model.F32ToF16(d)
	bs.d = model.F16ToF32(bs.dBits)
	return bs
}

// searchScale returns the candidate scale of least Σ h[j]·(x[j] - q[j])² for
// the weights x of a block, int4 group or int8 row of the type d, q[j] being
// the level quantizeWeight gives x[j] and h[j] the Hessian diagonal of its
// input (the input's second moment). RTN's scale is the first candidate and
// wins ties, so the result is never worse than it. GPTQ uses it for act
// order's static scales and for int8's row scales.
func (s *scaleSearch) searchScale(d model.DType, x []float32, h []float64) (blockScale, error) {
	if err := s.candidates(d, x, h, allCandidates); err != nil {
		return blockScale{}, err
	}
	sc := schemeOf(d)
	if !isInt(d) {
		x, h = x[:32], h[:32]
	}
	h = s.orOnes(h)
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
	for j, v := range x {
		_, q := quantizeWeight(sc, bs, j, v)
		d := float64(v) - float64(q)
		e += h[j] * (d * d)
	}
	return e
}

// gptqScale returns the candidate scale under which GPTQ's rounding of a
// block or int4 group of the type d loses least, for GPTQ in column order:
// its weights x sit at consecutive processing positions, and u is U from
// its first diagonal entry on (row stride ldu). The candidates are made
// with the weights 1/U_jj², GPTQ's cost of a unit error in column j, and
// scored by blockLosses. RTN's scale is the first candidate and wins ties.
func (s *scaleSearch) gptqScale(d model.DType, x []float64, u []float64, ldu int) (blockScale, error) {
	n := len(x)
	s.xf, s.h = grow(s.xf, n), grow(s.h, n)
	for j := range n {
		s.xf[j] = float32(x[j])
		ujj := u[j*ldu+j]
		s.h[j] = 1 / (ujj * ujj)
	}
	if err := s.candidates(d, s.xf, s.h, gptqCandidates); err != nil {
		return blockScale{}, err
	}
	loss := s.blockLosses(schemeOf(d), x, u, ldu)
	best := 0
	for i := range s.cands {
		if loss[i] < loss[best] {
			best = i
		}
	}
	return s.cands[best], nil
}

// grow is b resliced to length n, reallocated where it is too short.
func grow[T any](b []T, n int) []T {
	if cap(b) < n {
		return make([]T, n)
	}
	return b[:n]
}

// blockLosses returns, for each of s.cands (at most 1+gptqCandidates), GPTQ's
// loss Σ ((w_j - q_j)/U_jj)² over one block or int4 group: GPTQ's rounding
// of its weights x under the candidate simulated as quantizeRows does it, to
// the bit, each weight's error spread over the later weights through U (the
// first diagonal entry on, row stride ldu). That is exactly the block's
// share of the layer's output error; the part of its error passed on to
// later blocks is theirs. Each simulation is one long chain (round, divide,
// next weight), so the candidates run side by side.
func (s *scaleSearch) blockLosses(sc Scheme, x, u []float64, ldu int) [1 + gptqCandidates]float64 {
	const n = 1 + gptqCandidates
	bw := len(x)
	var bs [n]*blockScale
	var w [n][]float64
	s.w = grow(s.w, n*bw)
	for c := range n {
		bs[c] = &s.cands[min(c, len(s.cands)-1)]
		w[c] = s.w[c*bw : (c+1)*bw : (c+1)*bw]
		copy(w[c], x)
	}
	var loss [n]float64
	for p := range bw {
		urow := u[p*ldu : p*ldu+bw : p*ldu+bw]
		var e [n]float64
		for c := range n {
			q := nearestLevel(sc, bs[c], float32(w[c][p]))
			e[c] = (w[c][p] - float64(q)) / urow[p]
			loss[c] += e[c] * e[c]
		}
		for k := p + 1; k < bw; k++ {
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
	if bs.intType != model.Invalid {
		_, q := quantizeWeight(sc, bs, 0, x)
		return q
	}
	switch sc {
	case Q8_0:
		return float32(roundClamp(float32(x*bs.id), 127)) * bs.d
	case Q4_0:
		return float32(truncClamp(float32(x*bs.id)+8.5)-8) * bs.d
	default: // Q4_1
		return float32(float32(truncClamp(float32((x-bs.lo)*bs.id)+0.5))*bs.d) + bs.m
	}
}
