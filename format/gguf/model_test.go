package gguf

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/internal/fileio"
	"github.com/shrinkml/shrink/model"
)

func readFile(t *testing.T, path string) *File {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Read(data)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// saveAndRead saves m as the GGUF file name in dir and returns its path,
// the file as Read parses it and the model Load reads back from it (closed
// when the test ends).
func saveAndRead(t *testing.T, m *model.Model, dir, name string) (string, *File, *model.Model) {
	t.Helper()
	out := filepath.Join(dir, name)
	if err := Save(out, m, false); err != nil {
		t.Fatal(err)
	}
	f := readFile(t, out)
	got, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { got.Close() })
	return out, f, got
}

func TestLoadReferenceF32(t *testing.T) {
	m, err := Load(refPath(t, refF32))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	want := model.Config{
		Arch: "llama", HiddenSize: 64, IntermediateSize: 172, NumLayers: 5, NumHeads: 8, NumKVHeads: 4,
		HeadDim: 8, VocabSize: 512, ContextLength: 512, RMSNormEps: 1e-5, RopeTheta: 10000,
		RopeLayout: model.RopePairs, TiedEmbeddings: true,
	}
	if !reflect.DeepEqual(m.Config, want) {
		t.Errorf("config\n got %+v\nwant %+v", m.Config, want)
	}
	tk := m.Tokenizer
	if tk == nil || tk.Kind != "llama" || len(tk.Tokens) != 512 || tk.BOS != 1 || tk.EOS != 2 || tk.UNK != 0 || tk.PAD != -1 ||
		!tk.AddBOS || tk.AddEOS || !tk.AddSpacePrefix || tk.TypeOf(3) != model.TokenByte || len(tk.Scores) != 512 {
		t.Errorf("tokenizer %+v", tk)
	}
	// output.weight is a copy of the embedding, so the model is tied: it has
	// the 260,032 parameters of the llama2.c file, not 292,800.
	wantMeta := map[string]any{"general.name": "llama", "tokenizer.ggml.seperator_token_id": uint32(0xffffffff), MetaOutputCopy: true}
	if !reflect.DeepEqual(m.Metadata, wantMeta) {
		t.Errorf("metadata %v, want %v", m.Metadata, wantMeta)
	}
	if s := m.Summarize(); s.Parameters != 260032 || m.Tensor(model.OutputHead) != nil {
		t.Errorf("%d parameters, want 260032 with no separate output head", s.Parameters)
	}
	q := m.Tensor(model.LayerTensor(0, model.AttnK))
	if q == nil || q.DType != model.F32 || !reflect.DeepEqual(q.Shape, []int{32, 64}) {
		t.Fatalf("k_proj %+v", q)
	}
	// Zero copy: the tensor aliases the mapping, at the offset Read reports.
	f := readFile(t, refPath(t, refF32))
	ti := f.Tensor("blk.0.attn_k.weight")
	if !bytes.Equal(q.Data, ti.Data) {
		t.Errorf("k_proj data differs from the file")
	}
	if m.Source == "" {
		t.Errorf("no source recorded")
	}
}

