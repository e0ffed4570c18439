package quantize

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/shrinkml/shrink/internal/calib"
	"github.com/shrinkml/shrink/model"
)

// scaleBlocks are odd blocks for the scale search, each n weights (n >= 32).
func scaleBlocks(n int) map[string][]float32 {
	rng := rand.New(rand.NewPCG(5, 6))
	fill := func(f func(j int) float32) []float32 {
		x := make([]float32, n)
		for j := range x {
			x[j] = f(j)
		}
		return x
	}
	normal := func(s float64) func(int) float32 {
		return func(int) float32 { return float32(rng.NormFloat64() * s) }
	}
	outlier := fill(normal(0.01))
	outlier[7] = 0.5
	negOutlier := fill(normal(0.01))
	negOutlier[30] = -0.5
	negExtremes := fill(normal(0.02))
	negExtremes[3], negExtremes[19] = -0.3, -0.3
	bothExtremes := fill(normal(0.02))
	bothExtremes[0], bothExtremes[31] = 0.2, -0.2
	sparse := fill(func(j int) float32 {
		if j%5 == 0 {
			return float32(rng.NormFloat64())
		}
		return 0
	})
	return map[string][]float32{
		"zeros":            fill(func(int) float32 { return 0 }),
		"all equal":        fill(func(int) float32 { return 0.37 }),
		"all equal below":  fill(func(int) float32 { return -1.5 }),
		"one outlier":      outlier,
		"negative outlier": negOutlier,
		"negative extreme": negExtremes,
		"tied extremes":    bothExtremes,
		"two values":       fill(func(j int) float32 { return float32(j%2)*0.2 - 0.1 }),
		"mostly zeros":     sparse,
		"normal":           fill(normal(0.02)),
		"uniform":          fill(func(int) float32 { return float32(rng.Float64()*2 - 1) }),
		"positive":         fill(func(int) float32 { return float32(1 + rng.Float64()) }),
		"ramp":             fill(func(j int) float32 { return float32(j) - 10 }),
		"large":            fill(normal(1000)),
		"denormal scale":   fill(normal(1e-6)),
		"below fp16":       fill(normal(1e-9)),
		"tiny range":       fill(func(int) float32 { return float32(1 + rng.Float64()*1e-6) }),
	}
}

// scaleWeights are the input weights h the blocks of n weights are tried with.
func scaleWeights(n int) map[string][]float64 {
	rng := rand.New(rand.NewPCG(7, 8))
	fill := func(f func(j int) float64) []float64 {
		h := make([]float64, n)
		for j := range h {
			h[j] = f(j)
		}
		return h
	}
	return map[string][]float64{
		"equal":       fill(func(int) float64 { return 1 }),
		"uneven":      fill(func(int) float64 { return math.Exp(2 * rng.NormFloat64()) }),
		"some dead":   fill(func(j int) float64 { return float64(j % 3) }),
		"all dead":    fill(func(int) float64 { return 0 }),
		"one matters": fill(func(j int) float64 { return 1e-3 + 1e3*float64(j/(n-1)) }),
	}
}

// searchTypes are the types the scale search serves, each with the width
// of the blocks the tests give it: a block, an int4 group, an int8 row (of
// odd length, as a row may be).
var searchTypes = []struct {
	d     model.DType
	width int
}{
	{model.Q8_0, 32}, {model.Q4_0, 32}, {model.Q4_1, 32},
	{model.Int8Ch, 45}, {model.Int4G32, 32}, {model.Int4G32Asym, 32},
	{model.Int4G64, 64}, {model.Int4G128Asym, 128},
}

// rtnBlockError is Σ h·(x - q)² for the values of the block (int4 group,
// int8 row) of the type d that RTN writes for x.
func rtnBlockError(t *testing.T, d model.DType, x []float32, h []float64) float64 {
	t.Helper()
	size, err := model.ByteSize(d, []int{1, len(x)})
	if err != nil {
		t.Fatal(err)
	}
	y := make([]byte, size)
	if err := rowsOf(d)(y, x); err != nil {
		t.Fatal(err)
	}
	q := make([]float32, len(x))
	if err := model.Dequantize(q, d, y); err != nil {
		t.Fatal(err)
	}
	var e float64
	for j, v := range x {
		d := float64(v) - float64(q[j])
		e += h[j] * d * d
	}
	return e
}

