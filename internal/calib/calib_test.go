package calib

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func TestWindows(t *testing.T) {
	text := make([]int, 1000)
	for i := range text {
		text[i] = 10 + i
	}
	for _, tc := range []struct {
		name           string
		n, length, bos int
	}{
		{"bos", 8, 64, 1},
		{"no bos", 8, 64, -1},
		{"exactly fits", 10, 100, -1},
		{"exactly fits with bos", 10, 101, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := Windows(text, tc.n, tc.length, tc.bos, 7)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := Windows(text, tc.n, tc.length, tc.bos, 7)
			other, _ := Windows(text, tc.n, tc.length, tc.bos, 8)
			if len(w) != tc.n {
				t.Fatalf("%d windows, want %d", len(w), tc.n)
			}
			lastEnd := 0
			for i, s := range w {
				if len(s) != tc.length || !slices.Equal(s, again[i]) {
					t.Fatalf("window %d: length %d (want %d) or not deterministic", i, len(s), tc.length)
				}
				body := s
				if tc.bos >= 0 {
					if s[0] != tc.bos {
						t.Fatalf("window %d starts with %d, want BOS", i, s[0])
					}
					body = s[1:]
				}
				for j := 1; j < len(body); j++ {
					if body[j] != body[j-1]+1 {
						t.Fatalf("window %d is not consecutive text", i)
					}
				}
				if start := body[0] - 10; start < lastEnd {
					t.Fatalf("window %d overlaps the one before", i)
				} else {
					lastEnd = start + len(body)
				}
			}
			if tc.n*tc.length < 1000 && slices.EqualFunc(w, other, slices.Equal) {
				t.Errorf("seed 7 and 8 chose the same windows")
			}
		})
	}
	_, err := Windows(text, 20, 64, 1, 1)
	if err == nil || !strings.Contains(err.Error(), "calibration text has 1000 tokens; 20 windows of 64 need at least 1260") {
		t.Errorf("short text: %v", err)
	}
	if _, err := Windows(text, 0, 64, 1, 1); err == nil {
		t.Errorf("no windows: want an error")
	}
}

func TestHessian(t *testing.T) {
	for _, tc := range []struct{ cols, rows, chunk, threads int }{
		{1, 1, 1, 1}, {7, 3, 3, 1}, {33, 300, 128, 2}, {130, 257, 100, 3}, {200, 129, 129, 4},
	} {
		rng := rand.New(rand.NewPCG(uint64(tc.cols), uint64(tc.rows)))
		x := make([]float32, tc.rows*tc.cols)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		for j := 0; j < tc.cols; j += 5 {
			for r := range tc.rows {
				x[r*tc.cols+j] *= 100 // uneven scales, as real activations have
			}
		}
		h := NewHessian(tc.cols, tc.threads)
		h1 := NewHessian(tc.cols, 1)
		for r := 0; r < tc.rows; r += tc.chunk {
			n := min(tc.chunk, tc.rows-r)
			h.Add(x[r*tc.cols:(r+n)*tc.cols], n)
			h1.Add(x[r*tc.cols:(r+n)*tc.cols], n)
		}
		if h.Rows() != tc.rows {
			t.Fatalf("Rows %d, want %d", h.Rows(), tc.rows)
		}
		got, one := h.Sym(), h1.Sym()
		norms := h.ColumnNorms()
		for i := range tc.cols {
			var sq float64
			for r := range tc.rows {
				sq += float64(x[r*tc.cols+i]) * float64(x[r*tc.cols+i])
			}
			if math.Abs(norms[i]-math.Sqrt(sq)) > 1e-5*math.Sqrt(sq) {
				t.Errorf("%+v: norm %d = %g, want %g", tc, i, norms[i], math.Sqrt(sq))
			}
			for j := range tc.cols {
				var want, scale float64
				for r := range tc.rows {
					p := float64(x[r*tc.cols+i]) * float64(x[r*tc.cols+j])
					want += p
					scale += math.Abs(p)
				}
				want *= 2 / float64(tc.rows)
				scale *= 2 / float64(tc.rows)
				if g := got.At(i, j); math.Abs(g-want) > 1e-5*scale {
					t.Fatalf("%+v: H[%d][%d] = %g, want %g", tc, i, j, g, want)
				}
				if got.At(i, j) != one.At(i, j) {
					t.Fatalf("%+v: H[%d][%d] depends on the thread count", tc, i, j)
				}
			}
		}
	}
}

