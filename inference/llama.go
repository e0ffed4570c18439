// Package inference runs models on the CPU: the llama family of decoders
// (Llama, Mistral, Qwen2, SmolLM, TinyLlama, llama2.c) with a KV cache, MLP
// classifiers, and token sampling. It is the engine shrink judges every
// compressed model with, so it favours exact, reproducible numerics: results
// do not depend on the thread count.
package inference

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/shrinkml/shrink/inference/kernels"
	"github.com/shrinkml/shrink/model"
)

// Options tunes an engine.
type Options struct {
	// Threads is how many threads run each operation; 0 means every core Go
	// may use (runtime.NumCPU, or GOMAXPROCS when that is lower).
	Threads int
	// KVCache is how a llama model's States store attention keys and
	// values; the zero value is KVF32.
	KVCache KVCache
}

// KVCache is the storage type of a State's attention keys and values.
type KVCache uint8

const (
	// KVF32 keeps keys and values in float32: attention is exact, as in
	// llama2.c's run.c and the Hugging Face reference implementation.
	KVF32 KVCache = iota
	// KVF16 rounds them to IEEE half precision (nearest even), llama.cpp's
	// default: half the cache's memory, and half the bytes that decode's
	// attention reads per token, for scores off by the rounding of keys
	// and values to 11 significant bits.
	KVF16
)

// KVCacheNames are the names ParseKVCache accepts, in KVCache order.
var KVCacheNames = []string{"f32", "f16"}

func (k KVCache) String() string {
	if int(k) < len(KVCacheNames) {
		return KVCacheNames[k]
	}
	return fmt.Sprintf("KVCache(%d)", uint8(k))
}

// ParseKVCache returns the KVCache named s ("f32" or "f16").
func ParseKVCache(s string) (KVCache, error) {
	for i, n := range KVCacheNames {
		if s == n {
			return KVCache(i), nil
		}
	}
	return 0, fmt.Errorf("unknown KV cache type %q (want f32 or f16)", s)
}

func (o Options) threads() int {
	if o.Threads <= 0 {
		return max(1, min(runtime.NumCPU(), runtime.GOMAXPROCS(0)))
	}
	return o.Threads
}

// prefillChunk is the most tokens one batched step of Forward processes; longer
// inputs run in chunks of this size, which bounds a State's scratch memory.
const prefillChunk = 128

// Llama is a llama-family decoder ready to run. Its weights are shared by all
// the States it creates; one Forward runs at a time (calls are serialized).
type Llama struct {
	cfg                                   model.Config
	dim, qDim, kvDim, ffn, vocab, headDim int
	heads, kvHeads                        int
	eps                                   float32
	sqrtHeadDim                           float32
	invFreq                               []float32 // RoPE frequency of each pair
	pairs                                 bool

	embed  Weights
	layers []layer
	norm   []float32
	head   Weights             // the embedding itself when tied
	mats   map[string]*Weights // the replaceable matrices by tensor name (SetWeights)

	threads int
	kvCache KVCache
	minWork int // see minParallelWork; tests lower it to exercise the pool
	pool    *pool
	mu      sync.Mutex
	closed  bool
}

type layer struct {
	attnNorm, ffnNorm []float32
	wq, wk, wv, wo    Weights
	bq, bk, bv        []float32 // nil without QKV biases
	gate, up, down    Weights
}

