package quantize

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/shrinkml/shrink/model"
)

var gptqIntTypes = []model.DType{model.Int8Ch, model.Int4G32, model.Int4G64Asym, model.Int4G128, model.Int4G128Asym}

func TestGPTQIntBeatsRTN(t *testing.T) {
	const rows, cols, n = 40, 256, 700
	w, x := layerData(rows, cols, n, 3)
	for _, d := range gptqIntTypes {
		rtn := outputError(t, w, rtnDense(t, w, rows, cols, d), d, rows, cols, x, n)
		for _, act := range []bool{false, true} {
			var errs [2]float64
			for i, absmax := range []bool{true, false} {
				errs[i] = outputError(t, w, gptqDense(t, w, rows, cols, d, x, n, act, absmax), d, rows, cols, x, n)
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
		rtn := rtnDense(t, w, rows, cols, d)
		want := make([]float32, rows*cols)
		if err := model.Dequantize(want, d, rtn); err != nil {
			t.Fatal(err)
		}
		for _, act := range []bool{false, true} {
			if got := gptqDense(t, w, rows, cols, d, x, cols, act, true); !bytes.Equal(got, rtn) {
				t.Errorf("%s act-order %v: GPTQ with RTN's scales and H = cI differs from RTN", d, act)
			}
			deq := make([]float32, rows*cols)
			if err := model.Dequantize(deq, d, gptqDense(t, w, rows, cols, d, x, cols, act, false)); err != nil {
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
