package evalsuite

import (
	"fmt"
	"math"
	"slices"

	"github.com/shrinkml/shrink/inference"
)

// PerplexityOptions sets up a perplexity measurement.
//
// With Stride 0 the text is scored with llama.cpp's llama-perplexity protocol
// (docs/perplexity.md in the shared folder): the tokens are cut into
// floor(n/Ctx) chunks of Ctx tokens, the tail is dropped, the first token of
// each chunk becomes BOS, each chunk runs from an empty KV cache, and only
// positions Ctx/2 .. Ctx-2 are scored, each predicting the token after it.
//
// With a positive Stride the text is scored with a sliding window instead:
// windows of Ctx tokens start every Stride tokens (the last one may be
// shorter), each from an empty KV cache with its first token made BOS, and
// each scores only the tokens that no earlier window scored, so every token
// after the first is scored exactly once, with at least Ctx-Stride tokens of
// context (the first window's tokens with less). It costs about Ctx/Stride
// times the chunk protocol and its numbers are comparable only with the same
// Ctx and Stride.
type PerplexityOptions struct {
	Ctx    int // tokens per chunk or window, at least 4 and at most the model's context
	Stride int // 0: llama.cpp's chunks; else the sliding window's step, 1 .. Ctx-1
	// NoBOS says the tokens do not begin with BOS because the tokenizer adds
	// none: chunks then keep their own first token, as llama.cpp does for such
	// models. Otherwise tokens[0] is the BOS that starts every chunk.
	NoBOS bool
	// OnChunk, when set, is called after each chunk or window.
	OnChunk func()
}

// Chunks is how many chunks (or windows) a text of n tokens is scored in, 0
// when it is too short.
func (o PerplexityOptions) Chunks(n int) int {
	if o.Ctx <= 0 {
		return 0
	}
	if o.Stride <= 0 {
		return n / o.Ctx
	}
	if n < 2 {
		return 0
	}
	// Windows start at 0, Stride, ... until one reaches the end of the text.
	return 1 + max(0, (n-o.Ctx+o.Stride-1)/o.Stride)
}

// PerplexityResult is what Perplexity found. NLL is in nats per scored token.
type PerplexityResult struct {
	Perplexity       float64 `json:"perplexity"`
	PerplexityStderr float64 `json:"perplexity_stderr"` // PPL times the standard error of NLL
	NLL              float64 `json:"nll"`
	NLLStderr        float64 `json:"nll_stderr"` // of the mean; 0 for fewer than two tokens
	ScoredTokens     int     `json:"scored_tokens"`
	Chunks           int     `json:"chunks"` // or windows with a stride
	Ctx              int     `json:"ctx"`
	Stride           int     `json:"stride"` // 0: llama.cpp's chunk protocol

	// Ref compares the model with a reference model; nil without one.
	Ref *Comparison `json:"ref,omitempty"`
}

// Comparison measures how far a model's next-token distributions are from a
// reference model's, over the same scored positions. KL values are KL(ref ||
// model) in nats, as llama.cpp's --kl-divergence reports them.
type Comparison struct {
	Perplexity       float64 `json:"ref_perplexity"`
	PerplexityStderr float64 `json:"ref_perplexity_stderr"`
	NLL              float64 `json:"ref_nll"`

	KLMean   float64 `json:"kl_mean"`
	KLStderr float64 `json:"kl_stderr"` // of the mean
	KLP99    float64 `json:"kl_p99"`    // linearly interpolated, as llama.cpp does
	KLMax    float64 `json:"kl_max"`
	// Top1Agreement is the share of positions where both models' most likely
	// token is the same.
	Top1Agreement float64 `json:"top1_agreement"`
}

// logitsBudget bounds the logits buffer of each model, in floats: the scored
// positions of a chunk run in pieces of at most this many logits.
const logitsBudget = 1 << 24

