package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/shrinkml/shrink/internal/gradcheck"
)

// Each backward function is checked against central differences of an
// independent float64 evaluation of the same scalar objective: the
// reference objective is differentiated numerically (h = 1e-6, so the
// truncation error is ~1e-12), and the float32 gradient may differ from it
// only by float32 rounding.

// awayFromZero moves values within 0.05 of zero out of the way, where ReLU
// has its kink.
func awayFromZero(v []float64) []float64 {
	for i, x := range v {
		if math.Abs(x) < 0.05 {
			v[i] = math.Copysign(0.05+math.Abs(x), x)
		}
	}
	return v
}

// refLinear returns x·wᵀ + b in float64.
func refLinear(x, w, b []float64, n, in, out int) []float64 {
	y := make([]float64, n*out)
	for t := range n {
		for j := range out {
			y[t*out+j] = gradcheck.Dot64(x[t*in:(t+1)*in], w[j*in:(j+1)*in]) + b[j]
		}
	}
	return y
}

func refAct(act Activation, z []float64) []float64 {
	a := make([]float64, len(z))
	for i, v := range z {
		if act == ReLU {
			a[i] = math.Max(v, 0)
		} else {
			a[i] = 0.5 * v * (1 + math.Erf(v/math.Sqrt2))
		}
	}
	return a
}

func refKL(z, p []float64, k int, temp float64) float64 {
	var l float64
	for t := 0; t < len(z)/k; t++ {
		lq := gradcheck.RefLogSoftmax(z[t*k:(t+1)*k], temp)
		for i, pi := range p[t*k : (t+1)*k] {
			if pi > 0 {
				l += pi * (math.Log(pi) - lq[i])
			}
		}
	}
	return l
}

// distribution returns n random probability rows of k classes.
func distribution(rng *rand.Rand, n, k int) []float64 {
	p := make([]float64, n*k)
	for t := range n {
		var s float64
		for i := range k {
			p[t*k+i] = rng.Float64() + 0.01
			s += p[t*k+i]
		}
		for i := range k {
			p[t*k+i] /= s
		}
	}
	return p
}

func gradCases() []gradcheck.Case {
	rng := rand.New(rand.NewPCG(1, 2))
	var cases []gradcheck.Case
	for _, sz := range [][3]int{{1, 1, 1}, {3, 5, 4}, {7, 17, 33}} {
		n, in, out := sz[0], sz[1], sz[2]
		r := gradcheck.RandSlice(rng, n*out, 1) // the upstream gradient
		cases = append(cases, gradcheck.Case{
			Name:   fmt.Sprintf("linear %dx%d->%d", n, in, out),
			Inputs: [][]float64{gradcheck.RandSlice(rng, n*in, 1), gradcheck.RandSlice(rng, out*in, 1), gradcheck.RandSlice(rng, out, 1)},
			Ref: func(v [][]float64) float64 {
				return gradcheck.Dot64(r, refLinear(v[0], v[1], v[2], n, in, out))
			},
			Grad: func(v [][]float32) (float64, [][]float32) {
				y := make([]float32, n*out)
				linearForward(y, v[0], v[1], v[2], n, in, out)
				var f float64
				for i := range y {
					f += r[i] * float64(y[i])
				}
				wt := make([]float32, in*out)
				for j := range out {
					for i := range in {
						wt[i*out+j] = v[1][j*in+i]
					}
				}
				dx, dw, db := make([]float32, n*in), make([]float32, out*in), make([]float32, out)
				linearBackward(dx, dw, db, gradcheck.F32(r), v[0], wt, n, in, out, make([]float32, (in+out)*n))
				return f, [][]float32{dx, dw, db}
			},
		})
	}
	for _, act := range []Activation{ReLU, GELU} {
		for _, scale := range []float64{1, 6} {
			z := awayFromZero(gradcheck.RandSlice(rng, 40, scale))
			r := gradcheck.RandSlice(rng, 40, 1)
			cases = append(cases, gradcheck.Case{
				Name:   fmt.Sprintf("%s ±%g", act, scale),
				Inputs: [][]float64{z},
				Ref:    func(v [][]float64) float64 { return gradcheck.Dot64(r, refAct(act, v[0])) },
				Grad: func(v [][]float32) (float64, [][]float32) {
					a, dz := make([]float32, len(v[0])), make([]float32, len(v[0]))
					act.forward(a, v[0])
					var f float64
					for i := range a {
						f += r[i] * float64(a[i])
					}
					act.backward(dz, gradcheck.F32(r), v[0])
					return f, [][]float32{dz}
				},
			})
		}
	}
	for _, sz := range [][2]int{{1, 2}, {5, 10}} {
		n, k := sz[0], sz[1]
		y := make([]int, n)
		for i := range y {
			y[i] = rng.IntN(k)
		}
		cases = append(cases, gradcheck.Case{
			Name:   fmt.Sprintf("softmax cross-entropy %dx%d", n, k),
			Inputs: [][]float64{gradcheck.RandSlice(rng, n*k, 4)},
			Ref:    func(v [][]float64) float64 { return gradcheck.RefCE(v[0], y, k) },
			Grad: func(v [][]float32) (float64, [][]float32) {
				dz := make([]float32, n*k)
				f := softmaxCE(dz, v[0], y, k, 1, make([]float64, k))
				return f, [][]float32{dz}
			},
		})
		for _, temp := range []float64{1, 4} {
			p := distribution(rng, n, k)
			cases = append(cases, gradcheck.Case{
				Name:   fmt.Sprintf("KL T=%g %dx%d", temp, n, k),
				Inputs: [][]float64{gradcheck.RandSlice(rng, n*k, 8)},
				Ref:    func(v [][]float64) float64 { return refKL(v[0], p, k, temp) },
				Grad: func(v [][]float32) (float64, [][]float32) {
					dz := make([]float32, n*k)
					f := klTemp(dz, v[0], gradcheck.F32(p), n, k, temp, 1, make([]float64, k))
					return f, [][]float32{dz}
				},
			})
		}
	}
	return cases
}