// TestRoundTripReferences loads each llama.cpp file, saves it and checks that
// every tensor's type, dims and bytes survive, and that loading the output
// gives the same model.
func TestRoundTripReferences(t *testing.T) {
	for _, rel := range allRefs {
		t.Run(rel, func(t *testing.T) {
			path := refPath(t, rel)
			m, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			out := filepath.Join(t.TempDir(), "out.gguf")
			if err := Save(out, m, false); err != nil {
				t.Fatal(err)
			}
			orig, saved := readFile(t, path), readFile(t, out)
			if len(saved.Tensors) != len(orig.Tensors) {
				t.Fatalf("%d tensors, want %d", len(saved.Tensors), len(orig.Tensors))
			}
			for _, ot := range orig.Tensors {
				st := saved.Tensor(ot.Name)
				if st == nil {
					t.Errorf("tensor %s missing", ot.Name)
					continue
				}
				if st.Type != ot.Type || !reflect.DeepEqual(st.Dims, ot.Dims) || !bytes.Equal(st.Data, ot.Data) {
					t.Errorf("tensor %s: %s %v differs from %s %v or its bytes differ", ot.Name, st.Type, st.Dims, ot.Type, ot.Dims)
				}
			}
			m2, err := Load(out)
			if err != nil {
				t.Fatal(err)
			}
			defer m2.Close()
			if !reflect.DeepEqual(m2.Config, m.Config) || !reflect.DeepEqual(m2.Tokenizer, m.Tokenizer) || !reflect.DeepEqual(m2.Metadata, m.Metadata) {
				t.Errorf("reloaded model differs:\n%+v\n%+v\n%v\n%v", m2.Config, m.Config, m2.Metadata, m.Metadata)
			}
			if ft, ok := saved.Get("general.file_type"); ok {
				if of, ok := orig.Get("general.file_type"); ok && !reflect.DeepEqual(ft, of) {
					t.Errorf("general.file_type %v, llama.cpp wrote %v", ft, of)
				}
			}
		})
	}
}

// TestSaveMatchesConverterLayout checks that Save lays tensors out exactly as
// llama.cpp's converter did in stories260K-F32.gguf: same order, types, dims
// and offsets.
func TestSaveMatchesConverterLayout(t *testing.T) {
	path := refPath(t, refF32)
	m, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	out := filepath.Join(t.TempDir(), "out.gguf")
	if err := Save(out, m, false); err != nil {
		t.Fatal(err)
	}
	orig, saved := readFile(t, path), readFile(t, out)
	for i := range orig.Tensors {
		o, s := orig.Tensors[i], saved.Tensors[i]
		if o.Name != s.Name || o.Offset != s.Offset || o.Type != s.Type || !reflect.DeepEqual(o.Dims, s.Dims) {
			t.Errorf("tensor %d: %s at %d, llama.cpp has %s at %d", i, s.Name, s.Offset, o.Name, o.Offset)
		}
	}
	// Every key llama.cpp wrote is present with the same value, except the
	// padding id "none", which Save leaves out.
	for _, kv := range orig.KVs {
		v, ok := saved.Get(kv.Key)
		if kv.Key == "tokenizer.ggml.padding_token_id" {
			if ok {
				t.Errorf("padding id written")
			}
			continue
		}
		if !ok || !reflect.DeepEqual(v, kv.Value) {
			t.Errorf("key %s = %v, llama.cpp wrote %v", kv.Key, v, kv.Value)
		}
	}
}

// requiredKeys are the keys llama.cpp needs for a llama model (docs/gguf.md).
var requiredKeys = []string{
	"general.architecture", "general.name", "general.file_type",
	"llama.context_length", "llama.embedding_length", "llama.block_count", "llama.feed_forward_length",
	"llama.attention.head_count", "llama.attention.head_count_kv", "llama.attention.layer_norm_rms_epsilon",
	"llama.rope.dimension_count", "llama.rope.freq_base", "llama.vocab_size",
	"tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
	"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
	"tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token",
}

