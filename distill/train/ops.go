package train

import (
	"math"

	"github.com/shrinkml/shrink/inference/kernels"
)

// The operations below are the pieces of an MLP's forward and backward pass.
// Each backward function is checked against central differences in
// ops_test.go. Matrices are row-major float32; the products run on
// kernels.MatMul, which computes Y = X·Wᵀ, so the backward products use
// transposed copies.

// linearForward sets y = x·wᵀ + b for n rows: x is [n, in], w [out, in]
// (PyTorch's nn.Linear layout) and y [n, out].
func linearForward(y, x, w, b []float32, n, in, out int) {
	kernels.MatMul(y, out, x, w, n, out, in)
	for t := range n {
		kernels.Add(y[t*out:(t+1)*out], b)
	}
}

// linearBackward sets, from dy = ∂L/∂y [n, out], the gradients of the
// weights dw = dyᵀ·x [out, in] and of the bias db = Σ_t dy[t] (summed in
// float64), and, when dx is not nil, of the input dx = dy·w [n, in]; wt is
// wᵀ [in, out]. scratch holds at least (in+out)*n floats.
func linearBackward(dx, dw, db, dy, x, wt []float32, n, in, out int, scratch []float32) {
	dyt, xt := scratch[:out*n], scratch[out*n:(out+in)*n]
	kernels.Transpose(dyt, n, dy, out, n, out)
	kernels.Transpose(xt, n, x, in, n, in)
	kernels.MatMul(dw, in, dyt, xt, out, in, n)
	for j := range out {
		var s float64
		for _, v := range dyt[j*n : (j+1)*n] {
			s += float64(v)
		}
		db[j] = float32(s)
	}
	if dx != nil {
		kernels.MatMul(dx, in, dy, wt, n, in, out)
	}
}

// Activation is the nonlinearity between the layers: "relu" or "gelu" (the
// exact erf form, as the inference engine runs it).
type Activation string

// The activations an MLP may use.
const (
	ReLU Activation = "relu"
	GELU Activation = "gelu"
)

// forward sets a = f(z).
func (act Activation) forward(a, z []float32) {
	a = a[:len(z)]
	switch act {
	case ReLU:
		for i, v := range z {
			a[i] = max(v, 0)
		}
	case GELU:
		// As inference.MLP: evaluated in float64 and rounded once, so a
		// trained model runs there with the same activations.
		for i, v := range z {
			f := float64(v)
			a[i] = float32(0.5 * f * (1 + math.Erf(f/math.Sqrt2)))
		}
	}
}

// backward sets dz = da·f'(z).
func (act Activation) backward(dz, da, z []float32) {
	dz, da = dz[:len(z)], da[:len(z)]
	switch act {
	case ReLU:
		for i, v := range z {
			if v > 0 {
				dz[i] = da[i]
			} else {
				dz[i] = 0
			}
		}
	case GELU:
		// d/dx x·Φ(x) = Φ(x) + x·φ(x).
		for i, v := range z {
			f := float64(v)
			d := 0.5*(1+math.Erf(f/math.Sqrt2)) + f*math.Exp(-0.5*f*f)/math.Sqrt(2*math.Pi)
			dz[i] = float32(float64(da[i]) * d)
		}
	}
}

// LogSoftmax sets out[i] = log softmax(z/t)[i], computed in float64.
func LogSoftmax(out []float64, z []float32, t float64) {
	m := math.Inf(-1)
	for _, v := range z {
		m = math.Max(m, float64(v)/t)
	}
	var s float64
	for _, v := range z {
		s += math.Exp(float64(v)/t - m)
	}
	lse := m + math.Log(s)
	for i, v := range z {
		out[i] = float64(v)/t - lse
	}
}

// softmaxCE returns Σ_t -log softmax(z[t])[y[t]] over the rows of z ([n, k]
// logits) and adds scale·(softmax(z[t]) - onehot(y[t])), its gradient times
// scale, to dz. ls is scratch of k float64s.
func softmaxCE(dz, z []float32, y []int, k int, scale float64, ls []float64) float64 {
	var loss float64
	for t, label := range y {
		row, d := z[t*k:(t+1)*k], dz[t*k:(t+1)*k]
		LogSoftmax(ls, row, 1)
		loss -= ls[label]
		for i, l := range ls {
			g := math.Exp(l)
			if i == label {
				g--
			}
			d[i] += float32(scale * g)
		}
	}
	return loss
}

// klTemp returns Σ_t KL(p[t] || softmax(z[t]/temp)) over the rows of z
// ([n, k] student logits), p being target distributions (a teacher's
// softmax at the same temperature), and adds scale·(softmax(z[t]/temp) -
// p[t])/temp, its gradient times scale, to dz. ls is scratch of k float64s.
func klTemp(dz, z, p []float32, n, k int, temp, scale float64, ls []float64) float64 {
	var loss float64
	for t := range n {
		row, d, pt := z[t*k:(t+1)*k], dz[t*k:(t+1)*k], p[t*k:(t+1)*k]
		LogSoftmax(ls, row, temp)
		for i, l := range ls {
			pi := float64(pt[i])
			if pi > 0 {
				loss += pi * (math.Log(pi) - l)
			}
			d[i] += float32(scale * (math.Exp(l) - pi) / temp)
		}
	}
	return loss
}

// SoftTargets returns softmax(z[t]/temp) for the rows of z ([n, k] logits),
// computed in float64 and rounded once: a teacher's targets for Data.Soft.
func SoftTargets(z []float32, k int, temp float64) []float32 {
	p := make([]float32, len(z))
	ls := make([]float64, k)
	for t := 0; t < len(z)/k; t++ {
		LogSoftmax(ls, z[t*k:(t+1)*k], temp)
		for i, l := range ls {
			p[t*k+i] = float32(math.Exp(l))
		}
	}
	return p
}