// NewLlama prepares m to run. F32, Q8_0, Q4_0 and Q4_1 weights are used in
// place; other dtypes are decoded to F32 once (see LoadWeights). m must stay
// open while the Llama is in use. Close the Llama to stop its worker threads.
func NewLlama(m *model.Model, opts Options) (*Llama, error) {
	cfg := m.Config
	src := sourceName(m)
	if cfg.Arch != "llama" {
		return nil, fmt.Errorf("inference %s: architecture %q is not a llama-family decoder", src, cfg.Arch)
	}
	switch cfg.HFArchitecture {
	case "", "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM":
	default:
		return nil, fmt.Errorf("inference %s: architecture %s is not supported", src, cfg.HFArchitecture)
	}
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("inference %s: %w", src, err)
	}
	if cfg.RopeLayout != model.RopePairs && cfg.RopeLayout != model.RopeHalf {
		return nil, fmt.Errorf("inference %s: unknown RoPE layout %d", src, cfg.RopeLayout)
	}
	if opts.KVCache > KVF16 {
		return nil, fmt.Errorf("inference %s: unknown %v", src, opts.KVCache)
	}
	l := &Llama{
		cfg:     cfg,
		dim:     cfg.HiddenSize,
		qDim:    cfg.NumHeads * cfg.HeadDim,
		kvDim:   cfg.KVDim(),
		ffn:     cfg.IntermediateSize,
		vocab:   cfg.VocabSize,
		headDim: cfg.HeadDim,
		heads:   cfg.NumHeads,
		kvHeads: cfg.NumKVHeads,
		eps:     float32(cfg.RMSNormEps),
		pairs:   cfg.RopeLayout == model.RopePairs,
		threads: opts.threads(),
		kvCache: opts.KVCache,
		minWork: minParallelWork,
	}
	// As run.c: sqrtf(head_size), and freq = 1.0f / powf(theta, 2i / (float)head_size),
	// all in float32 (glibc's powf is correctly rounded, as is this float64 pow
	// rounded once to float32, except in astronomically rare ties).
	l.sqrtHeadDim = float32(math.Sqrt(float64(l.headDim)))
	theta := float32(cfg.RopeTheta)
	l.invFreq = make([]float32, l.headDim/2)
	for i := range l.invFreq {
		e := float32(2*i) / float32(l.headDim)
		l.invFreq[i] = 1 / float32(math.Pow(float64(theta), float64(e)))
	}

	var err error
	wrap := func(e error) error { return fmt.Errorf("inference %s: %w", src, e) }
	if l.embed, err = loadMatrix(m, model.TokenEmbedding, l.vocab, l.dim); err != nil {
		return nil, wrap(err)
	}
	l.layers = make([]layer, cfg.NumLayers)
	l.mats = make(map[string]*Weights)
	for i := range l.layers {
		L := &l.layers[i]
		name := func(s string) string { return model.LayerTensor(i, s) }
		type vector struct {
			dst  *[]float32
			name string
			n    int
		}
		vecs := []vector{{&L.attnNorm, model.AttnNorm, l.dim}, {&L.ffnNorm, model.FFNNorm, l.dim}}
		if cfg.QKVBias {
			vecs = append(vecs, vector{&L.bq, model.AttnQB, l.qDim}, vector{&L.bk, model.AttnKB, l.kvDim},
				vector{&L.bv, model.AttnVB, l.kvDim})
		}
		for _, v := range vecs {
			if *v.dst, err = loadVector(m, name(v.name), v.n); err != nil {
				return nil, wrap(err)
			}
		}
		mats := []struct {
			dst        *Weights
			name       string
			rows, cols int
		}{
			{&L.wq, model.AttnQ, l.qDim, l.dim}, {&L.wk, model.AttnK, l.kvDim, l.dim},
			{&L.wv, model.AttnV, l.kvDim, l.dim}, {&L.wo, model.AttnO, l.dim, l.qDim},
			{&L.gate, model.FFNGate, l.ffn, l.dim}, {&L.up, model.FFNUp, l.ffn, l.dim},
			{&L.down, model.FFNDown, l.dim, l.ffn},
		}
		for _, w := range mats {
			if *w.dst, err = loadMatrix(m, name(w.name), w.rows, w.cols); err != nil {
				return nil, wrap(err)
			}
			l.mats[name(w.name)] = w.dst
		}
	}
	if l.norm, err = loadVector(m, model.FinalNorm, l.dim); err != nil {
		return nil, wrap(err)
	}
	if cfg.TiedEmbeddings {
		l.head = l.embed
	} else if l.head, err = loadMatrix(m, model.OutputHead, l.vocab, l.dim); err != nil {
		return nil, wrap(err)
	} else {
		l.mats[model.OutputHead] = &l.head
	}
	l.pool = newPool(l.threads)
	stopWhenUnreachable(l, l.pool)
	return l, nil
}

// sourceName names a model in messages: its file, or "model" when it was built in memory.
func sourceName(m *model.Model) string {
	if m.Source == "" {
		return "model"
	}
	return m.Source
}

// Close stops the worker threads. The Llama must not be used afterwards.
func (l *Llama) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.pool.close()
	return nil
}

// Config returns the model's configuration.
func (l *Llama) Config() model.Config { return l.cfg }

// Threads is the number of threads each operation runs on.
func (l *Llama) Threads() int { return l.threads }

// KVCache is how the Llama's States store keys and values.
func (l *Llama) KVCache() KVCache { return l.kvCache }

