package lm

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/shrinkml/shrink/distill/internal/checkpoint"
	"github.com/shrinkml/shrink/distill/internal/hidden"
	"github.com/shrinkml/shrink/distill/train"
	"github.com/shrinkml/shrink/inference/kernels"
)

// Options set up a training run. Zero values of Batch, LR, Beta1, Beta2, Eps
// and Context mean the defaults in DefaultOptions (Context: the model's).
type Options struct {
	Steps   int // optimizer steps
	Batch   int // sequences per step
	Context int // tokens per sequence, at most the model's context length

	LR          float64 // peak learning rate
	WeightDecay float64 // AdamW's decoupled decay, on the matrices (not the norms)
	Beta1       float64
	Beta2       float64
	Eps         float64
	// Warmup is the share of the steps over which the learning rate rises
	// linearly to LR; a cosine decay to zero follows (train.LearningRate).
	Warmup float64
	// Clip scales the gradient down to this global L2 norm when it is
	// larger; 0 never clips.
	Clip float64

	// BOS, when not negative, is the token each training window starts with
	// (see Train); -1 means plain windows.
	BOS int

	// Teacher or TeacherLogits, when set, turn the loss into distillation:
	// Alpha·T²·KL(teacher_T || student_T) + (1-Alpha)·CE at temperature
	// T = Temperature. TeacherLogits must fill logits ([len(tokens)][vocab])
	// for a sequence starting at position 0 and be safe for concurrent use.
	Teacher       *Model
	TeacherLogits func(tokens []int, logits []float32) error
	Temperature   float64
	Alpha         float64

	// HiddenLoss, when set ("mse" or "cosine"), adds HiddenWeight times a
	// loss between the student's residual stream after each of HiddenLayers
	// and Teacher's after the matching layer of HiddenMap: the mean square
	// over the width, or 1 - cos, per position, averaged over the positions
	// and summed over the pairs. Where the widths differ, a learned linear
	// projection of the student's state comes first (FitNets); it trains with
	// the student and is discarded after. It needs Teacher.
	HiddenLoss   string
	HiddenWeight float64
	// HiddenLayers are the student layers matched, from 0; nil: every one.
	HiddenLayers []int
	// HiddenMap are their teacher layers; nil: teacher layer
	// round((i+1)·teacher layers/student layers) - 1 for student layer i.
	HiddenMap []int

	Seed    uint64
	Threads int // goroutines a batch is split over; 0: every core

	// Prune, when set, prunes the linear matrices (q, k, v, o, gate, up and
	// down of every layer) by magnitude on a schedule as the training runs
	// (gradual pruning), masking what it removes; see Model.PruneMagnitude.
	// Masked weights, whether from Prune or from the model's masks, stay
	// zero, with their AdamW moments.
	Prune *train.Schedule

	// OnStep, when set, is called after each step.
	OnStep func(Step)

	// Checkpoint, when set, is a file the run's state is written to,
	// atomically, every CheckpointEvery steps (0: never) and after the last
	// step: the weights, masks, AdamW moments, step and progress.
	Checkpoint      string
	CheckpointEvery int
	// Resume, when set, is a checkpoint file to continue from: the model's
	// weights and masks become the file's, and the run ends with the weights
	// an uninterrupted run would have. The model's config, the tokens and the
	// options that shape the run (Steps, Batch, Context, BOS, Seed, Threads,
	// the optimizer's, the losses') must be the ones it was written with.
	Resume string
}

// Step is the progress of a run after one optimizer step.
type Step struct {
	Step, Steps  int
	Loss         float64 // the step's mean loss
	LR           float64
	TokensPerSec float64 // target tokens per second since the start
}

// DefaultOptions are the settings the command line starts from.
func DefaultOptions() Options {
	return Options{Steps: 1000, Batch: 16, LR: 3e-3, WeightDecay: 0.1, Beta1: 0.9, Beta2: 0.95, Eps: 1e-8,
		Warmup: 0.05, Clip: 1, BOS: -1, Temperature: 2, Alpha: 0.5, Seed: 1}
}

