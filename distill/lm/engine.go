package lm

import (
	"fmt"

	"github.com/shrinkml/shrink/inference/kernels"
)

// worker runs the forward and backward pass of a block of sequences of
// equal length, keeping every activation the backward pass needs. The
// linear layers run over all the block's rows at once; attention runs
// sequence by sequence.
type worker struct {
	m          *Model
	maxRows    int
	att        *attention
	cos, sin   []float32 // RoPE tables, [context][headDim/2]
	nsin       []float32
	acts       []layerActs
	xs         [][]float32 // residual stream entering each layer, and leaving the last: [layers+1][rows][dim]
	xnf, rf    []float32   // final norm output and its 1/rms
	logits     []float32   // [rows][vocab]
	dlogits    []float32
	dx, dxn    []float32 // [rows][dim]
	dqkv, datt []float32
	dgu, dh    []float32
	tmp        []float32 // transposes for linearBackward
	acc        []float64
	ls, lt     []float64
	ps         []float32 // a row of probabilities
	silu, ones []float32 // swigluBackward's scratch
	tokens     []int     // the block's input tokens, [rows]
	targets    []int     // [rows]
	tlogits    []float32
	loss       float64 // the block's summed loss
	grad       []float32
	sumsq      float64
	// inject, with a hidden-state loss, holds per layer the gradient of that
	// loss with respect to the residual stream leaving the layer, or nil.
	inject [][]float32
}

// layerActs are one layer's saved activations.
type layerActs struct {
	xn1, r1 []float32 // attention norm output, 1/rms
	qkv     []float32 // [rows][q+2kv], after RoPE
	p       []float32 // [sequences][heads][n][n]
	att     []float32 // [rows][q]
	xmid    []float32 // residual after attention
	xn2, r2 []float32
	gu, h   []float32 // [rows][2·hidden], [rows][hidden]
}

func newWorker(m *Model, maxSeqs, maxN int, grad bool) *worker {
	c := m.Config
	rows := maxSeqs * maxN
	d, hd := c.Dim, c.HeadDim()
	qd, kvd := c.Heads*hd, c.KVHeads*hd
	w := &worker{m: m, maxRows: rows, att: newAttention(c.Heads, c.KVHeads, hd, maxN)}
	w.cos, w.sin, w.nsin = ropeTables(c.Context, hd, c.RopeTheta)
	f := func(n int) []float32 { return make([]float32, n) }
	for range c.Layers {
		w.acts = append(w.acts, layerActs{xn1: f(rows * d), r1: f(rows), qkv: f(rows * (qd + 2*kvd)),
			p: f(maxSeqs * c.Heads * maxN * maxN), att: f(rows * qd), xmid: f(rows * d), xn2: f(rows * d), r2: f(rows),
			gu: f(rows * 2 * c.Hidden), h: f(rows * c.Hidden)})
	}
	for range c.Layers + 1 {
		w.xs = append(w.xs, f(rows*d))
	}
	w.xnf, w.rf, w.logits = f(rows*d), f(rows), f(rows*c.Vocab)
	w.ls, w.lt, w.ps = make([]float64, c.Vocab), make([]float64, c.Vocab), f(c.Vocab)
	w.tokens, w.targets = make([]int, rows), make([]int, rows)
	if grad {
		w.dlogits, w.dx, w.dxn = f(rows*c.Vocab), f(rows*d), f(rows*d)
		w.dqkv, w.datt = f(rows*(qd+2*kvd)), f(rows*qd)
		w.dgu, w.dh = f(rows*2*c.Hidden), f(rows*c.Hidden)
		widest := max(d, qd+2*kvd, 2*c.Hidden, c.Vocab, qd, c.Hidden)
		w.tmp = f(2 * widest * rows)
		w.acc = make([]float64, max(d, 1))
		w.grad = f(len(m.params))
		w.silu, w.ones = f(c.Hidden), f(c.Hidden)
		for i := range w.ones {
			w.ones[i] = 1
		}
	}
	return w
}

