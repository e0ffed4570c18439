package hf

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/shrinkml/shrink/model"
)

// tinyLlama returns a small llama config for tests.
func tinyLlama() model.Config {
	return model.Config{
		Arch: "llama", HFArchitecture: "LlamaForCausalLM",
		HiddenSize: 16, IntermediateSize: 24, NumLayers: 2, NumHeads: 4, NumKVHeads: 2, HeadDim: 4,
		VocabSize: 32, ContextLength: 64, RMSNormEps: 1e-5, RopeTheta: 10000, RopeLayout: model.RopeHalf,
	}
}

// randomModel builds a model with every tensor cfg expects, filled with random
// bytes of dtype d (norms and biases stay F32, as real checkpoints often do not).
func randomModel(t testing.TB, cfg model.Config, d model.DType, seed int64) *model.Model {
	t.Helper()
	r := rand.New(rand.NewSource(seed))
	m := &model.Model{Config: cfg, Metadata: map[string]any{}}
	for _, e := range cfg.Expected() {
		dt := d
		if len(e.Shape) == 1 {
			dt = model.F32
		}
		n, err := model.ByteSize(dt, e.Shape)
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, n)
		r.Read(data)
		m.Tensors = append(m.Tensors, &model.Tensor{Name: e.Name, DType: dt, Shape: e.Shape, Data: data})
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

func saveLoad(t *testing.T, m *model.Model, opts SaveOptions) (*model.Model, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "out")
	if err := Save(dir, m, opts); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { got.Close() })
	return got, dir
}

// sameTensors reports the first difference between two tensor lists, by name.
func sameTensors(t *testing.T, got, want []*model.Tensor) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d tensors, want %d", len(got), len(want))
	}
	byName := map[string]*model.Tensor{}
	for _, x := range got {
		byName[x.Name] = x
	}
	for _, w := range want {
		g := byName[w.Name]
		if g == nil {
			t.Fatalf("tensor %q missing", w.Name)
		}
		if g.DType != w.DType || !reflect.DeepEqual(g.Shape, w.Shape) || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("tensor %q: got %s %v, want %s %v (or the bytes differ)", w.Name, g.DType, g.Shape, w.DType, w.Shape)
		}
	}
}

// dirFiles reads every file of a folder.
func dirFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}
