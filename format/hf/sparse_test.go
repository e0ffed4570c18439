package hf

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/format/safetensors"
	"github.com/shrinkml/shrink/model"
)

// pruneModel zeroes weights of every layer matrix of m in place: with nm, the
// 2 smallest of every 4 (by value, which is enough for a test); otherwise a
// fraction frac at random.
func pruneModel(m *model.Model, frac float64, nm bool, seed int64) {
	r := rand.New(rand.NewSource(seed))
	for _, t := range m.Tensors {
		if len(t.Shape) != 2 || !strings.Contains(t.Name, "layers.") {
			continue
		}
		es := t.DType.BlockBytes()
		n := t.Elems()
		for i := 0; i < n; i++ {
			if nm && i%4 < 2 || !nm && r.Float64() < frac {
				clear(t.Data[i*es : (i+1)*es])
			}
		}
	}
}

func cloneModel(m *model.Model) *model.Model {
	c := *m
	c.Tensors = nil
	for _, t := range m.Tensors {
		ct := *t
		ct.Data = bytes.Clone(t.Data)
		c.Tensors = append(c.Tensors, &ct)
	}
	return &c
}

func sameModelTensors(t *testing.T, got, want *model.Model) {
	t.Helper()
	if len(got.Tensors) != len(want.Tensors) {
		t.Fatalf("%d tensors, want %d", len(got.Tensors), len(want.Tensors))
	}
	for _, w := range want.Tensors {
		g := got.Tensor(w.Name)
		if g == nil || g.DType != w.DType || !equalInts(g.Shape, w.Shape) || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("tensor %q differs after the round trip", w.Name)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSparseRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		dtype  model.DType
		frac   float64
		nm     bool
		format string
	}{
		{"unstructured90", model.F32, 0.9, false, formatBitmask},
		{"unstructured50-bf16", model.BF16, 0.5, false, formatBitmask},
		{"2:4", model.F32, 0, true, formatBitmask24},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := randomModel(t, tinyLlama(), tc.dtype, 7)
			pruneModel(m, tc.frac, tc.nm, 1)
			want := cloneModel(m)
			got, dir := saveLoad(t, m, SaveOptions{Sparse: true})
			sameModelTensors(t, got, want)
			if _, ok := got.Metadata[ConfigPrefix+"quantization_config"]; ok {
				t.Error("the sparsity config survived loading into dense tensors")
			}
			raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			var cfg struct {
				QC quantizationConfig `json:"quantization_config"`
			}
			if err := json.Unmarshal(raw, &cfg); err != nil || cfg.QC.SparsityConfig == nil {
				t.Fatalf("config.json has no sparsity_config: %v\n%s", err, raw)
			}
			if sc := cfg.QC.SparsityConfig; cfg.QC.QuantMethod != "compressed-tensors" || sc.Format != tc.format || len(sc.Targets) != 14 {
				t.Fatalf("quantization_config = %+v, sparsity_config = %+v", cfg.QC, *sc)
			}
			// Saving the loaded model dense gives the plain layout back.
			_, dense := saveLoad(t, got, SaveOptions{})
			raw, _ = os.ReadFile(filepath.Join(dense, "config.json"))
			if bytes.Contains(raw, []byte("sparsity_config")) {
				t.Error("a dense save still claims sparsity")
			}
		})
	}
}

// TestSparse24Size measures the pruned matrices' share of the file at 2:4.
func TestSparse24Size(t *testing.T) {
	m := randomModel(t, tinyLlama(), model.F32, 7)
	pruneModel(m, 0, true, 1)
	_, sdir := saveLoad(t, m, SaveOptions{Sparse: true})
	_, ddir := saveLoad(t, m, SaveOptions{})
	sf, err := safetensors.Open(filepath.Join(sdir, safetensors.SingleName))
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	var sparse, dense int64
	for _, x := range sf.Tensors {
		for _, suf := range []string{".shape", ".compressed", ".bitmask", ".row_offsets"} {
			if strings.HasSuffix(x.Name, suf) {
				sparse += int64(len(x.Data))
				dense += int64(4 * m.Tensor(strings.TrimSuffix(x.Name, suf)+".weight").Elems() / boolInt(suf == ".compressed"))
			}
		}
	}
	ratio := float64(sparse) / float64(dense)
	ss, _ := os.Stat(filepath.Join(sdir, safetensors.SingleName))
	ds, _ := os.Stat(filepath.Join(ddir, safetensors.SingleName))
	t.Logf("2:4 pruned tensors: %d bytes stored for %d dense (%.3fx); whole file %d vs %d bytes", sparse, dense, ratio, ss.Size(), ds.Size())
	if ratio > 0.6 {
		t.Errorf("2:4 storage is %.3fx the dense size, want <= 0.6", ratio)
	}
}

