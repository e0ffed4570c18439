package calib

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/mat"

	"github.com/shrinkml/shrink/inference"
	"github.com/shrinkml/shrink/inference/kernels"
)

// chunkRows is the most input rows one float32 product sums. A chunk's XᵀX is
// computed with the float32 kernels (fast, and each entry is a sum of at most
// 128 terms, so its relative error stays near 1e-5), and the chunks are added
// up in float64, where tens of thousands of terms lose nothing that matters.
// inference.Calibration shows inputs in chunks of this size already.
const chunkRows = 128

// rowBlock is the number of Hessian rows one task computes.
const rowBlock = 64

// Hessian accumulates H = 2/N Σ x xᵀ over the N input rows x (each Cols()
// values) that one linear group multiplies: the curvature of the layer-wise
// squared output error ||WX - ŴX||² in every row of W.
type Hessian struct {
	cols    int
	rows    int
	sum     []float64 // Σ x xᵀ, lower triangle (i >= j) only
	threads int
	xt      []float32 // one chunk transposed: [cols][rows]
	prod    []float32 // the chunk's XᵀX, lower triangle
}

// NewHessian returns an empty Hessian for inputs of cols values, accumulated
// on up to threads goroutines (0 or less means 1). The result does not depend
// on threads.
func NewHessian(cols, threads int) *Hessian {
	return &Hessian{cols: cols, sum: make([]float64, cols*cols), threads: max(1, threads),
		xt: make([]float32, cols*chunkRows), prod: make([]float32, cols*cols)}
}

// Cols is the length of an input row, and H's order.
func (h *Hessian) Cols() int { return h.cols }

// Rows is N, the number of input rows added so far.
func (h *Hessian) Rows() int { return h.rows }

// Add adds rows input rows, x being rows × Cols() row-major.
func (h *Hessian) Add(x []float32, rows int) {
	if len(x) < rows*h.cols {
		panic(fmt.Sprintf("calib: Hessian.Add: %d values for %d rows of %d", len(x), rows, h.cols))
	}
	for r := 0; r < rows; r += chunkRows {
		n := min(chunkRows, rows-r)
		h.addChunk(x[r*h.cols:(r+n)*h.cols], n)
	}
	h.rows += rows
}

func (h *Hessian) addChunk(x []float32, n int) {
	d := h.cols
	xt := h.xt[:d*n]
	kernels.Transpose(xt, n, x, d, n, d)
	blocks := (d + rowBlock - 1) / rowBlock
	var next atomic.Int64
	next.Store(int64(blocks))
	work := func() {
		// The widest blocks (the bottom of the triangle) go first.
		for {
			b := int(next.Add(-1))
			if b < 0 {
				return
			}
			r0, r1 := b*rowBlock, min(d, (b+1)*rowBlock)
			// prod[i*d+j] = Σ_t x[t,i] x[t,j] for r0 <= i < r1 and j < r1.
			kernels.MatMul(h.prod[r0*d:], d, xt[r0*n:], xt, r1-r0, r1, n)
			for i := r0; i < r1; i++ {
				p, s := h.prod[i*d:i*d+i+1], h.sum[i*d:i*d+i+1]
				for j, v := range p {
					s[j] += float64(v)
				}
			}
		}
	}
	threads := min(h.threads, blocks)
	if threads <= 1 {
		work()
		return
	}
	var wg sync.WaitGroup
	for range threads {
		wg.Go(work)
	}
	wg.Wait()
}

// Sym returns H = 2/N Σ x xᵀ as a new matrix (zero before any row is added).
func (h *Hessian) Sym() *mat.SymDense {
	d := h.cols
	s := mat.NewSymDense(d, nil)
	if h.rows == 0 {
		return s
	}
	f := 2 / float64(h.rows)
	for i := range d {
		for j := 0; j <= i; j++ {
			s.SetSym(j, i, f*h.sum[i*d+j])
		}
	}
	return s
}

// ColumnNorms returns ||X_j||₂ for every input column j: the norm over all N
// rows, which Wanda weighs each weight's magnitude by.
func (h *Hessian) ColumnNorms() []float64 {
	out := make([]float64, h.cols)
	for j := range out {
		out[j] = math.Sqrt(h.sum[j*h.cols+j])
	}
	return out
}

// Layer gathers the Hessians of one decoder layer's linear groups from an
// inference.Calibration pass: give Observe to Calibration.Run.
type Layer struct {
	// Hessians holds one Hessian per group seen, created on first sight.
	Hessians map[inference.LinearGroup]*Hessian
	// Groups, when not nil, limits the groups accumulated.
	Groups  map[inference.LinearGroup]bool
	threads int
}

// NewLayer returns an empty Layer whose Hessians use threads goroutines.
func NewLayer(threads int) *Layer {
	return &Layer{Hessians: map[inference.LinearGroup]*Hessian{}, threads: threads}
}

// Observe adds one input chunk to its group's Hessian.
func (l *Layer) Observe(in inference.Input) {
	if l.Groups != nil && !l.Groups[in.Group] {
		return
	}
	h := l.Hessians[in.Group]
	if h == nil {
		h = NewHessian(in.Cols, l.threads)
		l.Hessians[in.Group] = h
	}
	h.Add(in.X, in.Rows)
}
