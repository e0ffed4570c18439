package train

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// randomMask marks about share of n weights.
func randomMask(n int, share float64, seed uint64) []bool {
	rng := rand.New(rand.NewPCG(seed, 5))
	m := make([]bool, n)
	for i := range m {
		m[i] = rng.Float64() < share
	}
	return m
}

// TestMaskedWeightsStayZero trains a masked network and checks after every
// step that the masked weights and their AdamW moments are exactly zero while
// the others move.
func TestMaskedWeightsStayZero(t *testing.T) {
	d := blobs(400, 4, 20, 1)
	net, _ := NewNetwork([]int{20, 32, 16, 4}, ReLU, 3)
	before := slices.Clone(net.params)
	for l := range net.w {
		if err := net.SetMask(l, randomMask(len(net.w[l]), 0.6, uint64(l))); err != nil {
			t.Fatal(err)
		}
	}
	opts := DefaultOptions()
	opts.Batch, opts.Threads, opts.LR = 40, 2, 1e-2
	tr := newTrainer(net, opts, 2)
	check := func(step int) {
		for i, m := range net.mask {
			if m && (math.Float32bits(net.params[i]) != 0 || tr.m[i] != 0 || tr.v[i] != 0) {
				t.Fatalf("step %d: masked parameter %d is %g, moments %g, %g", step, i, net.params[i], tr.m[i], tr.v[i])
			}
		}
	}
	check(0)
	idx := make([]int, opts.Batch)
	for s := range 30 {
		for i := range idx {
			idx[i] = (s*opts.Batch + i) % len(d.Y)
		}
		tr.step(d, idx, s, 30)
		check(s + 1)
	}
	moved := 0
	for i, m := range net.mask {
		if !m && net.params[i] != before[i] {
			moved++
		}
	}
	if free := len(net.params) - count(net.mask); moved < free*9/10 {
		t.Errorf("%d of %d free parameters moved", moved, free)
	}

	// Through Train, with weight decay and clipping, and the masks read back.
	net2, _ := NewNetwork([]int{20, 32, 16, 4}, GELU, 4)
	want := randomMask(len(net2.w[1]), 0.5, 9)
	net2.SetMask(1, want)
	opts.Epochs, opts.WeightDecay, opts.Clip = 3, 0.1, 0.5
	if _, err := Train(net2, d, opts); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(net2.Mask(1), want) || count(net2.Mask(0)) != 0 {
		t.Fatalf("masks changed in training")
	}
	for i, m := range want {
		if m && math.Float32bits(net2.w[1][i]) != 0 {
			t.Fatalf("masked weight %d of layer 1 is %g after training", i, net2.w[1][i])
		}
	}
	layers, _ := net2.Sparsity()
	if layers[1] != float64(count(want))/float64(len(want)) || layers[0] != 0 {
		t.Errorf("sparsity %v, want %g in layer 1", layers, float64(count(want))/float64(len(want)))
	}
}

// TestEmptyMaskTrainsAsBefore checks that a mask holding no weight leaves
// every bit of training as it is without masks, for one and two threads.
func TestEmptyMaskTrainsAsBefore(t *testing.T) {
	d := blobs(300, 3, 12, 2)
	for _, threads := range []int{1, 2} {
		run := func(mask bool) []float32 {
			net, _ := NewNetwork([]int{12, 16, 8, 3}, ReLU, 4)
			if mask {
				net.SetMask(0, make([]bool, len(net.w[0])))
				if net.mask == nil {
					t.Fatal("no mask was made")
				}
			}
			opts := DefaultOptions()
			opts.Epochs, opts.Batch, opts.Threads = 2, 20, threads
			if _, err := Train(net, d, opts); err != nil {
				t.Fatal(err)
			}
			return net.params
		}
		a, b := run(false), run(true)
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				t.Fatalf("threads %d: parameter %d is %g without a mask, %g with an empty one", threads, i, a[i], b[i])
			}
		}
	}
}

