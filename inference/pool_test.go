package inference

import (
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/shrinkml/shrink/inference/kernels"
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

// TestMatOpRuns checks that a matOp prepared for several threads computes
// every row exactly as one thread does (and as Dot does), whichever thread
// ids run and in which order: each finishes its own run of blocks and then
// the others'.
func TestMatOpRuns(t *testing.T) {
	const rows, cols = 1000, 24 // 16 blocks of 64 rows, the last one short
	w := make([]float32, rows*cols)
	x := make([]float32, cols)
	for i := range w {
		w[i] = float32(i%13) - 6
	}
	for i := range x {
		x[i] = float32(i%5) + 0.5
	}
	fw, err := NewF32Weights(w, rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	product := func(threads int, tids []int) []float32 {
		out := make([]float32, rows)
		var o matOp
		o.set(x, 1, plain)
		o.add(fw, out)
		o.prepare(threads)
		for _, tid := range tids {
			o.run(tid, threads)
		}
		return out
	}
	want := product(1, []int{0})
	for r := range want {
		if d := kernels.Dot(w[r*cols:(r+1)*cols], x); want[r] != d {
			t.Fatalf("1 thread: row %d is %g, Dot %g", r, want[r], d)
		}
	}
	for _, c := range []struct {
		threads int
		tids    []int
	}{{3, []int{0}}, {3, []int{2}}, {4, []int{1, 3}}, {5, []int{4, 0, 2}}, {40, []int{7}}} {
		got := product(c.threads, c.tids)
		for r := range want {
			if got[r] != want[r] {
				t.Fatalf("%d threads, ids %v: row %d is %g, want %g", c.threads, c.tids, r, got[r], want[r])
			}
		}
	}
}
