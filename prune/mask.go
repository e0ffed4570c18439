package prune

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Every selection here breaks ties the same way: among equal scores the
// weight with the higher index goes first, so the earlier one is kept. The
// result then depends only on the values, never on the thread count or a
// sort's whims.

// pruneCount is how many of n weights a sparsity removes.
func pruneCount(n int, sparsity float64) int {
	return min(n, int(math.Round(sparsity*float64(n))))
}

// absKey orders |v| as an unsigned integer: the bits of a non-negative float
// sort as the float does.
func absKey(v float32) uint32 { return math.Float32bits(v) &^ (1 << 31) }

// lowestKeys returns, for keys in the order given by the sources, a predicate
// telling whether the element is among the k smallest (ties: later first). It
// is a two-pass radix select on 16-bit halves, linear in the element count,
// for the millions of weights global magnitude pruning compares.
func lowestKeys(sources [][]float32, k int) func(src, i int) bool {
	if k <= 0 {
		return func(int, int) bool { return false }
	}
	var hist [1 << 16]int
	for _, s := range sources {
		for _, v := range s {
			hist[absKey(v)>>16]++
		}
	}
	hi, below := 0, 0
	for ; hi < len(hist); hi++ {
		if below+hist[hi] >= k {
			break
		}
		below += hist[hi]
	}
	if hi == len(hist) { // k covers everything
		return func(int, int) bool { return true }
	}
	clear(hist[:])
	for _, s := range sources {
		for _, v := range s {
			if key := absKey(v); int(key>>16) == hi {
				hist[key&0xffff]++
			}
		}
	}
	lo := 0
	for ; lo < len(hist); lo++ {
		if below+hist[lo] >= k {
			break
		}
		below += hist[lo]
	}
	thresh := uint32(hi)<<16 | uint32(lo)
	// Every key below thresh goes, and the last k-below of those equal to it.
	ties := k - below
	tieFrom := make([]int, len(sources)) // per source, the first tied index that goes
	for s := len(sources) - 1; s >= 0; s-- {
		tieFrom[s] = len(sources[s])
		for i := len(sources[s]) - 1; i >= 0 && ties > 0; i-- {
			if absKey(sources[s][i]) == thresh {
				tieFrom[s] = i
				ties--
			}
		}
	}
	return func(src, i int) bool {
		key := absKey(sources[src][i])
		return key < thresh || key == thresh && i >= tieFrom[src]
	}
}

// magnitude zeroes, in place, the round(sparsity·n) weights of smallest |w|
// over all the given tensors together.
func magnitude(vals [][]float32, sparsity float64) {
	n := 0
	for _, v := range vals {
		n += len(v)
	}
	drop := lowestKeys(vals, pruneCount(n, sparsity))
	for s, v := range vals {
		for i := range v {
			if drop(s, i) {
				v[i] = 0
			}
		}
	}
}

// rowMask marks, in drop, the weights of one row to prune by score: the
// round(sparsity·len) lowest, or with an N:M pattern the M-N lowest of every
// group of M. idx is scratch of the row's length.
func rowMask(score []float64, sparsity float64, p Pattern, drop []bool, idx []int) {
	clear(drop)
	if p.IsZero() {
		lowestIndices(score, 0, len(score), pruneCount(len(score), sparsity), drop, idx)
		return
	}
	for g := 0; g < len(score); g += p.M {
		lowestIndices(score, g, g+p.M, p.M-p.N, drop, idx)
	}
}

// lowestIndices marks the k lowest scores of score[from:to] in drop.
func lowestIndices(score []float64, from, to, k int, drop []bool, idx []int) {
	if k <= 0 {
		return
	}
	ix := idx[:0]
	for i := from; i < to; i++ {
		ix = append(ix, i)
	}
	slices.SortFunc(ix, func(a, b int) int {
		if c := cmp.Compare(score[a], score[b]); c != 0 {
			return c
		}
		return cmp.Compare(b, a)
	})
	for _, i := range ix[:k] {
		drop[i] = true
	}
}

// checkPattern verifies that rows of cols weights split into groups of M.
func checkPattern(name string, cols int, p Pattern) error {
	if !p.IsZero() && cols%p.M != 0 {
		return fmt.Errorf("tensor %q: rows of %d weights do not split into groups of %d for pattern %s", name, cols, p.M, p)
	}
	return nil
}

// magnitudeRows prunes a rows×cols matrix in place by |w| with an N:M pattern.
func magnitudeRows(w []float32, rows, cols int, p Pattern) {
	score := make([]float64, cols)
	drop := make([]bool, cols)
	idx := make([]int, cols)
	for r := range rows {
		row := w[r*cols : (r+1)*cols]
		for j, v := range row {
			score[j] = math.Abs(float64(v))
		}
		rowMask(score, 0, p, drop, idx)
		for j := range row {
			if drop[j] {
				row[j] = 0
			}
		}
	}
}

// wanda prunes a rows×cols matrix in place by |W_ij|·||X_j||₂, comparing the
// weights of each output row (or of each N:M group).
func wanda(w []float32, rows, cols int, norms []float64, sparsity float64, p Pattern, threads int) {
	parallelRows(rows, threads, func(r0, r1 int) {
		score := make([]float64, cols)
		drop := make([]bool, cols)
		idx := make([]int, cols)
		for r := r0; r < r1; r++ {
			row := w[r*cols : (r+1)*cols]
			for j, v := range row {
				score[j] = math.Abs(float64(v)) * norms[j]
			}
			rowMask(score, sparsity, p, drop, idx)
			for j := range row {
				if drop[j] {
					row[j] = 0
				}
			}
		}
	})
}
