package kernels

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// sparseBench is a 4096x4096 matrix in every layout the sparse benchmarks
// compare: dense, CSR at 50, 70 and 90% zeros, and pruned to 2:4.
type sparseBench struct {
	w, x, out []float32
	csr       [3]struct {
		vals []float32
		idx  []uint16
		ptr  []int32
	}
	v24 []float32
	m24 []uint32
}

const sbRows, sbCols = 4096, 4096

var sparseZeros = [3]float64{0.5, 0.7, 0.9}

func newSparseBench() *sparseBench {
	rng := rand.New(rand.NewPCG(5, 6))
	s := &sparseBench{w: randSlice(sbRows * sbCols), x: randSlice(sbCols), out: make([]float32, sbRows)}
	sw := make([]float32, len(s.w))
	for i, zero := range sparseZeros {
		for j := range sw {
			sw[j] = 0
			if rng.Float64() >= zero {
				sw[j] = s.w[j]
			}
		}
		c := &s.csr[i]
		c.vals, c.idx, c.ptr = toCSR(sw, sbRows, sbCols)
	}
	copy(sw, s.w)
	s.v24, s.m24 = to24(sw, sbRows, sbCols)
	return s
}

// layouts are the products BenchmarkSparseMatVec times, by name.
func (s *sparseBench) layouts() []struct {
	name  string
	bytes int64
	run   func()
} {
	type l = struct {
		name  string
		bytes int64
		run   func()
	}
	ls := []l{{"dense", 4 * sbRows * sbCols, func() { MatVec(s.out, s.w, s.x, sbCols) }}}
	for i := range s.csr {
		c := &s.csr[i]
		ls = append(ls, l{fmt.Sprintf("csr%.0f", 100*sparseZeros[i]), int64(6*len(c.vals) + 4*len(c.ptr)),
			func() { SpMatVec(s.out, c.vals, c.idx, c.ptr, s.x) }})
	}
	ls = append(ls, l{"2:4", int64(4*len(s.v24) + 4*len(s.m24)), func() { Sp24MatVec(s.out, s.v24, s.m24, s.x, sbCols) }})
	return ls
}

// BenchmarkSparseMatVec times each layout of a 4096x4096 matrix on its own;
// MB/s counts the bytes each layout streams.
func BenchmarkSparseMatVec(b *testing.B) {
	s := newSparseBench()
	benchVariants(b, func(b *testing.B) {
		for _, l := range s.layouts() {
			b.Run(l.name, func(b *testing.B) {
				b.SetBytes(l.bytes)
				for b.Loop() {
					l.run()
				}
			})
		}
	})
}

// BenchmarkSparseVsDense runs the layouts in turn, one product each per
// round, and reports each one's median time over the rounds and its speed-up
// over the dense product ("x-dense"): on a shared, noisy machine the ratio of
// interleaved medians is steadier than separate benchmarks.
func BenchmarkSparseVsDense(b *testing.B) {
	s := newSparseBench()
	benchVariants(b, func(b *testing.B) {
		ls := s.layouts()
		times := make([][]float64, len(ls))
		for b.Loop() {
			for i, l := range ls {
				t0 := time.Now()
				l.run()
				times[i] = append(times[i], float64(time.Since(t0).Nanoseconds()))
			}
		}
		med := make([]float64, len(ls))
		for i := range ls {
			slices.Sort(times[i])
			med[i] = times[i][len(times[i])/2]
		}
		for i, l := range ls {
			b.ReportMetric(med[i]/1e3, l.name+"-µs")
			if i > 0 {
				b.ReportMetric(med[0]/med[i], l.name+"-x-dense")
			}
		}
	})
}

// BenchmarkSparse24Cached times the 2:4 and dense products of a 64x4096
// matrix that stays in L2, where the kernels' compute, not memory, limits them.
func BenchmarkSparse24Cached(b *testing.B) {
	const rows, cols = 64, 4096
	w, x, out := randSlice(rows*cols), randSlice(cols), make([]float32, rows)
	b.Run("dense", func(b *testing.B) {
		for b.Loop() {
			MatVec(out, w, x, cols)
		}
	})
	sw := append([]float32(nil), w...)
	v, m := to24(sw, rows, cols)
	b.Run("2:4", func(b *testing.B) {
		for b.Loop() {
			Sp24MatVec(out, v, m, x, cols)
		}
	})
	vals, idx, ptr := toCSR(sw, rows, cols)
	b.Run("csr50", func(b *testing.B) {
		for b.Loop() {
			SpMatVec(out, vals, idx, ptr, x)
		}
	})
}
