package model

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/x448/float16"
)

func TestF16ConversionMatchesReference(t *testing.T) {
	// Every half value converts to float32 exactly as x448/float16 does.
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		got := F16ToF32(h)
		want := float16.Frombits(h).Float32()
		if math.IsNaN(float64(want)) {
			if !math.IsNaN(float64(got)) {
				t.Fatalf("F16ToF32(%#04x) = %v, want NaN", h, got)
			}
			continue
		}
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("F16ToF32(%#04x) = %v, want %v", h, got, want)
		}
	}
	// Rounding float32 to half agrees with the reference on random bit patterns
	// and on every value near the half boundaries.
	r := rand.New(rand.NewPCG(1, 2))
	check := func(f float32) {
		got := F32ToF16(f)
		want := float16.Fromfloat32(f).Bits()
		if math.IsNaN(float64(f)) {
			if got&0x7c00 != 0x7c00 || got&0x3ff == 0 {
				t.Fatalf("F32ToF16(NaN %#08x) = %#04x, not a NaN", math.Float32bits(f), got)
			}
			return
		}
		if got != want {
			t.Fatalf("F32ToF16(%g = %#08x) = %#04x, want %#04x", f, math.Float32bits(f), got, want)
		}
	}
	for i := 0; i < 2_000_000; i++ {
		check(math.Float32frombits(r.Uint32()))
	}
	for i := 0; i < 1<<16; i++ {
		base := math.Float32bits(F16ToF32(uint16(i)))
		for _, d := range []int32{-4097, -4096, -4095, -1, 0, 1, 4095, 4096, 4097} {
			check(math.Float32frombits(uint32(int32(base) + d)))
		}
	}
}

func TestBF16Conversion(t *testing.T) {
	tests := []struct {
		in   float32
		want uint16
	}{
		{1, 0x3f80},
		{-2, 0xc000},
		{float32(math.Inf(1)), 0x7f80},
		{math.Float32frombits(0x3f808000), 0x3f80}, // tie, even stays
		{math.Float32frombits(0x3f818000), 0x3f82}, // tie, odd rounds up
		{math.Float32frombits(0x3f808001), 0x3f81},
		{math.Float32frombits(0x7f7fffff), 0x7f80}, // max float rounds to inf
	}
	for _, tc := range tests {
		if got := F32ToBF16(tc.in); got != tc.want {
			t.Errorf("F32ToBF16(%#08x) = %#04x, want %#04x", math.Float32bits(tc.in), got, tc.want)
		}
	}
	if got := F32ToBF16(float32(math.NaN())); got&0x7f80 != 0x7f80 || got&0x7f == 0 {
		t.Errorf("F32ToBF16(NaN) = %#04x, not a NaN", got)
	}
	for i := 0; i < 1<<16; i++ {
		f := BF16ToF32(uint16(i))
		if !math.IsNaN(float64(f)) && F32ToBF16(f) != uint16(i) {
			t.Fatalf("bf16 %#04x does not round-trip", i)
		}
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		d     DType
		shape []int
		want  int64
		err   string
	}{
		{F32, []int{3, 5}, 60, ""},
		{F16, []int{7}, 14, ""},
		{Q8_0, []int{2, 64}, 2 * 2 * 34, ""},
		{Q4_0, []int{1, 32}, 18, ""},
		{Q4_1, []int{3, 96}, 3 * 3 * 20, ""},
		{Q6_K, []int{1, 256}, 210, ""},
		{Q4_0, []int{4, 172}, 0, "multiple of 32"},
		{F32, []int{-1, 4}, 0, "negative"},
		{F32, []int{math.MaxInt / 2, math.MaxInt / 2}, 0, "too large"},
		{Invalid, []int{1}, 0, "unknown dtype"},
		{Int8Ch, []int{3, 5}, 3 * (2 + 5), ""},
		{Int8Ch, []int{2, 3, 7}, 6 * (2 + 7), ""},
		{Int8Ch, []int{7}, 2 + 7, ""},
		{Int8Ch, []int{4, 0}, 4 * 2, ""},
		{Int8Ch, []int{math.MaxInt/2 + 1, 0}, 0, "too large"},
		{Int8Ch, []int{math.MaxInt / 4, math.MaxInt / 4}, 0, "too large"},
		{Int4G32, []int{2, 64}, 2 * 2 * 18, ""},
		{Int4G64, []int{3, 192}, 3 * 3 * 34, ""},
		{Int4G128, []int{1, 256}, 2 * 66, ""},
		{Int4G32Asym, []int{1, 32}, 19, ""},
		{Int4G64Asym, []int{2, 64}, 2 * 35, ""},
		{Int4G128Asym, []int{1, 128}, 67, ""},
		{Int4G128, []int{4, 192}, 0, "multiple of 128"},
		{F32, []int{math.MaxInt/4 + 1, 4}, 0, "too large"},
	}
	for _, tc := range tests {
		got, err := ByteSize(tc.d, tc.shape)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ByteSize(%v, %v) error = %v, want %q", tc.d, tc.shape, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ByteSize(%v, %v) = %d, %v, want %d", tc.d, tc.shape, got, err, tc.want)
		}
	}
}

func TestConvertRoundTrip(t *testing.T) {
	vals := []float32{0, 1, -1.5, 3.140625, 65504, -0.0001}
	src := NewF32("x", []int{2, 3}, vals)
	for _, d := range []DType{F16, BF16} {
		c, err := src.Convert(d)
		if err != nil {
			t.Fatal(err)
		}
		back, err := c.Convert(F32)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := back.Float32()
		for i, v := range vals {
			tol := float32(math.Abs(float64(v))) * 0.01
			if d == F16 {
				tol = float32(math.Abs(float64(v)))*0.001 + 1e-7
			}
			if math.Abs(float64(got[i]-v)) > float64(tol) {
				t.Errorf("%s round trip of %g gave %g", d, v, got[i])
			}
		}
	}
	if _, err := src.Convert(Q8_0); err == nil {
		t.Error("Convert to Q8_0 should be refused")
	}
}