// TestMaskedMatchesDense checks the masked update against the dense one bit
// for bit: weights that start at zero and see only zero inputs stay zero in
// dense training without weight decay, so masking them must change nothing
// else.
func TestMaskedMatchesDense(t *testing.T) {
	d := blobs(300, 3, 12, 5)
	dead := []int{0, 3, 4, 5, 11} // features that are always zero
	for i := range d.Y {
		for _, j := range dead {
			d.X[i*12+j] = 0
		}
	}
	for _, threads := range []int{1, 2, 3} {
		run := func(mask bool) *Network {
			net, _ := NewNetwork([]int{12, 16, 8, 3}, ReLU, 4)
			m := make([]bool, len(net.w[0]))
			for r := range 16 {
				for _, j := range dead {
					m[r*12+j] = true
					net.w[0][r*12+j] = 0
				}
			}
			if mask {
				net.SetMask(0, m)
			}
			opts := DefaultOptions()
			opts.Epochs, opts.Batch, opts.Threads, opts.WeightDecay, opts.Clip = 3, 20, threads, 0, 0.5
			if _, err := Train(net, d, opts); err != nil {
				t.Fatal(err)
			}
			return net
		}
		a, b := run(false), run(true)
		for i := range a.params {
			if math.Float32bits(a.params[i]) != math.Float32bits(b.params[i]) {
				t.Fatalf("threads %d: parameter %d is %g dense, %g masked", threads, i, a.params[i], b.params[i])
			}
		}
		if layers, _ := b.Sparsity(); layers[0] != float64(16*len(dead))/float64(16*12) {
			t.Errorf("threads %d: layer 0 sparsity %g", threads, layers[0])
		}
	}
}

func TestMaskZeros(t *testing.T) {
	net, _ := NewNetwork([]int{6, 5, 3}, ReLU, 1)
	net.w[0][3], net.w[1][7], net.b[0][1] = 0, 0, 0
	if got := net.MaskZeros(); got != 2 {
		t.Fatalf("masked %d zeros, want 2 (biases stay free)", got)
	}
	if m := net.Mask(0); count(m) != 1 || !m[3] {
		t.Errorf("layer 0 mask %v", m)
	}
	if m := net.Mask(1); count(m) != 1 || !m[7] {
		t.Errorf("layer 1 mask %v", m)
	}
	if err := net.SetMask(1, nil); err != nil || count(net.Mask(1)) != 0 {
		t.Errorf("unmasking layer 1: %v, %v", err, net.Mask(1))
	}
	for _, c := range []struct {
		l int
		m []bool
	}{{2, nil}, {-1, nil}, {0, make([]bool, 29)}} {
		if err := net.SetMask(c.l, c.m); err == nil {
			t.Errorf("SetMask(%d, %d values): no error", c.l, len(c.m))
		}
	}
}

