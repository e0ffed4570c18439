package gguf

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/shrinkml/shrink/model"
)

// halfToFloat decodes IEEE binary16 with math.Ldexp, independently of
// model.F16ToF32.
func halfToFloat(h uint16) float32 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 31
	frac := float64(h & 1023)
	switch exp {
	case 0:
		return float32(sign * math.Ldexp(frac, -24))
	case 31:
		if frac != 0 {
			return float32(math.NaN())
		}
		return float32(sign * math.Inf(1))
	}
	return float32(sign * math.Ldexp(1024+frac, exp-25))
}

// refDecode decodes one 32-weight block element by element, written from
// the block definitions in docs/gguf.md rather than from model/blocks.go.
// It returns the values and the block's step (its scale) for error bounds.
func refDecode(typ GGMLType, blk []byte) (vals [32]float32, step, offset float32) {
	d := halfToFloat(binary.LittleEndian.Uint16(blk))
	for i := 0; i < 32; i++ {
		switch typ {
		case GGMLQ8_0:
			vals[i] = float32(int8(blk[2+i])) * d
		case GGMLQ4_0:
			q := int(blk[2+i%16]>>(4*(i/16))) & 15
			vals[i] = float32(q-8) * d
		case GGMLQ4_1:
			m := halfToFloat(binary.LittleEndian.Uint16(blk[2:]))
			q := int(blk[4+i%16]>>(4*(i/16))) & 15
			vals[i] = float32(float32(q)*d) + m
			offset = m
		}
	}
	return vals, d, offset
}

// TestPureQuantizedDecode checks the Q8_0, Q4_0 and Q4_1 matrices of the
// llama-quantize --pure files: model.Dequantize must equal the independent
// element-wise decode bit for bit, and both must be within the rounding error
// of the F32 weights they were quantized from.
func TestPureQuantizedDecode(t *testing.T) {
	ref := readFile(t, refPath(t, refPad192F32))
	for _, tc := range []struct {
		rel string
		typ GGMLType
		// bound on |decoded - original| in units of the block scale: half a
		// step, plus the fp16 rounding of the scale times the largest code;
		// Q4_0 clamps the top code, so its positive extreme can be off a full step.
		steps float32
	}{
		{refQ8Pure, GGMLQ8_0, 0.5 + 128.0/2048},
		{refQ40Pure, GGMLQ4_0, 1 + 8.0/2048},
		{refQ41Pure, GGMLQ4_1, 0.5 + 16.0/2048},
	} {
		t.Run(tc.rel, func(t *testing.T) {
			f := readFile(t, refPath(t, tc.rel))
			dt, _ := tc.typ.DType()
			var nQuant int
			for _, ti := range f.Tensors {
				orig := ref.Tensor(ti.Name)
				if orig == nil {
					t.Fatalf("tensor %s missing from the F32 file", ti.Name)
				}
				if ti.Type == GGMLF32 {
					if string(ti.Data) != string(orig.Data) {
						t.Errorf("F32 tensor %s differs from the F32 file", ti.Name)
					}
					continue
				}
				if ti.Type != tc.typ {
					t.Fatalf("tensor %s is %s, want %s", ti.Name, ti.Type, tc.typ)
				}
				nQuant++
				n := int(ti.Dims[0] * ti.Dims[1])
				got := make([]float32, n)
				if err := model.Dequantize(got, dt, ti.Data); err != nil {
					t.Fatal(err)
				}
				bb := int(tc.typ.BlockBytes())
				var worst float32
				for b := 0; b < n/32; b++ {
					want, step, offset := refDecode(tc.typ, ti.Data[b*bb:(b+1)*bb])
					bound := tc.steps*float32(math.Abs(float64(step))) + float32(math.Abs(float64(offset)))/1024 + 1e-7
					for i := 0; i < 32; i++ {
						k := b*32 + i
						if math.Float32bits(got[k]) != math.Float32bits(want[i]) {
							t.Fatalf("%s element %d: Dequantize %g, independent decode %g", ti.Name, k, got[k], want[i])
						}
						x := math.Float32frombits(binary.LittleEndian.Uint32(orig.Data[4*k:]))
						if e := float32(math.Abs(float64(got[k] - x))); e > bound {
							t.Fatalf("%s element %d: %g decodes to %g, error %g above %g", ti.Name, k, x, got[k], e, bound)
						} else if e/bound > worst {
							worst = e / bound
						}
					}
				}
				if worst < 0.3 {
					t.Errorf("%s: largest error is only %.2f of the bound; is the bound meaningful?", ti.Name, worst)
				}
			}
			if nQuant != 37 {
				t.Errorf("%d quantized matrices, want 37", nQuant)
			}
		})
	}
}

// TestMixedQuantLoads checks that llama-quantize's default Q4_0 mix (with a
// Q8_0 output matrix) loads and decodes close to the F32 weights.
func TestMixedQuantLoads(t *testing.T) {
	m, err := Load(refPath(t, refQ40Mix))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ref, err := Load(refPath(t, refPad192F32))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	if d := m.Tensor(model.OutputHead).DType; d != model.Q8_0 {
		t.Errorf("output is %s, want Q8_0", d)
	}
	for _, tt := range m.Tensors {
		got, err := tt.Float32()
		if err != nil {
			t.Fatal(err)
		}
		rt := ref.Tensor(tt.Name)
		if tt.Name == model.OutputHead { // the F32 file's head is a copy of the embedding
			rt = ref.Tensor(model.TokenEmbedding)
		}
		want, _ := rt.Float32()
		var maxAbs, maxErr float64
		for i := range want {
			maxAbs = max(maxAbs, math.Abs(float64(want[i])))
			maxErr = max(maxErr, math.Abs(float64(got[i]-want[i])))
		}
		if maxErr > maxAbs/7 {
			t.Errorf("%s (%s): error %g for weights up to %g", tt.Name, tt.DType, maxErr, maxAbs)
		}
	}
}
