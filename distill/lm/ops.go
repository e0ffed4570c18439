package lm

import (
	"math"

	"github.com/shrinkml/shrink/distill/train"
	"github.com/shrinkml/shrink/inference/kernels"
)

// The operations below are the pieces of a decoder's forward and backward
// pass. Each backward function is checked against central differences of a
// float64 reference in ops_test.go. Matrices are row-major float32; the
// products run on kernels.MatMul, which computes Y = X·Wᵀ, so the backward
// products work on transposed copies. The forward steps use the same kernels
// as inference.Llama (RMSNorm, RoPE, SoftmaxDiv, SwiGLU), so a trained model
// runs there with the same activations up to the order of summation.

// linearForward sets y = x·wᵀ for n rows: x is [n, in], w [out, in] and y
// [n, out].
func linearForward(y, x, w []float32, n, in, out int) {
	kernels.MatMul(y, out, x, w, n, out, in)
}

// linearBackward sets, from dy = ∂L/∂y [n, out], the weight gradient
// dw = dyᵀ·x [out, in] and, when dx is not nil, the input gradient
// dx = dy·w [n, in]; wt is wᵀ [in, out]. scratch holds at least (in+out)·n
// floats.
func linearBackward(dx, dw, dy, x, wt []float32, n, in, out int, scratch []float32) {
	dyt, xt := scratch[:out*n], scratch[out*n:(out+in)*n]
	kernels.Transpose(dyt, n, dy, out, n, out)
	kernels.Transpose(xt, n, x, in, n, in)
	kernels.MatMul(dw, in, dyt, xt, out, in, n)
	if dx != nil {
		kernels.MatMul(dx, in, dy, wt, n, in, out)
	}
}

// embedBackward adds each row of dx [len(tokens), d] to the embedding
// gradient row of its token.
func embedBackward(dEmbed, dx []float32, tokens []int, d int) {
	for t, tok := range tokens {
		kernels.Add(dEmbed[tok*d:(tok+1)*d], dx[t*d:(t+1)*d])
	}
}

// rmsNormForward sets each row of y to w ⊙ x·r with r = 1/√(mean(x²)+eps),
// as kernels.RMSNorm (and llama2.c) computes it, and stores r in rs.
func rmsNormForward(y, rs, x, w []float32, n, d int, eps float32) {
	for t := range n {
		row := x[t*d : (t+1)*d]
		kernels.RMSNorm(y[t*d:(t+1)*d], row, w, eps)
		var ss float32
		for _, v := range row {
			ss += float32(v * v)
		}
		rs[t] = 1 / float32(math.Sqrt(float64(ss/float32(d)+eps)))
	}
}

// rmsNormBackward adds ∂L/∂x to dx and sets the weight gradient dw from dy =
// ∂L/∂y: with g = w ⊙ dy, dx = r·g - x·r³·(g·x)/d and dw = Σ_t dy ⊙ x·r,
// summed in float64 (acc holds d float64s).
func rmsNormBackward(dx, dw, dy, x, w, rs []float32, n, d int, acc []float64) {
	acc = acc[:d]
	clear(acc)
	w = w[:d]
	for t := range n {
		xr, dyr, dxr := x[t*d:(t+1)*d], dy[t*d:(t+1)*d], dx[t*d:(t+1)*d]
		r := float64(rs[t])
		var s float64
		for i, v := range xr {
			g := float64(w[i]) * float64(dyr[i])
			s += g * float64(v)
			acc[i] += float64(dyr[i]) * float64(v) * r
		}
		c := r * r * r * s / float64(d)
		for i, v := range xr {
			dxr[i] += float32(r*float64(w[i])*float64(dyr[i]) - float64(v)*c)
		}
	}
	for i, v := range acc {
		dw[i] = float32(v)
	}
}

