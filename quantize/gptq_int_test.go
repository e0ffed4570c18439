package quantize

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/shrinkml/shrink/internal/calib"
	"github.com/shrinkml/shrink/model"
)

// gptqDenseInt is gptqDense for an INT type d; absmax keeps RTN's scales
// (AbsmaxScales).
func gptqDenseInt(t *testing.T, w []float32, rows, cols int, d model.DType, x []float32, n int, actOrder, absmax bool) []byte {
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

// rtnDenseInt quantizes w row by row with RTN in the INT type d.
func rtnDenseInt(t *testing.T, w []float32, rows, cols int, d model.DType) []byte {
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

// outputErrorInt is outputError for an INT type.
func outputErrorInt(t *testing.T, w []float32, q []byte, d model.DType, rows, cols int, x []float32, n int) float64 {
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

var gptqIntTypes = []model.DType{model.Int8Ch, model.Int4G32, model.Int4G64Asym, model.Int4G128, model.Int4G128Asym}

func TestGPTQIntBeatsRTN(t *testing.T) {
	const rows, cols, n = 40, 256, 700
	w, x := layerData(rows, cols, n, 3)
	for _, d := range gptqIntTypes {
		rtn := outputErrorInt(t, w, rtnDenseInt(t, w, rows, cols, d), d, rows, cols, x, n)
		for _, act := range []bool{false, true} {
			var errs [2]float64
			for i, absmax := range []bool{true, false} {
				errs[i] = outputErrorInt(t, w, gptqDenseInt(t, w, rows, cols, d, x, n, act, absmax), d, rows, cols, x, n)
				t.Logf("%s act-order %v absmax %v: output error %.4g, RTN %.4g (%.0f%%)", d, act, absmax, errs[i], rtn, 100*errs[i]/rtn)
				if errs[i] >= 0.9*rtn {
					t.Errorf("%s act-order %v absmax %v: GPTQ output error %g is not clearly below RTN's %g", d, act, absmax, errs[i], rtn)
				}
			}
			if errs[1] >= errs[0] {
				t.Errorf("%s act-order %v: GPTQ with searched scales has output error %g, with RTN's %g", d, act, errs[1], errs[0])
			}
		}
	}
}

// TestGPTQIntIdentityHessian: with H = cI no error crosses columns, so GPTQ
// with RTN's scales writes RTN's bytes: the same scales, zero points and
// codes; with searched scales each row's error is at most RTN's.
func TestGPTQIntIdentityHessian(t *testing.T) {
	const rows, cols = 35, 256
	w, _ := layerData(rows, cols, 1, 9)
	x := make([]float32, cols*cols)
	for c := range cols {
		x[c*cols+c] = 3
	}
	for _, d := range gptqIntTypes {
		rtn := rtnDenseInt(t, w, rows, cols, d)
		want := make([]float32, rows*cols)
		if err := model.Dequantize(want, d, rtn); err != nil {
			t.Fatal(err)
		}
		for _, act := range []bool{false, true} {
			if got := gptqDenseInt(t, w, rows, cols, d, x, cols, act, true); !bytes.Equal(got, rtn) {
				t.Errorf("%s act-order %v: GPTQ with RTN's scales and H = cI differs from RTN", d, act)
			}
			deq := make([]float32, rows*cols)
			if err := model.Dequantize(deq, d, gptqDenseInt(t, w, rows, cols, d, x, cols, act, false)); err != nil {
				t.Fatal(err)
			}
			for r := range rows {
				var se, ref float64
				for c := r * cols; c < (r+1)*cols; c++ {
					se += (float64(w[c]) - float64(deq[c])) * (float64(w[c]) - float64(deq[c]))
					ref += (float64(w[c]) - float64(want[c])) * (float64(w[c]) - float64(want[c]))
				}
				if se > ref*(1+1e-6) {
					t.Errorf("%s act-order %v: row %d: searched error %g, RTN's %g", d, act, r, se, ref)
				}
			}
		}
	}
}

// TestQuantizeGPTQInt runs GPTQ with the int schemes on a small llama: the
// layers' matrices differ from RTN's, the embedding and head are RTN's, the
// bytes do not depend on the threads, and the report says how the scales
// were chosen.
func TestQuantizeGPTQInt(t *testing.T) {
	m := synth(t, 128, false)
	rng := rand.New(rand.NewPCG(1, 2))
	seqs := make([][]int, 3)
	for i := range seqs {
		seqs[i] = make([]int, 40)
		for j := range seqs[i] {
			seqs[i][j] = rng.IntN(m.Config.VocabSize)
		}
	}
	for _, opts := range []Options{{Scheme: Int8}, {Scheme: Int4, Group: 32, Asym: true}, {Scheme: Int4, Group: 64, ActOrder: true},
		{Scheme: Int4, Group: 32, AbsmaxScales: true}, {Scheme: Int8, ActOrder: true}} {
		rtn, _, err := Quantize(m, opts)
		if err != nil {
			t.Fatal(err)
		}
		var first *model.Model
		for _, threads := range []int{1, 3} {
			o := opts
			o.Method, o.Calibration, o.Threads = GPTQ, seqs, threads
			q, rep, err := Quantize(m, o)
			if err != nil {
				t.Fatal(err)
			}
			scales := map[bool]string{false: "search", true: "absmax"}[opts.AbsmaxScales]
			if rep.BlockScales != scales || rep.CalibrationTokens != 120 {
				t.Errorf("%s: report: block scales %q, %d tokens", opts.Scheme, rep.BlockScales, rep.CalibrationTokens)
			}
			for i, qt := range q.Tensors {
				rt := rtn.Tensors[i]
				layer := qt.Name != model.TokenEmbedding && len(qt.Shape) == 2 // the untied head included
				if qt.DType != rt.DType || bytes.Equal(qt.Data, rt.Data) == layer {
					t.Errorf("%+v: %s: %s (RTN %s), same bytes as RTN: %v", opts, qt.Name, qt.DType, rt.DType, !layer)
				}
				if first != nil && !bytes.Equal(qt.Data, first.Tensors[i].Data) {
					t.Errorf("%+v: %s depends on the thread count", opts, qt.Name)
				}
			}
			first = q
		}
	}
}