// Result summarizes a run. Seconds and TokensPerSec are a resumed run's only
// since it resumed.
type Result struct {
	Steps        int     `json:"steps"`
	Tokens       int64   `json:"tokens"` // target tokens seen, repeats included
	Threads      int     `json:"threads"`
	Seconds      float64 `json:"seconds"`
	TokensPerSec float64 `json:"tokens_per_s"`
	FirstLoss    float64 `json:"first_loss"` // the first step's mean loss
	LastLoss     float64 `json:"last_loss"`  // the mean loss of the last 5% of the steps
}

// Train trains m on the token stream tokens with mini-batch AdamW. Each
// step draws Batch windows at seeded random offsets. A window holds Context
// input tokens and predicts the token after each: without a BOS token the
// inputs are tokens[s:s+Context] and the targets tokens[s+1:s+Context+1];
// with one (Options.BOS), the inputs are BOS followed by
// tokens[s:s+Context-1] and the targets tokens[s:s+Context], so the model
// learns to continue text from BOS, as generation starts. The batch's
// windows are split into Threads contiguous shards, one goroutine each, and
// their gradients are added in shard order, so a seed and a thread count
// always give the same weights.
func Train(m *Model, tokens []int, opts Options) (Result, error) {
	opts, err := opts.resolve(m, len(tokens))
	if err != nil {
		return Result{}, err
	}
	for i, t := range tokens {
		if t < 0 || t >= m.Config.Vocab {
			return Result{}, fmt.Errorf("lm: token %d at index %d is outside the vocabulary of %d", t, i, m.Config.Vocab)
		}
	}
	threads := min(resolveThreads(opts.Threads), opts.Batch)
	tr := newTrainer(m, opts, threads)
	pcg := rand.NewPCG(opts.Seed, 0x7a1e)
	rng := rand.New(pcg)
	need := opts.Context + 1
	if opts.BOS >= 0 {
		need = opts.Context
	}
	starts := make([]int, opts.Batch)
	draw := func() {
		for i := range starts {
			starts[i] = rng.IntN(len(tokens) - need + 1)
		}
	}
	res := Result{Steps: opts.Steps, Threads: threads}
	tail := max(1, opts.Steps/20)
	var (
		tailLoss float64
		first    int // the first step this call runs
		fields   []checkpoint.Field
	)
	if opts.Checkpoint != "" || opts.Resume != "" {
		fields = tr.fields(tokens)
	}
	if opts.Resume != "" {
		st, err := tr.resume(opts.Resume, fields)
		if err != nil {
			return Result{}, err
		}
		if st.Step > opts.Steps {
			return Result{}, fmt.Errorf("lm: checkpoint %s is at step %d of a run of %d", opts.Resume, st.Step, opts.Steps)
		}
		// The windows are replayed from the seed: every draw before the
		// checkpoint's step.
		for range st.Step {
			draw()
		}
		if state, _ := pcg.MarshalBinary(); !bytes.Equal(state, st.RNG) {
			return Result{}, fmt.Errorf("lm: checkpoint %s: the windows' offsets do not replay to its step %d", opts.Resume, st.Step)
		}
		first, res.Tokens, res.FirstLoss, tailLoss = st.Step, st.Tokens, st.FirstLoss, st.TailLoss
	}
	start := time.Now()
	for s := first; s < opts.Steps; s++ {
		draw()
		if p := opts.Prune; p != nil && p.Prunes(s) {
			if err := m.PruneMagnitude(p.SparsityAt(s), p.Global); err != nil {
				return Result{}, err
			}
			tr.t.refresh(m, 0, 1)
		}
		loss, err := tr.step(tokens, starts, s)
		if err != nil {
			return Result{}, err
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return Result{}, fmt.Errorf("lm: the loss became %g at step %d of %d; a lower learning rate than %g may help", loss, s+1, opts.Steps, opts.LR)
		}
		if s == 0 {
			res.FirstLoss = loss
		}
		if s >= opts.Steps-tail {
			tailLoss += loss
		}
		res.Tokens += int64(opts.Batch * opts.Context)
		if opts.OnStep != nil {
			opts.OnStep(Step{Step: s + 1, Steps: opts.Steps, Loss: loss,
				LR:           train.LearningRate(s, opts.Steps, opts.LR, opts.Warmup),
				TokensPerSec: float64(int64(s+1-first)*int64(opts.Batch*opts.Context)) / time.Since(start).Seconds()})
		}
		if opts.Checkpoint != "" && (s+1 == opts.Steps || opts.CheckpointEvery > 0 && (s+1)%opts.CheckpointEvery == 0) {
			rs, _ := pcg.MarshalBinary()
			st := lmState{Step: s + 1, Tokens: res.Tokens, FirstLoss: res.FirstLoss, TailLoss: tailLoss, RNG: rs}
			if err := tr.save(opts.Checkpoint, fields, st); err != nil {
				return Result{}, err
			}
		}
	}
	res.LastLoss = tailLoss / float64(tail)
	res.Seconds = time.Since(start).Seconds()
	if ran := opts.Steps - first; ran > 0 {
		res.TokensPerSec = float64(int64(ran)*int64(opts.Batch*opts.Context)) / res.Seconds
	}
	return res, nil
}

