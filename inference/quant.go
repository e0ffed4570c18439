package inference

import (
	"fmt"

	"github.com/shrinkml/shrink/inference/kernels"
	"github.com/shrinkml/shrink/model"
)

// QuantWeights holds a matrix in one of GGUF's 32-weight block formats (Q8_0,
// Q4_0, Q4_1) or shrink's int8 and int4 layouts (INT8_CH, INT4_G32, ...) as
// stored, and multiplies with integer dot products the way llama.cpp does:
// the input is quantized to int8 blocks of 32 with a float scale
// (kernels.Q8Acts), and each weight block meets its input block in an
// integer dot product scaled by both blocks' scales. Results therefore carry
// the input's quantization error (about 0.4% of each block's largest value)
// besides the weights'.
type QuantWeights struct {
	dtype      model.DType
	format     kernels.QFormat
	data       []byte
	rows, cols int
	rowBytes   int
}

// quantFormats are the dtypes the integer kernels run, with their formats.
var quantFormats = map[model.DType]kernels.QFormat{
	model.Q8_0: kernels.Q8_0, model.Q4_0: kernels.Q4_0, model.Q4_1: kernels.Q4_1,
	model.Int8Ch: kernels.I8Ch, model.Int4G32: kernels.I4G32, model.Int4G64: kernels.I4G64,
	model.Int4G128: kernels.I4G128, model.Int4G32Asym: kernels.I4G32Asym,
	model.Int4G64Asym: kernels.I4G64Asym, model.Int4G128Asym: kernels.I4G128Asym,
}

// NewQuantWeights wraps data, rows rows of cols weights of dtype (Q8_0,
// Q4_0, Q4_1, INT8_CH or an INT4 type), without copying it. Rows must be a
// whole number of 32-weight blocks, the size the input is quantized in.
func NewQuantWeights(dtype model.DType, data []byte, rows, cols int) (*QuantWeights, error) {
	f, ok := quantFormats[dtype]
	if !ok {
		return nil, fmt.Errorf("weights: dtype %s has no integer kernels", dtype)
	}
	if rows <= 0 || cols <= 0 || cols%kernels.QBlock != 0 || (f.Group() > 0 && cols%f.Group() != 0) {
		return nil, fmt.Errorf("weights: a %dx%d matrix is not whole rows of %s blocks", rows, cols, dtype)
	}
	rb := f.RowBytes(cols)
	if len(data) != rows*rb {
		return nil, fmt.Errorf("weights: %d bytes do not make a %dx%d %s matrix", len(data), rows, cols, dtype)
	}
	return &QuantWeights{dtype: dtype, format: f, data: data, rows: rows, cols: cols, rowBytes: rb}, nil
}

// DType is the block format.
func (w *QuantWeights) DType() model.DType { return w.dtype }

// Rows is the number of outputs.
func (w *QuantWeights) Rows() int { return w.rows }

// Cols is the number of inputs.
func (w *QuantWeights) Cols() int { return w.cols }

// Bytes is the size of the blocks.
func (w *QuantWeights) Bytes() int64 { return int64(len(w.data)) }

// RowAlign is 4: the kernels take rows in groups of four (any row gives the
// same bits in any range; whole groups are just faster).
func (w *QuantWeights) RowAlign() int { return 4 }

// MatVec sets out[r] = W[r]·x for the rows r in [lo, hi), quantizing x first.
// The engine quantizes each input once per product instead (MatMulQ8).
func (w *QuantWeights) MatVec(out, x []float32, lo, hi int) {
	w.MatMul(out, w.rows, x, 1, lo, hi)
}

// MatMul sets out[t*ldo+r] = W[r]·x[t*Cols:(t+1)*Cols] for t < n and rows r
// in [lo, hi), quantizing x first.
func (w *QuantWeights) MatMul(out []float32, ldo int, x []float32, n, lo, hi int) {
	if lo >= hi || n <= 0 {
		return
	}
	var a kernels.Q8Acts
	a.Quantize(x[:n*w.cols], n, w.cols)
	w.MatMulQ8(out, ldo, &a, lo, hi)
}

// MatMulQ8 sets out[t*ldo+r] to the product of row r with quantized input
// row t for t < x.Rows() and rows r in [lo, hi); x.Cols() must be Cols.
func (w *QuantWeights) MatMulQ8(out []float32, ldo int, x *kernels.Q8Acts, lo, hi int) {
	if lo >= hi || x.Rows() == 0 {
		return
	}
	if x.Cols() != w.cols {
		panic(fmt.Sprintf("inference: %d quantized inputs for a matrix of %d columns", x.Cols(), w.cols))
	}
	kernels.QMatMul(w.format, out[lo:], ldo, w.data[lo*w.rowBytes:hi*w.rowBytes], hi-lo, x)
}

// Row decodes row r into dst[:Cols].
func (w *QuantWeights) Row(dst []float32, r int) {
	if err := model.Dequantize(dst[:w.cols], w.dtype, w.data[r*w.rowBytes:(r+1)*w.rowBytes]); err != nil {
		panic(err) // unreachable: the sizes were checked by NewQuantWeights
	}
}

// quantInput is a matOp's input quantized once per product for the matrices
// that take it so (QuantWeights), before the threads share out the rows.
// It belongs to the op, hence to one State (or MLP), never to the weights
// that several States share.
type quantInput struct {
	acts kernels.Q8Acts
	ws   [3]*QuantWeights // per matrix of the op; nil for the others
}

// prepare quantizes the op's input if one of its matrices needs it.
func (q *quantInput) prepare(o *matOp) {
	need := false
	for j := range q.ws {
		q.ws[j] = nil
		if j < o.nw {
			q.ws[j], _ = o.ws[j].(*QuantWeights)
			need = need || q.ws[j] != nil
		}
	}
	if need {
		cols := o.ws[0].Cols()
		q.acts.Quantize(o.x[:o.n*cols], o.n, cols)
	}
}

// product computes rows [lo, hi) of matrix j from the quantized input and
// reports true, or reports false when matrix j is not quantized.
func (q *quantInput) product(o *matOp, j, lo, hi int) bool {
	w := q.ws[j]
	if w == nil {
		return false
	}
	w.MatMulQ8(o.outs[j], w.rows, &q.acts, lo, hi)
	return true
}
