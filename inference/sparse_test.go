package inference

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/shrinkml/shrink/inference/kernels"
	"github.com/shrinkml/shrink/model"
)

// prunedMatrix returns a rows x cols matrix with a fraction zero of zeros at
// random, or, with nm, at most 2 non-zeros in every group of 4 columns.
func prunedMatrix(rng *rand.Rand, rows, cols int, zero float64, nm bool) []float32 {
	w := make([]float32, rows*cols)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			keep := rng.Float64() >= zero
			if nm {
				keep = (c%4 == r%4 || c%4 == (r+2)%4) && rng.Float64() >= zero
			}
			if keep && r%5 != 2 { // rows 2, 7, ... are empty
				w[r*cols+c] = rng.Float32()*2 - 1
			}
		}
	}
	return w
}

func TestLoadWeightsPicksSparse(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, tc := range []struct {
		zero float64
		nm   bool
		want string
	}{
		{0, false, "*inference.F32Weights"},
		{0.5, false, "*inference.F32Weights"},
		{0.9, false, "*inference.SparseWeights"},
		{1, false, "*inference.SparseWeights"},
		{0, true, "*inference.Sparse24Weights"},
		{0.8, true, "*inference.SparseWeights"},
	} {
		for _, s := range [][2]int{{1, 1}, {7, 13}, {33, 70}, {130, 257}} {
			rows, cols := s[0], s[1]
			data := prunedMatrix(rng, rows, cols, tc.zero, tc.nm)
			tn := model.NewF32("w", []int{rows, cols}, data)
			w, err := LoadWeights(tn)
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("%dx%d zero=%v nm=%v", rows, cols, tc.zero, tc.nm)
			want := tc.want
			if want == "*inference.Sparse24Weights" && !kernels.Sparse24Fast() {
				want = "*inference.F32Weights"
			}
			if got := fmt.Sprintf("%T", w); got != want && rows*cols > 16 {
				t.Errorf("%s: LoadWeights gave %s, want %s", name, got, want)
			}
			dense, _ := NewF32Weights(data, rows, cols)
			checkWeights(t, name, w, dense, rng)
		}
	}
}

// checkWeights compares w with the dense matrix: rows, products over every
// split of the rows, and MatMul against MatVec.
func checkWeights(t *testing.T, name string, w Weights, dense *F32Weights, rng *rand.Rand) {
	t.Helper()
	rows, cols := dense.Rows(), dense.Cols()
	row, want := make([]float32, cols), make([]float32, cols)
	for r := 0; r < rows; r++ {
		w.Row(row, r)
		dense.Row(want, r)
		for c := range row {
			if row[c] != want[c] {
				t.Fatalf("%s: Row(%d)[%d] = %v, want %v", name, r, c, row[c], want[c])
			}
		}
	}
	const n = 3 // below sparseDenseTokens: MatMul must give MatVec's bits
	x := make([]float32, n*cols)
	for i := range x {
		x[i] = rng.Float32()*2 - 1
	}
	whole, ref := make([]float32, rows), make([]float32, rows)
	w.MatVec(whole, x, 0, rows)
	dense.MatVec(ref, x, 0, rows)
	for r := range ref {
		if math.Abs(float64(whole[r]-ref[r])) > 1e-5*float64(cols) {
			t.Fatalf("%s: out[%d] = %v, dense %v", name, r, whole[r], ref[r])
		}
	}
	if _, ok := w.(*F32Weights); ok {
		return // its row groups and MatMul panels are tested elsewhere
	}
	// Any split gives the same bits, and MatMul those of MatVec.
	split := make([]float32, rows)
	for lo := 0; lo < rows; {
		hi := min(rows, lo+1+rng.IntN(9))
		w.MatVec(split, x, lo, hi)
		lo = hi
	}
	mm := make([]float32, n*rows)
	w.MatMul(mm, rows, x, n, 0, rows)
	one := make([]float32, rows)
	for r := range whole {
		if split[r] != whole[r] || mm[r] != whole[r] {
			t.Fatalf("%s: row %d: %v whole, %v split, %v in MatMul", name, r, whole[r], split[r], mm[r])
		}
	}
	for tk := 1; tk < n; tk++ {
		w.MatVec(one, x[tk*cols:], 0, rows)
		for r := range one {
			if mm[tk*rows+r] != one[r] {
				t.Fatalf("%s: token %d row %d: MatMul %v, MatVec %v", name, tk, r, mm[tk*rows+r], one[r])
			}
		}
	}
}

func TestSparse24Weights(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, s := range [][2]int{{1, 3}, {7, 13}, {33, 70}, {130, 257}} {
		rows, cols := s[0], s[1]
		data := prunedMatrix(rng, rows, cols, 0.1, true)
		dense, _ := NewF32Weights(data, rows, cols)
		checkWeights(t, fmt.Sprintf("2:4 %dx%d", rows, cols), NewSparse24Weights(data, rows, cols), dense, rng)
	}
}

func TestLoadWeightsKeepsDenseView(t *testing.T) {
	tn := model.NewF32("w", []int{4, 8}, make([]float32, 32))
	tn.Data[0] = 1 // one non-zero weight: 31 of 32 zeros is sparse
	w, _ := LoadWeights(tn)
	if _, ok := w.(*SparseWeights); !ok {
		t.Fatalf("%T, want *SparseWeights", w)
	}
	data := make([]float32, 32)
	for i := range data {
		data[i] = float32(i + 1)
	}
	tn = model.NewF32("w", []int{4, 8}, data)
	w, _ = LoadWeights(tn)
	f, ok := w.(*F32Weights)
	if !ok {
		t.Fatalf("%T, want *F32Weights", w)
	}
	if p := &f.data[0]; (*[4]byte)(tn.Data[:4]) != (*[4]byte)(unsafeBytes(p)) {
		t.Error("a dense F32 matrix was copied")
	}
}

func unsafeBytes(p *float32) []byte { return unsafe.Slice((*byte)(unsafe.Pointer(p)), 4) }

func TestSparseMatMulDense(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	for _, nm := range []bool{false, true} {
		rows, cols, n := 70, 45, sparseDenseTokens+3
		data := prunedMatrix(rng, rows, cols, map[bool]float64{false: 0.9, true: 0}[nm], nm)
		w, _ := LoadWeights(model.NewF32("w", []int{rows, cols}, data))
		dense, _ := NewF32Weights(data, rows, cols)
		x := make([]float32, n*cols)
		for i := range x {
			x[i] = rng.Float32()*2 - 1
		}
		got, want := make([]float32, n*rows), make([]float32, n*rows)
		w.MatMul(got, rows, x, n, 0, rows)
		dense.MatMul(want, rows, x, n, 0, rows)
		for i := range want {
			if math.Abs(float64(got[i]-want[i])) > 1e-5*float64(cols) {
				t.Fatalf("%T: out[%d] = %v, dense %v", w, i, got[i], want[i])
			}
		}
	}
}