// rtnScale is RTN's scale for x as the search's first candidate: for the
// block types the absmax scale with no weight pinned.
func rtnScale(t *testing.T, d model.DType, x []float32) blockScale {
	t.Helper()
	if isInt(d) {
		bs, err := chooseIntScale(d, x)
		if err != nil {
			t.Fatal(err)
		}
		return bs
	}
	bs, err := chooseScale(schemeOf(d), x)
	if err != nil {
		t.Fatal(err)
	}
	return nearestScale(schemeOf(d), bs.d, bs.m)
}

// checkBlock encodes x under bs as the type d and checks that it decodes to
// the values quantizeWeight gives, all finite.
func checkBlock(t *testing.T, d model.DType, bs *blockScale, x []float32) {
	t.Helper()
	sc := schemeOf(d)
	codes := make([]int8, len(x))
	want := make([]float32, len(x))
	for j, v := range x {
		c, q := quantizeWeight(sc, bs, j, v)
		codes[j], want[j] = int8(c), q
	}
	size, err := model.ByteSize(d, []int{1, len(x)})
	if err != nil {
		t.Fatal(err)
	}
	y := make([]byte, size)
	if isInt(d) {
		encodeIntBlock(d, y, bs, codes)
	} else {
		encodeBlock(sc, y, bs, codes)
	}
	got := make([]float32, len(x))
	if err := model.Dequantize(got, d, y); err != nil {
		t.Fatal(err)
	}
	for j := range got {
		if !finite(got[j]) || math.Float32bits(got[j]) != math.Float32bits(want[j]) {
			t.Fatalf("weight %d: decodes to %g, quantizeWeight says %g", j, got[j], want[j])
		}
	}
}

// TestSearchScaleNeverWorse: on odd blocks and weights, for every type, the
// searched scale's weighted error is at most RTN's scale's (exactly, as the
// search scores it; for the block types the absmax scale with nothing
// pinned) and the RTN block's (up to float32 ties in RTN's rounding), and
// the block it writes decodes to finite values. Somewhere the search must
// do better.
func TestSearchScaleNeverWorse(t *testing.T) {
	var s scaleSearch
	for _, st := range searchTypes {
		d := st.d
		var improved int
		for bn, x := range scaleBlocks(st.width) {
			for hn, h := range scaleWeights(st.width) {
				bs, err := s.searchScale(d, x, h)
				if err != nil {
					t.Fatalf("%s %s, %s weights: %v", d, bn, hn, err)
				}
				hw := s.orOnes(h)
				sc := schemeOf(d)
				got := blockError(sc, &bs, x, hw)
				rtn := rtnScale(t, d, x)
				ref := blockError(sc, &rtn, x, hw)
				if got > ref || math.IsNaN(got) {
					t.Errorf("%s %s, %s weights: searched error %g, RTN's scale's %g", d, bn, hn, got, ref)
				}
				if got < ref {
					improved++
				}
				if ref := rtnBlockError(t, d, x, hw); got > ref*(1+1e-6) {
					t.Errorf("%s %s, %s weights: searched error %g, RTN block's %g", d, bn, hn, got, ref)
				}
				checkBlock(t, d, &bs, x)
			}
		}
		if improved == 0 {
			t.Errorf("%s: the search never beat RTN's scale", d)
		}
	}
}

// gptqTypes are the types gptqScale serves (int8 rows use searchScale).
var gptqTypes = []model.DType{model.Q8_0, model.Q4_0, model.Q4_1,
	model.Int4G32, model.Int4G32Asym, model.Int4G64, model.Int4G128Asym}

// blockWidth is the number of weights that share a scale in the type d.
func blockWidth(d model.DType) int {
	if g, _, ok := Int4Layout(d); ok {
		return g
	}
	return 32
}

// testFactor returns the Hessian of the n input rows xs (cols each) and the
// inverse factor GPTQ runs on, at the default dampening.
func testFactor(t *testing.T, xs []float32, cols, n int) (*calib.Hessian, *calib.InverseFactor) {
	t.Helper()
	h := calib.NewHessian(cols, 1)
	h.Add(xs, n)
	f, err := calib.InverseCholesky(h.Sym(), calib.DefaultDamp)
	if err != nil {
		t.Fatal(err)
	}
	return h, f
}

