package train

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/shrinkml/shrink/distill/internal/checkpoint"
	"github.com/shrinkml/shrink/distill/internal/hidden"
	"github.com/shrinkml/shrink/inference/kernels"
)

// Data is a labelled training set: example i is X[i*features:(i+1)*features]
// with class Y[i]. Soft, when set, holds a teacher's class probabilities at
// Options.Temperature, Classes() floats per example, for distillation.
type Data struct {
	X    []float32
	Y    []int
	Soft []float32
}

// Options set up a training run. Zero values of Batch, LR, Beta1, Beta2
// and Eps mean the defaults in DefaultOptions.
type Options struct {
	Epochs int // passes over the data; ignored when Steps > 0
	Steps  int // optimizer steps; 0: Epochs passes
	Batch  int // examples per step

	LR          float64 // peak learning rate
	WeightDecay float64 // AdamW's decoupled decay, on the weights (not the biases)
	Beta1       float64
	Beta2       float64
	Eps         float64
	// Warmup is the share of the steps over which the learning rate rises
	// linearly from LR/warmup-steps to LR; a cosine decay to zero follows.
	Warmup float64
	// Clip scales the gradient down to this global L2 norm when it is
	// larger; 0 never clips.
	Clip float64

	// Temperature and Alpha weigh a distillation loss when Data.Soft is set:
	// Alpha·T²·KL(soft || softmax(z/T)) + (1-Alpha)·CE(labels, softmax(z)).
	Temperature float64
	Alpha       float64

	// HiddenLoss, when set ("mse" or "cosine"), adds HiddenWeight times a
	// loss between the outputs (after the activation) of the network's
	// hidden layers HiddenLayers and those of HiddenTeacher's layers
	// HiddenMap: the mean square over the width, or 1 - cos, per example,
	// averaged over the batch and summed over the pairs. Where the widths
	// differ, a learned linear projection of the student's output comes first
	// (FitNets); it trains with the network and is discarded after.
	HiddenLoss    string
	HiddenWeight  float64
	HiddenTeacher *Network
	// HiddenLayers are the hidden layers matched, from 0; nil: every one.
	HiddenLayers []int
	// HiddenMap are the teacher's hidden layers they match; nil: layer
	// round((i+1)·teacher's/student's hidden layers) - 1 for layer i.
	HiddenMap []int

	Seed    uint64
	Threads int // goroutines a mini-batch is split over; 0: every core

	// Prune, when set, prunes the weight matrices by magnitude on a
	// schedule as the training runs (gradual pruning), masking what it
	// removes. Masked weights, whether from Prune or from the network's
	// masks, stay zero, with their AdamW moments.
	Prune *Schedule

	// Val, when set, is scored (accuracy) after each epoch.
	Val *Data
	// OnStep, when set, is called after each step with the step's number
	// (from 1), the total and the step's mean loss.
	OnStep func(step, steps int, loss float64)

	// Checkpoint, when set, is a file the run's state is written to,
	// atomically, every CheckpointEvery steps (0: never) and after the last
	// step: the weights, masks, AdamW moments, step and progress.
	Checkpoint      string
	CheckpointEvery int
	// Resume, when set, is a checkpoint file to continue from: the
	// network's weights and masks become the file's, and the run ends with
	// the weights an uninterrupted run would have. The network's shape, the
	// data and the options that shape the run (Steps, Batch, Seed, Threads,
	// the optimizer's, the losses') must be the ones it was written with.
	Resume string
}

// DefaultOptions are the settings the command line starts from.
func DefaultOptions() Options {
	return Options{Epochs: 10, Batch: 128, LR: 1e-3, WeightDecay: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8,
		Warmup: 0.02, Clip: 1, Temperature: 4, Alpha: 0.7, Seed: 1}
}