// TestPruneMagnitude checks that pruning keeps the largest |w| of each
// matrix, or over all of them with global, and never unmasks a weight.
func TestPruneMagnitude(t *testing.T) {
	for _, global := range []bool{false, true} {
		net, _ := NewNetwork([]int{30, 20, 10, 5}, ReLU, 2)
		orig := slices.Clone(net.params)
		// Mask the largest weight of layer 0: it must stay masked.
		big := 0
		for i, v := range net.w[0] {
			if math.Abs(float64(v)) > math.Abs(float64(net.w[0][big])) {
				big = i
			}
		}
		m := make([]bool, len(net.w[0]))
		m[big] = true
		net.SetMask(0, m)
		if err := net.PruneMagnitude(0.7, global); err != nil {
			t.Fatal(err)
		}
		var all []float64 // |w| of the kept weights, per threshold group
		total, zeros := 0, 0
		for l, w := range net.w {
			mask := net.Mask(l)
			kept, dropped := math.Inf(1), 0.0
			off := 0
			for i := range l {
				off += len(net.w[i]) + len(net.b[i])
			}
			for i, v := range w {
				a := math.Abs(float64(orig[off+i]))
				if mask[i] != (v == 0) {
					t.Fatalf("global %v: layer %d weight %d: mask %v, value %g", global, l, i, mask[i], v)
				}
				if mask[i] {
					zeros++
					if !(l == 0 && i == big) {
						dropped = max(dropped, a)
					}
				} else {
					kept = min(kept, a)
					all = append(all, a)
				}
			}
			total += len(w)
			if l == 0 && !mask[big] {
				t.Fatalf("the masked weight was unmasked")
			}
			if !global {
				if want := int(math.Round(0.7 * float64(len(w)))); count(mask) != want {
					t.Errorf("layer %d: %d masked, want %d", l, count(mask), want)
				}
				if dropped > kept {
					t.Errorf("layer %d: dropped |w| %g, kept %g", l, dropped, kept)
				}
			}
		}
		if global {
			if want := int(math.Round(0.7 * float64(total))); zeros != want {
				t.Errorf("global: %d masked, want %d", zeros, want)
			}
			// Every dropped weight but the pre-masked one is below every kept one.
			slices.Sort(all)
			for l := range net.w {
				off := 0
				for i := range l {
					off += len(net.w[i]) + len(net.b[i])
				}
				for i, v := range net.w[l] {
					if v == 0 && !(l == 0 && i == big) && math.Abs(float64(orig[off+i])) > all[0] {
						t.Fatalf("global: dropped layer %d weight %d of |w| %g above the smallest kept %g", l, i, orig[off+i], all[0])
					}
				}
			}
		}
		for l := range net.b {
			if slices.Contains(net.b[l], 0) && !slices.Equal(net.b[l], make([]float32, len(net.b[l]))) {
				t.Errorf("layer %d: a bias was pruned", l)
			}
		}
	}
	net, _ := NewNetwork([]int{3, 2}, ReLU, 1)
	if err := net.PruneMagnitude(1, false); err == nil {
		t.Errorf("sparsity 1: no error")
	}
}

func TestScheduleFormula(t *testing.T) {
	s := Schedule{Initial: 0.1, Final: 0.9, Start: 100, Every: 10, Count: 40}
	f := func(t int) float64 {
		r := 1 - float64(t-100)/float64(40*10)
		return 0.9 + (0.1-0.9)*r*r*r
	}
	for _, c := range []struct {
		step int
		want float64
	}{
		{0, 0}, {99, 0},
		{100, 0.1},       // t0: s_i
		{300, 0.9 - 0.1}, // halfway: s_f + (s_i-s_f)/8
		{200, f(200)},    // a quarter of the way
		{500, 0.9},       // t0 + n·Δt: s_f
		{10_000, 0.9},    // after the ramp
	} {
		if got := s.SparsityAt(c.step); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("step %d: sparsity %g, want %g", c.step, got, c.want)
		}
	}
	if s.End() != 500 {
		t.Errorf("end %d", s.End())
	}
	var at []int
	for step := range 1000 {
		if s.Prunes(step) {
			at = append(at, step)
		}
	}
	if len(at) != 41 || at[0] != 100 || at[1] != 110 || at[40] != 500 {
		t.Errorf("prunes before steps %v", at)
	}
	once := Schedule{Final: 0.5, Start: 7}
	for step := range 20 {
		if once.Prunes(step) != (step == 7) || (step >= 7) != (once.SparsityAt(step) == 0.5) {
			t.Errorf("count 0, step %d: prunes %v to %g", step, once.Prunes(step), once.SparsityAt(step))
		}
	}
}