func TestRopePermutationIsExactInverse(t *testing.T) {
	cfg := Config{Arch: "llama", HiddenSize: 16, IntermediateSize: 24, NumLayers: 2, NumHeads: 4,
		NumKVHeads: 2, HeadDim: 4, VocabSize: 11, ContextLength: 8, RMSNormEps: 1e-5, RopeTheta: 10000,
		RopeLayout: RopeHalf, QKVBias: true}
	m := &Model{Config: cfg}
	r := rand.New(rand.NewPCG(3, 4))
	for _, e := range cfg.Expected() {
		vals := make([]float32, 1)
		n := 1
		for _, s := range e.Shape {
			n *= s
		}
		vals = make([]float32, n)
		for i := range vals {
			vals[i] = r.Float32()
		}
		m.Tensors = append(m.Tensors, NewF32(e.Name, e.Shape, vals))
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := m.WithRopeLayout(RopePairs)
	if err != nil {
		t.Fatal(err)
	}
	q := p.Tensor(LayerTensor(1, AttnQ))
	orig := m.Tensor(LayerTensor(1, AttnQ))
	if bytes.Equal(q.Data, orig.Data) {
		t.Fatal("permutation changed nothing")
	}
	// Row 1 in pair order is row head_dim/2 = 2 of the first head in half order.
	if !bytes.Equal(q.Data[1*16*4:2*16*4], orig.Data[2*16*4:3*16*4]) {
		t.Error("pair row 1 is not half row 2")
	}
	back, err := p.WithRopeLayout(RopeHalf)
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range back.Tensors {
		if !bytes.Equal(tt.Data, m.Tensors[i].Data) {
			t.Errorf("tensor %s differs after a round trip", tt.Name)
		}
	}
}

func TestValidateReportsDisagreement(t *testing.T) {
	cfg := Config{Arch: "mlp", MLP: &MLPConfig{Sizes: []int{4, 3}, Activation: "relu"}}
	m := &Model{Config: cfg, Tensors: []*Tensor{
		NewF32(MLPWeight(0), []int{3, 5}, make([]float32, 15)),
		NewF32(MLPBias(0), []int{3}, make([]float32, 3)),
	}}
	err := m.Validate()
	if err == nil || !strings.Contains(err.Error(), "shape [3 5], the config says [3 4]") {
		t.Fatalf("Validate() = %v", err)
	}
	m.Tensors[0] = NewF32(MLPWeight(0), []int{3, 4}, make([]float32, 12))
	m.Tensors = append(m.Tensors, NewF32(MLPBias(0), []int{3}, make([]float32, 3)))
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Fatalf("Validate() = %v, want a duplicate error", err)
	}
}

func ExampleModel_Summarize() {
	m := &Model{Config: Config{Arch: "mlp"}, Tensors: []*Tensor{
		NewF32("layers.0.weight", []int{10, 784}, make([]float32, 7840)),
		NewF32("layers.0.bias", []int{10}, make([]float32, 10)),
	}}
	s := m.Summarize()
	fmt.Println(s.Architecture, s.Parameters, s.TensorBytes, s.BitsPerWeight)
	// Output: mlp 7850 31400 32
}

func BenchmarkDecodeF16(b *testing.B) {
	src := make([]byte, 2<<20)
	dst := make([]float32, 1<<20)
	b.SetBytes(int64(len(src)))
	for i := 0; i < b.N; i++ {
		DecodeF16(dst, src)
	}
}

func BenchmarkEncodeF16(b *testing.B) {
	src := make([]float32, 1<<20)
	for i := range src {
		src[i] = float32(i) * 0.001
	}
	dst := make([]byte, 2<<20)
	b.SetBytes(int64(len(dst)))
	for i := 0; i < b.N; i++ {
		EncodeF16(dst, src)
	}
}

func TestSynthesizeIsSeededAndShaped(t *testing.T) {
	cfg := Presets["stories260k"]
	a, err := Synthesize(cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Synthesize(cfg, 7)
	c, _ := Synthesize(cfg, 8)
	if a.Parameters() != 260032 {
		t.Errorf("stories260k preset has %d parameters, want 260032", a.Parameters())
	}
	q := LayerTensor(0, AttnQ)
	if !bytes.Equal(a.Tensor(q).Data, b.Tensor(q).Data) {
		t.Error("same seed gave different weights")
	}
	if bytes.Equal(a.Tensor(q).Data, c.Tensor(q).Data) {
		t.Error("different seeds gave the same weights")
	}
	if len(a.Tokenizer.Tokens) != cfg.VocabSize {
		t.Errorf("vocab has %d tokens, want %d", len(a.Tokenizer.Tokens), cfg.VocabSize)
	}
}

func TestPresetParameterCounts(t *testing.T) {
	want := map[string]int64{"llama-134m": 134_105_856, "stories260k": 260_032}
	for name, n := range want {
		cfg := Presets[name]
		var got int64
		for _, e := range cfg.Expected() {
			p := int64(1)
			for _, s := range e.Shape {
				p *= int64(s)
			}
			got += p
		}
		if got != n {
			t.Errorf("preset %s has %d parameters, want %d", name, got, n)
		}
	}
}