// Epoch is what one pass over the data gave.
type Epoch struct {
	Epoch       int     `json:"epoch"`
	Loss        float64 `json:"loss"`                   // mean over the epoch's steps
	ValAccuracy float64 `json:"val_accuracy,omitempty"` // with Options.Val
}

// Result summarizes a run. Seconds and ExamplesPerS are the training's,
// without the validation passes, and a resumed run's only since it resumed.
type Result struct {
	Steps        int     `json:"steps"`
	Examples     int     `json:"examples"` // examples seen, repeats included
	Threads      int     `json:"threads"`
	Seconds      float64 `json:"seconds"`
	ExamplesPerS float64 `json:"examples_per_s"`
	Epochs       []Epoch `json:"epochs"`
}

// Train trains n on d with mini-batch AdamW. Each epoch visits the
// examples in a fresh seeded order, floor(len/Batch) steps of Batch examples
// (the remainder sits out that epoch); a step splits its batch into Threads
// contiguous shards, one per goroutine, and adds their gradients in shard
// order, so a seed and a thread count always give the same weights.
func Train(n *Network, d Data, opts Options) (Result, error) {
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
	in, k := n.Inputs(), n.Classes()
	examples := len(d.Y)
	switch {
	case len(d.X) != examples*in:
		return Result{}, fmt.Errorf("train: %d feature values for %d examples of %d features", len(d.X), examples, in)
	case d.Soft != nil && len(d.Soft) != examples*k:
		return Result{}, fmt.Errorf("train: %d soft-target values for %d examples of %d classes", len(d.Soft), examples, k)
	case opts.Batch < 1:
		return Result{}, fmt.Errorf("train: batch %d; want at least 1", opts.Batch)
	case opts.Batch > examples:
		return Result{}, fmt.Errorf("train: a batch of %d is more than the %d examples", opts.Batch, examples)
	case opts.Steps < 0 || opts.Epochs < 0 || (opts.Steps == 0 && opts.Epochs == 0):
		return Result{}, fmt.Errorf("train: %d steps and %d epochs; want a positive number of one", opts.Steps, opts.Epochs)
	case !(opts.LR > 0) || opts.WeightDecay < 0 || opts.Clip < 0 || opts.Warmup < 0 || opts.Warmup >= 1:
		return Result{}, fmt.Errorf("train: learning rate %g, weight decay %g, clip %g, warm-up %g out of range", opts.LR, opts.WeightDecay, opts.Clip, opts.Warmup)
	case opts.Beta1 < 0 || opts.Beta1 >= 1 || opts.Beta2 < 0 || opts.Beta2 >= 1 || !(opts.Eps > 0):
		return Result{}, fmt.Errorf("train: Adam betas %g, %g and eps %g out of range", opts.Beta1, opts.Beta2, opts.Eps)
	case d.Soft != nil && (!(opts.Temperature > 0) || opts.Alpha < 0 || opts.Alpha > 1):
		return Result{}, fmt.Errorf("train: temperature %g (want > 0) and alpha %g (want 0 to 1)", opts.Temperature, opts.Alpha)
	case opts.CheckpointEvery < 0:
		return Result{}, fmt.Errorf("train: a checkpoint every %d steps; want 0 or more", opts.CheckpointEvery)
	case opts.HiddenLoss != "" && opts.HiddenTeacher == nil:
		return Result{}, fmt.Errorf("train: a hidden-state loss needs HiddenTeacher, the network to match")
	case opts.HiddenLoss == "" && (opts.HiddenWeight != 0 || opts.HiddenTeacher != nil || opts.HiddenLayers != nil || opts.HiddenMap != nil):
		return Result{}, fmt.Errorf("train: HiddenWeight, HiddenTeacher, HiddenLayers and HiddenMap apply to a HiddenLoss; set one")
	case opts.HiddenTeacher != nil && opts.HiddenTeacher.Inputs() != in:
		return Result{}, fmt.Errorf("train: the hidden-state teacher takes %d features, the network %d", opts.HiddenTeacher.Inputs(), in)
	}
	if opts.HiddenLoss != "" {
		if _, err := opts.matcher(n); err != nil {
			return Result{}, err
		}
	}
	for i, y := range d.Y {
		if y < 0 || y >= k {
			return Result{}, fmt.Errorf("train: label %d of example %d is not one of the %d classes", y, i, k)
		}
	}
	for i, v := range d.X {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return Result{}, fmt.Errorf("train: feature %d of example %d is %g", i%in, i/in, v)
		}
	}
	if opts.Val != nil && len(opts.Val.X) != len(opts.Val.Y)*in {
		return Result{}, fmt.Errorf("train: validation set of %d feature values for %d examples", len(opts.Val.X), len(opts.Val.Y))
	}
	perEpoch := examples / opts.Batch
	steps := opts.Steps
	if steps == 0 {
		steps = opts.Epochs * perEpoch
	}
	if opts.Prune != nil {
		if err := opts.Prune.Check(steps); err != nil {
			return Result{}, err
		}
	}
	threads := min(resolveThreads(opts.Threads), opts.Batch)

	t := newTrainer(n, opts, threads)
	pcg := rand.NewPCG(opts.Seed, streamShuffle)
	rng := rand.New(pcg)
	order := make([]int, examples)
	shuffle := func() {
		for i := range order {
			order[i] = i
		}
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	res := Result{Steps: steps, Threads: threads}
	var (
		epochLoss float64
		valTime   time.Duration
		first     int // the first step this call runs
		fields    []checkpoint.Field
	)
	if opts.Checkpoint != "" || opts.Resume != "" {
		fields = t.fields(d, steps)
	}
	if opts.Resume != "" {
		st, err := t.resume(opts.Resume, fields)
		if err != nil {
			return Result{}, err
		}
		if st.Step > steps {
			return Result{}, fmt.Errorf("train: checkpoint %s is at step %d of a run of %d", opts.Resume, st.Step, steps)
		}
		// The order of the examples is replayed from the seed: every
		// shuffle before the checkpoint's step.
		for e := 0; e*perEpoch < st.Step; e++ {
			shuffle()
		}
		if state, _ := pcg.MarshalBinary(); !bytes.Equal(state, st.RNG) {
			return Result{}, fmt.Errorf("train: checkpoint %s: the example order does not replay to its step %d", opts.Resume, st.Step)
		}
		first, res.Examples, res.Epochs, epochLoss = st.Step, st.Examples, st.Epochs, st.EpochLoss
	}
	start := time.Now()
	for s := first; s < steps; s++ {
		pos := s % perEpoch
		if pos == 0 {
			shuffle()
		}
		if p := opts.Prune; p != nil && p.Prunes(s) {
			if err := n.PruneMagnitude(p.SparsityAt(s), p.Global); err != nil {
				return Result{}, err
			}
			t.transposeWeights(0, 1)
		}
		loss := t.step(d, order[pos*opts.Batch:(pos+1)*opts.Batch], s, steps)
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return Result{}, fmt.Errorf("train: the loss became %g at step %d of %d; a lower learning rate than %g may help", loss, s+1, steps, opts.LR)
		}
		epochLoss += loss
		res.Examples += opts.Batch
		if opts.OnStep != nil {
			opts.OnStep(s+1, steps, loss)
		}
		if pos == perEpoch-1 || s == steps-1 {
			e := Epoch{Epoch: len(res.Epochs) + 1, Loss: epochLoss / float64(pos+1)}
			if opts.Val != nil && len(opts.Val.Y) > 0 {
				vstart := time.Now()
				acc, err := n.Accuracy(opts.Val.X, opts.Val.Y, threads)
				valTime += time.Since(vstart)
				if err != nil {
					return Result{}, err
				}
				e.ValAccuracy = acc
			}
			res.Epochs = append(res.Epochs, e)
			epochLoss = 0
		}
		if opts.Checkpoint != "" && (s+1 == steps || opts.CheckpointEvery > 0 && (s+1)%opts.CheckpointEvery == 0) {
			rs, _ := pcg.MarshalBinary()
			st := mlpState{Step: s + 1, Examples: res.Examples, Epochs: res.Epochs, EpochLoss: epochLoss, RNG: rs}
			if err := t.save(opts.Checkpoint, fields, st); err != nil {
				return Result{}, err
			}
		}
	}
	res.Seconds = (time.Since(start) - valTime).Seconds()
	if ran := steps - first; ran > 0 {
		res.ExamplesPerS = float64(ran*opts.Batch) / res.Seconds
	}
	return res, nil
}

