package quantize

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/shrinkml/shrink/internal/calib"
	"github.com/shrinkml/shrink/model"
)

// scaleBlocks are odd blocks for the scale search, each 32 weights.
func scaleBlocks() map[string][]float32 {
	rng := rand.New(rand.NewPCG(5, 6))
	fill := func(f func(j int) float32) []float32 {
		x := make([]float32, 32)
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

// scaleWeights are the input weights h the blocks are tried with.
func scaleWeights() map[string][]float64 {
	rng := rand.New(rand.NewPCG(7, 8))
	fill := func(f func(j int) float64) []float64 {
		h := make([]float64, 32)
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
		"one matters": fill(func(j int) float64 { return 1e-3 + 1e3*float64(j/31) }),
	}
}

// rtnBlockError is Σ h·(x - q)² for the values of the block RTN writes for x.
func rtnBlockError(t *testing.T, sc Scheme, x []float32, h []float64) float64 {
	t.Helper()
	y := make([]byte, sc.DType().BlockBytes())
	if err := rtnRows[sc](y, x); err != nil {
		t.Fatal(err)
	}
	q := make([]float32, 32)
	if err := model.Dequantize(q, sc.DType(), y); err != nil {
		t.Fatal(err)
	}
	var e float64
	for j, v := range x {
		d := float64(v) - float64(q[j])
		e += h[j] * d * d
	}
	return e
}

// checkBlock encodes x under bs and checks that the block decodes to the
// values quantizeWeight gives, all finite.
func checkBlock(t *testing.T, sc Scheme, bs *blockScale, x []float32) {
	t.Helper()
	codes := make([]int8, 32)
	want := make([]float32, 32)
	for j, v := range x {
		c, q := quantizeWeight(sc, bs, j, v)
		codes[j], want[j] = int8(c), q
	}
	y := make([]byte, sc.DType().BlockBytes())
	encodeBlock(sc, y, bs, codes)
	got := make([]float32, 32)
	if err := model.Dequantize(got, sc.DType(), y); err != nil {
		t.Fatal(err)
	}
	for j := range got {
		if !finite(got[j]) || math.Float32bits(got[j]) != math.Float32bits(want[j]) {
			t.Fatalf("weight %d: decodes to %g, quantizeWeight says %g", j, got[j], want[j])
		}
	}
}

// TestSearchScaleNeverWorse: on odd blocks and weights, for every scheme, the
// searched scale's weighted error is at most the absmax scale's (exactly, as
// the search scores it) and the RTN block's (up to float32 ties in RTN's
// rounding), and the block it writes decodes to finite values.
func TestSearchScaleNeverWorse(t *testing.T) {
	var s scaleSearch
	for _, sc := range []Scheme{Q8_0, Q4_0, Q4_1} {
		for bn, x := range scaleBlocks() {
			for hn, h := range scaleWeights() {
				bs, err := s.searchScale(sc, x, h)
				if err != nil {
					t.Fatalf("%s %s, %s weights: %v", sc, bn, hn, err)
				}
				hw := orOnes(h)
				got := blockError(sc, &bs, x, hw)
				rtn, _ := chooseScale(sc, x)
				absmax := nearestScale(sc, rtn.d, rtn.m)
				if ref := blockError(sc, &absmax, x, hw); got > ref || math.IsNaN(got) {
					t.Errorf("%s %s, %s weights: searched error %g, absmax scale's %g", sc, bn, hn, got, ref)
				}
				if ref := rtnBlockError(t, sc, x, hw); got > ref*(1+1e-6) {
					t.Errorf("%s %s, %s weights: searched error %g, RTN block's %g", sc, bn, hn, got, ref)
				}
				checkBlock(t, sc, &bs, x)
			}
		}
	}
}

// TestGPTQScaleNeverWorse: gptqScale's simulated GPTQ loss is at most that
// of RTN's absmax scale, on the odd blocks, with a real Hessian's factor.
func TestGPTQScaleNeverWorse(t *testing.T) {
	const cols, n = 32, 200
	_, xs := layerData(1, cols, n, 13)
	h := calib.NewHessian(cols, 1)
	h.Add(xs, n)
	f, err := calib.InverseCholesky(h.Sym(), calib.DefaultDamp)
	if err != nil {
		t.Fatal(err)
	}
	u := f.U.RawTriangular()
	var s scaleSearch
	var improved int
	for _, sc := range []Scheme{Q8_0, Q4_0, Q4_1} {
		for bn, x := range scaleBlocks() {
			w := make([]float64, 32)
			for j, v := range x {
				w[j] = float64(v)
			}
			bs, err := s.gptqScale(sc, w, u.Data, u.Stride)
			if err != nil {
				t.Fatalf("%s %s: %v", sc, bn, err)
			}
			rtn, _ := chooseScale(sc, x)
			s.cands = append(s.cands[:0], bs, nearestScale(sc, rtn.d, rtn.m))
			loss := s.blockLosses(sc, w, u.Data, u.Stride)
			got, ref := loss[0], loss[1]
			if got > ref || math.IsNaN(got) {
				t.Errorf("%s %s: searched loss %g, absmax scale's %g", sc, bn, got, ref)
			}
			if got < ref {
				improved++
			}
			checkBlock(t, sc, &bs, x)
		}
	}
	if improved == 0 {
		t.Error("the search never beat the absmax scale")
	}
}

// TestBlockLossIsGPTQs: blockLosses simulates quantizeRows to the bit, so the
// loss of the scale GPTQ picks is the block's share of GPTQ's loss.
func TestBlockLossesAreGPTQs(t *testing.T) {
	const cols, n = 32, 200
	w32, xs := layerData(1, cols, n, 17)
	h := calib.NewHessian(cols, 1)
	h.Add(xs, n)
	f, err := calib.InverseCholesky(h.Sym(), calib.DefaultDamp)
	if err != nil {
		t.Fatal(err)
	}
	u := f.U.RawTriangular()
	for _, sc := range []Scheme{Q8_0, Q4_0, Q4_1} {
		q := gptqDenseFactor(t, w32, 1, cols, sc, f, h)
		deq := make([]float32, cols)
		if err := model.Dequantize(deq, sc.DType(), q); err != nil {
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
		bs, err := s.gptqScale(sc, w64, u.Data, u.Stride)
		if err != nil {
			t.Fatal(err)
		}
		s.cands = append(s.cands[:0], bs)
		if sim := s.blockLosses(sc, w64, u.Data, u.Stride)[0]; sim != loss {
			t.Errorf("%s: simulated loss %g, GPTQ's %g", sc, sim, loss)
		}
	}
}

// gptqDenseFactor is gptqDense with the factor and Hessian given.
func gptqDenseFactor(t *testing.T, w []float32, rows, cols int, sc Scheme, f *calib.InverseFactor, h *calib.Hessian) []byte {
	t.Helper()
	hd := make([]float64, cols)
	for j := range hd {
		hd[j] = h.Sym().At(j, j)
	}
	tensor := model.NewF32("w", []int{rows, cols}, w)
	size, _ := model.ByteSize(sc.DType(), tensor.Shape)
	p := &tensorPlan{action: Quantized, to: sc.DType(), data: make([]byte, size)}
	g := newGPTQMatrix(tensor, p, sc, f, nil, hd)
	var s gptqScratch
	var sums [2]float64
	if err := g.quantizeRows(0, rows, &s, &sums); err != nil {
		t.Fatal(err)
	}
	return p.data
}

// TestSearchScaleRange: a block RTN cannot store fails the same way.
func TestSearchScaleRange(t *testing.T) {
	x := make([]float32, 32)
	x[4] = 1e7
	var s scaleSearch
	for _, sc := range []Scheme{Q8_0, Q4_0, Q4_1} {
		if _, err := s.searchScale(sc, x, ones[:]); !errors.Is(err, ErrScaleRange) {
			t.Errorf("%s: %v, want ErrScaleRange", sc, err)
		}
	}
}
