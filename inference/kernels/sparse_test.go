package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// sparseDense returns a rows x cols matrix whose weights are zero with
// probability zero, with some rows empty.
func sparseDense(rng *rand.Rand, rows, cols int, zero float64) []float32 {
	w := make([]float32, rows*cols)
	for r := 0; r < rows; r++ {
		if r%7 == 3 {
			continue // an empty row
		}
		for c := 0; c < cols; c++ {
			if rng.Float64() >= zero {
				w[r*cols+c] = rng.Float32()*2 - 1
			}
		}
	}
	return w
}

// toCSR is the CSR layout of w.
func toCSR(w []float32, rows, cols int) (vals []float32, idx []uint16, ptr []int32) {
	ptr = make([]int32, rows+1)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			if v := w[r*cols+c]; v != 0 {
				vals = append(vals, v)
				idx = append(idx, uint16(c))
			}
		}
		ptr[r+1] = int32(len(vals))
	}
	return vals, idx, ptr
}

// to24 keeps the 2 largest of every 4 weights of w (zeroing the rest in w)
// and returns the 2:4 layout.
func to24(w []float32, rows, cols int) (vals []float32, meta []uint32) {
	ch := Chunks24(cols)
	vals = make([]float32, rows*ch*16)
	meta = make([]uint32, rows*ch)
	for r := 0; r < rows; r++ {
		row := w[r*cols : (r+1)*cols]
		for g := 0; 4*g < cols; g++ {
			n := min(4, cols-4*g)
			a, b := -1, -1
			for i := 0; i < n; i++ {
				v := float32(math.Abs(float64(row[4*g+i])))
				switch {
				case a < 0 || v > abs32(row[4*g+a]):
					a, b = i, a
				case b < 0 || v > abs32(row[4*g+b]):
					b = i
				}
			}
			for i := 0; i < n; i++ {
				if i != a && i != b {
					row[4*g+i] = 0
				}
			}
			if b >= 0 && b < a {
				a, b = b, a
			}
			j := (r*ch+g/8)*16 + 2*(g%8)
			m := &meta[r*ch+g/8]
			sh := 4 * (g % 8)
			vals[j] = row[4*g+a]
			*m |= uint32(a) << sh
			if b >= 0 {
				vals[j+1] = row[4*g+b]
				*m |= uint32(b) << (sh + 2)
			}
		}
	}
	return vals, meta
}

// sparseShapes have odd sizes, single rows and columns, and widths around
// the 16-lane and 32-column chunk edges.
var sparseShapes = [][2]int{{1, 1}, {3, 5}, {7, 31}, {13, 32}, {17, 33}, {5, 63}, {9, 100}, {33, 257}, {2, 1000}}

func TestSpMatVec(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	eachVariant(t, func(t *testing.T) {
		for _, s := range sparseShapes {
			for _, zero := range []float64{0, 0.5, 0.9, 1} {
				rows, cols := s[0], s[1]
				w := sparseDense(rng, rows, cols, zero)
				vals, idx, ptr := toCSR(w, rows, cols)
				x := poisoned(rng, cols)
				want, got := make([]float32, rows), make([]float32, rows)
				matVecGeneric(want, w, x, cols)
				SpMatVec(got, vals, idx, ptr, x)
				checkClose(t, fmt.Sprintf("%dx%d zero=%v", rows, cols, zero), got, want, cols)
				// A sub-range of rows, as the engine passes them.
				if rows > 2 {
					part := make([]float32, rows-2)
					SpMatVec(part, vals, idx, ptr[1:], x)
					for i := range part {
						if part[i] != got[i+1] {
							t.Fatalf("%dx%d: row %d is %v in a sub-range, %v in the whole", rows, cols, i+1, part[i], got[i+1])
						}
					}
				}
			}
		}
	})
}

func TestSp24MatVec(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	eachVariant(t, func(t *testing.T) {
		for _, s := range sparseShapes {
			for _, zero := range []float64{0, 0.6, 1} {
				rows, cols := s[0], s[1]
				w := sparseDense(rng, rows, cols, zero)
				vals, meta := to24(w, rows, cols)
				x := poisoned(rng, cols)
				want, got := make([]float32, rows), make([]float32, rows)
				matVecGeneric(want, w, x, cols)
				Sp24MatVec(got, vals, meta, x, cols)
				checkClose(t, fmt.Sprintf("%dx%d zero=%v", rows, cols, zero), got, want, cols)
				if rows > 2 {
					ch := Chunks24(cols)
					part := make([]float32, rows-2)
					Sp24MatVec(part, vals[ch*16:], meta[ch:], x, cols)
					for i := range part {
						if part[i] != got[i+1] {
							t.Fatalf("%dx%d: row %d is %v in a sub-range, %v in the whole", rows, cols, i+1, part[i], got[i+1])
						}
					}
				}
			}
		}
	})
}

// checkClose compares sums of n products of values in [-1, 1) to float32
// rounding of a different summation order.
func checkClose(t *testing.T, what string, got, want []float32, n int) {
	t.Helper()
	tol := 1e-5 * float64(n+1)
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > tol || math.IsNaN(float64(got[i])) {
			t.Fatalf("%s: out[%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}