// LearningRate is the schedule: a linear warm-up over the first
// round(warmup·steps) steps, then a cosine decay from peak to zero.
func LearningRate(step, steps int, peak, warmup float64) float64 {
	w := int(math.Round(warmup * float64(steps)))
	if step < w {
		return peak * float64(step+1) / float64(w)
	}
	if steps-w <= 1 {
		return peak
	}
	p := float64(step-w) / float64(steps-w-1)
	return peak * 0.5 * (1 + math.Cos(math.Pi*p))
}

// trainer holds the optimizer state and each goroutine's buffers.
type trainer struct {
	n       *Network
	opts    Options
	threads int
	wt      [][]float32 // wᵀ of each layer but the first, for the input gradients
	m, v    []float32   // Adam's moments, laid out as n.params
	segs    []segment
	// free lists, per segment, the offsets of its unmasked parameters in
	// order; nil when none of the segment is masked. maskGen is the
	// network's masks' generation they were made from.
	free    [][]int32
	maskGen int
	work    []*worker

	// With Options.HiddenLoss: the pairs and projections, each goroutine's
	// buffers, and the projections' Adam moments.
	hid    *hidden.Matcher
	hs     []*hidden.Scratch
	hm, hv []float32
}

// segment is one tensor's stretch of the flat parameter vector.
type segment struct {
	off, len int
	decay    bool
}