// TestSaveRopeHalf saves a Hugging Face-layout model and expects the file to
// hold llama.cpp's pair layout: loading gives WithRopeLayout(RopePairs) of the
// original, and converting back restores it exactly.
func TestSaveRopeHalf(t *testing.T) {
	c := tinyConfig()
	c.RopeLayout = model.RopeHalf
	m := randomModel(c, 1)
	out := filepath.Join(t.TempDir(), "half.gguf")
	if err := Save(out, m, false); err != nil {
		t.Fatal(err)
	}
	got, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	pairs, err := m.WithRopeLayout(model.RopePairs)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Config, pairs.Config) {
		t.Errorf("config\n got %+v\nwant %+v", got.Config, pairs.Config)
	}
	if len(got.Tensors) != len(pairs.Tensors) {
		t.Fatalf("%d tensors, want %d", len(got.Tensors), len(pairs.Tensors))
	}
	for _, want := range pairs.Tensors {
		g := got.Tensor(want.Name)
		if g == nil || g.DType != want.DType || !reflect.DeepEqual(g.Shape, want.Shape) || !bytes.Equal(g.Data, want.Data) {
			t.Errorf("tensor %s differs", want.Name)
		}
	}
	q := m.Tensor(model.LayerTensor(0, model.AttnQ))
	if bytes.Equal(got.Tensor(q.Name).Data, q.Data) {
		t.Errorf("q_proj was not permuted")
	}
	back, err := got.WithRopeLayout(model.RopeHalf)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range m.Tensors {
		if !bytes.Equal(back.Tensor(want.Name).Data, want.Data) {
			t.Errorf("tensor %s does not convert back", want.Name)
		}
	}
	if !reflect.DeepEqual(got.Metadata, m.Metadata) {
		t.Errorf("metadata\n got %#v\nwant %#v", got.Metadata, m.Metadata)
	}
	// The tokenizer comes back padded to the vocab size, as llama.cpp's converter pads.
	tk := got.Tokenizer
	if len(tk.Tokens) != c.VocabSize || tk.Tokens[c.VocabSize-1] != "[PAD39]" || tk.Scores[c.VocabSize-1] != -10000 ||
		tk.Types[c.VocabSize-1] != model.TokenUnused || !reflect.DeepEqual(tk.Tokens[:c.VocabSize-3], m.Tokenizer.Tokens) {
		t.Errorf("tokenizer not padded as expected: %q", tk.Tokens[c.VocabSize-4:])
	}
	f := readFile(t, out)
	for _, k := range requiredKeys {
		if _, ok := f.Get(k); !ok {
			t.Errorf("key %s missing", k)
		}
	}
	if v, _ := f.Get("llama.attention.layer_norm_rms_epsilon"); v.Type != TypeFloat32 {
		t.Errorf("rms epsilon is a %s, llama.cpp reads an f32", v.Type)
	}
	// No general.alignment key (llama-quantize copies it but pads to 32
	// bytes), so the default 32.
	if v, ok := f.Get("general.alignment"); ok || f.Alignment != DefaultAlignment {
		t.Errorf("general.alignment %v, alignment %d, want no key and %d", v.V, f.Alignment, DefaultAlignment)
	}
	for _, ti := range f.Tensors {
		if (f.DataOffset+int64(ti.Offset))%DefaultAlignment != 0 {
			t.Errorf("tensor %s starts at byte %d, not on a multiple of %d", ti.Name, f.DataOffset+int64(ti.Offset), DefaultAlignment)
		}
	}
	if f.Tensor("output.weight") == nil || f.Tensor("blk.1.ffn_down.weight") == nil {
		t.Errorf("GGUF tensor names missing")
	}
}

func TestSaveDeterministic(t *testing.T) {
	m := randomModel(tinyConfig(), 2)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.gguf"), filepath.Join(dir, "b.gguf")
	if err := Save(a, m, false); err != nil {
		t.Fatal(err)
	}
	if err := Save(b, m, false); err != nil {
		t.Fatal(err)
	}
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if !bytes.Equal(da, db) {
		t.Errorf("two saves differ")
	}
	// general.name comes from the metadata, else from the file name.
	delete(m.Metadata, "general.name")
	c := filepath.Join(dir, "my-model.v2.gguf")
	if err := Save(c, m, false); err != nil {
		t.Fatal(err)
	}
	if v, _ := readFile(t, c).Get("general.name"); v.V != "my-model.v2" {
		t.Errorf("general.name = %v", v)
	}
}

