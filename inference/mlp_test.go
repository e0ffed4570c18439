package inference

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/model"
)

// readSafetensors is a minimal reader for the fixtures make_fixtures.py
// writes (F32 and F64 tensors), so these tests do not depend on the
// safetensors package. Values come back as float64.
func readSafetensors(t testing.TB, path string) (map[string][]float64, map[string][]int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 8 {
		t.Fatalf("%s: too short", path)
	}
	n := binary.LittleEndian.Uint64(b)
	if n > uint64(len(b)-8) {
		t.Fatalf("%s: header length %d beyond the file", path, n)
	}
	var hdr map[string]struct {
		DType   string `json:"dtype"`
		Shape   []int  `json:"shape"`
		Offsets [2]int `json:"data_offsets"`
	}
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	data := b[8+n:]
	vals, shapes := map[string][]float64{}, map[string][]int{}
	for name, h := range hdr {
		raw := data[h.Offsets[0]:h.Offsets[1]]
		var v []float64
		switch h.DType {
		case "F32":
			for i := 0; i+4 <= len(raw); i += 4 {
				v = append(v, float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[i:]))))
			}
		case "F64":
			for i := 0; i+8 <= len(raw); i += 8 {
				v = append(v, math.Float64frombits(binary.LittleEndian.Uint64(raw[i:])))
			}
		default:
			t.Fatalf("%s: tensor %q has dtype %s", path, name, h.DType)
		}
		vals[name], shapes[name] = v, h.Shape
	}
	return vals, shapes
}

func toF32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i := range v {
		out[i] = float32(v[i])
	}
	return out
}

// mlpFromFixture builds the classifier held in a torch nn.Sequential fixture:
// Linear layers sit at indices 0, 2, 4, ... with activations between them.
func mlpFromFixture(t testing.TB, file, act string) (m *model.Model, input []float32, probs []float64) {
	vals, shapes := readSafetensors(t, filepath.Join("testdata", file))
	var idx []int
	for name := range vals {
		var i int
		if _, err := fmt.Sscanf(name, "%d.weight", &i); err == nil && strings.HasSuffix(name, ".weight") {
			idx = append(idx, i)
		}
	}
	sort.Ints(idx)
	cfg := model.Config{Arch: "mlp", MLP: &model.MLPConfig{Activation: act}}
	m = &model.Model{Source: file}
	for j, i := range idx {
		ws := shapes[fmt.Sprintf("%d.weight", i)]
		if j == 0 {
			cfg.MLP.Sizes = append(cfg.MLP.Sizes, ws[1])
		}
		cfg.MLP.Sizes = append(cfg.MLP.Sizes, ws[0])
		m.Tensors = append(m.Tensors,
			model.NewF32(model.MLPWeight(j), ws, toF32(vals[fmt.Sprintf("%d.weight", i)])),
			model.NewF32(model.MLPBias(j), []int{ws[0]}, toF32(vals[fmt.Sprintf("%d.bias", i)])))
	}
	m.Config = cfg
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m, toF32(vals["input"]), vals["probs"]
}

// TestMLPMatchesTorch compares with torch's float64 probabilities.
func TestMLPMatchesTorch(t *testing.T) {
	for _, tc := range []struct{ file, act string }{
		{"mlp_relu.safetensors", "relu"},
		{"mlp_gelu.safetensors", "gelu"},
	} {
		t.Run(tc.act, func(t *testing.T) {
			m, x, want := mlpFromFixture(t, tc.file, tc.act)
			for _, threads := range []int{1, 2} {
				c, err := NewMLP(m, Options{Threads: threads})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.minWork = 0
				got := make([]float32, len(want))
				if err := c.Forward(x, got); err != nil {
					t.Fatal(err)
				}
				for i := range want {
					if d := math.Abs(float64(got[i]) - want[i]); !(d <= 1e-6) {
						t.Fatalf("threads %d: probability %d is %g, torch says %g", threads, i, got[i], want[i])
					}
				}
				labels, err := c.Predict(x)
				if err != nil {
					t.Fatal(err)
				}
				k := c.Classes()
				for r, lab := range labels {
					best := 0
					for j := range k {
						if want[r*k+j] > want[r*k+best] {
							best = j
						}
					}
					if lab != best {
						t.Errorf("threads %d: row %d predicted %d, torch's argmax is %d", threads, r, lab, best)
					}
				}
			}
		})
	}
}

