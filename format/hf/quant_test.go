package hf

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/format/safetensors"
	"github.com/shrinkml/shrink/inference"
	"github.com/shrinkml/shrink/model"
	"github.com/shrinkml/shrink/quantize"
)

// quantized returns m quantized with scheme, failing the test on error.
func quantized(t *testing.T, m *model.Model, scheme quantize.Scheme) *model.Model {
	t.Helper()
	q, _, err := quantize.Quantize(m, quantize.Options{Scheme: scheme, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// countDTypes counts tensors by dtype.
func countDTypes(ts []*model.Tensor) map[model.DType]int {
	n := map[model.DType]int{}
	for _, t := range ts {
		n[t.DType]++
	}
	return n
}

// llamaLogits runs tokens through m and returns the logits of every token.
func llamaLogits(t *testing.T, m *model.Model, tokens []int) []float32 {
	t.Helper()
	l, err := inference.NewLlama(m, inference.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	logits := make([]float32, len(tokens)*m.Config.VocabSize)
	if err := l.Forward(l.NewState(len(tokens)), tokens, logits); err != nil {
		t.Fatal(err)
	}
	return logits
}

// TestQuantizedLlamaRoundTrip saves a quantized stories260K-shaped model as a
// folder, sharded and not, and loads the same blocks back; the model runs to
// the same logits.
func TestQuantizedLlamaRoundTrip(t *testing.T) {
	cfg := model.Presets["stories260k"]
	cfg.HFArchitecture = "LlamaForCausalLM"
	m, err := model.Synthesize(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, scheme := range []quantize.Scheme{quantize.Q8_0, quantize.Q4_0, quantize.Q4_1} {
		t.Run(string(scheme), func(t *testing.T) {
			q := quantized(t, m, scheme)
			// Save stores q/k rows in rotate-half order; the blocks move with their rows.
			want, err := q.WithRopeLayout(model.RopeHalf)
			if err != nil {
				t.Fatal(err)
			}
			counts := countDTypes(want.Tensors)
			if counts[scheme.DType()] == 0 {
				t.Fatalf("nothing was quantized to %s: %v", scheme, counts)
			}
			tokens := []int{1, 300, 17, 42, 511, 260}
			wantLogits := llamaLogits(t, want, tokens)
			for _, shard := range []int64{0, 40_000} {
				got, dir := saveLoad(t, q, SaveOptions{MaxShardSize: shard})
				if !reflect.DeepEqual(got.Config, want.Config) {
					t.Errorf("config\n%+v\nwant\n%+v", got.Config, want.Config)
				}
				sameTensors(t, got.Tensors, want.Tensors)
				if !reflect.DeepEqual(countDTypes(got.Tensors), counts) {
					t.Errorf("dtypes %v, want %v", countDTypes(got.Tensors), counts)
				}
				if got.Metadata["general.name"] != "synthetic" {
					t.Errorf("metadata %v", got.Metadata)
				}
				if _, err := os.Stat(filepath.Join(dir, safetensors.IndexName)); (err == nil) != (shard > 0) {
					t.Errorf("max shard %d: index present %v", shard, err == nil)
				}
				if !slices.Equal(llamaLogits(t, got, tokens), wantLogits) {
					t.Errorf("max shard %d: the loaded model computes other logits", shard)
				}
			}
		})
	}
}

// mlpForward runs the classifier on x.
func mlpForward(t *testing.T, m *model.Model, x []float32) []float32 {
	t.Helper()
	c, err := inference.NewMLP(m, inference.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := make([]float32, len(x)/c.Inputs()*c.Classes())
	if err := c.Forward(x, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestQuantizedMLPRoundTrip saves a quantized Fashion-MNIST-shaped classifier
// as a folder and as a bare state dict: both load back the same blocks,
// activation and labels, and classify alike. The 784-input first layer fits
// no block and is F16.
func TestQuantizedMLPRoundTrip(t *testing.T) {
	labels := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "<j&k>"}
	m, err := model.Synthesize(model.Config{Arch: "mlp", MLP: &model.MLPConfig{Sizes: []int{784, 64, 32, 10}, Activation: "gelu", Labels: labels}}, 2)
	if err != nil {
		t.Fatal(err)
	}
	q := quantized(t, m, quantize.Q8_0)
	if got := countDTypes(q.Tensors); got[model.Q8_0] != 2 || got[model.F16] != 1 {
		t.Fatalf("dtypes after quantizing %v", got)
	}
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 5*784)
	for i := range x {
		x[i] = r.Float32()
	}
	want := mlpForward(t, q, x)

	folder, _ := saveLoad(t, q, SaveOptions{})
	path := filepath.Join(t.TempDir(), "mlp.safetensors")
	if err := SaveStateDict(path, q, false); err != nil {
		t.Fatal(err)
	}
	bare, err := LoadStateDict(path, "mlp")
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	for name, got := range map[string]*model.Model{"folder": folder, "state dict": bare} {
		if !reflect.DeepEqual(got.Config, q.Config) {
			t.Errorf("%s: config %+v, want %+v", name, got.Config.MLP, q.Config.MLP)
		}
		sameTensors(t, got.Tensors, q.Tensors)
		if !slices.Equal(mlpForward(t, got, x), want) {
			t.Errorf("%s: the loaded classifier computes other outputs", name)
		}
	}
	if err := SaveStateDict(path, q, false); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("saving over an existing file: %v", err)
	}
	if err := SaveStateDict(path, q, true); err != nil {
		t.Errorf("--force: %v", err)
	}
}

func TestSaveStateDictErrors(t *testing.T) {
	mlp, err := model.Synthesize(model.Config{Arch: "mlp", MLP: &model.MLPConfig{Sizes: []int{4, 3}, Activation: "relu"}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	with := func(f func(m *model.Model)) *model.Model {
		c := *mlp
		mc := *mlp.Config.MLP
		c.Config.MLP = &mc
		c.Tensors = slices.Clone(mlp.Tensors)
		f(&c)
		return &c
	}
	llama := randomModel(t, tinyLlama(), model.F32, 1)
	tests := []struct {
		name string
		m    *model.Model
		want string
	}{
		{"nil", nil, "no model"},
		{"llama", llama, `only an mlp classifier can be read back from one, not "llama"`},
		{"activation", with(func(m *model.Model) { m.Config.MLP.Activation = "tanh" }), `unknown mlp activation "tanh"`},
		{"labels", with(func(m *model.Model) { m.Config.MLP.Labels = []string{"a", "b"} }), "2 labels for 3 classes"},
		{"extra tensor", with(func(m *model.Model) { m.Tensors = append(m.Tensors, model.NewF32("extra", []int{1}, []float32{1})) }), `tensor "extra" is not a parameter`},
		{"invalid", with(func(m *model.Model) { m.Tensors = m.Tensors[1:] }), `config needs tensor "layers.0.weight"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.safetensors")
			err := SaveStateDict(path, tc.m, false)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Error("a failed save wrote the file")
			}
		})
	}
}

// TestLoadQuantizedErrors names the folder's file and the tensor when the
// quantized layout is broken.
func TestLoadQuantizedErrors(t *testing.T) {
	m, err := model.Synthesize(model.Config{Arch: "mlp", MLP: &model.MLPConfig{Sizes: []int{32, 4}, Activation: "relu"}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	q := quantized(t, m, quantize.Q4_0)
	dir := filepath.Join(t.TempDir(), "out")
	if err := Save(dir, q, SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, safetensors.SingleName)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, from, to, want string
	}{
		{"dtype", `\"dtype\":\"Q4_0\"`, `\"dtype\":\"Q5_0\"`, `tensor "layers.0.weight": __metadata__ "shrink.quant.tensor.layers.0.weight": dtype "Q5_0" is not a block type`},
		{"shape", `\"shape\":[4,32]`, `\"shape\":[2,64]`, `tensor "layers.0.weight": Q4_0 [2 64] is stored as U8 [2 36], the header says U8 [4 18]`},
		{"absent", `shrink.quant.tensor.layers.0.weight`, `shrink.quant.tensor.layers.9.weight`, `describes tensor "layers.9.weight", which the file does not hold`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Edits keep the header's length, so the file stays well framed.
			if len(tc.from) != len(tc.to) || !bytes.Contains(orig, []byte(tc.from)) {
				t.Fatalf("bad edit %q -> %q", tc.from, tc.to)
			}
			if err := os.WriteFile(path, bytes.Replace(orig, []byte(tc.from), []byte(tc.to), 1), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v, want %q naming %s", err, tc.want, path)
			}
		})
	}
}

// TestLoadStateDictMetadata reads the activation and labels a state dict
// carries, and refuses bad ones.
func TestLoadStateDictMetadata(t *testing.T) {
	w := model.NewF32("0.weight", []int{2, 3}, make([]float32, 6))
	b := model.NewF32("0.bias", []int{2}, make([]float32, 2))
	tests := []struct {
		name string
		md   map[string]string
		want string // error, or "" for success
	}{
		{"none", map[string]string{"k": "v"}, ""},
		{"both", map[string]string{MetaActivation: "gelu", MetaLabels: `["x","y"]`}, ""},
		{"bad activation", map[string]string{MetaActivation: "tanh"}, `unknown mlp activation "tanh"`},
		{"labels not json", map[string]string{MetaLabels: "x,y"}, `"shrink.mlp.labels" is not a JSON array of strings`},
		{"labels null", map[string]string{MetaLabels: "null"}, `is not a JSON array of strings`},
		{"label count", map[string]string{MetaLabels: `["x"]`}, "1 labels for 2 classes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.safetensors")
			if err := safetensors.WriteFile(path, []*model.Tensor{w, b}, tc.md, false); err != nil {
				t.Fatal(err)
			}
			m, err := LoadStateDict(path, "mlp")
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
					t.Fatalf("error %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			mc := m.Config.MLP
			if a := tc.md[MetaActivation]; a != "" && mc.Activation != a || a == "" && mc.Activation != "relu" {
				t.Errorf("activation %q", mc.Activation)
			}
			if tc.md[MetaLabels] != "" && !slices.Equal(mc.Labels, []string{"x", "y"}) {
				t.Errorf("labels %q", mc.Labels)
			}
			_, hasA := m.Metadata[MetaActivation]
			_, hasL := m.Metadata[MetaLabels]
			if hasA || hasL || (tc.md["k"] != "" && m.Metadata["k"] != tc.md["k"]) {
				t.Errorf("metadata %v", m.Metadata)
			}
		})
	}
}
