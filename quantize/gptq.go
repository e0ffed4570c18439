package quantize

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"

	"github.com/shrinkml/shrink/internal/calib"
	"github.com/shrinkml/shrink/model"
)

// gptqBlock is the number of columns GPTQ rounds before it applies their
// accumulated error to the remaining columns in one matrix product (the
// "lazy batch" of the GPTQ paper).
const gptqBlock = 128

// gptqRows is the number of rows one GPTQ job quantizes. Rows are independent
// (they share only the inverse Hessian), so the jobs can run in any order on
// any number of threads; the split is fixed, so the bytes do not depend on it.
const gptqRows = 32

// gptqMatrix is one matrix to quantize with GPTQ, and what its rows share.
type gptqMatrix struct {
	t     *model.Tensor
	p     *tensorPlan
	sc    Scheme
	u     []float64 // the upper factor of H⁻¹ in processing order, row-major
	ldu   int
	perm  []int // processing position -> column; nil for column order
	dead  []int // processing positions of dead inputs
	fixed bool  // scales chosen up front from the original weights (act order)
	// absmax keeps RTN's scales (for the block types with the extreme
	// weight pinned, see chooseScale); otherwise scaleSearch picks them,
	// weighing act order's static scales and int8's row scales by hdiag,
	// the Hessian's diagonal in column order.
	absmax bool
	hdiag  []float64
}

// gptqScratch is a job's working memory, reused across jobs.
type gptqScratch struct {
	src, deq []float32
	w, err   []float64
	codes    []int8
	scales   []blockScale
	search   scaleSearch
}