// resolve fills in defaults and checks opts for a model and a stream of n tokens.
func (opts Options) resolve(m *Model, n int) (Options, error) {
	def := DefaultOptions()
	for _, f := range []struct {
		v *float64
		d float64
	}{{&opts.LR, def.LR}, {&opts.Beta1, def.Beta1}, {&opts.Beta2, def.Beta2}, {&opts.Eps, def.Eps}} {
		if *f.v == 0 {
			*f.v = f.d
		}
	}
	if opts.Batch == 0 {
		opts.Batch = def.Batch
	}
	if opts.Context == 0 {
		opts.Context = m.Config.Context
	}
	need := opts.Context + 1
	if opts.BOS >= 0 {
		need = opts.Context
	}
	distill := opts.Teacher != nil || opts.TeacherLogits != nil
	switch {
	case opts.Steps < 1:
		return opts, fmt.Errorf("lm: %d steps; want at least 1", opts.Steps)
	case opts.Batch < 1:
		return opts, fmt.Errorf("lm: batch %d; want at least 1", opts.Batch)
	case opts.Context < 2 || opts.Context > m.Config.Context:
		return opts, fmt.Errorf("lm: context %d; want 2 to the model's %d", opts.Context, m.Config.Context)
	case n < need:
		return opts, fmt.Errorf("lm: %d tokens are fewer than a window of %d", n, need)
	case opts.BOS >= m.Config.Vocab || opts.BOS < -1:
		return opts, fmt.Errorf("lm: BOS %d is outside the vocabulary of %d", opts.BOS, m.Config.Vocab)
	case !(opts.LR > 0) || opts.WeightDecay < 0 || opts.Clip < 0 || opts.Warmup < 0 || opts.Warmup >= 1:
		return opts, fmt.Errorf("lm: learning rate %g, weight decay %g, clip %g, warm-up %g out of range", opts.LR, opts.WeightDecay, opts.Clip, opts.Warmup)
	case opts.Beta1 < 0 || opts.Beta1 >= 1 || opts.Beta2 < 0 || opts.Beta2 >= 1 || !(opts.Eps > 0):
		return opts, fmt.Errorf("lm: Adam betas %g, %g and eps %g out of range", opts.Beta1, opts.Beta2, opts.Eps)
	case distill && (!(opts.Temperature > 0) || opts.Alpha < 0 || opts.Alpha > 1):
		return opts, fmt.Errorf("lm: temperature %g (want > 0) and alpha %g (want 0 to 1)", opts.Temperature, opts.Alpha)
	case opts.Teacher != nil && opts.TeacherLogits != nil:
		return opts, fmt.Errorf("lm: set Teacher or TeacherLogits, not both")
	case opts.Teacher != nil && opts.Teacher.Config.Vocab != m.Config.Vocab:
		return opts, fmt.Errorf("lm: the teacher's vocabulary of %d differs from the student's %d", opts.Teacher.Config.Vocab, m.Config.Vocab)
	case opts.Teacher != nil && opts.Teacher.Config.Context < opts.Context:
		return opts, fmt.Errorf("lm: the teacher's context of %d is shorter than %d", opts.Teacher.Config.Context, opts.Context)
	case opts.CheckpointEvery < 0:
		return opts, fmt.Errorf("lm: a checkpoint every %d steps; want 0 or more", opts.CheckpointEvery)
	case opts.HiddenLoss != "" && opts.Teacher == nil:
		return opts, fmt.Errorf("lm: a hidden-state loss needs Teacher, a model whose states it can read")
	case opts.HiddenLoss == "" && (opts.HiddenWeight != 0 || opts.HiddenLayers != nil || opts.HiddenMap != nil):
		return opts, fmt.Errorf("lm: HiddenWeight, HiddenLayers and HiddenMap apply to a HiddenLoss; set one")
	}
	if opts.HiddenLoss != "" {
		if _, err := opts.matcher(m); err != nil {
			return opts, err
		}
	}
	if opts.Prune != nil {
		if err := opts.Prune.Check(opts.Steps); err != nil {
			return opts, err
		}
	}
	return opts, nil
}

