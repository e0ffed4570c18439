package kernels

// spMatVecGeneric is the reference CSR product: each row summed in column
// order.
func spMatVecGeneric(out, vals []float32, idx []uint16, ptr []int32, x []float32) {
	for r := range out {
		lo, hi := ptr[r], ptr[r+1]
		v, ix := vals[lo:hi], idx[lo:hi]
		ix = ix[:len(v)] // lets the compiler drop the bounds check on ix[k]
		var s float32
		for k, w := range v {
			s += w * x[ix[k]]
		}
		out[r] = s
	}
}

// sp24MatVecGeneric is the reference 2:4 product: each row summed chunk by
// chunk, in the order of the stored values.
func sp24MatVecGeneric(out, vals []float32, meta []uint32, x []float32, cols int) {
	ch := Chunks24(cols)
	for r := range out {
		var s float32
		for c := 0; c < ch; c++ {
			s += sp24Chunk(vals[(r*ch+c)*16:][:16], meta[r*ch+c], x[c*32:])
		}
		out[r] = s
	}
}
