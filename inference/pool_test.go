package inference

import (
	"runtime"
	"sync/atomic"
	"testing"
)

// countTask claims blocks from a counter and counts how often each block
// and each thread id ran.
type countTask struct {
	next  atomic.Int64
	done  []atomic.Int32
	byTid []atomic.Int32
}

func (c *countTask) run(tid, n int) {
	c.byTid[tid].Add(1)
	for {
		b := int(c.next.Add(1) - 1)
		if b >= len(c.done) {
			return
		}
		c.done[b].Add(1)
	}
}

// TestPool runs many tasks on more threads than cores and checks that every
// block of every task runs exactly once, whichever threads join in.
func TestPool(t *testing.T) {
	for _, c := range []struct{ procs, threads, blocks int }{
		{1, 4, 3}, {1, 2, 1}, {2, 2, 17}, {2, 7, 64}, {runtime.NumCPU(), 3, 1000},
	} {
		prev := runtime.GOMAXPROCS(c.procs)
		p := newPool(c.threads)
		task := &countTask{done: make([]atomic.Int32, c.blocks), byTid: make([]atomic.Int32, c.threads)}
		const rounds = 2000
		for r := 0; r < rounds; r++ {
			task.next.Store(0)
			p.run(task)
			for b := range task.done {
				if got := task.done[b].Swap(0); got != 1 {
					t.Fatalf("procs %d threads %d round %d: block %d ran %d times", c.procs, c.threads, r, b, got)
				}
			}
		}
		if got := task.byTid[0].Load(); got != rounds {
			t.Errorf("procs %d threads %d: the caller ran %d of %d tasks", c.procs, c.threads, got, rounds)
		}
		for tid := 1; tid < c.threads; tid++ {
			if got := task.byTid[tid].Load(); got > rounds {
				t.Errorf("procs %d threads %d: thread %d ran %d tasks of %d", c.procs, c.threads, tid, got, rounds)
			}
		}
		p.close()
		runtime.GOMAXPROCS(prev)
	}
}

// BenchmarkPoolContended times one small task on two threads while two other
// goroutines keep both cores busy, as other processes do on a shared machine:
// the caller must not wait for a worker the scheduler has not run.
func BenchmarkPoolContended(b *testing.B) {
	for _, busy := range []int{0, 2} {
		b.Run(map[int]string{0: "idle", 2: "busy"}[busy], func(b *testing.B) {
			prev := runtime.GOMAXPROCS(2)
			defer runtime.GOMAXPROCS(prev)
			var stop atomic.Bool
			for range busy {
				go func() {
					for !stop.Load() {
					}
				}()
			}
			defer stop.Store(true)
			p := newPool(2)
			defer p.close()
			task := &countTask{done: make([]atomic.Int32, 64), byTid: make([]atomic.Int32, 2)}
			for b.Loop() {
				task.next.Store(0)
				p.run(task)
			}
		})
	}
}
