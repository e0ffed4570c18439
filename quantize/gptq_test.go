package quantize

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/shrinkml/shrink/internal/calib"
	"github.com/shrinkml/shrink/model"
)

// gptqDense quantizes the rows×cols matrix w to d with GPTQ against the n
// input rows x, returning its bytes; absmax keeps RTN's scales (AbsmaxScales).
func gptqDense(t *testing.T, w []float32, rows, cols int, d model.DType, x []float32, n int, actOrder, absmax bool) []byte {
	t.Helper()
	h := calib.NewHessian(cols, 2)
	h.Add(x, n)
	H := h.Sym()
	var hdiag []float64
	if !absmax {
		hdiag = make([]float64, cols)
		for j := range hdiag {
			hdiag[j] = H.At(j, j)
		}
	}
	var perm []int
	if actOrder {
		perm = calib.ActOrder(H)
		H = calib.Permute(H, perm)
	}
	f, err := calib.InverseCholesky(H, calib.DefaultDamp)
	if err != nil {
		t.Fatal(err)
	}
	tensor := model.NewF32("w", []int{rows, cols}, w)
	size, _ := model.ByteSize(d, tensor.Shape)
	p := &tensorPlan{action: Quantized, to: d, data: make([]byte, size)}
	g := newGPTQMatrix(tensor, p, schemeOf(d), f, perm, hdiag)
	var s gptqScratch
	for r := 0; r < rows; r += gptqRows {
		var sums [2]float64
		if err := g.quantizeRows(r, min(gptqRows, rows-r), &s, &sums); err != nil {
			t.Fatal(err)
		}
	}
	return p.data
}

