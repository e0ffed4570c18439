//go:build !amd64 || purego

package kernels

// Without assembly the sparse kernels are their generic loops.

func spMatVec(out, vals []float32, idx []uint16, ptr []int32, x []float32) {
	spMatVecGeneric(out, vals, idx, ptr, x)
}

func sp24MatVec(out, vals []float32, meta []uint32, x []float32, cols int) {
	sp24MatVecGeneric(out, vals, meta, x, cols)
}

func sp24Fast() bool { return false }
