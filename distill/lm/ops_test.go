package lm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/shrinkml/shrink/internal/gradcheck"
)

// Each backward function is checked against central differences of an
// independent float64 evaluation of the same scalar objective: the
// reference is differentiated numerically (h = 1e-6, so the truncation error
// is ~1e-12), and the float32 gradient may differ from it only by float32
// rounding: 2e-5 relative to max(1, |gradient|).

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// dotOut is Σ r[i]·y[i] with y in float32, summed in float64.
func dotOut(r []float64, y []float32) float64 {
	var s float64
	for i := range r {
		s += r[i] * float64(y[i])
	}
	return s
}

// The float64 references.

func refLinear(x, w []float64, n, in, out int) []float64 {
	y := make([]float64, n*out)
	for t := range n {
		for j := range out {
			y[t*out+j] = gradcheck.Dot64(x[t*in:(t+1)*in], w[j*in:(j+1)*in])
		}
	}
	return y
}

func refRMSNorm(x, w []float64, n, d int, eps float64) []float64 {
	y := make([]float64, n*d)
	for t := range n {
		row := x[t*d : (t+1)*d]
		r := 1 / math.Sqrt(gradcheck.Dot64(row, row)/float64(d)+eps)
		for i, v := range row {
			y[t*d+i] = w[i] * v * r
		}
	}
	return y
}

// refRoPE rotates the first width columns of n rows with the float32 tables
// the code uses, so that both sides compute the same function.
func refRoPE(x []float64, n, stride, width, hd int, cos, sin []float32) []float64 {
	y := append([]float64(nil), x...)
	half := hd / 2
	for t := range n {
		for h := 0; h < width/hd; h++ {
			for i := range half {
				a, b := &y[t*stride+h*hd+2*i], &y[t*stride+h*hd+2*i+1]
				c, s := float64(cos[t*half+i]), float64(sin[t*half+i])
				x0, x1 := *a, *b
				*a, *b = x0*c-x1*s, x0*s+x1*c
			}
		}
	}
	return y
}

func refAttention(qkv []float64, n, heads, kvHeads, hd int) []float64 {
	qd, kvd := heads*hd, kvHeads*hd
	stride := qd + 2*kvd
	out := make([]float64, n*qd)
	for h := range heads {
		g := h / (heads / kvHeads)
		for t := range n {
			q := qkv[t*stride+h*hd : t*stride+(h+1)*hd]
			sc := make([]float64, t+1)
			m := math.Inf(-1)
			for j := range sc {
				sc[j] = gradcheck.Dot64(q, qkv[j*stride+qd+g*hd:j*stride+qd+(g+1)*hd]) / math.Sqrt(float64(hd))
				m = math.Max(m, sc[j])
			}
			var sum float64
			for j := range sc {
				sc[j] = math.Exp(sc[j] - m)
				sum += sc[j]
			}
			for j := range sc {
				v := qkv[j*stride+qd+kvd+g*hd:]
				for d := range hd {
					out[t*qd+h*hd+d] += sc[j] / sum * v[d]
				}
			}
		}
	}
	return out
}

func refSwiGLU(gu []float64, n, f int) []float64 {
	h := make([]float64, n*f)
	for t := range n {
		for i := range f {
			g, u := gu[2*t*f+i], gu[(2*t+1)*f+i]
			h[t*f+i] = g / (1 + math.Exp(-g)) * u
		}
	}
	return h
}

func refKL(z, tz []float64, k int, temp float64) float64 {
	var l float64
	for t := 0; t < len(z)/k; t++ {
		lq := gradcheck.RefLogSoftmax(z[t*k:(t+1)*k], temp)
		lp := gradcheck.RefLogSoftmax(tz[t*k:(t+1)*k], temp)
		for i := range lq {
			l += math.Exp(lp[i]) * (lp[i] - lq[i])
		}
	}
	return l
}