// worker is one goroutine's share of a step: its shard's activations and
// the gradient of its shard's loss.
type worker struct {
	x      []float32   // the shard's examples
	z, a   [][]float32 // each layer's output before and after the activation
	dz, da []float32
	tmp    []float32 // transposes
	ls     []float64
	y      []int
	grad   []float32 // laid out as n.params
	gw, gb [][]float32
	loss   float64
	sumsq  float64
	// With a hidden-state loss: the teacher's hidden outputs, and per hidden
	// layer the loss's gradient with respect to its output, or nil.
	teacher [][]float32
	inject  [][]float32
	hs      *hidden.Scratch
}

func newTrainer(n *Network, opts Options, threads int) *trainer {
	t := &trainer{n: n, opts: opts, threads: threads,
		m: make([]float32, len(n.params)), v: make([]float32, len(n.params))}
	off := 0
	for l := range n.w {
		t.segs = append(t.segs, segment{off, len(n.w[l]), true}, segment{off + len(n.w[l]), len(n.b[l]), false})
		off += len(n.w[l]) + len(n.b[l])
	}
	t.wt = make([][]float32, len(n.w))
	for l := 1; l < len(n.w); l++ {
		t.wt[l] = make([]float32, len(n.w[l]))
	}
	t.transposeWeights(0, 1)
	t.syncMasks()
	shard := (opts.Batch + threads - 1) / threads
	widest := 0
	for _, s := range n.Sizes {
		widest = max(widest, s)
	}
	for range threads {
		w := &worker{x: make([]float32, shard*n.Inputs()), dz: make([]float32, shard*widest), da: make([]float32, shard*widest),
			tmp: make([]float32, 2*shard*widest), ls: make([]float64, n.Classes()), y: make([]int, shard), grad: make([]float32, len(n.params))}
		off := 0
		for l := range n.w {
			o := n.Sizes[l+1]
			w.z = append(w.z, make([]float32, shard*o))
			w.a = append(w.a, make([]float32, shard*o))
			w.gw = append(w.gw, w.grad[off:off+len(n.w[l])])
			off += len(n.w[l])
			w.gb = append(w.gb, w.grad[off:off+o])
			off += o
		}
		t.work = append(t.work, w)
	}
	if opts.HiddenLoss != "" {
		t.hid, _ = opts.matcher(n) // Train checked it
		t.hm, t.hv = make([]float32, len(t.hid.Params)), make([]float32, len(t.hid.Params))
		deepest := 0
		for _, p := range t.hid.Pairs {
			deepest = max(deepest, p.Teacher)
		}
		for _, w := range t.work {
			w.hs = t.hid.NewScratch(shard)
			t.hs = append(t.hs, w.hs)
			w.inject = make([][]float32, len(n.w))
			for l := range deepest + 1 {
				w.teacher = append(w.teacher, make([]float32, shard*opts.HiddenTeacher.Sizes[l+1]))
			}
		}
	}
	return t
}