// TestMLPLargeBatch runs more rows than one chunk, on several threads, and
// checks each row against a float64 evaluation of the same network.
func TestMLPLargeBatch(t *testing.T) {
	sizes := []int{70, 130, 10}
	m := &model.Model{Config: model.Config{Arch: "mlp", MLP: &model.MLPConfig{Sizes: sizes, Activation: "gelu"}}}
	ref := newRefModel(t, randomMLP(t, m))
	n := mlpChunk*2 + 7
	x := toF32(randomVec(n*sizes[0], 77))
	var first []float32
	for _, threads := range []int{1, 2, 3} {
		c, err := NewMLP(m, Options{Threads: threads})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		got := make([]float32, n*sizes[2])
		c.minWork = 0
		if err := c.Forward(x, got); err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = got
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(first[i]) {
				t.Fatalf("threads %d: output %d is %g, with 1 thread %g", threads, i, got[i], first[i])
			}
		}
		for r := 0; r < n; r++ {
			h := make([]float64, sizes[0])
			for i := range h {
				h[i] = float64(x[r*sizes[0]+i])
			}
			for li := 0; li < 2; li++ {
				h = linear(ref.get(model.MLPWeight(li)), h, ref.get(model.MLPBias(li)))
				if li == 0 {
					for i, v := range h {
						h[i] = 0.5 * v * (1 + math.Erf(v/math.Sqrt2))
					}
				}
			}
			mx := math.Inf(-1)
			for _, v := range h {
				mx = math.Max(mx, v)
			}
			var sum float64
			for i := range h {
				h[i] = math.Exp(h[i] - mx)
				sum += h[i]
			}
			for i := range h {
				if d := math.Abs(float64(got[r*sizes[2]+i]) - h[i]/sum); !(d <= 2e-6) {
					t.Fatalf("threads %d row %d class %d: %g, want %g", threads, r, i, got[r*sizes[2]+i], h[i]/sum)
				}
			}
		}
	}
}

func randomVec(n int, seed uint64) []float64 {
	v := make([]float64, n)
	x := seed*2654435761 + 1
	for i := range v {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		v[i] = float64(x%20001)/10000 - 1
	}
	return v
}

func scaled(v []float64, a float64) []float64 {
	for i := range v {
		v[i] *= a
	}
	return v
}

func randomMLP(t testing.TB, m *model.Model) *model.Model {
	s := m.Config.MLP.Sizes
	for i := 0; i+1 < len(s); i++ {
		m.Tensors = append(m.Tensors,
			model.NewF32(model.MLPWeight(i), []int{s[i+1], s[i]}, toF32(scaled(randomVec(s[i+1]*s[i], uint64(10+i)), 3/math.Sqrt(float64(s[i]))))),
			model.NewF32(model.MLPBias(i), []int{s[i+1]}, toF32(randomVec(s[i+1], uint64(20+i)))))
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMLPErrors(t *testing.T) {
	sizes := []int{4, 3, 2}
	m := randomMLP(t, &model.Model{Config: model.Config{Arch: "mlp", MLP: &model.MLPConfig{Sizes: sizes, Activation: "relu"}}})
	c, err := NewMLP(m, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Forward(make([]float32, 7), make([]float32, 2)); err == nil || !strings.Contains(err.Error(), "whole number") {
		t.Errorf("ragged input: error %v", err)
	}
	if err := c.Forward(make([]float32, 8), make([]float32, 2)); err == nil || !strings.Contains(err.Error(), "want 2 rows") {
		t.Errorf("short output: error %v", err)
	}
	if _, err := c.Predict(make([]float32, 5)); err == nil {
		t.Errorf("Predict with a ragged input: no error")
	}
	c.Close()
	if err := c.Forward(make([]float32, 4), make([]float32, 2)); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Forward after Close: error %v", err)
	}
	bad := *m
	bad.Config.Arch = "llama"
	if _, err := NewMLP(&bad, Options{}); err == nil || !strings.Contains(err.Error(), "not an mlp") {
		t.Errorf("llama config: error %v", err)
	}
	bad = *m
	bad.Tensors = bad.Tensors[:3]
	if _, err := NewMLP(&bad, Options{}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing bias: error %v", err)
	}
}