// boolInt divides by 1 for the part that stands for the weight, and makes the
// other parts count nothing dense (huge divisor).
func boolInt(b bool) int {
	if b {
		return 1
	}
	return math.MaxInt
}

func i32s(vals ...int) []byte {
	b := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(int32(v)))
	}
	return b
}

func TestSparseDecodeErrors(t *testing.T) {
	f32 := func(n int) []byte { return bytes.Repeat([]byte{0, 0, 128, 63}, n) } // 1.0
	good := func() []*model.Tensor {
		return []*model.Tensor{
			{Name: "w.shape", DType: model.I32, Shape: []int{2}, Data: i32s(2, 10)},
			{Name: "w.compressed", DType: model.F32, Shape: []int{3}, Data: f32(3)},
			{Name: "w.bitmask", DType: model.U8, Shape: []int{2, 2}, Data: []byte{0b101, 0, 0, 0b10}},
			{Name: "w.row_offsets", DType: model.I32, Shape: []int{2}, Data: i32s(0, 2)},
		}
	}
	fileOf := func(string) string { return "dir/model.safetensors" }
	ts, err := decodeSparse(good(), formatBitmask, fileOf)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || ts[0].Name != "w.weight" || !equalInts(ts[0].Shape, []int{2, 10}) {
		t.Fatalf("decoded %v", ts)
	}
	for _, tc := range []struct {
		name string
		edit func(ts []*model.Tensor)
		want string
	}{
		{"lying shape", func(ts []*model.Tensor) { ts[0].Data = i32s(3, 10) }, "want U8 [3 2]"},
		{"negative shape", func(ts []*model.Tensor) { ts[0].Data = i32s(-2, 10) }, "not a matrix"},
		{"huge shape", func(ts []*model.Tensor) { ts[0].Data = i32s(1<<30, 1<<30) }, "not a matrix"},
		{"count mismatch", func(ts []*model.Tensor) { ts[2].Data[2] = 0b11 }, "holds 3 values, the bitmask marks 5"},
		{"padding bits", func(ts []*model.Tensor) { ts[2].Data[1] = 0b100 }, "sets bits past column 10"},
		{"row offsets out of range", func(ts []*model.Tensor) { ts[3].Data = i32s(0, 7) }, "row offsets out of range"},
		{"row offsets dtype", func(ts []*model.Tensor) { ts[3].DType = model.F32 }, "want I32 [2]"},
		{"values dtype", func(ts []*model.Tensor) { ts[1].DType = model.I32 }, "shrink reads F32"},
		{"short values", func(ts []*model.Tensor) { ts[1].Data = ts[1].Data[:8] }, "w.compressed"},
	} {
		ts := good()
		tc.edit(ts)
		_, err := decodeSparse(ts, formatBitmask, fileOf)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "dir/model.safetensors") || !strings.Contains(err.Error(), `"w.weight"`) {
			t.Errorf("%s: error %v, want one naming the file, the tensor and %q", tc.name, err, tc.want)
		}
	}
	// 2:4: every group of 4 must keep exactly 2.
	ts24 := []*model.Tensor{
		{Name: "w.shape", DType: model.I32, Shape: []int{2, 1}, Data: i32s(1, 8)},
		{Name: "w.compressed", DType: model.F32, Shape: []int{1, 4}, Data: f32(4)},
		{Name: "w.bitmask", DType: model.U8, Shape: []int{1, 1}, Data: []byte{0b00110111}},
	}
	if _, err := decodeSparse(ts24, formatBitmask24, fileOf); err == nil || !strings.Contains(err.Error(), "want 2 in every group of 4") {
		t.Errorf("2:4 with 3 in a group: %v", err)
	}
}