// checkFactor verifies UᵀU = (H + λI)⁻¹ with U upper triangular.
func checkFactor(t *testing.T, h *mat.SymDense, f *InverseFactor, tol float64) {
	t.Helper()
	d := h.SymmetricDim()
	a := mat.NewDense(d, d, nil)
	for i := range d {
		for j := range d {
			a.Set(i, j, h.At(i, j))
		}
	}
	for _, j := range f.Dead {
		a.Set(j, j, 1)
	}
	for j := range d {
		a.Set(j, j, a.At(j, j)+f.Lambda)
	}
	var utu, prod mat.Dense
	utu.Mul(f.U.T(), f.U)
	prod.Mul(&utu, a)
	for i := range d {
		for j := range d {
			want := 0.0
			if i == j {
				want = 1
			}
			if math.Abs(prod.At(i, j)-want) > tol {
				t.Fatalf("(UᵀU)(H+λI)[%d][%d] = %g, want %g", i, j, prod.At(i, j), want)
			}
			if j < i && f.U.At(i, j) != 0 {
				t.Fatalf("U[%d][%d] = %g below the diagonal", i, j, f.U.At(i, j))
			}
		}
	}
}

func TestInverseCholesky(t *testing.T) {
	// A known SPD matrix: (H + 0.01·mean·I)⁻¹ = UᵀU, and its upper factor
	// matches the reference's two-Cholesky route.
	h := mat.NewSymDense(3, []float64{4, 2, 0.6, 2, 5, 1, 0.6, 1, 3})
	f, err := InverseCholesky(h, DefaultDamp)
	if err != nil {
		t.Fatal(err)
	}
	if f.Damp != DefaultDamp || math.Abs(f.Lambda-0.04) > 1e-15 || len(f.Dead) != 0 {
		t.Errorf("damp %g lambda %g dead %v, want 0.01, 0.04, none", f.Damp, f.Lambda, f.Dead)
	}
	checkFactor(t, h, f, 1e-12)
	a := mat.NewSymDense(3, nil)
	a.CopySym(h)
	for j := range 3 {
		a.SetSym(j, j, a.At(j, j)+0.04)
	}
	var c1, c2 mat.Cholesky
	c1.Factorize(a)
	var inv mat.SymDense
	if err := c1.InverseTo(&inv); err != nil {
		t.Fatal(err)
	}
	c2.Factorize(&inv)
	var ref mat.TriDense
	c2.UTo(&ref)
	if !mat.EqualApprox(&ref, f.U, 1e-12) {
		t.Errorf("U = %v, want %v", mat.Formatted(f.U), mat.Formatted(&ref))
	}

	for _, tc := range []struct {
		name     string
		h        []float64
		damp     float64
		wantDamp float64
		dead     []int
	}{
		// Eigenvalues 2.05 and -0.05: 1% of the mean diagonal is not enough,
		// 10% is (float32 products can leave a Hessian this indefinite).
		{"indefinite", []float64{1, 1.05, 1.05, 1}, 0.01, 0.1, nil},
		// Rank one, so singular: 1% makes it definite.
		{"singular", []float64{1, 1, 1, 1}, 0.01, 0.01, nil},
		// A dead input: its diagonal counts as 1.
		{"dead column", []float64{2, 0, 1, 0, 0, 0, 1, 0, 2}, 0.01, 0.01, []int{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := int(math.Sqrt(float64(len(tc.h))))
			h := mat.NewSymDense(d, tc.h)
			f, err := InverseCholesky(h, tc.damp)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(f.Damp-tc.wantDamp) > 1e-12 || !slices.Equal(f.Dead, tc.dead) {
				t.Errorf("damp %g dead %v, want %g %v", f.Damp, f.Dead, tc.wantDamp, tc.dead)
			}
			checkFactor(t, h, f, 1e-9)
		})
	}
	if _, err := InverseCholesky(mat.NewSymDense(2, []float64{1, 100, 100, 1}), 0.01); err == nil {
		t.Errorf("a hopelessly indefinite H factorized")
	}
}

func TestActOrder(t *testing.T) {
	h := mat.NewSymDense(4, []float64{1, 0, 0, 0, 0, 3, 0.5, 0, 0, 0.5, 1, 0, 0, 0, 0, 2})
	perm := ActOrder(h)
	if !slices.Equal(perm, []int{1, 3, 0, 2}) {
		t.Fatalf("ActOrder = %v", perm)
	}
	p := Permute(h, perm)
	if p.At(0, 0) != 3 || p.At(0, 3) != 0.5 || p.At(3, 3) != 1 {
		t.Errorf("Permute = %v", mat.Formatted(p))
	}
}
