package gguf

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/internal/shareddata"
	"github.com/shrinkml/shrink/model"
)

// Reference files made by llama.cpp, relative to the shared data folder.
const (
	refF32       = "gguf/stories260K-F32.gguf"
	refPad192F32 = "gguf/stories260K-pad192-F32.gguf"
	refQ8Pure    = "gguf/stories260K-pad192-Q8_0-pure.gguf"
	refQ40Pure   = "gguf/stories260K-pad192-Q4_0-pure.gguf"
	refQ41Pure   = "gguf/stories260K-pad192-Q4_1-pure.gguf"
	refQ40Mix    = "gguf/stories260K-pad192-Q4_0.gguf"
)

var allRefs = []string{refF32, refPad192F32, refQ8Pure, refQ40Pure, refQ41Pure, refQ40Mix}

// fb builds GGUF bytes by hand, independently of Write, for malformed inputs.
type fb struct{ b []byte }

func (f *fb) raw(p ...byte) *fb { f.b = append(f.b, p...); return f }
func (f *fb) u8(v uint8) *fb    { f.b = append(f.b, v); return f }
func (f *fb) u16(v uint16) *fb  { f.b = binary.LittleEndian.AppendUint16(f.b, v); return f }
func (f *fb) u32(v uint32) *fb  { f.b = binary.LittleEndian.AppendUint32(f.b, v); return f }
func (f *fb) u64(v uint64) *fb  { f.b = binary.LittleEndian.AppendUint64(f.b, v); return f }
func (f *fb) i64(v int64) *fb   { return f.u64(uint64(v)) }
func (f *fb) f32(v float32) *fb { return f.u32(math.Float32bits(v)) }
func (f *fb) f64(v float64) *fb { return f.u64(math.Float64bits(v)) }
func (f *fb) str(s string) *fb  { return f.u64(uint64(len(s))).raw([]byte(s)...) }

// header starts a version 3 file with the given counts.
func header(nTensors, nKV int64) *fb {
	f := &fb{}
	return f.raw('G', 'G', 'U', 'F').u32(3).i64(nTensors).i64(nKV)
}

// tinfo appends one tensor info.
func (f *fb) tinfo(name string, typ uint32, offset uint64, ne ...int64) *fb {
	f.str(name).u32(uint32(len(ne)))
	for _, d := range ne {
		f.i64(d)
	}
	return f.u32(typ).u64(offset)
}

// pad appends zeros up to a multiple of 32.
func (f *fb) pad() *fb {
	for len(f.b)%32 != 0 {
		f.b = append(f.b, 0)
	}
	return f
}

func (f *fb) zeros(n int) *fb { f.b = append(f.b, make([]byte, n)...); return f }

// tinyConfig is a small llama config whose matrices are whole Q8_0 blocks.
func tinyConfig() model.Config {
	return model.Config{
		Arch: "llama", HiddenSize: 64, IntermediateSize: 96, NumLayers: 2, NumHeads: 4, NumKVHeads: 2,
		HeadDim: 16, VocabSize: 40, ContextLength: 128, RMSNormEps: 1e-5, RopeTheta: 10000,
	}
}

// randomModel builds a model with random F32 weights under canonical names,
// a llama tokenizer (fewer tokens than the vocab, to exercise padding) and
// metadata of many types.
func randomModel(c model.Config, seed uint64) *model.Model {
	rng := rand.New(rand.NewPCG(seed, 99))
	m := &model.Model{Config: c, Metadata: map[string]any{}}
	for _, e := range c.Expected() {
		n := 1
		for _, s := range e.Shape {
			n *= s
		}
		vals := make([]float32, n)
		for i := range vals {
			vals[i] = float32(rng.NormFloat64())
		}
		m.Tensors = append(m.Tensors, model.NewF32(e.Name, e.Shape, vals))
	}
	nTok := c.VocabSize - 3
	tk := &model.Tokenizer{Kind: "llama", BOS: 1, EOS: 2, UNK: 0, PAD: -1, AddBOS: true, AddSpacePrefix: true}
	for i := 0; i < nTok; i++ {
		tk.Tokens = append(tk.Tokens, "\u2581tok"+strings.Repeat("x", i%5)+string(rune('a'+i%26))+string(rune('A'+i/26)))
		tk.Scores = append(tk.Scores, float32(-i))
		tk.Types = append(tk.Types, model.TokenNormal)
	}
	tk.Types[0], tk.Types[1], tk.Types[2] = model.TokenUnknown, model.TokenControl, model.TokenControl
	m.Tokenizer = tk
	m.Metadata["general.name"] = "tiny"
	m.Metadata["test.u8"] = uint8(7)
	m.Metadata["test.i16"] = int16(-300)
	m.Metadata["test.f64"] = 2.5
	m.Metadata["test.strings"] = []string{"a", "", "ü"}
	m.Metadata["test.nested"] = []any{[]int32{1, 2}, []string{"x"}, []any{[]bool{true}}}
	m.Metadata["test.bools"] = []bool{true, false}
	return m
}

// refPath returns the path of a shared reference file, skipping when absent.
func refPath(t testing.TB, rel string) string {
	t.Helper()
	return shareddata.Path(t, rel)
}