// ropeTables returns the cosines and sines of the RoPE angles of positions
// 0 to n-1, [n][headDim/2], as inference.Llama computes them: the angle is
// the float32 product pos·θ^(-2i/headDim), its cosine and sine computed in
// float64 and rounded once. nsin holds the negated sines, for the backward
// rotation.
func ropeTables(n, headDim int, theta float64) (cos, sin, nsin []float32) {
	half := headDim / 2
	inv := make([]float32, half)
	th := float32(theta)
	for i := range inv {
		e := float32(2*i) / float32(headDim)
		inv[i] = 1 / float32(math.Pow(float64(th), float64(e)))
	}
	cos, sin, nsin = make([]float32, n*half), make([]float32, n*half), make([]float32, n*half)
	for p := range n {
		for i, f := range inv {
			a := float64(float32(p) * f)
			cos[p*half+i] = float32(math.Cos(a))
			sin[p*half+i] = float32(math.Sin(a))
			nsin[p*half+i] = -sin[p*half+i]
		}
	}
	return cos, sin, nsin
}

// ropeRows rotates the first width floats of each of n rows, stride floats
// apart, head by head in the pair layout; row t gets position t's angles.
// With nsin in place of sin it is the backward pass, the inverse rotation.
func ropeRows(x []float32, n, stride, width, headDim int, cos, sin []float32) {
	half := headDim / 2
	for t := range n {
		kernels.RoPE(x[t*stride:t*stride+width], headDim, cos[t*half:(t+1)*half], sin[t*half:(t+1)*half], true)
	}
}

// swigluForward sets h = silu(g) ⊙ u for n rows of gu = [g | u], [n, 2f].
func swigluForward(h, gu []float32, n, f int) {
	for t := range n {
		row := h[t*f : (t+1)*f]
		copy(row, gu[2*t*f:(2*t+1)*f])
		kernels.SwiGLU(row, gu[(2*t+1)*f:(2*t+2)*f])
	}
}

// swigluBackward sets dgu = [dg | du] from dh: dg = dh·u·σ(g)(1 + g(1-σ(g)))
// = dh·u·(σ + silu(g)(1-σ)) and du = dh·silu(g). silu(g) comes from
// kernels.SwiGLU against a row of ones, as fast as the forward pass, and
// σ = silu(g)/g (1/2 at 0). silu and ones are scratch of f floats, ones all 1.
func swigluBackward(dgu, dh, gu []float32, n, f int, silu, ones []float32) {
	silu, ones = silu[:f], ones[:f]
	for t := range n {
		g, u := gu[2*t*f:(2*t+1)*f], gu[(2*t+1)*f:(2*t+2)*f]
		dg, du := dgu[2*t*f:(2*t+1)*f], dgu[(2*t+1)*f:(2*t+2)*f]
		d := dh[t*f : (t+1)*f]
		copy(silu, g)
		kernels.SwiGLU(silu, ones)
		u, dg, du, d = u[:len(g)], dg[:len(g)], du[:len(g)], d[:len(g)]
		sl := silu[:len(g)]
		for i, gv := range g {
			sv := sl[i]
			sig := float32(0.5)
			if gv != 0 {
				sig = sv / gv
			}
			dg[i] = d[i] * u[i] * (sig + sv*(1-sig))
			du[i] = d[i] * sv
		}
	}
}

// softmaxCE returns Σ_t -log softmax(z[t])[y[t]] over the rows of z ([n, k]
// logits), summed in float64, and adds scale·(softmax(z[t]) - onehot(y[t])),
// its gradient times scale, to dz unless dz is nil. The softmax is
// kernels.Softmax's, in float32; a row whose target probability underflows
// there is scored in float64 instead. p is scratch of k floats.
func softmaxCE(dz, z []float32, y []int, k int, scale float64, p []float32) float64 {
	var loss float64
	p = p[:k]
	sc := float32(scale)
	for t, label := range y {
		row := z[t*k : (t+1)*k]
		copy(p, row)
		kernels.Softmax(p)
		if pl := float64(p[label]); pl > 1e-30 {
			loss -= math.Log(pl)
		} else {
			loss += crossEntropy64(row, label)
		}
		if dz == nil {
			continue
		}
		d := dz[t*k : (t+1)*k]
		d = d[:len(p)]
		for i, v := range p {
			d[i] += sc * v
		}
		d[label] -= sc
	}
	return loss
}

