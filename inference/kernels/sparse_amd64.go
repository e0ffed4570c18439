//go:build amd64 && !purego

package kernels

// spMatVecAVX512 and spMatVecAVX2 do spMatVecGeneric for rows rows: out[r] =
// Σ vals[k]*x[idx[k]] over ptr[r] <= k < ptr[r+1], gathering x 16 (8) lanes
// at a time (VGATHERDPS) and summing lanes after the row.
//
//go:noescape
func spMatVecAVX512(out, vals *float32, idx *uint16, ptr *int32, x *float32, rows int)

//go:noescape
func spMatVecAVX2(out, vals *float32, idx *uint16, ptr *int32, x *float32, rows int)

// sp24MatVecAVX512 sets out[r] to the sum of the first chunks whole chunks of
// row r of a 2:4 matrix whose rows are stride chunks: per chunk, VPERMT2PS
// picks the 16 inputs the positions name out of the chunk's 32, and one FMA
// adds their products.
//
//go:noescape
func sp24MatVecAVX512(out, vals *float32, meta *uint32, x *float32, rows, chunks, stride int)

func spMatVec(out, vals []float32, idx []uint16, ptr []int32, x []float32) {
	switch impl {
	case implAVX512:
		spMatVecAVX512(&out[0], sliceBase(vals), sliceBase16(idx), &ptr[0], sliceBase(x), len(out))
	case implAVX2:
		spMatVecAVX2(&out[0], sliceBase(vals), sliceBase16(idx), &ptr[0], sliceBase(x), len(out))
	default:
		spMatVecGeneric(out, vals, idx, ptr, x)
	}
}

// sp24MatVecAVX2 is sp24MatVecAVX512 with 8-lane permutes (VPERMPS) and blends.
//
//go:noescape
func sp24MatVecAVX2(out, vals *float32, meta *uint32, x *float32, rows, chunks, stride int)

func sp24Fast() bool { return impl != implGeneric }

func sp24MatVec(out, vals []float32, meta []uint32, x []float32, cols int) {
	if impl == implGeneric || cols < 32 {
		sp24MatVecGeneric(out, vals, meta, x, cols)
		return
	}
	if impl == implAVX512 {
		sp24MatVecAVX512(&out[0], &vals[0], &meta[0], &x[0], len(out), cols/32, Chunks24(cols))
	} else {
		sp24MatVecAVX2(&out[0], &vals[0], &meta[0], &x[0], len(out), cols/32, Chunks24(cols))
	}
	sp24Tail(out, vals, meta, x, cols)
}

// sliceBase returns the address of s's first element, or nil for an empty
// slice (a matrix of empty rows), which the kernels then never read.
func sliceBase(s []float32) *float32 {
	if cap(s) == 0 {
		return nil
	}
	return &s[:1][0]
}

func sliceBase16(s []uint16) *uint16 {
	if cap(s) == 0 {
		return nil
	}
	return &s[:1][0]
}
