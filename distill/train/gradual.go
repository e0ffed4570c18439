package train

import (
	"fmt"
	"math"
)

// Schedule is gradual magnitude pruning (Zhu & Gupta, 2017, "To prune, or not
// to prune"): before optimizer steps t = Start, Start+Every, ...,
// Start+Count·Every (counting from 0) the weight matrices are pruned by
// magnitude to SparsityAt(t); the masks then stay fixed for the steps left.
type Schedule struct {
	Initial float64 // s_i, the sparsity of the first pruning
	Final   float64 // s_f, reached at step Start+Count·Every
	Start   int     // t0
	Every   int     // Δt, steps between prunings
	Count   int     // n, the number of pruning intervals; 0 prunes once, at Start, to Final
	// Global sets one magnitude threshold over all the weight matrices
	// instead of giving each the same sparsity.
	Global bool
}

// SparsityAt is the schedule's target before step t:
// s_f + (s_i - s_f)·(1 - (t - t0)/(n·Δt))³ within the ramp, 0 before Start and
// s_f after it.
func (s Schedule) SparsityAt(t int) float64 {
	switch {
	case t < s.Start:
		return 0
	case t >= s.End():
		return s.Final
	}
	r := 1 - float64(t-s.Start)/float64(s.Count*s.Every)
	return s.Final + (s.Initial-s.Final)*r*r*r
}

// End is the step before which the last pruning happens.
func (s Schedule) End() int { return s.Start + s.Count*s.Every }

// Prunes reports whether the weights are pruned before step t.
func (s Schedule) Prunes(t int) bool {
	if t < s.Start || t > s.End() {
		return false
	}
	return s.Count == 0 || (t-s.Start)%s.Every == 0
}

// Check reports a schedule that cannot run in steps steps.
func (s Schedule) Check(steps int) error {
	switch {
	case !(s.Initial >= 0 && s.Initial <= s.Final && s.Final < 1) || math.IsNaN(s.Final):
		return fmt.Errorf("train: pruning from sparsity %g to %g; want 0 <= initial <= final < 1", s.Initial, s.Final)
	case s.Start < 0 || s.Count < 0 || (s.Count > 0 && s.Every < 1):
		return fmt.Errorf("train: pruning from step %d every %d steps %d times; want a start from 0, and at least one step between prunings", s.Start, s.Every, s.Count)
	case s.End() >= steps:
		return fmt.Errorf("train: the last pruning comes before step %d (from 0), but the run has %d steps", s.End(), steps)
	}
	return nil
}