// KVBytesPerPosition is the size of one position in a State's KV cache, the
// keys and values of every layer: decode at position p reads p+1 of them.
func (l *Llama) KVBytesPerPosition() int64 {
	elem := int64(4)
	if l.kvCache == KVF16 {
		elem = 2
	}
	return int64(len(l.layers)) * 2 * int64(l.kvDim) * elem
}

// WeightBytes is the size of the weights one decoded token reads: every matrix
// except the embedding table, of which only a row is read (unless it doubles
// as the output head).
func (l *Llama) WeightBytes() int64 {
	var n int64
	for i := range l.layers {
		L := &l.layers[i]
		for _, w := range []Weights{L.wq, L.wk, L.wv, L.wo, L.gate, L.up, L.down} {
			n += w.Bytes()
		}
		n += 4 * int64(2*l.dim+len(L.bq)+len(L.bk)+len(L.bv))
	}
	return n + l.head.Bytes() + 4*int64(l.dim)
}

// State is one sequence's KV cache and scratch space. It belongs to the Llama
// that made it and is not safe for concurrent use.
type State struct {
	l        *Llama
	pos, max int

	// The KV cache, per layer: keys and values are [kvHeads][max][headDim],
	// so a new position is one contiguous row per head, the scores of one
	// query are a single MatVec and its weighted values a single MatVecT.
	// k and v hold them for KVF32, kh and vh for KVF16, which decode reads
	// with the half-precision kernels and prefill converts one head's rows
	// at a time into kvf (per thread: [max][headDim]; the kernels' scratch
	// where they cannot convert as they load).
	k, v   [][]float32
	kh, vh [][]uint16
	kvf    []float32

	// Scratch for one chunk of up to prefillChunk tokens.
	x, xb     []float32 // [n][dim]: residual stream, normalized copy / output of wo and down
	q, att    []float32 // [n][qDim]: queries, attention output
	kb, vb    []float32 // [n][kvDim]
	h1, h2    []float32 // [n][ffn]
	cos, sin  []float32 // [n][headDim/2]
	scores    []float32 // per thread: [b][max] attention weights
	qh, vt    []float32 // per thread: [b][headDim] one head's queries, [headDim][max] its values
	mat       matOp
	attention attnOp
}

// NewState returns an empty sequence that can hold maxTokens tokens; 0 or a
// value beyond the model's context length means the context length.
func (l *Llama) NewState(maxTokens int) *State {
	if maxTokens <= 0 || maxTokens > l.cfg.ContextLength {
		maxTokens = l.cfg.ContextLength
	}
	return l.newState(maxTokens, len(l.layers))
}

// newState returns a State for maxTokens tokens with caches buffers KV caches
// shared round-robin by the layers: one buffer serves a caller that runs one
// layer at a time (Calibration).
func (l *Llama) newState(maxTokens, caches int) *State {
	b := min(maxTokens, prefillChunk)
	s := &State{l: l, max: maxTokens}
	size := l.kvHeads * maxTokens * l.headDim
	if l.kvCache == KVF16 {
		s.kh, s.vh = kvCaches[uint16](len(l.layers), caches, size), kvCaches[uint16](len(l.layers), caches, size)
		s.kvf = make([]float32, l.threads*maxTokens*l.headDim)
	} else {
		s.k, s.v = kvCaches[float32](len(l.layers), caches, size), kvCaches[float32](len(l.layers), caches, size)
	}
	s.x = make([]float32, b*l.dim)
	s.xb = make([]float32, b*l.dim)
	s.q = make([]float32, b*l.qDim)
	s.att = make([]float32, b*l.qDim)
	s.kb = make([]float32, b*l.kvDim)
	s.vb = make([]float32, b*l.kvDim)
	s.h1 = make([]float32, b*l.ffn)
	s.h2 = make([]float32, b*l.ffn)
	s.cos = make([]float32, b*l.headDim/2)
	s.sin = make([]float32, b*l.headDim/2)
	s.scores = make([]float32, l.threads*b*maxTokens)
	if b > 1 {
		s.qh = make([]float32, l.threads*b*l.headDim)
		s.vt = make([]float32, l.threads*l.headDim*maxTokens)
	}
	s.attention.s = s
	return s
}