// matcher returns the hidden-state loss's pairs and projections for the
// network n and opts.HiddenTeacher, projections seeded by opts.Seed.
func (opts Options) matcher(n *Network) (*hidden.Matcher, error) {
	hiddenWidths := func(n *Network) []int { return n.Sizes[1 : len(n.Sizes)-1] }
	h, err := hidden.New(opts.HiddenLoss, opts.HiddenWeight, opts.HiddenLayers, opts.HiddenMap,
		hiddenWidths(n), hiddenWidths(opts.HiddenTeacher), opts.Seed)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return h, nil
}

// syncMasks makes the free lists of the network's masks and zeroes the
// masked weights' moments (and the weights, should they have moved): a weight
// masked in the middle of a run starts from nothing if it is ever unmasked.
func (t *trainer) syncMasks() {
	t.maskGen = t.n.maskGen
	t.free = make([][]int32, len(t.segs))
	if t.n.mask == nil {
		return
	}
	for si, seg := range t.segs {
		mask := t.n.mask[seg.off : seg.off+seg.len]
		if !slices.Contains(mask, true) {
			continue
		}
		free := make([]int32, 0, len(mask)-count(mask))
		for i, m := range mask {
			if m {
				j := seg.off + i
				t.n.params[j], t.m[j], t.v[j] = 0, 0, 0
			} else {
				free = append(free, int32(i))
			}
		}
		t.free[si] = free
	}
}

// between returns the stretch of the sorted offsets free that lies in
// [lo, hi).
func between(free []int32, lo, hi int) []int32 {
	a, _ := slices.BinarySearch(free, int32(lo))
	b, _ := slices.BinarySearch(free, int32(hi))
	return free[a:b]
}

// Parallel runs f(0) .. f(threads-1), each on its own goroutine (the
// caller's when threads is 1), and waits for them.
func Parallel(threads int, f func(k int)) {
	if threads == 1 {
		f(0)
		return
	}
	var wg sync.WaitGroup
	for k := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(k)
		}()
	}
	wg.Wait()
}

// Part returns the bounds of the k-th of parts contiguous parts of [0, n).
func Part(k, parts, n int) (int, int) {
	return k * n / parts, (k + 1) * n / parts
}

// parallel runs f over the trainer's threads.
func (t *trainer) parallel(f func(k int)) { Parallel(t.threads, f) }

// part returns the k-th of t.threads contiguous parts of [0, n).
func (t *trainer) part(k, n int) (int, int) { return Part(k, t.threads, n) }

// step runs optimizer step s of steps on the examples idx and returns their
// mean loss.
func (t *trainer) step(d Data, idx []int, s, steps int) float64 {
	if t.maskGen != t.n.maskGen {
		t.syncMasks()
	}
	loss, sumsq := t.accumulate(d, idx)
	t.update(s, steps, sumsq)
	return loss
}

