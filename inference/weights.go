package inference

import (
	"fmt"

	"github.com/shrinkml/shrink/inference/kernels"
	"github.com/shrinkml/shrink/model"
)

// Weights is the weight matrix of a linear layer, [Rows outputs, Cols inputs],
// in whatever storage its kernels need. Row ranges let the engine split one
// product across threads; every output element is computed by exactly one
// call over its full row, so results do not depend on the split.
type Weights interface {
	// Rows is the number of outputs and Cols the number of inputs.
	Rows() int
	Cols() int
	// Bytes is the size of the stored weights, what one product streams from memory.
	Bytes() int64
	// RowAlign is the granularity of the row ranges the engine passes: every
	// range starts at a multiple of it and ends at one or at Rows.
	RowAlign() int
	// MatVec sets out[r] = W[r]·x for the rows r in [lo, hi).
	MatVec(out, x []float32, lo, hi int)
	// MatMul sets out[t*ldo+r] = W[r]·x[t*Cols:(t+1)*Cols] for t < n and rows r in [lo, hi).
	MatMul(out []float32, ldo int, x []float32, n, lo, hi int)
	// Row writes row r of W, decoded to float32, into dst[:Cols].
	Row(dst []float32, r int)
}

// LoadWeights returns the Weights of a 2-D tensor. Aligned F32 tensors are used
// in place (a view of the memory-mapped file, no copy), and so are Q8_0, Q4_0,
// Q4_1, INT8_CH and INT4 tensors, which run on integer kernels (QuantWeights;
// an INT8_CH matrix whose rows are not a multiple of 32 is decoded instead);
// every other dtype (F16, BF16, Q4_K, Q6_K) is decoded to F32 once, here. A
// float matrix that is sparse enough (SparseMinZeros) becomes SparseWeights,
// and one with at most 2 non-zeros in every group of 4 columns
// Sparse24Weights; the scan that decides is one pass, and dense matrices stay
// views.
func LoadWeights(t *model.Tensor) (Weights, error) {
	if len(t.Shape) != 2 {
		return nil, fmt.Errorf("tensor %q: a weight matrix needs 2 dimensions, has shape %v", t.Name, t.Shape)
	}
	switch t.DType {
	case model.Int8Ch:
		if t.Shape[1]%kernels.QBlock != 0 {
			break // the input is quantized in blocks of 32, which these rows are not
		}
		fallthrough
	case model.Q8_0, model.Q4_0, model.Q4_1, model.Int4G32, model.Int4G64, model.Int4G128,
		model.Int4G32Asym, model.Int4G64Asym, model.Int4G128Asym:
		if err := t.Check(); err != nil {
			return nil, err
		}
		w, err := NewQuantWeights(t.DType, t.Data, t.Shape[0], t.Shape[1])
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		return w, nil
	case model.F32, model.F16, model.BF16, model.Q4_K, model.Q6_K:
	default:
		return nil, fmt.Errorf("tensor %q: dtype %s is not supported for weights", t.Name, t.DType)
	}
	data, err := t.Float32()
	if err != nil {
		return nil, err
	}
	if w := sparseWeights(data, t.Shape[0], t.Shape[1]); w != nil {
		return w, nil
	}
	return NewF32Weights(data, t.Shape[0], t.Shape[1])
}

// F32Weights holds a row-major float32 matrix.
type F32Weights struct {
	data       []float32
	rows, cols int
}

// NewF32Weights wraps data, a row-major [rows, cols] matrix, without copying it.
func NewF32Weights(data []float32, rows, cols int) (*F32Weights, error) {
	if rows <= 0 || cols <= 0 || len(data) != rows*cols {
		return nil, fmt.Errorf("weights: %d values do not make a %dx%d matrix", len(data), rows, cols)
	}
	return &F32Weights{data: data, rows: rows, cols: cols}, nil
}

// Rows is the number of outputs.
func (w *F32Weights) Rows() int { return w.rows }

// Cols is the number of inputs.
func (w *F32Weights) Cols() int { return w.cols }

// Bytes is 4 bytes per weight.
func (w *F32Weights) Bytes() int64 { return 4 * int64(w.rows) * int64(w.cols) }

// RowAlign is 16: the F32 kernels compute a row the same way in any range
// whose bounds are multiples of their row groups (4 and 8 for MatVec).
func (w *F32Weights) RowAlign() int { return 16 }

// MatVec sets out[r] = W[r]·x for the rows r in [lo, hi).
func (w *F32Weights) MatVec(out, x []float32, lo, hi int) {
	if lo >= hi {
		return
	}
	kernels.MatVec(out[lo:hi], w.data[lo*w.cols:hi*w.cols], x[:w.cols], w.cols)
}

// MatMul sets out[t*ldo+r] = W[r]·x[t*Cols:(t+1)*Cols] for t < n and rows r in [lo, hi).
func (w *F32Weights) MatMul(out []float32, ldo int, x []float32, n, lo, hi int) {
	if lo >= hi || n <= 0 {
		return
	}
	kernels.MatMul(out[lo:], ldo, x[:n*w.cols], w.data[lo*w.cols:hi*w.cols], n, hi-lo, w.cols)
}

// Row copies row r into dst[:Cols].
func (w *F32Weights) Row(dst []float32, r int) {
	copy(dst[:w.cols], w.data[r*w.cols:(r+1)*w.cols])
}

// loadVector returns a 1-D tensor of n elements as float32 (a view when it is aligned F32).
func loadVector(m *model.Model, name string, n int) ([]float32, error) {
	t := m.Tensor(name)
	if t == nil {
		return nil, fmt.Errorf("tensor %q is missing", name)
	}
	if t.Elems() != n || len(t.Shape) != 1 {
		return nil, fmt.Errorf("tensor %q has shape %v, want [%d]", name, t.Shape, n)
	}
	if !t.DType.Float() && !t.DType.Quantized() {
		return nil, fmt.Errorf("tensor %q: dtype %s is not supported for a vector", name, t.DType)
	}
	return t.Float32()
}

// loadMatrix returns the Weights of the 2-D tensor name, which must be [rows, cols].
func loadMatrix(m *model.Model, name string, rows, cols int) (Weights, error) {
	t := m.Tensor(name)
	if t == nil {
		return nil, fmt.Errorf("tensor %q is missing", name)
	}
	if len(t.Shape) != 2 || t.Shape[0] != rows || t.Shape[1] != cols {
		return nil, fmt.Errorf("tensor %q has shape %v, want [%d %d]", name, t.Shape, rows, cols)
	}
	return LoadWeights(t)
}