func gradCases() []gradcheck.Case {
	rng := rand.New(rand.NewPCG(1, 2))
	var cases []gradcheck.Case
	for _, sz := range [][3]int{{1, 1, 1}, {3, 5, 4}, {7, 17, 33}} {
		n, in, out := sz[0], sz[1], sz[2]
		r := gradcheck.RandSlice(rng, n*out, 1) // the upstream gradient
		cases = append(cases, gradcheck.Case{
			Name:   fmt.Sprintf("linear %dx%d->%d", n, in, out),
			Inputs: [][]float64{gradcheck.RandSlice(rng, n*in, 1), gradcheck.RandSlice(rng, out*in, 1)},
			Ref:    func(v [][]float64) float64 { return gradcheck.Dot64(r, refLinear(v[0], v[1], n, in, out)) },
			Grad: func(v [][]float32) (float64, [][]float32) {
				y := make([]float32, n*out)
				linearForward(y, v[0], v[1], n, in, out)
				wt := make([]float32, in*out)
				for j := range out {
					for i := range in {
						wt[i*out+j] = v[1][j*in+i]
					}
				}
				dx, dw := make([]float32, n*in), make([]float32, out*in)
				linearBackward(dx, dw, gradcheck.F32(r), v[0], wt, n, in, out, make([]float32, (in+out)*n))
				return dotOut(r, y), [][]float32{dx, dw}
			},
		})
	}
	{
		const vocab, d = 7, 5
		tokens := []int{3, 0, 6, 3, 3, 1}
		r := gradcheck.RandSlice(rng, len(tokens)*d, 1)
		cases = append(cases, gradcheck.Case{
			Name:   "embedding",
			Inputs: [][]float64{gradcheck.RandSlice(rng, vocab*d, 1)},
			Ref: func(v [][]float64) float64 {
				var s float64
				for t, tok := range tokens {
					s += gradcheck.Dot64(r[t*d:(t+1)*d], v[0][tok*d:(tok+1)*d])
				}
				return s
			},
			Grad: func(v [][]float32) (float64, [][]float32) {
				var s float64
				for t, tok := range tokens {
					s += dotOut(r[t*d:(t+1)*d], v[0][tok*d:(tok+1)*d])
				}
				de := make([]float32, vocab*d)
				embedBackward(de, gradcheck.F32(r), tokens, d)
				return s, [][]float32{de}
			},
		})
	}
	for _, sz := range [][2]int{{1, 1}, {4, 24}, {3, 64}} {
		n, d := sz[0], sz[1]
		r := gradcheck.RandSlice(rng, n*d, 1)
		const eps = 1e-5
		cases = append(cases, gradcheck.Case{
			Name:   fmt.Sprintf("rmsnorm %dx%d", n, d),
			Inputs: [][]float64{gradcheck.RandSlice(rng, n*d, 2), gradcheck.RandSlice(rng, d, 1.5)},
			Ref:    func(v [][]float64) float64 { return gradcheck.Dot64(r, refRMSNorm(v[0], v[1], n, d, eps)) },
			Grad: func(v [][]float32) (float64, [][]float32) {
				y, rs := make([]float32, n*d), make([]float32, n)
				rmsNormForward(y, rs, v[0], v[1], n, d, eps)
				dx, dw := make([]float32, n*d), make([]float32, d)
				rmsNormBackward(dx, dw, gradcheck.F32(r), v[0], v[1], rs, n, d, make([]float64, d))
				return dotOut(r, y), [][]float32{dx, dw}
			},
		})
	}
	for _, sz := range [][4]int{{1, 2, 2, 2}, {5, 12, 8, 4}, {9, 30, 24, 6}} {
		n, stride, width, hd := sz[0], sz[1], sz[2], sz[3]
		cos, sin, nsin := ropeTables(n, hd, 500)
		r := gradcheck.RandSlice(rng, n*stride, 1)
		cases = append(cases, gradcheck.Case{
			Name:   fmt.Sprintf("rope %d rows of %d, %d rotated in heads of %d", n, stride, width, hd),
			Inputs: [][]float64{gradcheck.RandSlice(rng, n*stride, 1)},
			Ref:    func(v [][]float64) float64 { return gradcheck.Dot64(r, refRoPE(v[0], n, stride, width, hd, cos, sin)) },
			Grad: func(v [][]float32) (float64, [][]float32) {
				y := append([]float32(nil), v[0]...)
				ropeRows(y, n, stride, width, hd, cos, sin)
				dx := gradcheck.F32(r)
				ropeRows(dx, n, stride, width, hd, cos, nsin)
				return dotOut(r, y), [][]float32{dx}
			},
		})
	}
	for _, sz := range [][4]int{{1, 1, 1, 2}, {5, 2, 1, 4}, {9, 3, 3, 2}, {11, 4, 2, 6}} {
		n, heads, kvHeads, hd := sz[0], sz[1], sz[2], sz[3]
		qd, w := heads*hd, (heads+2*kvHeads)*hd
		r := gradcheck.RandSlice(rng, n*qd, 1)
		cases = append(cases, gradcheck.Case{
			Name:   fmt.Sprintf("attention n=%d heads=%d kv=%d hd=%d", n, heads, kvHeads, hd),
			Inputs: [][]float64{gradcheck.RandSlice(rng, n*w, 1.5)},
			Ref:    func(v [][]float64) float64 { return gradcheck.Dot64(r, refAttention(v[0], n, heads, kvHeads, hd)) },
			Grad: func(v [][]float32) (float64, [][]float32) {
				a := newAttention(heads, kvHeads, hd, n)
				out, p := make([]float32, n*qd), make([]float32, heads*n*n)
				a.forward(out, p, v[0], n)
				dqkv := make([]float32, n*w)
				a.backward(dqkv, gradcheck.F32(r), v[0], p, n)
				return dotOut(r, out), [][]float32{dqkv}
			},
		})
	}
	for _, sz := range [][2]int{{1, 1}, {3, 17}} {
		n, f := sz[0], sz[1]
		r := gradcheck.RandSlice(rng, n*f, 1)
		gu := gradcheck.RandSlice(rng, 2*n*f, 4)
		if len(gu) >= 8 {
			copy(gu[len(gu)-4:], []float64{0, -90, 40, 1}) // σ from silu(g)/g at 0 and in the tails
		}
		cases = append(cases, gradcheck.Case{
			Name:   fmt.Sprintf("swiglu %dx%d", n, f),
			Inputs: [][]float64{gu},
			Ref:    func(v [][]float64) float64 { return gradcheck.Dot64(r, refSwiGLU(v[0], n, f)) },
			Grad: func(v [][]float32) (float64, [][]float32) {
				h, dgu := make([]float32, n*f), make([]float32, 2*n*f)
				swigluForward(h, v[0], n, f)
				ones := make([]float32, f)
				for i := range ones {
					ones[i] = 1
				}
				swigluBackward(dgu, gradcheck.F32(r), v[0], n, f, make([]float32, f), ones)
				return dotOut(r, h), [][]float32{dgu}
			},
		})
	}
	// A target whose float32 probability underflows is scored in float64,
	// and its gradient is still softmax - onehot.
	cases = append(cases, gradcheck.Case{
		Name:   "softmax cross-entropy, underflowing target",
		Inputs: [][]float64{{100, 0, -50, 3, 99}},
		Ref:    func(v [][]float64) float64 { return gradcheck.RefCE(v[0], []int{2}, 5) },
		Grad: func(v [][]float32) (float64, [][]float32) {
			dz := make([]float32, 5)
			f := softmaxCE(dz, v[0], []int{2}, 5, 1, make([]float32, 5))
			return f, [][]float32{dz}
		},
	})
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
				f := softmaxCE(dz, v[0], y, k, 1, make([]float32, k))
				return f, [][]float32{dz}
			},
		})
		for _, temp := range []float64{1, 4} {
			tz := f64(gradcheck.F32(gradcheck.RandSlice(rng, n*k, 6)))
			cases = append(cases, gradcheck.Case{
				Name:   fmt.Sprintf("KL T=%g %dx%d", temp, n, k),
				Inputs: [][]float64{gradcheck.RandSlice(rng, n*k, 8)},
				Ref:    func(v [][]float64) float64 { return refKL(v[0], tz, k, temp) },
				Grad: func(v [][]float32) (float64, [][]float32) {
					dz := make([]float32, n*k)
					f := klTemp(dz, v[0], gradcheck.F32(tz), n, k, temp, 1, make([]float64, k), make([]float64, k))
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