// kvCaches returns layers caches of size elements, layer i using buffer
// i%caches.
func kvCaches[T float32 | uint16](layers, caches, size int) [][]T {
	c := make([][]T, layers)
	for i := range c {
		if i < caches {
			c[i] = make([]T, size)
		} else {
			c[i] = c[i%caches]
		}
	}
	return c
}

// cached returns the first P positions of KV head g of layer li's keys
// (values when values is set) as float32 rows: the cache itself for KVF32,
// else thread tid's scratch, converted from half (and valid until that
// thread's next call).
func (s *State) cached(li, g, P, tid int, values bool) []float32 {
	hd := s.l.headDim
	off := g * s.max * hd
	if s.kh == nil {
		if values {
			return s.v[li][off:][:P*hd]
		}
		return s.k[li][off:][:P*hd]
	}
	h := s.kh[li]
	if values {
		h = s.vh[li]
	}
	buf := s.kvf[tid*s.max*hd:][:P*hd]
	kernels.F16ToF32(buf, h[off:][:P*hd])
	return buf
}

// Pos is the number of tokens in the sequence, the position the next token gets.
func (s *State) Pos() int { return s.pos }

// Cap is the most tokens the sequence can hold.
func (s *State) Cap() int { return s.max }

// Reset empties the sequence.
func (s *State) Reset() { s.pos = 0 }

// Truncate keeps the first n tokens of the sequence and forgets the rest.
func (s *State) Truncate(n int) error {
	if n < 0 || n > s.pos {
		return fmt.Errorf("inference: cannot truncate a sequence of %d tokens to %d", s.pos, n)
	}
	s.pos = n
	return nil
}