// TestGradualPruning trains with a schedule: the sparsity follows it step by
// step, ends exactly at round(s_f·n) per matrix (or over all with Global),
// and a seed gives the same bytes every time.
func TestGradualPruning(t *testing.T) {
	d := blobs(600, 4, 20, 3)
	run := func(seed uint64, global bool) (*Network, Result) {
		net, _ := NewNetwork([]int{20, 48, 24, 4}, ReLU, seed)
		opts := DefaultOptions()
		opts.Steps, opts.Batch, opts.Threads, opts.LR, opts.Seed = 60, 30, 2, 1e-2, seed
		opts.Prune = &Schedule{Final: 0.9, Start: 5, Every: 4, Count: 10, Global: global}
		opts.OnStep = func(step, steps int, loss float64) {
			// After step s (from 1) the last pruning was before step s-1.
			last := step - 1
			if last > 45 {
				last = 45
			}
			want := 0.0
			if last >= 5 {
				want = opts.Prune.SparsityAt(5 + (last-5)/4*4)
			}
			total, masked := 0, 0
			for l, w := range net.w {
				total += len(w)
				c := 0
				if net.mask != nil {
					c = count(net.Mask(l))
				}
				masked += c
				if !global && c != int(math.Round(want*float64(len(w)))) {
					t.Fatalf("after step %d: layer %d has %d masked of %d, want sparsity %g", step, l, c, len(w), want)
				}
			}
			if global && masked != int(math.Round(want*float64(total))) {
				t.Fatalf("after step %d: %d masked of %d, want sparsity %g", step, masked, total, want)
			}
		}
		res, err := Train(net, d, opts)
		if err != nil {
			t.Fatal(err)
		}
		return net, res
	}
	for _, global := range []bool{false, true} {
		a, res := run(1, global)
		b, _ := run(1, global)
		if !slices.Equal(a.params, b.params) {
			t.Errorf("global %v: seed 1 trained different weights twice", global)
		}
		c, _ := run(2, global)
		if slices.Equal(a.params, c.params) {
			t.Errorf("global %v: seeds 1 and 2 trained the same weights", global)
		}
		layers, all := a.Sparsity()
		total, zeros := 0, 0
		for l, w := range a.w {
			total += len(w)
			zeros += int(math.Round(layers[l] * float64(len(w))))
			if !global && layers[l] != float64(int(math.Round(0.9*float64(len(w)))))/float64(len(w)) {
				t.Errorf("layer %d: sparsity %g, want 0.9 of %d", l, layers[l], len(w))
			}
		}
		if want := float64(int(math.Round(0.9*float64(total)))) / float64(total); global && all != want {
			t.Errorf("global: sparsity %g, want %g", all, want)
		}
		acc, _ := a.Accuracy(d.X, d.Y, 1)
		t.Logf("global %v: %v sparse (%.4f in all), accuracy %.3f, last loss %.4f", global, layers, all, acc, res.Epochs[len(res.Epochs)-1].Loss)
		// From scratch at 90% each matrix keeps enough to learn the blobs;
		// a global threshold may empty the small last layer.
		if !global && acc < 0.6 {
			t.Errorf("accuracy %.3f after pruning to 90%%", acc)
		}
	}
}

func TestScheduleErrors(t *testing.T) {
	d := blobs(100, 2, 4, 1)
	for _, c := range []struct {
		s   Schedule
		msg string
	}{
		{Schedule{Final: 1, Every: 1, Count: 2}, "want 0 <= initial <= final < 1"},
		{Schedule{Initial: 0.5, Final: 0.4, Every: 1, Count: 2}, "want 0 <= initial <= final < 1"},
		{Schedule{Final: math.NaN(), Every: 1, Count: 2}, "want 0 <= initial"},
		{Schedule{Final: 0.5, Start: -1, Every: 1, Count: 2}, "want a start from 0"},
		{Schedule{Final: 0.5, Every: 0, Count: 2}, "at least one step between"},
		{Schedule{Final: 0.5, Start: 5, Every: 3, Count: 2}, "before step 11 (from 0), but the run has 10 steps"},
	} {
		net, _ := NewNetwork([]int{4, 3, 2}, ReLU, 1)
		opts := DefaultOptions()
		opts.Steps, opts.Batch, opts.Prune = 10, 10, &c.s
		if _, err := Train(net, d, opts); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%+v: error %v, want %q", c.s, err, c.msg)
		}
	}
}