func TestSaveQwen2(t *testing.T) {
	c := tinyConfig()
	c.HFArchitecture = "Qwen2ForCausalLM"
	c.QKVBias = true
	c.RopeLayout = model.RopeHalf
	c.TiedEmbeddings = true
	c.RopeTheta = 1e6
	m := randomModel(c, 3)
	m.Tokenizer = &model.Tokenizer{
		Kind: "gpt2", Pre: "qwen2", Tokens: []string{"a", "b", "ab", "<|endoftext|>"}, Merges: []string{"a b"},
		Types: []model.TokenType{1, 1, 1, 3}, BOS: -1, EOS: 3, UNK: -1, PAD: 3,
	}
	_, f, got := saveAndRead(t, m, t.TempDir(), "qwen.gguf")
	if v, _ := f.Get("general.architecture"); v.V != "qwen2" {
		t.Errorf("architecture %v", v)
	}
	for _, k := range []string{"qwen2.context_length", "qwen2.rope.freq_base", "qwen2.attention.head_count_kv", "tokenizer.ggml.merges", "tokenizer.ggml.pre"} {
		if _, ok := f.Get(k); !ok {
			t.Errorf("key %s missing", k)
		}
	}
	if f.Tensor("output.weight") != nil || f.Tensor("blk.0.attn_q.bias") == nil {
		t.Errorf("tied output written or q bias missing")
	}
	// Qwen2 runs NeoX RoPE in llama.cpp, so q/k rows keep the HF layout.
	q := m.Tensor(model.LayerTensor(1, model.AttnQ))
	if !bytes.Equal(f.Tensor("blk.1.attn_q.weight").Data, q.Data) {
		t.Errorf("qwen2 q rows were permuted")
	}
	if !reflect.DeepEqual(got.Config, m.Config) {
		t.Errorf("config\n got %+v\nwant %+v", got.Config, m.Config)
	}
	for _, want := range m.Tensors {
		if g := got.Tensor(want.Name); g == nil || !bytes.Equal(g.Data, want.Data) {
			t.Errorf("tensor %s differs", want.Name)
		}
	}
	tk := got.Tokenizer
	if tk.Kind != "gpt2" || tk.Pre != "qwen2" || !reflect.DeepEqual(tk.Merges, []string{"a b"}) || tk.EOS != 3 || tk.BOS != -1 ||
		tk.PAD != 3 || tk.AddBOS || tk.AddSpacePrefix || len(tk.Tokens) != c.VocabSize || tk.Scores != nil {
		t.Errorf("tokenizer %+v", tk)
	}
}

// TestSaveDTypes writes every dtype GGUF can hold and reads the bytes back.
func TestSaveDTypes(t *testing.T) {
	c := model.Config{
		Arch: "llama", HiddenSize: 256, IntermediateSize: 256, NumLayers: 1, NumHeads: 2, NumKVHeads: 1,
		HeadDim: 128, VocabSize: 8, ContextLength: 16, RMSNormEps: 1e-6, RopeTheta: 5e5, TiedEmbeddings: true,
	}
	rng := rand.New(rand.NewPCG(4, 4))
	m := &model.Model{Config: c}
	dtypes := map[string]model.DType{
		model.TokenEmbedding: model.BF16, model.LayerTensor(0, model.AttnQ): model.Q4_K,
		model.LayerTensor(0, model.AttnK): model.Q6_K, model.LayerTensor(0, model.AttnV): model.F16,
		model.LayerTensor(0, model.AttnO): model.Q8_0, model.LayerTensor(0, model.FFNGate): model.Q4_0,
		model.LayerTensor(0, model.FFNUp): model.Q4_1, model.LayerTensor(0, model.FFNDown): model.Q4_K,
	}
	for _, e := range c.Expected() {
		d, ok := dtypes[e.Name]
		if !ok {
			d = model.F32
		}
		n, _ := model.ByteSize(d, e.Shape)
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		m.Tensors = append(m.Tensors, &model.Tensor{Name: e.Name, DType: d, Shape: e.Shape, Data: data})
	}
	m.Tensors = append(m.Tensors,
		&model.Tensor{Name: "extra.counts", DType: model.I32, Shape: []int{2, 3}, Data: make([]byte, 24)},
		&model.Tensor{Name: "model.layers.0.self_attn.o_proj.bias", DType: model.I8, Shape: []int{256}, Data: make([]byte, 256)})
	_, f, got := saveAndRead(t, m, t.TempDir(), "dtypes.gguf")
	if f.Tensor("extra.counts") == nil || f.Tensor("blk.0.attn_output.bias") == nil {
		t.Errorf("extra tensors not written under their names")
	}
	if v, _ := f.Get("general.file_type"); v.V != uint32(15) {
		t.Errorf("general.file_type %v, want 15 (Q4_K dominates)", v)
	}
	if v, _ := f.Get("general.quantization_version"); v.V != uint32(2) {
		t.Errorf("general.quantization_version %v", v)
	}
	for _, want := range m.Tensors {
		g := got.Tensor(want.Name)
		if g == nil || g.DType != want.DType || !reflect.DeepEqual(g.Shape, want.Shape) || !bytes.Equal(g.Data, want.Data) {
			t.Errorf("tensor %s differs", want.Name)
		}
	}
	if got.Tokenizer != nil {
		t.Errorf("tokenizer appeared from nowhere")
	}
}