// rtnDense quantizes w row by row to d with RTN.
func rtnDense(t *testing.T, w []float32, rows, cols int, d model.DType) []byte {
	t.Helper()
	size, _ := model.ByteSize(d, []int{rows, cols})
	out := make([]byte, size)
	rb := len(out) / rows
	for r := range rows {
		if err := rowsOf(d)(out[r*rb:(r+1)*rb], w[r*cols:(r+1)*cols]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// outputError is ||(W - Ŵ) Xᵀ||_F for the blocks q of W.
func outputError(t *testing.T, w []float32, q []byte, d model.DType, rows, cols int, x []float32, n int) float64 {
	t.Helper()
	deq := make([]float32, rows*cols)
	if err := model.Dequantize(deq, d, q); err != nil {
		t.Fatal(err)
	}
	var sum float64
	for r := range rows {
		for k := range n {
			var y float64
			for c := range cols {
				y += (float64(w[r*cols+c]) - float64(deq[r*cols+c])) * float64(x[k*cols+c])
			}
			sum += y * y
		}
	}
	return math.Sqrt(sum)
}

// layerData is a random layer and correlated inputs with uneven scales, as
// real activations have.
func layerData(rows, cols, n int, seed uint64) (w, x []float32) {
	rng := rand.New(rand.NewPCG(seed, 1))
	w = make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(rng.NormFloat64() * 0.02)
	}
	z := make([]float64, n*cols)
	for i := range z {
		z[i] = rng.NormFloat64()
	}
	scale := make([]float64, cols)
	for c := range scale {
		scale[c] = math.Exp(rng.NormFloat64())
	}
	x = make([]float32, n*cols)
	for k := range n {
		for c := range cols {
			// Each input mixes its neighbours: the Hessian is far from diagonal.
			v := z[k*cols+c] + 0.8*z[k*cols+(c+1)%cols] + 0.5*z[k*cols+(c+7)%cols]
			x[k*cols+c] = float32(v * scale[c])
		}
	}
	return w, x
}

func TestGPTQBeatsRTN(t *testing.T) {
	const rows, cols, n = 40, 192, 600
	w, x := layerData(rows, cols, n, 3)
	for _, sc := range []Scheme{Q8_0, Q4_0, Q4_1} {
		rtn := outputError(t, w, rtnDense(t, w, rows, cols, sc.DType()), sc.DType(), rows, cols, x, n)
		for _, act := range []bool{false, true} {
			var errs [2]float64
			for i, absmax := range []bool{true, false} {
				q := gptqDense(t, w, rows, cols, sc.DType(), x, n, act, absmax)
				errs[i] = outputError(t, w, q, sc.DType(), rows, cols, x, n)
				t.Logf("%s act-order %v absmax %v: output error %.4g, RTN %.4g (%.0f%%)", sc, act, absmax, errs[i], rtn, 100*errs[i]/rtn)
				if errs[i] >= 0.9*rtn {
					t.Errorf("%s act-order %v absmax %v: GPTQ output error %g is not clearly below RTN's %g", sc, act, absmax, errs[i], rtn)
				}
			}
			if errs[1] >= errs[0] {
				t.Errorf("%s act-order %v: GPTQ with searched scales has output error %g, with absmax scales %g", sc, act, errs[1], errs[0])
			}
		}
	}
}

// TestGPTQBlocksAreRTNFixedPoints checks that with AbsmaxScales every block
// GPTQ writes is the block RTN writes for GPTQ's dequantized values: the
// scales are RTN's.
func TestGPTQBlocksAreRTNFixedPoints(t *testing.T) {
	const rows, cols, n = 33, 256, 300
	w, x := layerData(rows, cols, n, 5)
	for _, sc := range []Scheme{Q8_0, Q4_0, Q4_1} {
		for _, act := range []bool{false, true} {
			q := gptqDense(t, w, rows, cols, sc.DType(), x, n, act, true)
			deq := make([]float32, rows*cols)
			if err := model.Dequantize(deq, sc.DType(), q); err != nil {
				t.Fatal(err)
			}
			again := rtnDense(t, deq, rows, cols, sc.DType())
			if !bytes.Equal(again, q) {
				deq2 := make([]float32, rows*cols)
				model.Dequantize(deq2, sc.DType(), again)
				for i := range deq {
					if math.Float32bits(deq[i]) != math.Float32bits(deq2[i]) {
						t.Fatalf("%s act-order %v: weight %d (row %d, block %d): GPTQ %g, RTN of it %g",
							sc, act, i, i/cols, i%cols/32, deq[i], deq2[i])
					}
				}
				t.Errorf("%s act-order %v: RTN of GPTQ's values has the same values but other bytes", sc, act)
			}
		}
	}
}

// TestGPTQIdentityHessian: with orthogonal inputs of equal norm, H is a
// multiple of the identity and no error crosses columns. With AbsmaxScales
// GPTQ then writes RTN's bytes (with or without act order, whose scales then
// are RTN's too); with the search it writes, block by block, what the search
// picks for that block alone, which is never worse than RTN's block.
func TestGPTQIdentityHessian(t *testing.T) {
	const rows, cols = 35, 96
	w, _ := layerData(rows, cols, 1, 9)
	x := make([]float32, cols*cols)
	for c := range cols {
		x[c*cols+c] = 3
	}
	h, f := testFactor(t, x, cols, cols)
	u := f.U.RawTriangular()
	hd := make([]float64, cols)
	for j := range hd {
		hd[j] = h.Sym().At(j, j)
	}
	for _, sc := range []Scheme{Q8_0, Q4_0, Q4_1} {
		rtn := rtnDense(t, w, rows, cols, sc.DType())
		bb := sc.DType().BlockBytes()
		for _, act := range []bool{false, true} {
			if got := gptqDense(t, w, rows, cols, sc.DType(), x, cols, act, true); !bytes.Equal(got, rtn) {
				t.Errorf("%s act-order %v: GPTQ with absmax scales and H = cI differs from RTN", sc, act)
			}
			got := gptqDense(t, w, rows, cols, sc.DType(), x, cols, act, false)
			want := make([]byte, len(got))
			var s scaleSearch
			codes := make([]int8, 32)
			for r := range rows {
				for b := range cols / 32 {
					wb := w[r*cols+b*32 : r*cols+b*32+32]
					var bs blockScale
					var err error
					if act {
						bs, err = s.searchScale(sc.DType(), wb, hd[b*32:])
					} else {
						w64 := make([]float64, 32)
						for j, v := range wb {
							w64[j] = float64(v)
						}
						bs, err = s.gptqScale(sc.DType(), w64, u.Data[b*32*u.Stride+b*32:], u.Stride)
					}
					if err != nil {
						t.Fatal(err)
					}
					var se, rtnErr float64
					for j, v := range wb {
						code, q := quantizeWeight(sc, &bs, j, v)
						codes[j] = int8(code)
						se += (float64(v) - float64(q)) * (float64(v) - float64(q))
					}
					k := (r*cols/32 + b) * bb
					encodeBlock(sc, want[k:], &bs, codes)
					deq := make([]float32, 32)
					if err := model.Dequantize(deq, sc.DType(), rtn[k:k+bb]); err != nil {
						t.Fatal(err)
					}
					for j, v := range wb {
						rtnErr += (float64(v) - float64(deq[j])) * (float64(v) - float64(deq[j]))
					}
					if se > rtnErr*(1+1e-6) {
						t.Errorf("%s act-order %v: row %d, block %d: searched error %g, RTN's %g", sc, act, r, b, se, rtnErr)
					}
				}
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s act-order %v: GPTQ with H = cI differs from the scale search block by block", sc, act)
			}
		}
	}
}

// TestGPTQDeadInputs: an input that is always zero gets weight zero (it never
// reaches the output) and does not stop the factorization.
func TestGPTQDeadInputs(t *testing.T) {
	const rows, cols, n = 8, 64, 200
	w, x := layerData(rows, cols, n, 11)
	for k := range n {
		x[k*cols+5] = 0
	}
	q := gptqDense(t, w, rows, cols, model.Q8_0, x, n, false, false)
	deq := make([]float32, rows*cols)
	model.Dequantize(deq, model.Q8_0, q)
	for r := range rows {
		if deq[r*cols+5] != 0 {
			t.Fatalf("row %d: dead input's weight is %g, want 0", r, deq[r*cols+5])
		}
	}
}

// TestQuantizeGPTQ runs the whole method on a small llama: the bytes do not
// depend on the thread count, every matrix but the embedding (the layers'
// and the untied head) is GPTQ's, the rest is RTN's, and the report names
// the calibration.
func TestQuantizeGPTQ(t *testing.T) {
	m := synth(t, 128, false)
	rng := rand.New(rand.NewPCG(1, 2))
	seqs := make([][]int, 3)
	for i := range seqs {
		seqs[i] = make([]int, 40)
		for j := range seqs[i] {
			seqs[i][j] = rng.IntN(m.Config.VocabSize)
		}
	}
	rtn, _, err := Quantize(m, Options{Scheme: Q4_1})
	if err != nil {
		t.Fatal(err)
	}
	for _, act := range []bool{false, true} {
		for _, absmax := range []bool{false, true} {
			var first *model.Model
			for _, threads := range []int{1, 3} {
				q, rep, err := Quantize(m, Options{Scheme: Q4_1, Method: GPTQ, Calibration: seqs, ActOrder: act, AbsmaxScales: absmax, Threads: threads})
				if err != nil {
					t.Fatal(err)
				}
				scales := map[bool]string{false: "search", true: "absmax"}[absmax]
				if rep.Method != GPTQ || rep.CalibrationTokens != 120 || rep.ActOrder != act || rep.MaxDamp != calib.DefaultDamp || rep.BlockScales != scales {
					t.Errorf("report: method %s, %d tokens, act order %v, damp %g, block scales %q", rep.Method, rep.CalibrationTokens, rep.ActOrder, rep.MaxDamp, rep.BlockScales)
				}
				for i, qt := range q.Tensors {
					rt := rtn.Tensors[i]
					layer := qt.Name != model.TokenEmbedding && len(qt.Shape) == 2 // the untied head included
					if qt.DType != rt.DType || bytes.Equal(qt.Data, rt.Data) == layer {
						t.Errorf("act order %v, absmax %v: %s: %s (RTN %s), same bytes as RTN: %v", act, absmax, qt.Name, qt.DType, rt.DType, !layer)
					}
					if first != nil && !bytes.Equal(qt.Data, first.Tensors[i].Data) {
						t.Errorf("act order %v, absmax %v: %s depends on the thread count", act, absmax, qt.Name)
					}
				}
				first = q
			}
		}
	}
}

// TestGPTQHead quantizes a model whose head is int4 (--pure) with GPTQ and
// wants the head fitted to the final norm's outputs: with every other matrix
// as GPTQ left it, GPTQ's head must give logits nearer the F32 model's on the
// calibration sequences than RTN's head does, and a tied head (the
// embedding) must stay RTN's.
func TestGPTQHead(t *testing.T) {
	m := synth(t, 128, false)
	seqs := randomSeqs(4, 48, m.Config.VocabSize, 5)
	want := logits(t, m, seqs)
	opts := Options{Scheme: Int4, Group: 32, Pure: true, Method: GPTQ, Calibration: seqs}
	q, _, err := Quantize(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	rtn, _, err := Quantize(m, Options{Scheme: Int4, Group: 32, Pure: true})
	if err != nil {
		t.Fatal(err)
	}
	withRTNHead := &model.Model{Config: q.Config, Tokenizer: q.Tokenizer, Metadata: q.Metadata, Tensors: slices.Clone(q.Tensors)}
	for i, tn := range withRTNHead.Tensors {
		if tn.Name == model.OutputHead {
			withRTNHead.Tensors[i] = rtn.Tensors[i]
		}
	}
	sqErr := func(got []float32) float64 {
		var s float64
		for i, v := range got {
			d := float64(v) - float64(want[i])
			s += d * d
		}
		return s
	}
	gptqHead, rtnHead := sqErr(logits(t, q, seqs)), sqErr(logits(t, withRTNHead, seqs))
	if !(gptqHead < rtnHead) {
		t.Errorf("logits' squared error: GPTQ head %g, RTN head %g", gptqHead, rtnHead)
	}
	t.Logf("logits' squared error: GPTQ head %.4g, RTN head %.4g", gptqHead, rtnHead)

	tied := synth(t, 128, true)
	qt, _, err := Quantize(tied, opts)
	if err != nil {
		t.Fatal(err)
	}
	rt, _, err := Quantize(tied, Options{Scheme: Int4, Group: 32, Pure: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, tn := range qt.Tensors {
		if tn.Name == model.TokenEmbedding && !bytes.Equal(tn.Data, rt.Tensors[i].Data) {
			t.Errorf("tied model: the embedding (its head) is not RTN's")
		}
	}
}
