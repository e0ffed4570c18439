package inference

import (
	"fmt"
	"sync"

	"github.com/shrinkml/shrink/inference/kernels"
)

// SparseMinZeros is the fraction of exact zeros from which LoadWeights stores
// an F32 matrix as CSR (SparseWeights). BenchmarkSparseVsDense in
// inference/kernels sets it: at 4096x4096 the AVX-512 CSR product breaks even
// with the dense one at 70% zeros (about 0.55x at 50%, 7x at 90%), and the
// AVX2 and Go ones do so earlier.
var SparseMinZeros = 0.7

// sparseStats is what one pass over a matrix learns: its zeros, and whether
// every group of 4 consecutive columns of every row has at most 2 non-zeros.
type sparseStats struct {
	zeros int
	is24  bool
}

// scanSparsity counts the zeros of a row-major [rows, cols] matrix and checks
// the 2:4 pattern in the same pass (the last group of a row may be short).
func scanSparsity(data []float32, rows, cols int) sparseStats {
	st := sparseStats{is24: true}
	for r := 0; r < rows; r++ {
		row := data[r*cols : (r+1)*cols]
		for g := 0; g < cols; g += 4 {
			grp := row[g:min(g+4, cols)]
			nz := 0
			for _, v := range grp {
				if v != 0 {
					nz++
				}
			}
			st.zeros += len(grp) - nz
			if nz > 2 {
				st.is24 = false
			}
		}
	}
	return st
}

// sparseWeights returns the sparse Weights that pay for data, or nil when the
// dense matrix is faster: CSR from SparseMinZeros zeros (and at most 65536
// columns, the reach of its 16-bit indices), else 2:4 when every group holds
// at most 2 non-zeros and the CPU has the 2:4 kernel (kernels.Sparse24Fast).
func sparseWeights(data []float32, rows, cols int) Weights {
	st := scanSparsity(data, rows, cols)
	total := rows * cols
	switch {
	case total > 0 && float64(st.zeros) >= SparseMinZeros*float64(total) && cols <= 1<<16:
		return NewSparseWeights(data, rows, cols)
	case st.is24 && st.zeros > 0 && kernels.Sparse24Fast():
		return NewSparse24Weights(data, rows, cols)
	}
	return nil
}

// SparseWeights holds a matrix in CSR form: each row's non-zero values and
// their 16-bit column indices, 6 bytes per non-zero instead of 4 per weight.
type SparseWeights struct {
	vals       []float32
	idx        []uint16
	ptr        []int32
	rows, cols int
}

// NewSparseWeights copies the non-zeros of data, a row-major [rows, cols]
// matrix with cols <= 65536 and fewer than 2^31 non-zeros.
func NewSparseWeights(data []float32, rows, cols int) *SparseWeights {
	nz := 0
	for _, v := range data {
		if v != 0 {
			nz++
		}
	}
	w := &SparseWeights{vals: make([]float32, 0, nz), idx: make([]uint16, 0, nz), ptr: make([]int32, rows+1), rows: rows, cols: cols}
	for r := 0; r < rows; r++ {
		for c, v := range data[r*cols : (r+1)*cols] {
			if v != 0 {
				w.vals = append(w.vals, v)
				w.idx = append(w.idx, uint16(c))
			}
		}
		w.ptr[r+1] = int32(len(w.vals))
	}
	return w
}

// Rows is the number of outputs.
func (w *SparseWeights) Rows() int { return w.rows }

// Cols is the number of inputs.
func (w *SparseWeights) Cols() int { return w.cols }

// NonZeros is the number of stored weights.
func (w *SparseWeights) NonZeros() int { return len(w.vals) }

// Bytes is 6 bytes per non-zero plus 4 per row.
func (w *SparseWeights) Bytes() int64 { return 6*int64(len(w.vals)) + 4*int64(len(w.ptr)) }

// RowAlign is 1: each row is one independent sum.
func (w *SparseWeights) RowAlign() int { return 1 }

// MatVec sets out[r] = W[r]·x for the rows r in [lo, hi).
func (w *SparseWeights) MatVec(out, x []float32, lo, hi int) {
	if lo >= hi {
		return
	}
	kernels.SpMatVec(out[lo:hi], w.vals, w.idx, w.ptr[lo:hi+1], x[:w.cols])
}

// sparseDenseTokens is the batch from which the sparse matrices multiply
// through the dense MatMul kernel: a product per token streams the sparse rows
// once per token, while the dense kernel keeps them in cache across tokens
// and runs near the FMA peak, which outweighs decoding the rows (one write
// per weight against n FMAs per weight).
const sparseDenseTokens = 8

// denseRows holds rows decoded for denseMatMul, reused across calls.
var denseRows = sync.Pool{New: func() any { return new([]float32) }}

// denseMatMul decodes rows [lo, hi) of w and multiplies them with the dense
// kernel. The engine's row blocks are fixed, so the results do not depend on
// the thread split.
func denseMatMul(w Weights, out []float32, ldo int, x []float32, n, lo, hi int) {
	if lo >= hi || n <= 0 {
		return
	}
	cols := w.Cols()
	p := denseRows.Get().(*[]float32)
	if cap(*p) < (hi-lo)*cols {
		*p = make([]float32, (hi-lo)*cols)
	}
	d := (*p)[:(hi-lo)*cols]
	for r := lo; r < hi; r++ {
		w.Row(d[(r-lo)*cols:], r)
	}
	kernels.MatMul(out[lo:], ldo, x[:n*cols], d, n, hi-lo, cols)
	denseRows.Put(p)
}