// accumulate leaves the gradient of the mean loss over the examples idx in
// the first worker's grad and returns the mean loss and the gradient's
// squared L2 norm.
func (t *trainer) accumulate(d Data, idx []int) (loss, sumsq float64) {
	batch := len(idx)
	t.parallel(func(k int) {
		lo, hi := t.part(k, batch)
		t.work[k].gradient(t, d, idx[lo:hi], batch)
	})
	// Sum the shards' gradients into the first worker's, each goroutine a
	// slice of every tensor, adding shards in order.
	t.parallel(func(k int) {
		g := t.work[0].grad
		var ss float64
		for si, seg := range t.segs {
			lo, hi := t.part(k, seg.len)
			dst := g[seg.off+lo : seg.off+hi]
			for _, w := range t.work[1:] {
				src := w.grad[seg.off+lo : seg.off+hi]
				for i := range dst {
					dst[i] += src[i]
				}
			}
			if free := t.free[si]; free != nil {
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
		t.work[k].sumsq = ss
	})
	for _, w := range t.work {
		loss += w.loss
		sumsq += w.sumsq
	}
	if t.hid != nil {
		g := t.hs[0].Grad
		for _, s := range t.hs[1:] {
			kernels.Add(g, s.Grad)
		}
		for _, v := range g {
			sumsq += float64(v) * float64(v)
		}
	}
	return loss / float64(batch), sumsq
}

// update runs AdamW step s of steps with the gradient accumulate left, whose
// squared norm is sumsq.
func (t *trainer) update(s, steps int, sumsq float64) {
	scale := 1.0
	if norm := math.Sqrt(sumsq); t.opts.Clip > 0 && norm > t.opts.Clip {
		scale = t.opts.Clip / norm
	}
	lr := LearningRate(s, steps, t.opts.LR, t.opts.Warmup)
	b1, b2 := t.opts.Beta1, t.opts.Beta2
	bc1 := 1 - math.Pow(b1, float64(s+1))
	bc2 := 1 - math.Pow(b2, float64(s+1))
	// p -= lr·(m/bc1)/(√(v/bc2) + eps), with the constants folded.
	c := adamConsts{gs: float32(scale), b1: float32(b1), b2: float32(b2), a: float32(lr / bc1),
		s2: float32(1 / math.Sqrt(bc2)), eps: float32(t.opts.Eps)}
	decay := float32(1 - lr*t.opts.WeightDecay)
	t.parallel(func(k int) {
		g, p := t.work[0].grad, t.n.params
		c := c // each goroutine sets its own decay
		for si, seg := range t.segs {
			lo, hi := t.part(k, seg.len)
			c.decay = 1
			if seg.decay {
				c.decay = decay
			}
			r := seg.off + lo
			if free := t.free[si]; free != nil {
				end := seg.off + seg.len
				adamwAt(p[seg.off:end], g[seg.off:end], t.m[seg.off:end], t.v[seg.off:end], between(free, lo, hi), c)
			} else {
				adamw(p[r:seg.off+hi], g[r:], t.m[r:], t.v[r:], c)
			}
		}
	})
	t.parallel(func(k int) { t.transposeWeights(k, t.threads) })
	if t.hid != nil {
		c.decay = decay
		adamw(t.hid.Params, t.hs[0].Grad, t.hm, t.hv, c)
		t.hid.Refresh()
	}
}

// transposeWeights refreshes part k of parts of each wᵀ.
func (t *trainer) transposeWeights(k, parts int) {
	for l := 1; l < len(t.n.w); l++ {
		in, out := t.n.Sizes[l], t.n.Sizes[l+1]
		lo, hi := k*out/parts, (k+1)*out/parts
		if hi > lo {
			// Rows lo..hi of w become columns lo..hi of wᵀ.
			kernels.Transpose(t.wt[l][lo:], out, t.n.w[l][lo*in:], in, hi-lo, in)
		}
	}
}

// gradient runs the forward and backward pass of a shard and leaves the
// gradient of its share of the batch's mean loss in w.grad.
func (w *worker) gradient(t *trainer, d Data, idx []int, batch int) {
	n := t.n
	rows, in, k := len(idx), n.Inputs(), n.Classes()
	w.loss = 0
	if rows == 0 {
		clear(w.grad)
		if w.hs != nil {
			clear(w.hs.Grad)
		}
		return
	}
	x := w.x[:rows*in]
	for r, i := range idx {
		copy(x[r*in:(r+1)*in], d.X[i*in:(i+1)*in])
	}
	last := len(n.w) - 1
	cur := x
	for l := range n.w {
		o := n.Sizes[l+1]
		z := w.z[l][:rows*o]
		linearForward(z, cur, n.w[l], n.b[l], rows, n.Sizes[l], o)
		if l < last {
			a := w.a[l][:rows*o]
			n.Act.forward(a, z)
			cur = a
		}
	}

	// The gradient of the loss with respect to the logits.
	logits := w.z[last][:rows*k]
	dz := w.dz[:rows*k]
	clear(dz)
	y := w.y[:rows]
	for r, i := range idx {
		y[r] = d.Y[i]
	}
	inv := 1 / float64(batch)
	if d.Soft == nil {
		w.loss = softmaxCE(dz, logits, y, k, inv, w.ls)
	} else {
		soft := w.da[:rows*k]
		for r, i := range idx {
			copy(soft[r*k:(r+1)*k], d.Soft[i*k:(i+1)*k])
		}
		a, tt := t.opts.Alpha, t.opts.Temperature
		ce := softmaxCE(dz, logits, y, k, (1-a)*inv, w.ls)
		kl := klTemp(dz, logits, soft, rows, k, tt, a*tt*tt*inv, w.ls)
		w.loss = a*tt*tt*kl + (1-a)*ce
	}
	if t.hid != nil {
		// The teacher's hidden outputs, as far as the pairs reach.
		tn := t.opts.HiddenTeacher
		cur := x
		for l, ta := range w.teacher {
			ta = ta[:rows*tn.Sizes[l+1]]
			linearForward(ta, cur, tn.w[l], tn.b[l], rows, tn.Sizes[l], tn.Sizes[l+1])
			tn.Act.forward(ta, ta)
			cur = ta
		}
		for i, p := range t.hid.Pairs {
			w.loss += t.hid.Apply(w.hs, i, w.a[p.Student][:rows*p.In], w.teacher[p.Teacher][:rows*p.Out], rows, inv)
			w.inject[p.Student] = w.hs.Dx[i][:rows*p.In]
		}
	}

	for l := last; l >= 0; l-- {
		li, o := n.Sizes[l], n.Sizes[l+1]
		input := x
		if l > 0 {
			input = w.a[l-1][:rows*li]
		}
		var dx []float32
		if l > 0 {
			dx = w.da[:rows*li]
		}
		linearBackward(dx, w.gw[l], w.gb[l], dz, input, t.wt[l], rows, li, o, w.tmp)
		if l > 0 {
			if w.inject != nil && w.inject[l-1] != nil {
				kernels.Add(dx, w.inject[l-1])
			}
			dz = w.dz[:rows*li]
			n.Act.backward(dz, dx, w.z[l-1][:rows*li])
		}
	}
}

// adamConsts are one AdamW step's constants: the gradient's clipping scale,
// the betas, lr/(1-β₁ᵗ), 1/√(1-β₂ᵗ), eps and the weight decay factor.
type adamConsts struct{ gs, b1, b2, a, s2, eps, decay float32 }

// adamw runs an AdamW step on the parameters p, in float32 as PyTorch does;
// the slices are cut to len(p) so that the loop has no bounds checks.
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