// Perplexity scores tokens (a whole text, tokenized with BOS prepended) with
// l, by the protocol opts selects, and compares l with ref over the same
// positions when ref is not nil. Log-softmaxes are computed in float64.
func Perplexity(l *inference.Llama, tokens []int, opts PerplexityOptions, ref *inference.Llama) (PerplexityResult, error) {
	cfg := l.Config()
	ctx, n, vocab := opts.Ctx, len(tokens), cfg.VocabSize
	switch {
	case ctx < 4:
		return PerplexityResult{}, fmt.Errorf("perplexity: a context of %d tokens is too short; want at least 4", ctx)
	case ctx > cfg.ContextLength:
		return PerplexityResult{}, fmt.Errorf("perplexity: a context of %d tokens is longer than the model's %d", ctx, cfg.ContextLength)
	case opts.Stride < 0 || opts.Stride >= ctx:
		return PerplexityResult{}, fmt.Errorf("perplexity: stride %d; want 0 (llama.cpp's chunks) or 1 to %d", opts.Stride, ctx-1)
	case opts.Stride == 0 && n < ctx:
		return PerplexityResult{}, fmt.Errorf("perplexity: the text is %d tokens, shorter than one chunk of %d", n, ctx)
	case n < 2:
		return PerplexityResult{}, fmt.Errorf("perplexity: the text is %d tokens; at least 2 are needed", n)
	}
	for i, t := range tokens {
		if t < 0 || t >= vocab {
			return PerplexityResult{}, fmt.Errorf("perplexity: token %d at index %d is outside the vocabulary of %d", t, i, vocab)
		}
	}
	if ref != nil {
		rc := ref.Config()
		if rc.VocabSize != vocab {
			return PerplexityResult{}, fmt.Errorf("perplexity: the reference model's vocabulary has %d tokens, the model's %d", rc.VocabSize, vocab)
		}
		if ctx > rc.ContextLength {
			return PerplexityResult{}, fmt.Errorf("perplexity: a context of %d tokens is longer than the reference model's %d", ctx, rc.ContextLength)
		}
	}

	piece := max(1, min(ctx, logitsBudget/vocab))
	sc := newScorer(l, ctx, piece)
	var rsc *scorer
	if ref != nil {
		rsc = newScorer(ref, ctx, piece)
	}
	var (
		nll, refNLL, kl welford
		kls             []float64
		agree           int
		win             = make([]int, ctx)
	)
	chunks := opts.Chunks(n)
	prevEnd := 0 // the sliding window's first target not yet scored
	for c := 0; c < chunks; c++ {
		// The window is tokens[start:end]; positions first .. end-start-2 are
		// scored, each predicting the token after it.
		var start, end, first int
		if opts.Stride == 0 {
			start, end, first = c*ctx, (c+1)*ctx, ctx/2
		} else {
			start = c * opts.Stride
			end = min(start+ctx, n)
			first = max(0, prevEnd-1-start)
			prevEnd = end
		}
		win = append(win[:0], tokens[start:end]...)
		if !opts.NoBOS {
			win[0] = tokens[0]
		}
		if err := sc.prefix(win[:first]); err != nil {
			return PerplexityResult{}, err
		}
		if rsc != nil {
			if err := rsc.prefix(win[:first]); err != nil {
				return PerplexityResult{}, err
			}
		}
		for p := first; p < len(win)-1; p += piece {
			q := min(p+piece, len(win)-1)
			if err := sc.run(win[p:q]); err != nil {
				return PerplexityResult{}, err
			}
			if rsc != nil {
				if err := rsc.run(win[p:q]); err != nil {
					return PerplexityResult{}, err
				}
			}
			for i := p; i < q; i++ {
				row := sc.logits[(i-p)*vocab : (i-p+1)*vocab]
				target := win[i+1]
				m, logZ, top := logSumExp(row)
				x := logZ + (m - float64(row[target])) // -log softmax(row)[target]
				if math.IsNaN(x) || math.IsInf(x, 0) {
					return PerplexityResult{}, fmt.Errorf("perplexity: the model gives non-finite logits at token %d", start+i)
				}
				nll.add(x)
				if rsc == nil {
					continue
				}
				rrow := rsc.logits[(i-p)*vocab : (i-p+1)*vocab]
				rm, rlogZ, rtop := logSumExp(rrow)
				rx := rlogZ + (rm - float64(rrow[target]))
				if math.IsNaN(rx) || math.IsInf(rx, 0) {
					return PerplexityResult{}, fmt.Errorf("perplexity: the reference model gives non-finite logits at token %d", start+i)
				}
				refNLL.add(rx)
				d := klDivergence(rrow, rm, rlogZ, row, m, logZ)
				kl.add(d)
				kls = append(kls, d)
				if top == rtop {
					agree++
				}
			}
		}
		if opts.OnChunk != nil {
			opts.OnChunk()
		}
	}

	r := PerplexityResult{
		NLL: nll.mean, NLLStderr: nll.stderr(), ScoredTokens: nll.n,
		Chunks: chunks, Ctx: ctx, Stride: opts.Stride,
	}
	r.Perplexity = math.Exp(r.NLL)
	r.PerplexityStderr = r.Perplexity * r.NLLStderr // the delta method, as llama.cpp
	if rsc != nil {
		slices.Sort(kls)
		r.Ref = &Comparison{
			NLL: refNLL.mean, Perplexity: math.Exp(refNLL.mean),
			KLMean: kl.mean, KLStderr: kl.stderr(), KLP99: percentile(kls, 0.99), KLMax: kls[len(kls)-1],
			Top1Agreement: float64(agree) / float64(nll.n),
		}
		r.Ref.PerplexityStderr = r.Ref.Perplexity * refNLL.stderr()
	}
	return r, nil
}