// sparseTileRows is how many rows MatMul takes through every token at once,
// so their values stay in cache while the tokens pass.
const sparseTileRows = 64

// MatMul sets out[t*ldo+r] = W[r]·x[t*Cols:(t+1)*Cols] for t < n and rows r
// in [lo, hi): for fewer than sparseDenseTokens tokens each row exactly as
// MatVec computes it, for more as the dense MatMul of the decoded rows.
func (w *SparseWeights) MatMul(out []float32, ldo int, x []float32, n, lo, hi int) {
	if n >= sparseDenseTokens {
		denseMatMul(w, out, ldo, x, n, lo, hi)
		return
	}
	for r0 := lo; r0 < hi; r0 += sparseTileRows {
		r1 := min(r0+sparseTileRows, hi)
		for t := 0; t < n; t++ {
			kernels.SpMatVec(out[t*ldo+r0:t*ldo+r1], w.vals, w.idx, w.ptr[r0:r1+1], x[t*w.cols:(t+1)*w.cols])
		}
	}
}

// Row writes row r into dst[:Cols].
func (w *SparseWeights) Row(dst []float32, r int) {
	dst = dst[:w.cols]
	clear(dst)
	for k := w.ptr[r]; k < w.ptr[r+1]; k++ {
		dst[w.idx[k]] = w.vals[k]
	}
}

// Sparse24Weights holds a matrix with at most 2 non-zeros in every group of 4
// consecutive columns: per group the 2 kept values and their 2-bit positions
// (kernels.Sp24MatVec's layout), 2.125 bytes per weight instead of 4.
type Sparse24Weights struct {
	vals       []float32
	meta       []uint32
	rows, cols int
	chunks     int // per row
}

// NewSparse24Weights packs data, a row-major [rows, cols] matrix whose every
// group of 4 columns (the last one per row may be short) has at most 2
// non-zeros; it panics otherwise.
func NewSparse24Weights(data []float32, rows, cols int) *Sparse24Weights {
	ch := kernels.Chunks24(cols)
	w := &Sparse24Weights{vals: make([]float32, rows*ch*16), meta: make([]uint32, rows*ch), rows: rows, cols: cols, chunks: ch}
	for r := 0; r < rows; r++ {
		row := data[r*cols : (r+1)*cols]
		for g := 0; 4*g < cols; g++ {
			j := (r*ch+g/8)*16 + 2*(g%8)
			sh := 4 * uint(g%8)
			k := 0
			for i := 4 * g; i < min(4*g+4, cols); i++ {
				if row[i] == 0 {
					continue
				}
				if k == 2 {
					panic(fmt.Sprintf("inference: row %d, group %d has more than 2 non-zeros", r, g))
				}
				w.vals[j+k] = row[i]
				w.meta[r*ch+g/8] |= uint32(i-4*g) << (sh + 2*uint(k))
				k++
			}
		}
	}
	return w
}

// Rows is the number of outputs.
func (w *Sparse24Weights) Rows() int { return w.rows }

// Cols is the number of inputs.
func (w *Sparse24Weights) Cols() int { return w.cols }

// Bytes is the values and positions, padding included.
func (w *Sparse24Weights) Bytes() int64 { return 4*int64(len(w.vals)) + 4*int64(len(w.meta)) }

// RowAlign is 1: each row is one independent sum.
func (w *Sparse24Weights) RowAlign() int { return 1 }

// MatVec sets out[r] = W[r]·x for the rows r in [lo, hi).
func (w *Sparse24Weights) MatVec(out, x []float32, lo, hi int) {
	if lo >= hi {
		return
	}
	ch := w.chunks
	kernels.Sp24MatVec(out[lo:hi], w.vals[lo*ch*16:hi*ch*16], w.meta[lo*ch:hi*ch], x[:w.cols], w.cols)
}

// MatMul sets out[t*ldo+r] = W[r]·x[t*Cols:(t+1)*Cols] for t < n and rows r
// in [lo, hi), as SparseWeights.MatMul does.
func (w *Sparse24Weights) MatMul(out []float32, ldo int, x []float32, n, lo, hi int) {
	if n >= sparseDenseTokens {
		denseMatMul(w, out, ldo, x, n, lo, hi)
		return
	}
	for r0 := lo; r0 < hi; r0 += sparseTileRows {
		r1 := min(r0+sparseTileRows, hi)
		for t := 0; t < n; t++ {
			w.MatVec(out[t*ldo:], x[t*w.cols:(t+1)*w.cols], r0, r1)
		}
	}
}

// Row writes row r into dst[:Cols].
func (w *Sparse24Weights) Row(dst []float32, r int) {
	dst = dst[:w.cols]
	clear(dst)
	ch := w.chunks
	for g := 0; 4*g < w.cols; g++ {
		m := w.meta[r*ch+g/8] >> (4 * uint(g%8))
		j := (r*ch+g/8)*16 + 2*(g%8)
		for k := 0; k < 2; k++ {
			if v := w.vals[j+k]; v != 0 {
				dst[4*g+int(m>>(2*uint(k))&3)] = v
			}
		}
	}
}
