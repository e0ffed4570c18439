package kernels

import "fmt"

// Sparse kernels multiply matrices whose zeros are not stored, in two layouts
// chosen for fast matrix-vector products:
//
//   - CSR: each row's non-zero values in column order (vals) with their 16-bit
//     column indices (idx); row r holds entries ptr[r] to ptr[r+1]. Six bytes
//     per non-zero, so it streams less than dense F32 (4 bytes per weight) once
//     a third of the weights are zero; the kernels gather x by index.
//   - 2:4: each group of 4 consecutive columns keeps (at most) 2 values, stored
//     as 2 floats, and the columns they come from as two 2-bit positions. A row
//     is Chunks24(cols) chunks of 8 groups (32 columns): 16 values and one
//     uint32 whose bits 2j..2j+1 give value j's position in group j/2. The
//     padding past the last column holds zero values at position 0.
//
// Each output is one row's sum, computed the same way wherever the row falls
// in a call, so results do not depend on how callers split rows. The loops in
// sparse_generic.go define the results; the assembly sums in another order.

// Sparse24Fast reports whether Sp24MatVec beats the dense MatVec on this CPU
// and build: it has assembly for AVX-512 and AVX2, while the Go loop, which
// decodes each position, is slower than the dense one.
func Sparse24Fast() bool { return sp24Fast() }

// Chunks24 is the number of 32-column chunks a 2:4 row of cols columns takes.
func Chunks24(cols int) int { return (cols + 31) / 32 }

// SpMatVec sets out[r] = Σ_{ptr[r] <= k < ptr[r+1]} vals[k]*x[idx[k]] for
// r < len(out): rows of a CSR matrix (ptr has len(out)+1 offsets into vals and
// idx, non-decreasing). Every index must be below len(x); it panics otherwise
// in the generic loop, and the caller guarantees it for the assembly.
func SpMatVec(out, vals []float32, idx []uint16, ptr []int32, x []float32) {
	if len(out) == 0 {
		return
	}
	if len(ptr) < len(out)+1 || int(ptr[len(out)]) > len(vals) || int(ptr[len(out)]) > len(idx) || ptr[0] < 0 {
		panic(fmt.Sprintf("kernels: SpMatVec: %d rows, %d offsets, %d values, %d indices", len(out), len(ptr), len(vals), len(idx)))
	}
	spMatVec(out, vals, idx, ptr[:len(out)+1], x)
}

// Sp24MatVec sets out[r] to the product of row r of a 2:4 matrix of cols
// columns with x[:cols], for r < len(out): vals holds Chunks24(cols)*16
// values and meta Chunks24(cols) position words per row.
func Sp24MatVec(out, vals []float32, meta []uint32, x []float32, cols int) {
	rows := len(out)
	if rows == 0 {
		return
	}
	ch := Chunks24(cols)
	sp24MatVec(out, vals[:rows*ch*16], meta[:rows*ch], x[:cols], cols)
}

// sp24Tail adds the products of the last, partial chunk c of every row, the
// columns past the assembly's whole chunks.
func sp24Tail(out, vals []float32, meta []uint32, x []float32, cols int) {
	ch := Chunks24(cols)
	c := cols / 32
	if c == ch {
		return
	}
	for r := range out {
		out[r] += sp24Chunk(vals[(r*ch+c)*16:][:16], meta[r*ch+c], x[c*32:])
	}
}

// sp24Chunk is one chunk's sum; x may be shorter than 32 when only padding
// (zero values at position 0 of a group) lies past its end.
func sp24Chunk(v []float32, m uint32, x []float32) float32 {
	var s float32
	for j := 0; j < 16; j++ {
		col := 4*(j/2) + int(m>>(2*j)&3)
		if v[j] != 0 {
			s += v[j] * x[col]
		}
	}
	return s
}