// crossEntropy64 returns -log softmax(z)[label] computed in float64.
func crossEntropy64(z []float32, label int) float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = math.Max(m, float64(v))
	}
	var s float64
	for _, v := range z {
		s += math.Exp(float64(v) - m)
	}
	return m + math.Log(s) - float64(z[label])
}

// klTemp returns Σ_t KL(softmax(tz[t]/temp) || softmax(z[t]/temp)) over the
// rows of z ([n, k] student logits) and tz (the teacher's), and adds
// scale·(softmax(z[t]/temp) - softmax(tz[t]/temp))/temp, its gradient times
// scale, to dz. ls and lt are scratch of k float64s.
func klTemp(dz, z, tz []float32, n, k int, temp, scale float64, ls, lt []float64) float64 {
	var loss float64
	for t := range n {
		row, d := z[t*k:(t+1)*k], dz[t*k:(t+1)*k]
		train.LogSoftmax(ls, row, temp)
		train.LogSoftmax(lt, tz[t*k:(t+1)*k], temp)
		for i, l := range ls {
			p := math.Exp(lt[i])
			loss += p * (lt[i] - l)
			d[i] += float32(scale * (math.Exp(l) - p) / temp)
		}
	}
	return loss
}

// attention is causal grouped-query attention over one sequence of n
// tokens, head by head, with scratch for one head. Its input is the rows of
// qkv [n, q+2kv] after RoPE: head h's query is columns h·hd.., its key and
// value those of kv head h/(heads/kvHeads).
type attention struct {
	heads, kvHeads, hd int
	sqrtHD             float32

	qh, kh, vh, dh  []float32 // [n][hd]
	qt, kt, vt, dt  []float32 // [hd][n]
	dp, ds, pt, dst []float32 // [n][n]
	dqh, dkh, dvh   []float32 // [n][hd]
}

func newAttention(heads, kvHeads, hd, maxN int) *attention {
	a := &attention{heads: heads, kvHeads: kvHeads, hd: hd, sqrtHD: float32(math.Sqrt(float64(hd)))}
	for _, p := range []*[]float32{&a.qh, &a.kh, &a.vh, &a.dh, &a.qt, &a.kt, &a.vt, &a.dt, &a.dqh, &a.dkh, &a.dvh} {
		*p = make([]float32, maxN*hd)
	}
	for _, p := range []*[]float32{&a.dp, &a.ds, &a.pt, &a.dst} {
		*p = make([]float32, maxN*maxN)
	}
	return a
}

// gather copies hd columns from col of n rows stride apart into dst [n][hd].
func gather(dst, src []float32, n, stride, col, hd int) {
	for t := range n {
		copy(dst[t*hd:(t+1)*hd], src[t*stride+col:])
	}
}

// scatterAdd adds src [n][hd] to hd columns from col of n rows stride apart.
func scatterAdd(dst, src []float32, n, stride, col, hd int) {
	for t := range n {
		kernels.Add(dst[t*stride+col:t*stride+col+hd], src[t*hd:(t+1)*hd])
	}
}