// Forward appends tokens to the sequence at s.Pos() and runs the model over
// them. logits selects the output: empty for none (just fill the cache), one
// vocabulary's worth for the last token only, or len(tokens) rows of the
// vocabulary size for every token. Several tokens run as batched matrix
// products (prefill); a single token runs as matrix-vector products (decode).
func (l *Llama) Forward(s *State, tokens []int, logits []float32) error {
	if s == nil || s.l != l {
		return fmt.Errorf("inference: the state is nil or belongs to another model")
	}
	n := len(tokens)
	if n == 0 {
		return fmt.Errorf("inference: no tokens to run")
	}
	all := n > 1 && len(logits) == n*l.vocab
	if len(logits) != 0 && len(logits) != l.vocab && !all {
		return fmt.Errorf("inference: %d logits for %d tokens; want 0, %d (last token) or %d (every token)",
			len(logits), n, l.vocab, n*l.vocab)
	}
	if n > s.max-s.pos {
		return fmt.Errorf("inference: %d tokens do not fit in a sequence holding %d of %d", n, s.pos, s.max)
	}
	for i, t := range tokens {
		if t < 0 || t >= l.vocab {
			return fmt.Errorf("inference: token %d at index %d is outside the vocabulary of %d", t, i, l.vocab)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("inference: the model is closed")
	}
	for start := 0; start < n; start += prefillChunk {
		end := min(start+prefillChunk, n)
		var out []float32
		switch {
		case all:
			out = logits[start*l.vocab : end*l.vocab]
		case end == n && len(logits) > 0:
			out = logits
		}
		l.forward(s, tokens[start:end], out, all)
	}
	return nil
}

// forward runs one chunk of at most prefillChunk tokens. out receives the
// logits of every token when all is set, else of the last one, or nothing
// when it is nil.
func (l *Llama) forward(s *State, tokens []int, out []float32, all bool) {
	n, pos0 := len(tokens), s.pos
	dim := l.dim
	for t, tok := range tokens {
		l.embed.Row(s.x[t*dim:(t+1)*dim], tok)
	}
	l.rotary(s, pos0, n)
	for li := range l.layers {
		l.layer(s, li, n, pos0, nil)
	}
	s.pos += n
	if out == nil {
		return
	}
	rows := 1
	if all {
		rows = n
	}
	first := n - rows
	for t := 0; t < rows; t++ {
		kernels.RMSNorm(s.xb[t*dim:(t+1)*dim], s.x[(first+t)*dim:(first+t+1)*dim], l.norm, l.eps)
	}
	s.mat.set(s.xb, rows, plain)
	s.mat.add(l.head, out)
	l.runMat(&s.mat, rows*l.vocab*dim)
}

// rotary fills the chunk's RoPE cosines and sines for positions pos0 to pos0+n-1.
// As run.c: the angle pos*freq is a float32 product; its cosine and sine are
// computed in float64 and rounded once, as glibc's cosf/sinf are correctly
// rounded.
func (l *Llama) rotary(s *State, pos0, n int) {
	half := l.headDim / 2
	for t := 0; t < n; t++ {
		for i, f := range l.invFreq {
			a := float64(float32(pos0+t) * f)
			s.cos[t*half+i] = float32(math.Cos(a))
			s.sin[t*half+i] = float32(math.Sin(a))
		}
	}
}

// layer runs decoder layer li over the chunk's n residual rows in s.x, whose
// positions start at pos0, with the layer's KV cache in s.k[li] and s.v[li].
// observe, when not nil, is shown the input of each group of linear layers
// (see Calibration).
func (l *Llama) layer(s *State, li, n, pos0 int, observe func(g LinearGroup, x []float32, n int)) {
	L := &l.layers[li]
	dim, half := l.dim, l.headDim/2
	for t := 0; t < n; t++ {
		kernels.RMSNorm(s.xb[t*dim:(t+1)*dim], s.x[t*dim:(t+1)*dim], L.attnNorm, l.eps)
	}
	if observe != nil {
		observe(GroupQKV, s.xb[:n*dim], n)
	}
	s.mat.set(s.xb, n, plain)
	s.mat.add(L.wq, s.q)
	s.mat.add(L.wk, s.kb)
	s.mat.add(L.wv, s.vb)
	l.runMat(&s.mat, n*(l.qDim+2*l.kvDim)*dim)

	for t := 0; t < n; t++ {
		q := s.q[t*l.qDim : (t+1)*l.qDim]
		k := s.kb[t*l.kvDim : (t+1)*l.kvDim]
		v := s.vb[t*l.kvDim : (t+1)*l.kvDim]
		if L.bq != nil {
			kernels.Add(q, L.bq)
			kernels.Add(k, L.bk)
			kernels.Add(v, L.bv)
		}
		cos, sin := s.cos[t*half:(t+1)*half], s.sin[t*half:(t+1)*half]
		if l.pairs {
			kernels.RoPE(q, l.headDim, cos, sin, true)
			kernels.RoPE(k, l.headDim, cos, sin, true)
		} else {
			// Rotate-half weights: q and k leave RoPE in pair order, so
			// scores are summed exactly as for the pair-layout file.
			kernels.RoPEHalfToPairs(q, l.headDim, cos, sin)
			kernels.RoPEHalfToPairs(k, l.headDim, cos, sin)
		}
		p := pos0 + t
		for g := 0; g < l.kvHeads; g++ {
			off := (g*s.max + p) * l.headDim
			kg, vg := k[g*l.headDim:(g+1)*l.headDim], v[g*l.headDim:(g+1)*l.headDim]
			if s.kh != nil {
				kernels.F32ToF16(s.kh[li][off:off+l.headDim], kg)
				kernels.F32ToF16(s.vh[li][off:off+l.headDim], vg)
			} else {
				copy(s.k[li][off:off+l.headDim], kg)
				copy(s.v[li][off:off+l.headDim], vg)
			}
		}
	}
	s.attention.layer, s.attention.n, s.attention.pos0 = li, n, pos0
	s.attention.next.Store(0)
	l.run(&s.attention, n*l.heads*(pos0+n)*l.headDim*2)

	if observe != nil {
		observe(GroupO, s.att[:n*l.qDim], n)
	}
	s.mat.set(s.att, n, residual)
	s.mat.resid = s.x
	s.mat.add(L.wo, s.xb)
	l.runMat(&s.mat, n*dim*l.qDim)

	for t := 0; t < n; t++ {
		kernels.RMSNorm(s.xb[t*dim:(t+1)*dim], s.x[t*dim:(t+1)*dim], L.ffnNorm, l.eps)
	}
	if observe != nil {
		observe(GroupGateUp, s.xb[:n*dim], n)
	}
	s.mat.set(s.xb, n, swiglu)
	s.mat.add(L.gate, s.h1)
	s.mat.add(L.up, s.h2)
	l.runMat(&s.mat, 2*n*l.ffn*dim)

	if observe != nil {
		observe(GroupDown, s.h1[:n*l.ffn], n)
	}
	s.mat.set(s.h1, n, residual)
	s.mat.resid = s.x
	s.mat.add(L.down, s.xb)
	l.runMat(&s.mat, n*dim*l.ffn)
}

// minParallelWork is the number of multiply-adds below which an operation runs
// on the calling thread alone: the split never changes results, and handing
// out the work would cost more than it saves.
const minParallelWork = 1 << 14

// runMat prepares and runs a matOp.
func (l *Llama) runMat(o *matOp, work int) {
	o.prepare(l.threads)
	l.run(o, work)
}

// run executes t on the pool, or on the calling thread when work is small.
func (l *Llama) run(t task, work int) {
	if work < l.minWork {
		t.run(0, 1)
		return
	}
	l.pool.run(t)
}

// epilogue is what a matOp does to its rows after the products.
type epilogue uint8

const (
	plain    epilogue = iota
	residual          // resid += out
	swiglu            // out[0] = silu(out[0]) * out[1]
	biasAct           // out += bias, then the activation (MLP)
)

// matOp multiplies up to three weight matrices by the same input, then runs
// an elementwise epilogue on the rows. The blocks of rows are split into one
// run of consecutive blocks per thread, and each thread claims the blocks of
// its own run in order, then those left in the others' runs: every thread so
// streams its weights front to back (as the hardware prefetchers like), and
// a slow or descheduled thread never holds the others up. Each block is one
// kernel call, and rows always fall into the same blocks, so the results do
// not depend on which thread ran what.
type matOp struct {
	x     []float32 // [n][cols]
	n     int
	ws    [3]Weights
	outs  [3][]float32 // [n][rows]
	nw    int
	epi   epilogue
	resid []float32 // residual: [n][rows of ws[0]]
	bias  []float32 // biasAct
	act   activation

	blk    [3]int // rows per block of each matrix
	blocks [3]int // cumulative block counts
	runs   []blockRun
	q      quantInput // x quantized once per op for QuantWeights (quant.go)
}

// blockRun is one thread's run of blocks: the next one to claim and the end,
// alone on its cache line so that threads claiming in their own runs do not
// contend.
type blockRun struct {
	next atomic.Int64
	end  int64
	_    [48]byte
}

// Block sizes in rows: multiples of every kernel's row group (4 and 8 for
// MatVec, 4 and 48 for MatMul) and of 64, so that an element never moves
// between a kernel's vector body and its scalar tail (which may round
// differently). MatVec blocks are small so threads finish together; MatMul
// blocks keep the kernel's panels full, except in matrices too small to share
// out that way.
const (
	matVecBlock = 64
	matMulBlock = 192
)

func (o *matOp) set(x []float32, n int, epi epilogue) {
	o.x, o.n, o.nw, o.epi = x, n, 0, epi
}

func (o *matOp) add(w Weights, out []float32) {
	o.ws[o.nw], o.outs[o.nw] = w, out
	o.nw++
}

// prepare splits the rows into blocks and the blocks into runs for threads
// threads; call it before running the op on at most that many threads. With
// the swiglu epilogue the gate and up matrices are taken together, block by block.
func (o *matOp) prepare(threads int) {
	total := 0
	mats := o.nw
	if o.epi == swiglu {
		mats = 1
	}
	for j := 0; j < mats; j++ {
		w := o.ws[j]
		blk := matVecBlock
		if o.n > 1 && w.Rows() >= 4*matMulBlock {
			blk = matMulBlock
		}
		blk = lcm(blk, max(1, w.RowAlign()))
		o.blk[j] = blk
		total += (w.Rows() + blk - 1) / blk
		o.blocks[j] = total
	}
	threads = max(threads, 1)
	if len(o.runs) != threads {
		o.runs = make([]blockRun, threads)
	}
	for i := range o.runs {
		o.runs[i].next.Store(int64(total * i / threads))
		o.runs[i].end = int64(total * (i + 1) / threads)
	}
	o.q.prepare(o)
}

func (o *matOp) run(tid, nth int) {
	mats := o.nw
	if o.epi == swiglu {
		mats = 1
	}
	for k := range o.runs {
		r := &o.runs[(tid+k)%len(o.runs)]
		for {
			b := r.next.Add(1) - 1
			if b >= r.end {
				break
			}
			o.block(int(b), mats)
		}
	}
}

// block computes block b of the op's mats matrices and runs its epilogue.
func (o *matOp) block(b, mats int) {
	j := 0
	for j < mats && b >= o.blocks[j] {
		j++
	}
	if j > 0 {
		b -= o.blocks[j-1]
	}
	w := o.ws[j]
	rows := w.Rows()
	lo := b * o.blk[j]
	hi := min(lo+o.blk[j], rows)
	o.product(j, lo, hi)
	if o.epi == swiglu {
		o.product(1, lo, hi)
	}
	if o.epi == plain {
		return
	}
	for t := 0; t < o.n; t++ {
		a, b := t*rows+lo, t*rows+hi
		switch o.epi {
		case residual:
			kernels.Add(o.resid[a:b], o.outs[0][a:b])
		case swiglu:
			kernels.SwiGLU(o.outs[0][a:b], o.outs[1][a:b])
		case biasAct:
			y := o.outs[0][a:b]
			kernels.Add(y, o.bias[lo:hi])
			o.act.apply(y)
		}
	}
}

func lcm(a, b int) int {
	g, h := a, b
	for h != 0 {
		g, h = h, g%h
	}
	return a / g * b
}

// product computes rows [lo, hi) of matrix j for every token.
func (o *matOp) product(j, lo, hi int) {
	if o.q.product(o, j, lo, hi) {
		return
	}
	w := o.ws[j]
	if o.n == 1 {
		w.MatVec(o.outs[j], o.x, lo, hi)
	} else {
		w.MatMul(o.outs[j], w.Rows(), o.x, o.n, lo, hi)
	}
}

// attnOp computes causal attention over the KV cache for a chunk of tokens.
// Threads claim query heads one at a time, and each head is one thread's job.
type attnOp struct {
	s              *State
	layer, n, pos0 int
	next           atomic.Int64 // the next head to claim
}

func (o *attnOp) run(tid, nth int) {
	if o.n > 1 {
		o.prefill(tid)
		return
	}
	s := o.s
	l := s.l
	hd := l.headDim
	group := l.heads / l.kvHeads
	P := o.pos0 + 1
	sc := s.scores[tid*s.max : tid*s.max+P]
	for {
		h := int(o.next.Add(1) - 1)
		if h >= l.heads {
			return
		}
		g := h / group
		q, att := s.q[h*hd:(h+1)*hd], s.att[h*hd:(h+1)*hd]
		if s.kh != nil {
			off, scratch := g*s.max*hd, s.kvf[tid*s.max*hd:][:P*hd]
			kernels.MatVecF16(sc, s.kh[o.layer][off:][:P*hd], q, hd, scratch)
			kernels.SoftmaxDiv(sc, l.sqrtHeadDim)
			kernels.MatVecTF16(att, s.vh[o.layer][off:][:P*hd], sc, hd, scratch)
			continue
		}
		kernels.MatVec(sc, s.cached(o.layer, g, P, tid, false), q, hd)
		kernels.SoftmaxDiv(sc, l.sqrtHeadDim) // divided, not multiplied by a reciprocal, as run.c does
		kernels.MatVecT(att, s.cached(o.layer, g, P, tid, true), sc, hd)
	}
}

// prefill computes attention for a chunk of tokens head by head, as two
// matrix products: the scores S = Q·Kᵀ over all positions of the chunk, and,
// once each row is masked to its causal prefix and softmaxed, S·V.
func (o *attnOp) prefill(tid int) {
	s := o.s
	l := s.l
	hd, n := l.headDim, o.n
	P := o.pos0 + n
	group := l.heads / l.kvHeads
	b := len(s.x) / l.dim // chunk capacity
	sc := s.scores[tid*b*s.max:][:n*P]
	qh := s.qh[tid*b*hd:][:n*hd]
	vt := s.vt[tid*hd*s.max:][:hd*P]
	for {
		h := int(o.next.Add(1) - 1)
		if h >= l.heads {
			return
		}
		g := h / group
		for t := 0; t < n; t++ {
			copy(qh[t*hd:(t+1)*hd], s.q[t*l.qDim+h*hd:])
		}
		kernels.MatMul(sc, P, qh, s.cached(o.layer, g, P, tid, false), n, P, hd)
		for t := 0; t < n; t++ {
			row := sc[t*P : (t+1)*P]
			last := o.pos0 + t + 1
			kernels.SoftmaxDiv(row[:last], l.sqrtHeadDim)
			clear(row[last:])
		}
		kernels.Transpose(vt, P, s.cached(o.layer, g, P, tid, true), hd, P, hd)
		kernels.MatMul(s.att[h*hd:], l.qDim, sc, vt, n, hd, P)
	}
}