func TestSaveErrors(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "exists.gguf")
	os.WriteFile(existing, []byte("x"), 0o644)
	tests := []struct {
		name   string
		path   string
		change func(m *model.Model)
		want   string
	}{
		{"mlp", "", func(m *model.Model) { m.Config.Arch = "mlp" }, `supports llama-family models, not "mlp"`},
		{"invalid config", "", func(m *model.Model) { m.Config.NumKVHeads = 3 }, "not a multiple of 3 kv heads"},
		{"missing tensor", "", func(m *model.Model) { m.Tensors = m.Tensors[1:] }, `config needs tensor "model.embed_tokens.weight"`},
		{"u8 tensor", "", func(m *model.Model) {
			m.Tensors = append(m.Tensors, &model.Tensor{Name: "u", DType: model.U8, Shape: []int{1}, Data: []byte{1}})
		}, `tensor "u": dtype U8 has no GGUF type`},
		{"int4 tensor", "", func(m *model.Model) {
			m.Tensors = append(m.Tensors, &model.Tensor{Name: "i4", DType: model.Int4G32, Shape: []int{1, 32}, Data: make([]byte, 18)})
		}, `tensor "i4": dtype INT4_G32 has no GGUF type (GGUF has no per-channel int8 or int4 group types): quantize to q8_0 or q4_0`},
		{"int8 tensor", "", func(m *model.Model) {
			m.Tensors = append(m.Tensors, &model.Tensor{Name: "i8", DType: model.Int8Ch, Shape: []int{1, 3}, Data: make([]byte, 5)})
		}, `tensor "i8": dtype INT8_CH has no GGUF type`},
		{"long name", "", func(m *model.Model) {
			m.Tensors = append(m.Tensors, model.NewF32(strings.Repeat("n", 64), []int{1}, []float32{1}))
		}, "longer than llama.cpp's 63 bytes"},
		{"too many tokens", "", func(m *model.Model) {
			m.Tokenizer.Tokens = append(m.Tokenizer.Tokens, make([]string, 10)...)
		}, "more than the vocab size 40"},
		{"scores mismatch", "", func(m *model.Model) { m.Tokenizer.Scores = m.Tokenizer.Scores[1:] }, "36 scores for 37 tokens"},
		{"bad kind", "", func(m *model.Model) { m.Tokenizer.Kind = "bert" }, `tokenizer kind "bert"`},
		{"bad id", "", func(m *model.Model) { m.Tokenizer.EOS = 40 }, "eos_token_id 40 is out of range"},
		{"bad metadata", "", func(m *model.Model) { m.Metadata["x"] = map[string]int{} }, `metadata "x": cannot store a map[string]int`},
		{"qwen2 without bias", "", func(m *model.Model) { m.Config.HFArchitecture = "Qwen2ForCausalLM" }, "needs q/k/v biases"},
		{"exists", existing, func(m *model.Model) {}, "destination exists"},
		{"no folder", filepath.Join(dir, "missing", "x.gguf"), func(m *model.Model) {}, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := randomModel(tinyConfig(), 5)
			tc.change(m)
			path := tc.path
			if path == "" {
				path = filepath.Join(dir, tc.name+".gguf")
			}
			err := Save(path, m, false)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path+": ") {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if tc.path == "" {
				if _, err := os.Stat(path); err == nil {
					t.Errorf("a file was left behind")
				}
			}
		})
	}
	if err := Save(existing, randomModel(tinyConfig(), 5), false); !errors.Is(err, fileio.ErrExists) {
		t.Errorf("error %v is not ErrExists", err)
	}
	if err := Save(existing, randomModel(tinyConfig(), 5), true); err != nil {
		t.Errorf("force: %v", err)
	}
}