// matcher returns the hidden-state loss's pairs and projections for the
// student m and opts.Teacher, projections seeded by opts.Seed.
func (opts Options) matcher(m *Model) (*hidden.Matcher, error) {
	widths := func(c Config) []int {
		w := make([]int, c.Layers)
		for i := range w {
			w[i] = c.Dim
		}
		return w
	}
	h, err := hidden.New(opts.HiddenLoss, opts.HiddenWeight, opts.HiddenLayers, opts.HiddenMap,
		widths(m.Config), widths(opts.Teacher.Config), opts.Seed)
	if err != nil {
		return nil, fmt.Errorf("lm: %w", err)
	}
	return h, nil
}

func resolveThreads(t int) int {
	if t <= 0 {
		return max(1, min(runtime.NumCPU(), runtime.GOMAXPROCS(0)))
	}
	return t
}

// trainer holds the optimizer state and each goroutine's worker.
type trainer struct {
	m       *Model
	opts    Options
	threads int
	t       *transposed
	mom, v  []float32 // Adam's moments, laid out as m.params
	work    []*worker
	teacher []*worker // per goroutine, with Options.Teacher
	s       int       // the current step
	// free lists, per segment of m.segs, the offsets of its unmasked
	// parameters in order; nil when none of the segment is masked. maskGen
	// is the model's masks' generation they were made from.
	free    [][]int32
	maskGen int

	// With Options.HiddenLoss: the pairs and projections, each goroutine's
	// buffers, and the projections' Adam moments.
	hid    *hidden.Matcher
	hs     []*hidden.Scratch
	hm, hv []float32
}

func newTrainer(m *Model, opts Options, threads int) *trainer {
	tr := &trainer{m: m, opts: opts, threads: threads, t: newTransposed(m),
		mom: make([]float32, len(m.params)), v: make([]float32, len(m.params))}
	shard := (opts.Batch + threads - 1) / threads
	for range threads {
		tr.work = append(tr.work, newWorker(m, shard, opts.Context, true))
		if opts.Teacher != nil {
			tr.teacher = append(tr.teacher, newWorker(opts.Teacher, shard, opts.Context, false))
		}
		if opts.Teacher != nil || opts.TeacherLogits != nil {
			w := tr.work[len(tr.work)-1]
			w.tlogits = make([]float32, len(w.logits))
		}
	}
	if opts.HiddenLoss != "" {
		tr.hid, _ = opts.matcher(m) // resolve checked it
		tr.hm, tr.hv = make([]float32, len(tr.hid.Params)), make([]float32, len(tr.hid.Params))
		for _, w := range tr.work {
			tr.hs = append(tr.hs, tr.hid.NewScratch(w.maxRows))
			w.inject = make([][]float32, m.Config.Layers)
		}
	}
	tr.t.refresh(m, 0, 1)
	tr.syncMasks()
	return tr
}

