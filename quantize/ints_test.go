package quantize

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/model"
)

// refIntGroup quantizes one group as compressed-tensors writes it, from the
// formulas (helpers.py's calculate_qparams, forward.py's _quantize), and
// returns the scale as stored (fp16), the zero point and the signed codes.
func refIntGroup(x []float32, bits int, asym bool) (scale float32, zero int, q []int) {
	qmin, qmax := -(1 << (bits - 1)), 1<<(bits-1)-1
	var lo, hi float32
	for _, v := range x {
		lo, hi = min(lo, v), max(hi, v)
	}
	if asym {
		scale = (hi - lo) / float32(qmax-qmin)
	} else {
		scale = max(-lo, hi) / (float32(qmax-qmin) / 2)
	}
	scale = model.F16ToF32(model.F32ToF16(scale))
	if asym && scale != 0 {
		zero = int(math.RoundToEven(float64(float32(qmin) - lo/scale)))
		zero = max(qmin, min(qmax, zero))
	}
	for _, v := range x {
		c := zero
		if scale != 0 {
			c = int(math.RoundToEven(float64(v/scale + float32(zero))))
		}
		q = append(q, max(qmin, min(qmax, c)))
	}
	return scale, zero, q
}

func TestIntRowsMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name string
		d    model.DType
		cols int
		gen  func(i int) float32
	}{
		{"int8 normal", model.Int8Ch, 77, func(int) float32 { return float32(rng.NormFloat64()) }},
		{"int8 one", model.Int8Ch, 1, func(int) float32 { return -3 }},
		{"int8 zeros", model.Int8Ch, 5, func(int) float32 { return 0 }},
		{"int4 g32", model.Int4G32, 96, func(int) float32 { return float32(rng.NormFloat64()) }},
		{"int4 g64", model.Int4G64, 128, func(int) float32 { return float32(rng.NormFloat64()) }},
		{"int4 g128", model.Int4G128, 256, func(int) float32 { return float32(rng.NormFloat64() * 1e-3) }},
		{"int4 g32 asym", model.Int4G32Asym, 64, func(int) float32 { return float32(rng.NormFloat64()) }},
		{"int4 g64 asym positive", model.Int4G64Asym, 64, func(int) float32 { return 1 + float32(rng.Float64()) }},
		{"int4 g128 asym negative", model.Int4G128Asym, 128, func(int) float32 { return -float32(rng.Float64()) }},
		{"int4 g32 asym zeros", model.Int4G32Asym, 32, func(int) float32 { return 0 }},
		{"int4 g32 halves", model.Int4G32, 32, func(i int) float32 { return float32(i%16) - 7.5 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := make([]float32, tc.cols)
			for i := range x {
				x[i] = tc.gen(i)
			}
			n, err := model.RowBytes(tc.d, tc.cols)
			if err != nil {
				t.Fatal(err)
			}
			dst := make([]byte, n)
			if tc.d == model.Int8Ch {
				err = RowInt8Ch(dst, x)
			} else {
				err = RowInt4(tc.d, dst, x)
			}
			if err != nil {
				t.Fatal(err)
			}
			got := make([]float32, tc.cols)
			if err := model.Dequantize(got, tc.d, dst); err != nil {
				t.Fatal(err)
			}
			group, bits, asym := tc.cols, 8, false
			if g, a, ok := Int4Layout(tc.d); ok {
				group, bits, asym = g, 4, a
			}
			for g0 := 0; g0 < tc.cols; g0 += group {
				s, z, q := refIntGroup(x[g0:g0+group], bits, asym)
				for i, c := range q {
					want := float32(c-z) * s
					if got[g0+i] != want {
						t.Fatalf("weight %d (%g): got %g, want %g (scale %g, zero %d, code %d)", g0+i, x[g0+i], got[g0+i], want, s, z, c)
					}
				}
			}
		})
	}
}

func TestIntRowsErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func() error
		want string
	}{
		{"int8 short buffer", func() error { return RowInt8Ch(make([]byte, 4), make([]float32, 3)) }, "need 5 bytes"},
		{"int8 NaN", func() error { return RowInt8Ch(make([]byte, 4), []float32{1, float32(math.NaN())}) }, "not a finite"},
		{"int8 huge scale", func() error { return RowInt8Ch(make([]byte, 3), []float32{1e30}) }, "fp16 range"},
		{"int4 partial group", func() error { return RowInt4(model.Int4G64, make([]byte, 34), make([]float32, 32)) }, "whole number"},
		{"int4 inf", func() error {
			x := make([]float32, 32)
			x[5] = float32(math.Inf(-1))
			return RowInt4(model.Int4G32Asym, make([]byte, 19), x)
		}, "element 5"},
		{"not int4", func() error { return RowInt4(model.Q4_0, make([]byte, 18), make([]float32, 32)) }, "not an int4 type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestIntSchemes checks the storage each matrix of a 64-wide llama with FFN
// width ffn gets, the group fallbacks and their warnings.
func TestIntSchemes(t *testing.T) {
	emb, head := model.TokenEmbedding, model.OutputHead
	q0, down0, up0 := model.LayerTensor(0, model.AttnQ), model.LayerTensor(0, model.FFNDown), model.LayerTensor(0, model.FFNUp)
	for _, tc := range []struct {
		name  string
		ffn   int
		opts  Options
		want  map[string]model.DType
		warns int // warnings
	}{
		{"int8", 96, Options{Scheme: Int8},
			map[string]model.DType{emb: model.Int8Ch, head: model.Int8Ch, q0: model.Int8Ch, down0: model.Int8Ch}, 0},
		{"int8 odd rows", 172, Options{Scheme: Int8},
			map[string]model.DType{down0: model.Int8Ch, up0: model.Int8Ch}, 0},
		{"int4 g32", 96, Options{Scheme: Int4, Group: 32},
			map[string]model.DType{emb: model.Int4G32, head: model.Int8Ch, q0: model.Int4G32, down0: model.Int4G32}, 0},
		{"int4 g32 asym pure", 96, Options{Scheme: Int4, Group: 32, Asym: true, Pure: true},
			map[string]model.DType{emb: model.Int4G32Asym, head: model.Int4G32Asym, down0: model.Int4G32Asym}, 0},
		// Rows of 64 take groups of 64, rows of 96 groups of 32: one warning
		// per matrix that falls back (all 7 of each layer's, and the embedding).
		{"int4 default group falls back", 96, Options{Scheme: Int4},
			map[string]model.DType{emb: model.Int4G64, head: model.Int8Ch, q0: model.Int4G64, up0: model.Int4G64, down0: model.Int4G32}, 2*7 + 1},
		{"int4 g64 asym", 128, Options{Scheme: Int4, Group: 64, Asym: true},
			map[string]model.DType{q0: model.Int4G64Asym, down0: model.Int4G64Asym}, 0},
		{"int4 no group fits", 172, Options{Scheme: Int4, Group: 32},
			map[string]model.DType{down0: model.Int8Ch, up0: model.Int4G32}, 2},
		{"int4 rule", 96, Options{Scheme: Q8_0, Group: 32, Asym: true, Rules: rules(t, `mlp=int4`)},
			map[string]model.DType{q0: model.Q8_0, down0: model.Int4G32Asym, up0: model.Int4G32Asym}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := synth(t, tc.ffn, false)
			q, rep, err := Quantize(m, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := q.Validate(); err != nil {
				t.Fatal(err)
			}
			for name, want := range tc.want {
				if got := q.Tensor(name).DType; got != want {
					t.Errorf("%s is %s, want %s", name, got, want)
				}
			}
			if len(rep.Warnings) != tc.warns {
				t.Errorf("%d warnings, want %d: %q", len(rep.Warnings), tc.warns, rep.Warnings)
			}
			var bytes int64
			for _, tr := range rep.Tensors {
				bytes += tr.BytesAfter
				if tr.Action == Quantized && (tr.RelRMSE <= 0 || tr.RelRMSE > 0.2) {
					t.Errorf("%s: relative RMSE %g", tr.Name, tr.RelRMSE)
				}
				if tr.To == model.Int8Ch && tr.RelRMSE > 0.01 {
					t.Errorf("%s: int8 relative RMSE %g", tr.Name, tr.RelRMSE)
				}
			}
			if bytes != rep.BytesAfter || math.Abs(rep.BitsPerWeight-8*float64(bytes)/float64(rep.Parameters)) > 1e-12 {
				t.Errorf("bytes %d, report %d, bits %g", bytes, rep.BytesAfter, rep.BitsPerWeight)
			}
		})
	}
}

// TestInt4BitsPerWeight: groups of 128 with fp16 scales cost 4.125 bits.
func TestInt4BitsPerWeight(t *testing.T) {
	w := make([]float32, 4*256)
	for i := range w {
		w[i] = float32(i%13) - 6
	}
	m := &model.Model{Config: model.Config{Arch: "mlp"}, Tensors: []*model.Tensor{model.NewF32("w", []int{4, 256}, w)}}
	for _, tc := range []struct {
		opts Options
		bits float64
	}{
		{Options{Scheme: Int4, Pure: true}, 4 + 16.0/128},
		{Options{Scheme: Int4, Group: 32, Pure: true}, 4 + 16.0/32},
		{Options{Scheme: Int4, Group: 64, Asym: true, Pure: true}, 4 + 24.0/64},
		{Options{Scheme: Int8, Pure: true}, 8 + 16.0/256},
	} {
		_, rep, err := Quantize(m, tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		if rep.BitsPerWeight != tc.bits {
			t.Errorf("%+v: %g bits per weight, want %g", tc.opts, rep.BitsPerWeight, tc.bits)
		}
	}
}