// forward runs the model over seqs sequences of n tokens each, w.tokens[:seqs·n],
// leaving the logits of every position in w.logits.
func (w *worker) forward(seqs, n int) {
	m := w.m
	c := m.Config
	rows := seqs * n
	d, hd := c.Dim, c.HeadDim()
	qd, kvd := c.Heads*hd, c.KVHeads*hd
	wd := qd + 2*kvd
	eps := float32(c.NormEps)
	x := w.xs[0][:rows*d]
	for t, tok := range w.tokens[:rows] {
		copy(x[t*d:(t+1)*d], m.embed[tok*d:(tok+1)*d])
	}
	for l := range c.Layers {
		L, A := &m.layers[l], &w.acts[l]
		xin := w.xs[l][:rows*d]
		rmsNormForward(A.xn1, A.r1, xin, L.attnNorm, rows, d, eps)
		linearForward(A.qkv, A.xn1, L.wqkv, rows, d, wd)
		for s := range seqs {
			blk := A.qkv[s*n*wd : (s+1)*n*wd]
			ropeRows(blk, n, wd, qd+kvd, hd, w.cos, w.sin)
			w.att.forward(A.att[s*n*qd:], A.p[s*c.Heads*n*n:], blk, n)
		}
		linearForward(A.xmid, A.att, L.wo, rows, qd, d)
		kernels.Add(A.xmid[:rows*d], xin)
		rmsNormForward(A.xn2, A.r2, A.xmid, L.ffnNorm, rows, d, eps)
		linearForward(A.gu, A.xn2, L.wgu, rows, d, 2*c.Hidden)
		swigluForward(A.h, A.gu, rows, c.Hidden)
		xout := w.xs[l+1][:rows*d]
		linearForward(xout, A.h, L.down, rows, c.Hidden, d)
		kernels.Add(xout, A.xmid[:rows*d])
	}
	rmsNormForward(w.xnf, w.rf, w.xs[c.Layers], m.norm, rows, d, eps)
	linearForward(w.logits, w.xnf, m.head, rows, d, c.Vocab)
}

// transposed holds wᵀ of every matrix, for the input gradients.
type transposed struct {
	wqkv, wo, wgu, down [][]float32
	head                []float32
}

func newTransposed(m *Model) *transposed {
	t := &transposed{head: make([]float32, len(m.head))}
	for _, L := range m.layers {
		t.wqkv = append(t.wqkv, make([]float32, len(L.wqkv)))
		t.wo = append(t.wo, make([]float32, len(L.wo)))
		t.wgu = append(t.wgu, make([]float32, len(L.wgu)))
		t.down = append(t.down, make([]float32, len(L.down)))
	}
	return t
}

// refresh recomputes part k of parts of every transposed matrix.
func (t *transposed) refresh(m *Model, k, parts int) {
	c := m.Config
	qd, kvd := c.Heads*c.HeadDim(), c.KVHeads*c.HeadDim()
	tr := func(dst, src []float32, rows, cols int) {
		lo, hi := k*rows/parts, (k+1)*rows/parts
		if hi > lo {
			kernels.Transpose(dst[lo:], rows, src[lo*cols:], cols, hi-lo, cols)
		}
	}
	for l, L := range m.layers {
		tr(t.wqkv[l], L.wqkv, qd+2*kvd, c.Dim)
		tr(t.wo[l], L.wo, c.Dim, qd)
		tr(t.wgu[l], L.wgu, 2*c.Hidden, c.Dim)
		tr(t.down[l], L.down, c.Dim, c.Hidden)
	}
	tr(t.head, m.head, c.Vocab, c.Dim)
}

// gradViews returns a Model whose views point into g, a gradient laid out
// as m.params.
func (m *Model) gradViews(g []float32) *Model {
	v := &Model{Config: m.Config, segs: m.segs, params: g}
	v.bind()
	return v
}