// syncMasks makes the free lists of the model's masks and zeroes the masked
// weights' moments (and the weights, should they have moved): a weight masked
// in the middle of a run starts from nothing if it is ever unmasked.
func (tr *trainer) syncMasks() {
	m := tr.m
	tr.maskGen = m.maskGen
	tr.free = make([][]int32, len(m.segs))
	if m.mask == nil {
		return
	}
	for si, seg := range m.segs {
		mask := m.mask[seg.off : seg.off+seg.len]
		masked := 0
		for _, v := range mask {
			if v {
				masked++
			}
		}
		if masked == 0 {
			continue
		}
		free := make([]int32, 0, len(mask)-masked)
		for i, v := range mask {
			if v {
				j := seg.off + i
				m.params[j], tr.mom[j], tr.v[j] = 0, 0, 0
			} else {
				free = append(free, int32(i))
			}
		}
		tr.free[si] = free
	}
}

// parallel runs f over the trainer's threads.
func (tr *trainer) parallel(f func(k int)) { train.Parallel(tr.threads, f) }

// part returns the k-th of tr.threads contiguous parts of [0, n).
func (tr *trainer) part(k, n int) (int, int) { return train.Part(k, tr.threads, n) }

// fill sets a worker's inputs and targets from the windows at starts.
func fill(w *worker, tokens, starts []int, n, bos int) {
	for i, s := range starts {
		in, tg := w.tokens[i*n:(i+1)*n], w.targets[i*n:(i+1)*n]
		if bos >= 0 {
			in[0] = bos
			copy(in[1:], tokens[s:s+n-1])
			copy(tg, tokens[s:s+n])
		} else {
			copy(in, tokens[s:s+n])
			copy(tg, tokens[s+1:s+n+1])
		}
	}
}

// step runs optimizer step s on the windows at starts and returns their mean loss.
func (tr *trainer) step(tokens, starts []int, s int) (float64, error) {
	if tr.maskGen != tr.m.maskGen {
		tr.syncMasks()
	}
	loss, sumsq, err := tr.accumulate(tokens, starts)
	if err != nil {
		return 0, err
	}
	tr.update(s, sumsq)
	return loss, nil
}

// accumulate leaves the gradient of the mean loss over the windows at starts
// in the first worker's grad and returns the mean loss and the gradient's
// squared L2 norm.
func (tr *trainer) accumulate(tokens, starts []int) (loss, sumsq float64, err error) {
	n := tr.opts.Context
	total := float64(len(starts) * n)
	errs := make([]error, tr.threads)
	tr.parallel(func(k int) {
		lo, hi := tr.part(k, len(starts))
		w := tr.work[k]
		fill(w, tokens, starts[lo:hi], n, tr.opts.BOS)
		errs[k] = tr.gradient(k, hi-lo, n, 1/total)
	})
	for _, e := range errs {
		if e != nil {
			return 0, 0, e
		}
	}
	// Sum the shards' gradients into the first worker's, each goroutine a
	// slice of every tensor, adding shards in order.
	tr.parallel(func(k int) {
		g := tr.work[0].grad
		var ss float64
		for si, seg := range tr.m.segs {
			lo, hi := tr.part(k, seg.len)
			dst := g[seg.off+lo : seg.off+hi]
			for _, w := range tr.work[1:] {
				src := w.grad[seg.off+lo : seg.off+hi]
				for i := range dst {
					dst[i] += src[i]
				}
			}
			if free := tr.free[si]; free != nil {
				// A masked weight is no parameter: its gradient is not
				// part of the clipping norm.
				gs := g[seg.off : seg.off+seg.len]
				for _, i := range between(free, lo, hi) {
					ss += float64(gs[i]) * float64(gs[i])
				}
				continue
			}
			for _, v := range dst {
				ss += float64(v) * float64(v)
			}
		}
		tr.work[k].sumsq = ss
	})
	for _, w := range tr.work {
		loss += w.loss
		sumsq += w.sumsq
	}
	if tr.hid != nil {
		g := tr.hs[0].Grad
		for _, s := range tr.hs[1:] {
			kernels.Add(g, s.Grad)
		}
		for _, v := range g {
			sumsq += float64(v) * float64(v)
		}
	}
	return loss / total, sumsq, nil
}

