package calib

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// DefaultDamp is the dampening GPTQ adds to H's diagonal before inverting
// it, as a fraction of the mean diagonal: 1%, the reference code's percdamp.
const DefaultDamp = 0.01

// MaxDamp is the largest dampening InverseCholesky tries: from the requested
// fraction it multiplies by 10 until H + λI factorizes or this is passed.
const MaxDamp = 10.0

// InverseFactor is the upper Cholesky factor U of (H + λI)⁻¹ = UᵀU, which
// GPTQ and SparseGPT propagate a column's error through: row j of U, divided
// by U[j][j], spreads column j's error over the columns after it.
type InverseFactor struct {
	U *mat.TriDense
	// Damp is the dampening used, as a fraction of H's mean diagonal; it is
	// larger than asked when the smaller one did not factorize. Lambda is the
	// value added to the diagonal.
	Damp, Lambda float64
	// Dead lists the columns whose diagonal H_jj is 0: inputs that were
	// always zero. As in the GPTQ reference code, their diagonal counts as 1
	// (so H stays invertible), and the caller should zero those weights,
	// which never reach the output.
	Dead []int
}

// InverseCholesky factors (H + λI)⁻¹ for λ = damp × mean(diag H), raising damp
// tenfold (up to MaxDamp) while H + λI is not numerically positive definite.
// h is not modified.
func InverseCholesky(h *mat.SymDense, damp float64) (*InverseFactor, error) {
	d := h.SymmetricDim()
	if damp <= 0 || math.IsNaN(damp) {
		return nil, fmt.Errorf("calib: dampening %g: must be positive", damp)
	}
	f := &InverseFactor{}
	var mean float64
	for j := range d {
		v := h.At(j, j)
		if !(v >= 0) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("calib: Hessian diagonal %d is %g", j, v)
		}
		if v == 0 {
			f.Dead = append(f.Dead, j)
			v = 1
		}
		mean += v
	}
	mean /= float64(d)
	// Reversing the order makes an upper factor of the inverse from a lower
	// factor of H: if JHJ = LLᵀ (J the reversal), then H⁻¹ = UᵀU with
	// U = J L⁻¹ J. One Cholesky and one triangular inverse, instead of the
	// reference's Cholesky, inverse and second Cholesky; and reversing L⁻¹'s
	// row-major data end to end is U's, so no copy is made.
	dead := make([]bool, d)
	for _, j := range f.Dead {
		dead[j] = true
	}
	raw := h.RawSymmetric()
	for frac := damp; frac <= MaxDamp*(1+1e-9); frac *= 10 {
		lambda := frac * mean
		a := mat.NewSymDense(d, nil)
		ar := a.RawSymmetric()
		for i := range d {
			for j := i; j < d; j++ {
				v := raw.Data[i*raw.Stride+j]
				if i == j {
					if dead[i] {
						v = 1
					}
					v += lambda
				}
				// (i, j) of H is (d-1-j, d-1-i) of JHJ, upper triangle.
				ar.Data[(d-1-j)*ar.Stride+d-1-i] = v
			}
		}
		var chol mat.Cholesky
		ok := chol.Factorize(a)
		a = nil
		if !ok {
			continue
		}
		l := mat.NewTriDense(d, mat.Lower, nil)
		chol.LTo(l)
		chol.Reset()
		if err := l.InverseTri(l); err != nil {
			if _, ok := err.(mat.Condition); !ok {
				continue
			}
		}
		lr := l.RawTriangular()
		data := lr.Data[:d*d]
		if lr.Stride != d {
			data = make([]float64, d*d)
			for i := range d {
				copy(data[i*d:i*d+i+1], lr.Data[i*lr.Stride:])
			}
		}
		finite := true
		for i := range d {
			for _, v := range data[i*d : i*d+i+1] {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					finite = false
				}
			}
		}
		if !finite {
			continue
		}
		slices.Reverse(data)
		f.U, f.Damp, f.Lambda = mat.NewTriDense(d, mat.Upper, data), frac, lambda
		return f, nil
	}
	return nil, fmt.Errorf("calib: the Hessian (order %d) does not factorize even with dampening %g of its mean diagonal", d, MaxDamp)
}

// ActOrder returns the columns by decreasing H_jj, ties in column order: the
// order GPTQ's --act-order processes them in, most active inputs first.
func ActOrder(h *mat.SymDense) []int {
	perm := make([]int, h.SymmetricDim())
	for i := range perm {
		perm[i] = i
	}
	slices.SortStableFunc(perm, func(a, b int) int { return cmp.Compare(h.At(b, b), h.At(a, a)) })
	return perm
}

// Permute returns P with P[i][j] = H[perm[i]][perm[j]].
func Permute(h *mat.SymDense, perm []int) *mat.SymDense {
	d := len(perm)
	p := mat.NewSymDense(d, nil)
	for i := range d {
		for j := i; j < d; j++ {
			p.SetSym(i, j, h.At(perm[i], perm[j]))
		}
	}
	return p
}