// backward sets w.grad to the gradient of the loss whose gradient with
// respect to the logits is in w.dlogits, after forward(seqs, n).
func (w *worker) backward(t *transposed, seqs, n int) {
	m := w.m
	c := m.Config
	G := m.gradViews(w.grad)
	rows := seqs * n
	d, hd := c.Dim, c.HeadDim()
	qd, kvd := c.Heads*hd, c.KVHeads*hd
	wd := qd + 2*kvd
	dx, dxn := w.dx[:rows*d], w.dxn[:rows*d]
	// The head, then the final norm.
	linearBackward(dxn, G.head, w.dlogits, w.xnf, t.head, rows, d, c.Vocab, w.tmp)
	clear(dx)
	rmsNormBackward(dx, G.norm, dxn, w.xs[c.Layers], m.norm, w.rf, rows, d, w.acc)
	for l := c.Layers - 1; l >= 0; l-- {
		L, A, GL := &m.layers[l], &w.acts[l], &G.layers[l]
		if w.inject != nil && w.inject[l] != nil {
			kernels.Add(dx, w.inject[l])
		}
		// Feed-forward block: xout = xmid + down(swiglu(gu(norm(xmid)))).
		linearBackward(w.dh, GL.down, dx, A.h, t.down[l], rows, c.Hidden, d, w.tmp)
		swigluBackward(w.dgu, w.dh, A.gu, rows, c.Hidden, w.silu, w.ones)
		linearBackward(dxn, GL.wgu, w.dgu, A.xn2, t.wgu[l], rows, d, 2*c.Hidden, w.tmp)
		rmsNormBackward(dx, GL.ffnNorm, dxn, A.xmid, L.ffnNorm, A.r2, rows, d, w.acc)
		// Attention block: xmid = xin + o(attention(rope(qkv(norm(xin))))).
		linearBackward(w.datt, GL.wo, dx, A.att, t.wo[l], rows, qd, d, w.tmp)
		for s := range seqs {
			dblk := w.dqkv[s*n*wd : (s+1)*n*wd]
			w.att.backward(dblk, w.datt[s*n*qd:(s+1)*n*qd], A.qkv[s*n*wd:(s+1)*n*wd], A.p[s*c.Heads*n*n:], n)
			ropeRows(dblk, n, wd, qd+kvd, hd, w.cos, w.nsin)
		}
		linearBackward(dxn, GL.wqkv, w.dqkv, A.xn1, t.wqkv[l], rows, d, wd, w.tmp)
		rmsNormBackward(dx, GL.attnNorm, dxn, w.xs[l], L.attnNorm, A.r1, rows, d, w.acc)
	}
	if !c.Tied {
		clear(G.embed)
	}
	embedBackward(G.embed, dx, w.tokens[:rows], d)
}

// Logits runs the model over tokens (at most Config.Context of them, from
// position 0) and returns the logits of every position, [len(tokens)][vocab].
// It allocates its buffers on every call; Evaluate and Train do not.
func (m *Model) Logits(tokens []int) ([]float32, error) {
	if err := m.checkTokens(tokens); err != nil {
		return nil, err
	}
	w := newWorker(m, 1, len(tokens), false)
	copy(w.tokens, tokens)
	w.forward(1, len(tokens))
	return w.logits[:len(tokens)*m.Config.Vocab], nil
}

func (m *Model) checkTokens(tokens []int) error {
	if len(tokens) == 0 || len(tokens) > m.Config.Context {
		return fmt.Errorf("lm: %d tokens; want 1 to the context length %d", len(tokens), m.Config.Context)
	}
	for i, t := range tokens {
		if t < 0 || t >= m.Config.Vocab {
			return fmt.Errorf("lm: token %d at index %d is outside the vocabulary of %d", t, i, m.Config.Vocab)
		}
	}
	return nil
}