// gradient runs worker k's forward and backward pass over its seqs windows
// of n tokens, leaving the gradient of scale times its summed loss in its grad.
func (tr *trainer) gradient(k, seqs, n int, scale float64) error {
	w := tr.work[k]
	w.loss = 0
	if seqs == 0 {
		clear(w.grad)
		if tr.hid != nil {
			clear(tr.hs[k].Grad)
		}
		return nil
	}
	rows := seqs * n
	v := tr.m.Config.Vocab
	w.forward(seqs, n)
	dz := w.dlogits[:rows*v]
	clear(dz)
	logits := w.logits[:rows*v]
	y := w.targets[:rows]
	if w.tlogits == nil {
		w.loss = softmaxCE(dz, logits, y, v, scale, w.ps)
	} else {
		tz := w.tlogits[:rows*v]
		if tr.opts.Teacher != nil {
			tw := tr.teacher[k]
			copy(tw.tokens, w.tokens[:rows])
			tw.forward(seqs, n)
			copy(tz, tw.logits[:rows*v])
		} else {
			for s := range seqs {
				if err := tr.opts.TeacherLogits(w.tokens[s*n:(s+1)*n], tz[s*n*v:(s+1)*n*v]); err != nil {
					return fmt.Errorf("lm: teacher: %w", err)
				}
			}
		}
		a, tt := tr.opts.Alpha, tr.opts.Temperature
		ce := softmaxCE(dz, logits, y, v, (1-a)*scale, w.ps)
		kl := klTemp(dz, logits, tz, rows, v, tt, a*tt*tt*scale, w.ls, w.lt)
		w.loss = a*tt*tt*kl + (1-a)*ce
	}
	if tr.hid != nil {
		d, td := tr.m.Config.Dim, tr.opts.Teacher.Config.Dim
		tw := tr.teacher[k]
		for i, p := range tr.hid.Pairs {
			w.loss += tr.hid.Apply(tr.hs[k], i, w.xs[p.Student+1][:rows*d], tw.xs[p.Teacher+1][:rows*td], rows, scale)
			w.inject[p.Student] = tr.hs[k].Dx[i][:rows*d]
		}
	}
	w.backward(tr.t, seqs, n)
	return nil
}

// update runs AdamW step s with the gradient accumulate left, whose squared
// norm is sumsq, then refreshes the transposed weights.
func (tr *trainer) update(s int, sumsq float64) {
	o := tr.opts
	scale := 1.0
	if norm := math.Sqrt(sumsq); o.Clip > 0 && norm > o.Clip {
		scale = o.Clip / norm
	}
	lr := train.LearningRate(s, o.Steps, o.LR, o.Warmup)
	bc1 := 1 - math.Pow(o.Beta1, float64(s+1))
	bc2 := 1 - math.Pow(o.Beta2, float64(s+1))
	c := adamConsts{gs: float32(scale), b1: float32(o.Beta1), b2: float32(o.Beta2), a: float32(lr / bc1),
		s2: float32(1 / math.Sqrt(bc2)), eps: float32(o.Eps)}
	decay := float32(1 - lr*o.WeightDecay)
	tr.parallel(func(k int) {
		g, p := tr.work[0].grad, tr.m.params
		c := c
		for si, seg := range tr.m.segs {
			lo, hi := tr.part(k, seg.len)
			c.decay = 1
			if seg.matrix {
				c.decay = decay
			}
			r := seg.off + lo
			if free := tr.free[si]; free != nil {
				end := seg.off + seg.len
				adamwAt(p[seg.off:end], g[seg.off:end], tr.mom[seg.off:end], tr.v[seg.off:end], between(free, lo, hi), c)
			} else {
				adamw(p[r:seg.off+hi], g[r:], tr.mom[r:], tr.v[r:], c)
			}
		}
	})
	tr.parallel(func(k int) { tr.t.refresh(tr.m, k, tr.threads) })
	if tr.hid != nil {
		c.decay = decay
		adamw(tr.hid.Params, tr.hs[0].Grad, tr.hm, tr.hv, c)
		tr.hid.Refresh()
	}
}

// adamConsts are one AdamW step's constants: the gradient's clipping scale,
// the betas, lr/(1-β₁ᵗ), 1/√(1-β₂ᵗ), eps and the weight decay factor.
type adamConsts struct{ gs, b1, b2, a, s2, eps, decay float32 }