// scorer runs one model over a window, keeping the logits of the last piece.
type scorer struct {
	l      *inference.Llama
	s      *inference.State
	vocab  int
	logits []float32 // [piece][vocab]
}

func newScorer(l *inference.Llama, ctx, piece int) *scorer {
	vocab := l.Config().VocabSize
	return &scorer{l: l, s: l.NewState(ctx), vocab: vocab, logits: make([]float32, piece*vocab)}
}

// prefix starts a window from an empty cache and runs its unscored tokens.
func (sc *scorer) prefix(toks []int) error {
	sc.s.Reset()
	if len(toks) == 0 {
		return nil
	}
	if err := sc.l.Forward(sc.s, toks, nil); err != nil {
		return fmt.Errorf("perplexity: %w", err)
	}
	return nil
}

// run appends toks to the window and keeps the logits of each of them.
func (sc *scorer) run(toks []int) error {
	if err := sc.l.Forward(sc.s, toks, sc.logits[:len(toks)*sc.vocab]); err != nil {
		return fmt.Errorf("perplexity: %w", err)
	}
	return nil
}

// logSumExp returns the largest logit m, logZ = log Σ exp(x - m) in float64,
// and the index of the first largest logit, so that log softmax(x)[i] is
// (x[i] - m) - logZ. Shifting by m keeps exp from overflowing, and taking
// x[i] - m in float64 (exact for logits of similar size) before subtracting
// logZ keeps a likely token's log-probability from cancelling against a large
// log Σ exp(x).
func logSumExp(x []float32) (m float64, logZ float64, top int) {
	mx := x[0]
	for i, v := range x {
		if v > mx {
			mx, top = v, i
		}
	}
	m = float64(mx)
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - m)
	}
	return m, math.Log(s), top
}

// klDivergence is KL(p || q) for p = softmax(a) and q = softmax(b), given each
// one's largest logit and log-normalizer from logSumExp. It sums
// p·(δ + e^-δ - 1) with δ = log p - log q: every term is nonnegative, so
// nothing cancels and the result is never negative, and the added terms sum
// to Σq - Σp = 0, which makes an error in either normalizer cancel to first
// order. Near δ = 0 the term is p·(δ + expm1(-δ)), exact to a few ulps of δ²;
// where q ≫ p it is p·δ + q - p, which stays right when p underflows.
func klDivergence(a []float32, ma, logZa float64, b []float32, mb, logZb float64) float64 {
	var kl float64
	for i := range a {
		la := (float64(a[i]) - ma) - logZa
		lb := (float64(b[i]) - mb) - logZb
		d := la - lb
		p := math.Exp(la)
		if d > -1 {
			kl += p * (d + math.Expm1(-d))
		} else {
			kl += p*d + math.Exp(lb) - p
		}
	}
	return kl
}

// welford accumulates a mean and the sum of squared deviations from it in one
// stable pass.
type welford struct {
	n        int
	mean, m2 float64
}

func (w *welford) add(x float64) {
	w.n++
	d := x - w.mean
	w.mean += d / float64(w.n)
	w.m2 += d * (x - w.mean)
}

// stderr is the standard error of the mean, sqrt(variance / (n-1)) with the
// population variance, as llama.cpp computes it; 0 for fewer than two values.
func (w *welford) stderr() float64 {
	if w.n < 2 {
		return 0
	}
	return math.Sqrt(w.m2 / float64(w.n) / float64(w.n-1))
}

// percentile interpolates linearly between the sorted values around fraction
// f of the way from the first to the last, as llama.cpp's KL statistics do.
func percentile(sorted []float64, f float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	p := f * float64(len(sorted)-1)
	i := int(p)
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	p -= float64(i)
	return (1-p)*sorted[i] + p*sorted[i+1]
}