// forward sets out [n, q] to the attention output and p [heads][n][n] to
// the attention weights (zero above the diagonal): p = softmax(q·kᵀ/√hd)
// over each causal prefix, out = p·v, with the score scaling and softmax of
// inference.Llama.
func (a *attention) forward(out, p, qkv []float32, n int) {
	hd, qd := a.hd, a.heads*a.hd
	stride := qd + 2*a.kvHeads*hd
	group := a.heads / a.kvHeads
	qh, kh, vh, vt := a.qh[:n*hd], a.kh[:n*hd], a.vh[:n*hd], a.vt[:n*hd]
	for h := range a.heads {
		g := h / group
		gather(qh, qkv, n, stride, h*hd, hd)
		gather(kh, qkv, n, stride, qd+g*hd, hd)
		ph := p[h*n*n : (h+1)*n*n]
		kernels.MatMul(ph, n, qh, kh, n, n, hd)
		for t := range n {
			row := ph[t*n : (t+1)*n]
			kernels.SoftmaxDiv(row[:t+1], a.sqrtHD)
			clear(row[t+1:])
		}
		// Gathered first: kernels.Transpose of a strided source with a
		// multiple of 16 rows slices past its end (a kernels bug).
		gather(vh, qkv, n, stride, qd+a.kvHeads*hd+g*hd, hd)
		kernels.Transpose(vt, n, vh, hd, n, hd)
		kernels.MatMul(out[h*hd:], qd, ph, vt, n, hd, n)
	}
}

// backward sets dqkv [n, q+2kv] to the gradient with respect to the rows of
// qkv (after RoPE) from dout = ∂L/∂out [n, q] and the forward's p.
func (a *attention) backward(dqkv, dout, qkv, p []float32, n int) {
	hd, qd := a.hd, a.heads*a.hd
	kvd := a.kvHeads * hd
	stride := qd + 2*kvd
	group := a.heads / a.kvHeads
	for t := range n {
		clear(dqkv[t*stride : (t+1)*stride])
	}
	qh, kh, vh, dh := a.qh[:n*hd], a.kh[:n*hd], a.vh[:n*hd], a.dh[:n*hd]
	qt, kt, dt := a.qt[:n*hd], a.kt[:n*hd], a.dt[:n*hd]
	dp, ds, pt, dst := a.dp[:n*n], a.ds[:n*n], a.pt[:n*n], a.dst[:n*n]
	dqh, dkh, dvh := a.dqh[:n*hd], a.dkh[:n*hd], a.dvh[:n*hd]
	scale := 1 / float64(a.sqrtHD)
	for h := range a.heads {
		g := h / group
		ph := p[h*n*n : (h+1)*n*n]
		gather(qh, qkv, n, stride, h*hd, hd)
		gather(kh, qkv, n, stride, qd+g*hd, hd)
		gather(vh, qkv, n, stride, qd+kvd+g*hd, hd)
		gather(dh, dout, n, qd, h*hd, hd)
		// dP = dO·vᵀ and dv = Pᵀ·dO.
		kernels.MatMul(dp, n, dh, vh, n, n, hd)
		kernels.Transpose(pt, n, ph, n, n, n)
		kernels.Transpose(dt, n, dh, hd, n, hd)
		kernels.MatMul(dvh, hd, pt, dt, n, hd, n)
		scatterAdd(dqkv, dvh, n, stride, qd+kvd+g*hd, hd)
		// Through the softmax: dS = P ⊙ (dP - rowsum(P ⊙ dP)), then the 1/√hd.
		for t := range n {
			pr, dpr, dsr := ph[t*n:t*n+t+1], dp[t*n:t*n+t+1], ds[t*n:(t+1)*n]
			var s float64
			for j, v := range pr {
				s += float64(v) * float64(dpr[j])
			}
			for j, v := range pr {
				dsr[j] = float32(float64(v) * (float64(dpr[j]) - s) * scale)
			}
			clear(dsr[t+1:])
		}
		// dq = dS·k and dk = dSᵀ·q.
		kernels.Transpose(kt, n, kh, hd, n, hd)
		kernels.MatMul(dqh, hd, ds, kt, n, hd, n)
		scatterAdd(dqkv, dqh, n, stride, h*hd, hd)
		kernels.Transpose(dst, n, ds, n, n, n)
		kernels.Transpose(qt, n, qh, hd, n, hd)
		kernels.MatMul(dkh, hd, dst, qt, n, hd, n)
		scatterAdd(dqkv, dkh, n, stride, qd+g*hd, hd)
	}
}