// quantizeRows runs GPTQ on rows [r0, r0+nr) of g's matrix and writes their
// blocks into g.p.data; sums gets the squared error and squared weights.
// The weights that share a scale are a block of 32 for GGUF's types, an
// int4 group, or (int8) a whole row; "block" below means any of them.
func (g *gptqMatrix) quantizeRows(r0, nr int, s *gptqScratch, sums *[2]float64) error {
	t, cols := g.t, g.t.Cols()
	bw := 32 // weights per block
	if g.p.to == model.Int8Ch {
		bw = cols
	} else if grp, _, ok := Int4Layout(g.p.to); ok {
		bw = grp
	}
	nb := cols / bw
	grow := func(n int) {
		if cap(s.src) < n {
			s.src, s.deq, s.w, s.codes = make([]float32, n), make([]float32, n), make([]float64, n), make([]int8, n)
		}
		s.src, s.deq, s.w, s.codes = s.src[:n], s.deq[:n], s.w[:n], s.codes[:n]
		if cap(s.err) < nr*gptqBlock {
			s.err = make([]float64, nr*gptqBlock)
		}
		if cap(s.scales) < nr*nb {
			s.scales = make([]blockScale, nr*nb)
		}
		s.scales = s.scales[:nr*nb]
	}
	grow(nr * cols)
	inRow := len(t.Data) / t.Rows()
	if err := model.Dequantize(s.src, t.DType, t.Data[r0*inRow:(r0+nr)*inRow]); err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	for i, v := range s.src {
		if !finite(v) {
			return fmt.Errorf("tensor %q: row %d, column %d: %v: %w", t.Name, r0+i/cols, i%cols, v, ErrNotFinite)
		}
	}
	col := func(p int) int {
		if g.perm == nil {
			return p
		}
		return g.perm[p]
	}
	w := s.w
	for r := range nr {
		for p := range cols {
			w[r*cols+p] = float64(s.src[r*cols+col(p)])
		}
		for _, p := range g.dead {
			w[r*cols+p] = 0
		}
	}
	x := make([]float32, bw)
	scale := func(r, b int, value func(c int) float32) error {
		for j := range x {
			x[j] = value(b*bw + j)
		}
		var sc blockScale
		var err error
		switch {
		case g.absmax && isInt(g.p.to):
			sc, err = chooseIntScale(g.p.to, x)
		case g.absmax:
			sc, err = chooseScale(g.sc, x)
		default:
			sc, err = s.search.searchScale(g.p.to, x, g.hdiag[b*bw:b*bw+bw])
		}
		if err != nil {
			return fmt.Errorf("tensor %q: row %d: block %d: %w", t.Name, r0+r, b, err)
		}
		s.scales[r*nb+b] = sc
		return nil
	}
	if g.fixed {
		// Static groups: every block's scale from the original weights
		// (dead inputs zeroed), before any error reaches them.
		inv := make([]int, cols)
		for p := range cols {
			inv[col(p)] = p
		}
		for r := range nr {
			for b := range nb {
				if err := scale(r, b, func(c int) float32 { return float32(w[r*cols+inv[c]]) }); err != nil {
					return err
				}
			}
		}
	}
	u, ldu := g.u, g.ldu
	for b1 := 0; b1 < cols; b1 += gptqBlock {
		b2 := min(b1+gptqBlock, cols)
		n := b2 - b1
		e := s.err[:nr*n]
		for p := b1; p < b2; p++ {
			c := col(p)
			if !g.fixed && c%bw == 0 {
				// The block is first reached: its weights have received the
				// error of every column before it.
				for r := range nr {
					// An int8 row's scale is set before any column is
					// rounded: simulating GPTQ over a whole row would cost
					// as much as GPTQ itself per candidate, so its search
					// weighs the errors by the Hessian's diagonal instead.
					if g.absmax || g.p.to == model.Int8Ch {
						if err := scale(r, c/bw, func(c int) float32 { return float32(w[r*cols+c]) }); err != nil {
							return err
						}
						continue
					}
					bs, err := s.search.gptqScale(g.p.to, w[r*cols+p:r*cols+p+bw], u[p*ldu+p:], ldu)
					if err != nil {
						return fmt.Errorf("tensor %q: row %d: block %d: %w", t.Name, r0+r, c/bw, err)
					}
					s.scales[r*nb+c/bw] = bs
				}
			}
			upp := u[p*ldu+p]
			urow := u[p*ldu+p+1 : p*ldu+b2]
			for r := range nr {
				wr := w[r*cols : (r+1)*cols]
				code, q := quantizeWeight(g.sc, &s.scales[r*nb+c/bw], c%bw, float32(wr[p]))
				s.codes[r*cols+c] = int8(code)
				ep := (wr[p] - float64(q)) / upp
				e[r*n+p-b1] = ep
				rest := wr[p+1 : b2]
				for k, v := range urow {
					rest[k] -= ep * v
				}
			}
		}
		if b2 < cols {
			// W[:, b2:] -= E · U[b1:b2, b2:]
			blas64.Gemm(blas.NoTrans, blas.NoTrans, -1,
				blas64.General{Rows: nr, Cols: n, Stride: n, Data: e},
				blas64.General{Rows: n, Cols: cols - b2, Stride: ldu, Data: u[b1*ldu+b2:]},
				1, blas64.General{Rows: nr, Cols: cols - b2, Stride: cols, Data: w[b2:]})
		}
	}
	outRow := len(g.p.data) / t.Rows()
	bb := outRow / nb // bytes per block (an int8 row with its scale)
	out := g.p.data[r0*outRow : (r0+nr)*outRow]
	for r := range nr {
		for b := range nb {
			if isInt(g.p.to) {
				encodeIntBlock(g.p.to, out[r*outRow+b*bb:r*outRow+(b+1)*bb], &s.scales[r*nb+b], s.codes[r*cols+b*bw:r*cols+(b+1)*bw])
			} else {
				encodeBlock(g.sc, out[r*outRow+b*bb:], &s.scales[r*nb+b], s.codes[r*cols+b*32:])
			}
		}
	}
	if err := model.Dequantize(s.deq, g.p.to, out); err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	var se, ss float64
	for i, v := range s.src {
		d := float64(v) - float64(s.deq[i])
		se += float64(float32(d * d))
		ss += float64(v) * float64(v)
	}
	sums[0], sums[1] = se, ss
	return nil
}

// newGPTQMatrix prepares t (planned as p, scheme sc) for GPTQ with its
// group's Hessian factor f (over the columns in perm's order, or in column
// order when perm is nil) and the Hessian's diagonal hdiag in column order.
// A nil hdiag keeps RTN's absmax scales instead of searching.
func newGPTQMatrix(t *model.Tensor, p *tensorPlan, sc Scheme, f *calib.InverseFactor, perm []int, hdiag []float64) *gptqMatrix {
	raw := f.U.RawTriangular()
	return &gptqMatrix{t: t, p: p, sc: sc, u: raw.Data, ldu: raw.Stride, perm: perm, dead: f.Dead, fixed: perm != nil,
		absmax: hdiag == nil, hdiag: hdiag}
}