// writeModelFile writes kvs and tensors to a temporary file.
func writeModelFile(t *testing.T, kvs []KV, tensors []TensorInfo) string {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, kvs, tensors); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadErrors(t *testing.T) {
	base := randomModel(tinyConfig(), 6)
	kvs, tensors, err := encodeModel(base, "x")
	if err != nil {
		t.Fatal(err)
	}
	set := func(key string, v Value) func([]KV, []TensorInfo) ([]KV, []TensorInfo) {
		return func(kvs []KV, ts []TensorInfo) ([]KV, []TensorInfo) {
			out := append([]KV(nil), kvs...)
			for i := range out {
				if out[i].Key == key {
					out[i].Value = v
					return out, ts
				}
			}
			return append(out, KV{key, v}), ts
		}
	}
	drop := func(key string) func([]KV, []TensorInfo) ([]KV, []TensorInfo) {
		return func(kvs []KV, ts []TensorInfo) ([]KV, []TensorInfo) {
			var out []KV
			for _, kv := range kvs {
				if kv.Key != key {
					out = append(out, kv)
				}
			}
			return out, ts
		}
	}
	u32 := func(n uint32) Value { return Value{Type: TypeUint32, V: n} }
	tests := []struct {
		name   string
		change func([]KV, []TensorInfo) ([]KV, []TensorInfo)
		want   string
	}{
		{"no architecture", drop("general.architecture"), "missing key general.architecture"},
		{"architecture type", set("general.architecture", u32(1)), "general.architecture is a u32, want a string"},
		{"unsupported architecture", set("general.architecture", Value{Type: TypeString, V: "gpt2"}), `architecture "gpt2" is not supported`},
		{"no context length", drop("llama.context_length"), "missing key llama.context_length"},
		{"block count lie", set("llama.block_count", u32(1<<24)), "block_count is 16777216, which needs at least 150994946 tensors; the file has 21"},
		{"string block count", set("llama.block_count", Value{Type: TypeString, V: "2"}), "llama.block_count is a string, want an integer"},
		{"per-layer heads", set("llama.attention.head_count", Value{Type: TypeArray, Elem: TypeInt32, V: []int32{4, 4}}), "per-layer array"},
		{"zero heads", set("llama.attention.head_count", u32(0)), "head_count is 0"},
		{"partial rope", set("llama.rope.dimension_count", u32(8)), "partial RoPE is not supported"},
		{"eps type", set("llama.attention.layer_norm_rms_epsilon", u32(1)), "is a u32, want a float"},
		{"no eps", drop("llama.attention.layer_norm_rms_epsilon"), "missing key llama.attention.layer_norm_rms_epsilon"},
		{"no tokens", drop("tokenizer.ggml.tokens"), "missing key tokenizer.ggml.tokens"},
		{"tokens type", set("tokenizer.ggml.tokens", u32(1)), "tokenizer.ggml.tokens is 1, want an array of strings"},
		{"scores length", set("tokenizer.ggml.scores", Value{Type: TypeArray, Elem: TypeFloat32, V: []float32{1}}), "tokenizer.ggml.scores is [1 x f32], want 40 f32"},
		{"bos out of range", set("tokenizer.ggml.bos_token_id", u32(40)), "bos_token_id is 40, out of range for 40 tokens"},
		{"add_bos type", set("tokenizer.ggml.add_bos_token", u32(1)), "add_bos_token is a u32, want a bool"},
		{"vocab too small", set("llama.vocab_size", u32(39)), "40 tokens, more than the vocab size 39"},
		{"shape mismatch", set("llama.feed_forward_length", u32(95)), `has shape [96 64], the config says [95 64]`},
		{"unsupported dtype", func(kvs []KV, ts []TensorInfo) ([]KV, []TensorInfo) {
			out := append([]TensorInfo(nil), ts...)
			out[0] = TensorInfo{Name: out[0].Name, Type: GGMLF64, Dims: []int64{1}, Data: make([]byte, 8)}
			return kvs, out
		}, `tensor "token_embd.weight": type F64 is not supported`},
		{"duplicate after mapping", func(kvs []KV, ts []TensorInfo) ([]KV, []TensorInfo) {
			extra := ts[1]
			extra.Name = "model.norm.weight"
			return kvs, append(append([]TensorInfo(nil), ts...), extra)
		}, `duplicate tensor name "model.norm.weight"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kvs2, ts2 := tc.change(kvs, tensors)
			path := writeModelFile(t, kvs2, ts2)
			m, err := Load(path)
			if err == nil {
				m.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path+": ") {
				t.Errorf("error %q, want %q", err, tc.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none.gguf")); err == nil || !strings.Contains(err.Error(), "none.gguf") {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.gguf")
	os.WriteFile(bad, []byte("GGUF\x03\x00\x00\x00"), 0o644)
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), "gguf "+bad+": truncated") {
		t.Errorf("truncated file: %v", err)
	}
}

// TestLoadUnknownTokenizer keeps a tokenizer shrink does not interpret as metadata.
func TestLoadUnknownTokenizer(t *testing.T) {
	base := randomModel(tinyConfig(), 7)
	base.Tokenizer = nil
	base.Metadata["tokenizer.ggml.model"] = "bert"
	base.Metadata["tokenizer.ggml.tokens"] = []string{"a", "b"}
	out := filepath.Join(t.TempDir(), "bert.gguf")
	if err := Save(out, base, false); err != nil {
		t.Fatal(err)
	}
	m, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Tokenizer != nil || m.Metadata["tokenizer.ggml.model"] != "bert" || !reflect.DeepEqual(m.Metadata["tokenizer.ggml.tokens"], []string{"a", "b"}) {
		t.Errorf("tokenizer %v, metadata %v", m.Tokenizer, m.Metadata)
	}
}

func TestNameMapping(t *testing.T) {
	pairs := [][2]string{
		{"token_embd.weight", "model.embed_tokens.weight"},
		{"output_norm.weight", "model.norm.weight"},
		{"output.weight", "lm_head.weight"},
		{"blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight"},
		{"blk.12.attn_q.weight", "model.layers.12.self_attn.q_proj.weight"},
		{"blk.3.attn_k.bias", "model.layers.3.self_attn.k_proj.bias"},
		{"blk.3.attn_v.weight", "model.layers.3.self_attn.v_proj.weight"},
		{"blk.3.attn_output.weight", "model.layers.3.self_attn.o_proj.weight"},
		{"blk.3.ffn_norm.weight", "model.layers.3.post_attention_layernorm.weight"},
		{"blk.3.ffn_gate.weight", "model.layers.3.mlp.gate_proj.weight"},
		{"blk.3.ffn_up.weight", "model.layers.3.mlp.up_proj.weight"},
		{"blk.3.ffn_down.weight", "model.layers.3.mlp.down_proj.weight"},
	}
	for _, p := range pairs {
		if got := hfName(p[0]); got != p[1] {
			t.Errorf("hfName(%q) = %q, want %q", p[0], got, p[1])
		}
		if got := ggufName(p[1]); got != p[0] {
			t.Errorf("ggufName(%q) = %q, want %q", p[1], got, p[0])
		}
	}
	for _, same := range []string{"rope_freqs.weight", "blk.01.attn_q.weight", "blk.x.attn_q.weight", "blk.1.attn_q", "blk..weight", ".weight", "blk.1.ffn_gate_exps.weight"} {
		if got := hfName(same); got != same {
			t.Errorf("hfName(%q) = %q, want it unchanged", same, got)
		}
		if got := ggufName(same); got != same {
			t.Errorf("ggufName(%q) = %q, want it unchanged", same, got)
		}
	}
}

func BenchmarkLoad(b *testing.B) {
	path := refPath(b, refF32)
	st, _ := os.Stat(path)
	b.SetBytes(st.Size())
	for b.Loop() {
		m, err := Load(path)
		if err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
}

func BenchmarkRead(b *testing.B) {
	data, err := os.ReadFile(refPath(b, refF32))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Read(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSave(b *testing.B) {
	m, err := Load(refPath(b, refF32))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	out := filepath.Join(b.TempDir(), "out.gguf")
	b.SetBytes(m.TensorBytes())
	for b.Loop() {
		if err := Save(out, m, true); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSaveWidensHalfVectors: norm weights and biases held in F16 or BF16 are
// written as F32 with the same values (llama.cpp's CPU kernels abort on a
// half-precision vector operand), matrices keep their half dtype, and Load
// gives the vectors back as F32.
func TestSaveWidensHalfVectors(t *testing.T) {
	for _, d := range []model.DType{model.F16, model.BF16} {
		t.Run(d.String(), func(t *testing.T) {
			c := tinyConfig()
			c.QKVBias = true
			m := randomModel(c, 5)
			for i, w := range m.Tensors {
				h, err := w.Convert(d)
				if err != nil {
					t.Fatal(err)
				}
				m.Tensors[i] = h
			}
			_, f, got := saveAndRead(t, m, t.TempDir(), "half.gguf")
			half, _ := GGMLTypeOf(d)
			for _, name := range []string{"blk.0.attn_norm.weight", "blk.1.ffn_norm.weight", "output_norm.weight", "blk.0.attn_q.bias", "blk.1.attn_v.bias"} {
				if ti := f.Tensor(name); ti == nil || ti.Type != GGMLF32 {
					t.Errorf("%s: %+v, want F32", name, ti)
				}
			}
			if ti := f.Tensor("blk.0.ffn_down.weight"); ti == nil || ti.Type != half {
				t.Errorf("a matrix was not kept in %s", d)
			}
			for _, want := range m.Tensors {
				g := got.Tensor(want.Name)
				wv, _ := want.Float32()
				gv, _ := g.Float32()
				if len(want.Shape) == 1 && g.DType != model.F32 || len(want.Shape) == 2 && g.DType != d || !reflect.DeepEqual(wv, gv) {
					t.Errorf("%s: read back as %s with other values", want.Name, g.DType)
				}
			}
		})
	}
}

// TestSaveDataOnLine: whatever the header's length, the tensor data of a
// saved file starts on a 64-byte line (PaddingKey makes up the difference),
// there is no general.alignment key, and a file read back and saved again
// carries one padding key at most.
func TestSaveDataOnLine(t *testing.T) {
	dir := t.TempDir()
	padded := 0
	for i := range 8 {
		m := randomModel(tinyConfig(), 7)
		m.Metadata["general.name"] = strings.Repeat("n", i*8) // moves the header's end 8 bytes a step
		_, f, got := saveAndRead(t, m, dir, "m"+strconv.Itoa(i)+".gguf")
		if f.DataOffset%64 != 0 {
			t.Errorf("name of %d bytes: data starts at %d", i*8, f.DataOffset)
		}
		if _, ok := f.Get("general.alignment"); ok {
			t.Errorf("general.alignment written")
		}
		if _, ok := f.Get(PaddingKey); ok {
			padded++
		}
		if _, ok := got.Metadata[PaddingKey]; ok {
			t.Errorf("the padding key came back as metadata")
		}
		if err := Save(filepath.Join(dir, "again.gguf"), got, true); err != nil {
			t.Errorf("saving a padded file again: %v", err)
		}
	}
	if padded == 0 || padded == 8 {
		t.Errorf("%d of 8 headers needed padding: the test does not move the header's end", padded)
	}
}
