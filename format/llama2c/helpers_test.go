package llama2c

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/shrinkml/shrink/model"
)

// tinyShape is the shape of a small model made in code.
type tinyShape struct {
	dim, hidden, layers, heads, kvHeads, vocab, seqLen int
	tied                                               bool
}

var tiny = tinyShape{dim: 8, hidden: 12, layers: 2, heads: 2, kvHeads: 1, vocab: 16, seqLen: 4, tied: true}

// micro is smaller still, for fuzz seeds: 956 bytes with a shared classifier.
var micro = tinyShape{dim: 4, hidden: 4, layers: 2, heads: 2, kvHeads: 1, vocab: 4, seqLen: 2, tied: true}

// tinyModel builds a llama model whose every element is distinct, so that a
// misplaced tensor or row shows.
func tinyModel(s tinyShape) *model.Model {
	c := model.Config{
		Arch: "llama", HiddenSize: s.dim, IntermediateSize: s.hidden, NumLayers: s.layers,
		NumHeads: s.heads, NumKVHeads: s.kvHeads, HeadDim: s.dim / s.heads, VocabSize: s.vocab,
		ContextLength: s.seqLen, RMSNormEps: 1e-5, RopeTheta: 10000, RopeLayout: model.RopePairs,
		TiedEmbeddings: s.tied,
	}
	return fromConfig(c)
}

// fromConfig builds a model with every tensor c expects, all elements distinct.
func fromConfig(c model.Config) *model.Model {
	m := &model.Model{Config: c}
	for ti, e := range c.Expected() {
		n := 1
		for _, d := range e.Shape {
			n *= d
		}
		vals := make([]float32, n)
		for i := range vals {
			vals[i] = float32(ti) + float32(i)/1024
		}
		m.Tensors = append(m.Tensors, model.NewF32(e.Name, e.Shape, vals))
	}
	return m
}

// encodeBytes encodes m in memory.
func encodeBytes(t testing.TB, m *model.Model) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := encode(&b, "mem", m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// rawHeader builds a checkpoint of the given header followed by n zero floats.
func rawHeader(h [7]int32, floats int) []byte {
	b := make([]byte, 28+4*floats)
	for i, v := range h {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
	}
	return b
}

// tokFile builds tokenizer file bytes from max_token_length and tokens.
func tokFile(maxLen int32, tokens ...string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(maxLen))
	for i, t := range tokens {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(-float32(i)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(t)))
		b = append(b, t...)
	}
	return b
}

// writeTemp writes data to a file called name in a new temporary folder.
func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// f32At reads the float32 at element index i of a checkpoint's data section.
func f32At(b []byte, i int) float32 {
	return math.Float32frombits(binary.LittleEndian.Uint32(b[28+4*i:]))
}

// ropeTables returns both RoPE tables whole, without any patch.
func ropeTables(headSize, seqLen int) (re, im []float32) {
	r, half := newRope(headSize), headSize/2
	re = make([]float32, seqLen*half)
	im = make([]float32, seqLen*half)
	for pos := 0; pos < seqLen; pos++ {
		for i := 0; i < half; i++ {
			re[pos*half+i], im[pos*half+i] = r.at(pos, i)
		}
	}
	return re, im
}
