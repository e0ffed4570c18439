package inference

import (
	"runtime"
	"sync/atomic"
)

// task is one parallel operation: run is called for thread ids in [0, n),
// concurrently. The threads share out the work themselves, claiming blocks
// from an atomic counter until none is left, so every output element must be
// computed the same way whichever thread computes it, and a thread that
// never starts loses no work: run(0, n) alone does all of it.
type task interface {
	run(tid, n int)
}

// spinLimit is how many times a waiting thread polls (tens of microseconds)
// before it parks. Operations in a forward pass follow each other within
// microseconds, so threads spin between them rather than pay for a wake-up;
// parking after that keeps an oversubscribed machine from wasting whole time
// slices on a thread whose partner is not running.
const spinLimit = 1 << 16

// pool runs tasks on n threads: n-1 long-lived worker goroutines and the
// calling goroutine, which takes thread id 0. A task costs an atomic
// increment to publish and a counter to join; no goroutine is started and
// nothing is allocated per task.
//
// Each task generation is claimed once per worker, by the worker (which
// then runs the task) or by the caller once its own run has found no work
// left (the worker then skips it). The caller so waits only for workers
// that are inside the task, never for one that the operating system has not
// scheduled yet: on a machine with more runnable threads than cores, a
// forward pass does not stall for a time slice at every operation.
type pool struct {
	n       int
	task    task          // the current task; written before gen is incremented
	gen     atomic.Uint64 // incremented once per task (and once on close)
	pending atomic.Int32  // workers that claimed the current task and have not finished it
	closed  atomic.Bool
	workers []*worker
	caller  *parker // the caller, parked while waiting for pending to reach 0
}

// worker is one worker goroutine's parker and claim: the last task
// generation it ran or the caller skipped for it.
type worker struct {
	parker
	claimed atomic.Uint64
}

// parker is a goroutine that may block until another one wakes it. The waker
// changes the awaited condition first and then calls wake; the sleeper sets
// sleeping, rechecks the condition, and only then blocks, so no wake-up is lost.
type parker struct {
	sleeping atomic.Bool
	ch       chan struct{} // capacity 1: at most one wake-up is ever pending
}

func newParker() *parker { return &parker{ch: make(chan struct{}, 1)} }

// wake unblocks the parker if it is sleeping (or about to).
func (p *parker) wake() {
	if p.sleeping.Load() && p.sleeping.CompareAndSwap(true, false) {
		p.ch <- struct{}{}
	}
}

// wait spins on done, then parks until done holds.
func (p *parker) wait(done func() bool) {
	for i := 0; i < spinLimit; i++ {
		if done() {
			return
		}
	}
	for {
		p.sleeping.Store(true)
		if done() {
			if !p.sleeping.CompareAndSwap(true, false) {
				<-p.ch // a waker saw us sleeping; take its token
			}
			return
		}
		<-p.ch
	}
}

func newPool(n int) *pool {
	if n < 1 {
		n = 1
	}
	p := &pool{n: n, caller: newParker()}
	for i := 1; i < n; i++ {
		w := &worker{parker: *newParker()}
		p.workers = append(p.workers, w)
		go p.loop(i, w)
	}
	return p
}

// stopWhenUnreachable closes p once owner is garbage: an engine dropped without
// Close must not leave its workers behind. The workers only reference the
// pool, so they do not keep the owner alive.
func stopWhenUnreachable[T any](owner *T, p *pool) {
	runtime.AddCleanup(owner, func(p *pool) { p.close() }, p)
}

// run executes t on all threads and returns when every thread is done.
func (p *pool) run(t task) {
	if p.n == 1 {
		t.run(0, 1)
		return
	}
	p.task = t
	p.pending.Store(int32(p.n - 1))
	g := p.gen.Add(1)
	for _, w := range p.workers {
		w.wake()
	}
	t.run(0, p.n)
	// No work is left: a worker that has not claimed g yet has nothing to do.
	for _, w := range p.workers {
		if w.claimed.CompareAndSwap(g-1, g) {
			p.pending.Add(-1)
		}
	}
	p.caller.wait(p.finished)
	p.task = nil
}

func (p *pool) finished() bool { return p.pending.Load() == 0 }

// close stops the workers; the pool must not be used afterwards.
func (p *pool) close() {
	if p.n == 1 || p.closed.Swap(true) {
		return
	}
	p.gen.Add(1)
	for _, w := range p.workers {
		w.wake()
	}
}

func (p *pool) loop(id int, w *worker) {
	var seen uint64
	next := func() bool { return p.gen.Load() != seen }
	for {
		w.wait(next)
		seen = p.gen.Load()
		if p.closed.Load() {
			return
		}
		// Every earlier generation was claimed by this worker or for it, so
		// the claim before seen is seen-1; failing, the caller skipped seen.
		if !w.claimed.CompareAndSwap(seen-1, seen) {
			continue
		}
		p.task.run(id, p.n)
		if p.pending.Add(-1) == 0 {
			p.caller.wake()
		}
	}
}
