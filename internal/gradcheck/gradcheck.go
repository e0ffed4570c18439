// Package gradcheck checks hand-written gradients against central
// differences of float64 references; the tests of shrink's training engines
// (distill/train, distill/lm) share it.
package gradcheck

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Tol is the largest relative difference Check accepts between a gradient
// and its central difference.
const Tol = 2e-5

// Case is a scalar objective of some float64 inputs: Ref evaluates it in
// float64, and Grad returns the value and gradients the code under test
// computes from the inputs rounded to float32.
type Case struct {
	Name   string
	Inputs [][]float64
	Ref    func(in [][]float64) float64
	Grad   func(in [][]float32) (float64, [][]float32)
}

// Check compares the case's gradients with central differences of Ref.
func Check(t testing.TB, c Case) {
	t.Helper()
	// The float64 inputs are the float32 ones exactly, so both sides see
	// the same point.
	in32 := make([][]float32, len(c.Inputs))
	for i, v := range c.Inputs {
		in32[i] = F32(v)
		for j := range v {
			v[j] = float64(in32[i][j])
		}
	}
	f, grads := c.Grad(in32)
	want := c.Ref(c.Inputs)
	if d := math.Abs(f - want); d > 1e-5*math.Max(1, math.Abs(want)) {
		t.Errorf("value %g, float64 reference %g", f, want)
	}
	const h = 1e-6
	worst := 0.0
	for i, v := range c.Inputs {
		for j := range v {
			x := v[j]
			v[j] = x + h
			fp := c.Ref(c.Inputs)
			v[j] = x - h
			fm := c.Ref(c.Inputs)
			v[j] = x
			num := (fp - fm) / (2 * h)
			got := float64(grads[i][j])
			err := math.Abs(got-num) / math.Max(1, math.Abs(num))
			worst = math.Max(worst, err)
			if err > Tol {
				t.Errorf("input %d element %d: gradient %g, central difference %g", i, j, got, num)
				return
			}
		}
	}
	t.Logf("worst relative error %.2g", worst)
}

// RandSlice returns n seeded values uniform in [-scale, scale).
func RandSlice(rng *rand.Rand, n int, scale float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = scale * (2*rng.Float64() - 1)
	}
	return v
}

// F32 rounds v to float32.
func F32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// Dot64 is the float64 dot product of a and b.
func Dot64(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// RefLogSoftmax is log softmax(z/temp) in float64.
func RefLogSoftmax(z []float64, temp float64) []float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = math.Max(m, v/temp)
	}
	var s float64
	for _, v := range z {
		s += math.Exp(v/temp - m)
	}
	out := make([]float64, len(z))
	for i, v := range z {
		out[i] = v/temp - m - math.Log(s)
	}
	return out
}

// RefCE is the summed cross-entropy of the rows of z ([n, k] logits)
// against the labels y, in float64.
func RefCE(z []float64, y []int, k int) float64 {
	var l float64
	for t, label := range y {
		l -= RefLogSoftmax(z[t*k:(t+1)*k], 1)[label]
	}
	return l
}
