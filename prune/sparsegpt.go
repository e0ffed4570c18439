package prune

import (
	"cmp"
	"math"
	"slices"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/shrinkml/shrink/internal/calib"
)

// defaultBlock is SparseGPT's column block: the mask of an unstructured run
// is chosen anew for every 128 columns, after the updates from the blocks
// before have been applied (the paper's adaptive mask selection).
const defaultBlock = 128

// sparseGPT prunes a rows×cols matrix in place as Frantar & Alistarh's
// Algorithm 1 does, given the Hessian H = 2/N Σ x xᵀ of its inputs: column by
// column, pruned weights are set to zero and their error (w - 0)/[U]_jj is
// spread over the columns to the right through the row of U, the upper
// Cholesky factor of H⁻¹. Rows are independent once a block's mask is
// chosen, so they are split across threads. It returns the dampening used.
func sparseGPT(w []float32, rows, cols int, h *mat.SymDense, sparsity float64, p Pattern,
	damp float64, block, threads int) (float64, error) {
	if damp == 0 {
		damp = calib.DefaultDamp
	}
	f, err := calib.InverseCholesky(h, damp)
	if err != nil {
		return 0, err
	}
	raw := f.U.RawTriangular()
	u := func(i int) []float64 { return raw.Data[i*raw.Stride : i*raw.Stride+cols] }
	W := make([]float64, len(w))
	for i, v := range w {
		W[i] = float64(v)
	}
	for _, j := range f.Dead { // inputs that were always zero never reach the output
		for r := range rows {
			W[r*cols+j] = 0
		}
	}
	if block <= 0 {
		block = defaultBlock
	}
	if !p.IsZero() {
		block = max(p.M, block/p.M*p.M) // a group never straddles two blocks
	}
	var drop []bool // the block's unstructured mask, rows × width
	var score []float64
	var idx []int
	for i1 := 0; i1 < cols; i1 += block {
		i2 := min(i1+block, cols)
		width := i2 - i1
		if p.IsZero() {
			n := rows * width
			drop, score, idx = slices.Grow(drop[:0], n)[:n], slices.Grow(score[:0], n)[:n], slices.Grow(idx[:0], n)[:n]
			clear(drop)
			for r := range rows {
				for c := range width {
					d := u(i1 + c)[i1+c]
					v := W[r*cols+i1+c]
					score[r*width+c] = v * v / (d * d)
					idx[r*width+c] = r*width + c
				}
			}
			k := pruneCount(n, sparsity)
			if k > 0 {
				slices.SortFunc(idx, func(a, b int) int {
					if c := cmp.Compare(score[a], score[b]); c != 0 {
						return c
					}
					return cmp.Compare(b, a)
				})
				for _, i := range idx[:k] {
					drop[i] = true
				}
			}
		}
		parallelRows(rows, threads, func(r0, r1 int) {
			errs := make([]float64, width)
			gdrop := make([]bool, max(p.M, 1))
			gscore := make([]float64, max(p.M, 1))
			gidx := make([]int, max(p.M, 1))
			for r := r0; r < r1; r++ {
				row := W[r*cols : (r+1)*cols]
				for i := range width {
					col := i1 + i
					ui := u(col)
					d := ui[col]
					pruned := false
					if p.IsZero() {
						pruned = drop[r*width+i]
					} else {
						g := i % p.M
						if g == 0 {
							for j := range p.M {
								dj := u(col + j)[col+j]
								gscore[j] = row[col+j] * row[col+j] / (dj * dj)
							}
							clear(gdrop)
							lowestIndices(gscore, 0, p.M, p.M-p.N, gdrop, gidx)
						}
						pruned = gdrop[g]
					}
					if !pruned {
						errs[i] = 0
						continue
					}
					e := row[col] / d
					row[col] = 0
					errs[i] = e
					for c := col + 1; c < i2; c++ {
						row[c] -= e * ui[c]
					}
				}
				// The block's errors, applied to the columns after it at once.
				for i, e := range errs {
					if e == 0 {
						continue
					}
					ui := u(i1 + i)[i2:]
					tail := row[i2:]
					for c, v := range ui {
						tail[c] -= e * v
					}
				}
			}
		})
	}
	for i, v := range W {
		w[i] = float32(v)
	}
	// A weight updated but not pruned can still round to zero in float32;
	// that only adds sparsity. Pruned weights are exactly zero.
	return f.Damp, nil
}

// relOutputError is ||(W - Ŵ)X|| / ||WX|| over the inputs whose Hessian is h
// (H ∝ Σ x xᵀ, so both squared norms are Σ_rows r H rᵀ up to the same factor).
func relOutputError(w, pruned []float32, rows, cols int, h *mat.SymDense, threads int) float64 {
	raw := h.RawSymmetric()
	hrow := func(i int) []float64 { return raw.Data[i*raw.Stride : i*raw.Stride+cols] }
	// Only the upper triangle is stored: use H_ij = H_min(i,j),max(i,j).
	full := make([]float64, cols*cols)
	for i := range cols {
		for j, v := range hrow(i)[i:] {
			full[i*cols+i+j] = v
			full[(i+j)*cols+i] = v
		}
	}
	nums := make([]float64, rows)
	dens := make([]float64, rows)
	parallelRows(rows, threads, func(r0, r1 int) {
		d := make([]float64, cols)
		x := make([]float64, cols)
		for r := r0; r < r1; r++ {
			changed := false
			for j := range cols {
				x[j] = float64(w[r*cols+j])
				d[j] = x[j] - float64(pruned[r*cols+j])
				changed = changed || d[j] != 0
			}
			dens[r] = quad(full, x, cols)
			if changed {
				nums[r] = quad(full, d, cols)
			}
		}
	})
	var num, den float64
	for r := range rows {
		num += nums[r]
		den += dens[r]
	}
	if den <= 0 {
		return 0
	}
	return math.Sqrt(max(0, num) / den)
}

// quad is vᵀHv for a full symmetric cols×cols H.
func quad(h, v []float64, cols int) float64 {
	var s float64
	for i, vi := range v {
		if vi == 0 {
			continue
		}
		row := h[i*cols : (i+1)*cols]
		var t float64
		for j, vj := range v {
			t += row[j] * vj
		}
		s += vi * t
	}
	return s
}

// parallelRows runs fn over [0, rows) cut into contiguous ranges, one per
// goroutine; fn must only touch its own rows.
func parallelRows(rows, threads int, fn func(r0, r1 int)) {
	threads = max(1, min(threads, rows))
	if threads == 1 {
		fn(0, rows)
		return
	}
	var wg sync.WaitGroup
	step := (rows + threads - 1) / threads
	for r0 := 0; r0 < rows; r0 += step {
		wg.Go(func() { fn(r0, min(rows, r0+step)) })
	}
	wg.Wait()
}