// TestGPTQScaleNeverWorse: gptqScale's simulated GPTQ loss is at most that
// of RTN's scale, on the odd blocks, with a real Hessian's factor.
func TestGPTQScaleNeverWorse(t *testing.T) {
	const cols, n = 128, 400
	_, xs := layerData(1, cols, n, 13)
	_, f := testFactor(t, xs, cols, n)
	u := f.U.RawTriangular()
	var s scaleSearch
	for _, d := range gptqTypes {
		var improved int
		for bn, x := range scaleBlocks(blockWidth(d)) {
			w := make([]float64, len(x))
			for j, v := range x {
				w[j] = float64(v)
			}
			bs, err := s.gptqScale(d, w, u.Data, u.Stride)
			if err != nil {
				t.Fatalf("%s %s: %v", d, bn, err)
			}
			s.cands = append(s.cands[:0], bs, rtnScale(t, d, x))
			loss := s.blockLosses(schemeOf(d), w, u.Data, u.Stride)
			got, ref := loss[0], loss[1]
			if got > ref || math.IsNaN(got) {
				t.Errorf("%s %s: searched loss %g, RTN's scale's %g", d, bn, got, ref)
			}
			if got < ref {
				improved++
			}
			checkBlock(t, d, &bs, x)
		}
		if improved == 0 {
			t.Errorf("%s: the search never beat RTN's scale", d)
		}
	}
}

// TestBlockLossIsGPTQs: blockLosses simulates quantizeRows to the bit, so the
// loss of the scale GPTQ picks is the block's share of GPTQ's loss.
func TestBlockLossesAreGPTQs(t *testing.T) {
	for _, d := range gptqTypes {
		cols, n := blockWidth(d), 200
		w32, xs := layerData(1, cols, n, 17)
		h, f := testFactor(t, xs, cols, n)
		u := f.U.RawTriangular()
		q := gptqDenseFactor(t, w32, 1, cols, d, f, h)
		deq := make([]float32, cols)
		if err := model.Dequantize(deq, d, q); err != nil {
			t.Fatal(err)
		}
		// Replay GPTQ with the decoded values as the levels it chose.
		w := make([]float64, cols)
		for j, v := range w32 {
			w[j] = float64(v)
		}
		var loss float64
		for p := range cols {
			ep := (w[p] - float64(deq[p])) / u.Data[p*u.Stride+p]
			loss += ep * ep
			for k := p + 1; k < cols; k++ {
				w[k] -= ep * u.Data[p*u.Stride+k]
			}
		}
		var s scaleSearch
		w64 := make([]float64, cols)
		for j, v := range w32 {
			w64[j] = float64(v)
		}
		bs, err := s.gptqScale(d, w64, u.Data, u.Stride)
		if err != nil {
			t.Fatal(err)
		}
		s.cands = append(s.cands[:0], bs)
		if sim := s.blockLosses(schemeOf(d), w64, u.Data, u.Stride)[0]; sim != loss {
			t.Errorf("%s: simulated loss %g, GPTQ's %g", d, sim, loss)
		}
	}
}

// gptqDenseFactor is gptqDense for the type d with the factor and Hessian
// given.
func gptqDenseFactor(t *testing.T, w []float32, rows, cols int, d model.DType, f *calib.InverseFactor, h *calib.Hessian) []byte {
	t.Helper()
	hd := make([]float64, cols)
	for j := range hd {
		hd[j] = h.Sym().At(j, j)
	}
	tensor := model.NewF32("w", []int{rows, cols}, w)
	size, _ := model.ByteSize(d, tensor.Shape)
	p := &tensorPlan{action: Quantized, to: d, data: make([]byte, size)}
	g := newGPTQMatrix(tensor, p, schemeOf(d), f, nil, hd)
	var s gptqScratch
	var sums [2]float64
	if err := g.quantizeRows(0, rows, &s, &sums); err != nil {
		t.Fatal(err)
	}
	return p.data
}

// TestSearchScaleRange: a block RTN cannot store fails the same way.
func TestSearchScaleRange(t *testing.T) {
	var s scaleSearch
	for _, st := range searchTypes {
		x := make([]float32, st.width)
		x[4] = 1e7
		h := make([]float64, st.width)
		if _, err := s.searchScale(st.d, x, h); !errors.Is(err, ErrScaleRange) {
			t.Errorf("%s: %v, want ErrScaleRange", st.d, err)
		}
	}
}
