package safetensors

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/model"
)

func TestPlan(t *testing.T) {
	mk := func(name string, n int) *model.Tensor {
		return &model.Tensor{Name: name, DType: model.U8, Shape: []int{n}, Data: make([]byte, n)}
	}
	ts := []*model.Tensor{mk("a", 4), mk("b", 4), mk("c", 10), mk("d", 1), mk("e", 7)}
	tests := []struct {
		max  int64
		want string
	}{
		{0, "abcde"},
		{100, "abcde"},
		{8, "ab|c|de"},
		{11, "ab|cd|e"},
		{3, "a|b|c|d|e"},
	}
	for _, tc := range tests {
		var parts []string
		for _, shard := range Plan(ts, tc.max) {
			s := ""
			for _, x := range shard {
				s += x.Name
			}
			parts = append(parts, s)
		}
		if got := strings.Join(parts, "|"); got != tc.want {
			t.Errorf("Plan(max %d) = %s, want %s", tc.max, got, tc.want)
		}
	}
	if n := len(Plan(nil, 10)); n != 1 {
		t.Errorf("Plan(nil) has %d shards, want 1", n)
	}
}

func shardedFixture(t *testing.T, max int64) (string, []*model.Tensor) {
	t.Helper()
	r := rand.New(rand.NewSource(6))
	var ts []*model.Tensor
	for i := 0; i < 7; i++ {
		ts = append(ts, randTensor(r, model.LayerTensor(i, model.AttnQ), model.F16, 4, 8))
	}
	dir := t.TempDir()
	if _, err := WriteSharded(dir, ts, map[string]string{"format": "pt"}, max); err != nil {
		t.Fatal(err)
	}
	return dir, ts
}

func TestShardedRoundTrip(t *testing.T) {
	dir, ts := shardedFixture(t, 130) // two 64-byte tensors per shard
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{"model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors", "model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors", IndexName}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, IndexName))
	if !bytes.HasPrefix(raw, []byte("{\n  \"metadata\": {\n    \"total_size\": 448\n  },\n  \"weight_map\": {\n    \"model.layers.0.self_attn.q_proj.weight\": \"model-00001-of-00004.safetensors\",")) {
		t.Errorf("index layout:\n%s", raw)
	}
	c, err := OpenIndex(filepath.Join(dir, IndexName))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.Files) != 4 || len(c.Tensors) != len(ts) {
		t.Fatalf("%d files, %d tensors", len(c.Files), len(c.Tensors))
	}
	for i, x := range c.Tensors {
		if x.Name != ts[i].Name || !bytes.Equal(x.Data, ts[i].Data) {
			t.Errorf("tensor %d: %q differs", i, x.Name)
		}
	}
	if c.Metadata()["format"] != "pt" {
		t.Errorf("metadata %v", c.Metadata())
	}
	if got := c.Index.Metadata["total_size"]; got != float64(448) {
		t.Errorf("total_size %v", got)
	}
}

func TestShardedSingleFile(t *testing.T) {
	dir, ts := shardedFixture(t, 0)
	if _, err := os.Stat(filepath.Join(dir, IndexName)); !os.IsNotExist(err) {
		t.Errorf("single shard wrote an index")
	}
	c, err := OpenFile(filepath.Join(dir, SingleName))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.Tensors) != len(ts) {
		t.Errorf("%d tensors", len(c.Tensors))
	}
}

func TestShardedErrors(t *testing.T) {
	dir, _ := shardedFixture(t, 130)
	index := filepath.Join(dir, IndexName)
	orig, _ := os.ReadFile(index)
	var ix struct {
		Metadata  map[string]any    `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	json.Unmarshal(orig, &ix)
	q0, q1 := model.LayerTensor(0, model.AttnQ), model.LayerTensor(1, model.AttnQ)
	edit := func(f func(wm map[string]string)) string {
		wm := map[string]string{}
		for k, v := range ix.WeightMap {
			wm[k] = v
		}
		f(wm)
		raw, _ := json.Marshal(map[string]any{"metadata": ix.Metadata, "weight_map": wm})
		return string(raw)
	}
	tests := []struct {
		name  string
		index string
		want  string
	}{
		{"not json", "{", "not a JSON object"},
		{"no weight map", `{"metadata":{}}`, "no weight_map"},
		{"weight map not object", `{"weight_map":[]}`, "weight_map is not an object"},
		{"not a string", `{"weight_map":{"a":1}}`, `maps to a number`},
		{"listed twice", `{"weight_map":{"a":"x.safetensors","a":"y.safetensors"}}`, `lists tensor "a" twice`},
		{"path escape", `{"weight_map":{"a":"../x.safetensors"}}`, "not a plain file name"},
		{"missing shard", edit(func(wm map[string]string) { wm[q0] = "model-00009-of-00009.safetensors" }), "model-00009-of-00009.safetensors: no such file"},
		{"wrong shard", edit(func(wm map[string]string) { wm[q0] = "model-00002-of-00004.safetensors" }), `is in model-00001-of-00004.safetensors, the weight map says model-00002-of-00004.safetensors`},
		{"absent tensor", edit(func(wm map[string]string) { wm["ghost"] = "model-00001-of-00004.safetensors" }), `puts tensor "ghost" in model-00001-of-00004.safetensors, which has no such tensor`},
		{"unlisted tensor", edit(func(wm map[string]string) { delete(wm, q1) }), `tensor "` + q1 + `" of model-00001-of-00004.safetensors is missing from the weight map`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(index, []byte(tc.index), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := OpenIndex(index)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestShardedDuplicateAcrossShards(t *testing.T) {
	dir := t.TempDir()
	a := model.NewF32("a", []int{1}, []float32{1})
	for _, name := range []string{"s1.safetensors", "s2.safetensors"} {
		if err := WriteFile(filepath.Join(dir, name), []*model.Tensor{a}, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	index := filepath.Join(dir, IndexName)
	os.WriteFile(index, []byte(`{"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}}`), 0o644)
	_, err := OpenIndex(index)
	if err == nil || !strings.Contains(err.Error(), `tensor "a" is in both s1.safetensors and s2.safetensors`) {
		t.Fatalf("error %v", err)
	}
}

func TestWriteShardedDuplicate(t *testing.T) {
	a := model.NewF32("a", []int{1}, []float32{1})
	_, err := WriteSharded(t.TempDir(), []*model.Tensor{a, a}, nil, 1)
	if err == nil || !strings.Contains(err.Error(), "appears twice") {
		t.Fatalf("error %v", err)
	}
}