// adamw runs an AdamW step on the parameters p in float32, as PyTorch does.
func adamw(p, g, m, v []float32, c adamConsts) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	for i := range p {
		gi := c.gs * g[i]
		mi := c.b1*m[i] + (1-c.b1)*gi
		vi := c.b2*v[i] + (1-c.b2)*gi*gi
		m[i], v[i] = mi, vi
		p[i] = c.decay*p[i] - c.a*mi/(float32(math.Sqrt(float64(vi)))*c.s2+c.eps)
	}
}

// adamwAt is adamw on the parameters p[i] for i in at only: a masked
// tensor's free weights. The masked ones are not touched, so they stay zero.
func adamwAt(p, g, m, v []float32, at []int32, c adamConsts) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	for _, i := range at {
		gi := c.gs * g[i]
		mi := c.b1*m[i] + (1-c.b1)*gi
		vi := c.b2*v[i] + (1-c.b2)*gi*gi
		m[i], v[i] = mi, vi
		p[i] = c.decay*p[i] - c.a*mi/(float32(math.Sqrt(float64(vi)))*c.s2+c.eps)
	}
}

// Eval is a held-out score.
type Eval struct {
	Tokens     int     `json:"tokens"` // tokens predicted
	Loss       float64 `json:"loss"`   // mean cross-entropy in nats
	Perplexity float64 `json:"perplexity"`
}

// Evaluate returns m's mean next-token cross-entropy on tokens, cut into
// consecutive windows of ctx tokens (0: the model's context). With a BOS
// token (bos >= 0) window i predicts tokens[i·ctx:(i+1)·ctx] from BOS and the
// tokens before each, so every token is predicted once; without, window i
// predicts tokens[i·ctx+1:(i+1)·ctx+1] from the tokens before each, every
// token but the first. The windows
// are split over threads goroutines and their losses added in order.
func Evaluate(m *Model, tokens []int, ctx, bos, threads int) (Eval, error) {
	if ctx <= 0 {
		ctx = m.Config.Context
	}
	if ctx < 2 || ctx > m.Config.Context {
		return Eval{}, fmt.Errorf("lm: context %d; want 2 to the model's %d", ctx, m.Config.Context)
	}
	if bos >= m.Config.Vocab {
		return Eval{}, fmt.Errorf("lm: BOS %d is outside the vocabulary of %d", bos, m.Config.Vocab)
	}
	for i, t := range tokens {
		if t < 0 || t >= m.Config.Vocab {
			return Eval{}, fmt.Errorf("lm: token %d at index %d is outside the vocabulary of %d", t, i, m.Config.Vocab)
		}
	}
	type window struct{ in, target []int }
	var wins []window
	if bos >= 0 {
		for s := 0; s < len(tokens); s += ctx {
			e := min(s+ctx, len(tokens))
			in := append([]int{bos}, tokens[s:e-1]...)
			wins = append(wins, window{in, tokens[s:e]})
		}
	} else {
		for s := 0; s+1 < len(tokens); s += ctx {
			e := min(s+ctx, len(tokens)-1)
			wins = append(wins, window{tokens[s:e], tokens[s+1 : e+1]})
		}
	}
	if len(wins) == 0 {
		return Eval{}, fmt.Errorf("lm: %d tokens leave nothing to predict", len(tokens))
	}
	threads = min(resolveThreads(threads), len(wins))
	losses := make([]float64, len(wins))
	var wg sync.WaitGroup
	for k := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newWorker(m, 1, ctx, false)
			for i := k; i < len(wins); i += threads {
				n := len(wins[i].in)
				copy(w.tokens, wins[i].in)
				w.forward(1, n)
				losses[i] = softmaxCE(nil, w.logits[:n*m.Config.Vocab], wins[i].target, m.Config.Vocab, 0, w.ps)
			}
		}()
	}
	wg.Wait()
	var sum float64
	count := 0
	for i, l := range losses {
		sum += l
		count += len(wins[i].target)
	}
	mean := sum / float64(count)
	return Eval{Tokens: count, Loss: mean, Perplexity: math.Exp(mean)}, nil
}