func TestOpGradients(t *testing.T) {
	for _, c := range gradCases() {
		t.Run(c.Name, func(t *testing.T) { gradcheck.Check(t, c) })
	}
}

// refNetworkLoss evaluates a network's mean loss over a batch in float64
// from a flat parameter vector laid out as Network.params.
func refNetworkLoss(sizes []int, act Activation, params []float64, x []float64, y []int, soft []float64, temp, alpha float64) float64 {
	n := len(y)
	cur := x
	off := 0
	for l := 0; l+1 < len(sizes); l++ {
		in, out := sizes[l], sizes[l+1]
		w := params[off : off+out*in]
		b := params[off+out*in : off+out*in+out]
		off += out*in + out
		cur = refLinear(cur, w, b, n, in, out)
		if l+2 < len(sizes) {
			cur = refAct(act, cur)
		}
	}
	k := sizes[len(sizes)-1]
	if soft == nil {
		return gradcheck.RefCE(cur, y, k) / float64(n)
	}
	return (alpha*temp*temp*refKL(cur, soft, k, temp) + (1-alpha)*gradcheck.RefCE(cur, y, k)) / float64(n)
}

// TestNetworkGradient checks the whole backward pass, shards and their sum
// included, against central differences of the network's float64 loss.
func TestNetworkGradient(t *testing.T) {
	for _, c := range []struct {
		act     Activation
		sizes   []int
		threads int
		distill bool
	}{
		{ReLU, []int{6, 5, 3}, 1, false},
		{GELU, []int{6, 9, 7, 4}, 1, false},
		{ReLU, []int{6, 9, 7, 4}, 3, false},
		{GELU, []int{6, 5, 4}, 2, true},
		{ReLU, []int{6, 9, 7, 4}, 3, true},
	} {
		name := fmt.Sprintf("%s %v threads=%d distill=%v", c.act, c.sizes, c.threads, c.distill)
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			net, err := NewNetwork(c.sizes, c.act, 5)
			if err != nil {
				t.Fatal(err)
			}
			for i := range net.params {
				net.params[i] = float32(2*rng.Float64() - 1) // biases too
			}
			const batch = 7
			in, k := c.sizes[0], c.sizes[len(c.sizes)-1]
			d := Data{X: gradcheck.F32(gradcheck.RandSlice(rng, batch*in, 1)), Y: make([]int, batch)}
			for i := range d.Y {
				d.Y[i] = rng.IntN(k)
			}
			var soft []float64
			opts := DefaultOptions()
			opts.Batch = batch
			if c.distill {
				soft = distribution(rng, batch, k)
				d.Soft = gradcheck.F32(soft)
				for i, v := range d.Soft {
					soft[i] = float64(v)
				}
				opts.Temperature, opts.Alpha = 3, 0.6
			}
			tr := newTrainer(net, opts, c.threads)
			idx := []int{0, 1, 2, 3, 4, 5, 6}
			loss, sumsq := tr.accumulate(d, idx)
			grad := tr.work[0].grad
			params := make([]float64, len(net.params))
			for i, v := range net.params {
				params[i] = float64(v)
			}
			x := make([]float64, len(d.X))
			for i, v := range d.X {
				x[i] = float64(v)
			}
			ref := func() float64 {
				return refNetworkLoss(c.sizes, c.act, params, x, d.Y, soft, opts.Temperature, opts.Alpha)
			}
			if want := ref(); math.Abs(loss-want) > 1e-5*math.Max(1, want) {
				t.Errorf("loss %g, float64 reference %g", loss, want)
			}
			var ss float64
			const h = 1e-6
			for i := range params {
				p := params[i]
				params[i] = p + h
				fp := ref()
				params[i] = p - h
				fm := ref()
				params[i] = p
				num := (fp - fm) / (2 * h)
				if d := math.Abs(float64(grad[i]) - num); d > 2e-5*math.Max(1, math.Abs(num)) {
					t.Fatalf("parameter %d: gradient %g, central difference %g", i, grad[i], num)
				}
				ss += float64(grad[i]) * float64(grad[i])
			}
			if math.Abs(ss-sumsq) > 1e-9*ss {
				t.Errorf("squared norm %g, want %g", sumsq, ss)
			}
		})
	}
}
