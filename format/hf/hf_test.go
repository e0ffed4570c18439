package hf

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/format/safetensors"
	"github.com/shrinkml/shrink/model"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	tied := tinyLlama()
	tied.TiedEmbeddings = true
	mistral := tinyLlama()
	mistral.HFArchitecture = "MistralForCausalLM"
	mistral.NumKVHeads = 4
	qwen := tinyLlama()
	qwen.HFArchitecture = "Qwen2ForCausalLM"
	qwen.QKVBias = true
	qwen.RopeTheta = 1e6
	qwen.RMSNormEps = 1e-6
	wideHead := tinyLlama()
	wideHead.HeadDim = 8 // head_dim * heads != hidden_size
	tests := []struct {
		name string
		cfg  model.Config
		d    model.DType
	}{
		{"llama f32", tinyLlama(), model.F32},
		{"llama tied bf16", tied, model.BF16},
		{"mistral f16", mistral, model.F16},
		{"qwen2 biases", qwen, model.BF16},
		{"explicit head_dim", wideHead, model.F32},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := randomModel(t, tc.cfg, tc.d, 1)
			got, dir := saveLoad(t, m, SaveOptions{})
			if !reflect.DeepEqual(got.Config, m.Config) {
				t.Errorf("config\n%+v\nwant\n%+v", got.Config, m.Config)
			}
			sameTensors(t, got.Tensors, m.Tensors)
			// Tensors come back in the order they were written.
			for i := range m.Tensors {
				if got.Tensors[i].Name != m.Tensors[i].Name {
					t.Fatalf("tensor %d is %q, want %q", i, got.Tensors[i].Name, m.Tensors[i].Name)
				}
			}
			files := dirFiles(t, dir)
			if _, ok := files[safetensors.SingleName]; !ok || len(files) != 2 {
				t.Errorf("files %v", keys(files))
			}
		})
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestRopePairsRoundTrip(t *testing.T) {
	cfg := tinyLlama()
	cfg.RopeLayout = model.RopePairs
	cfg.QKVBias = true
	cfg.HFArchitecture = ""
	m := randomModel(t, cfg, model.F32, 2)
	got, _ := saveLoad(t, m, SaveOptions{})
	if got.Config.RopeLayout != model.RopeHalf || got.Config.HFArchitecture != "Qwen2ForCausalLM" {
		t.Fatalf("loaded layout %v, architecture %q", got.Config.RopeLayout, got.Config.HFArchitecture)
	}
	q := model.LayerTensor(0, model.AttnQ)
	if bytes.Equal(got.Tensor(q).Data, m.Tensor(q).Data) {
		t.Fatal("q rows were written unpermuted")
	}
	back, err := got.WithRopeLayout(model.RopePairs)
	if err != nil {
		t.Fatal(err)
	}
	sameTensors(t, back.Tensors, m.Tensors)
	if !reflect.DeepEqual(back.Config, m.Config) {
		want := m.Config
		want.HFArchitecture = "Qwen2ForCausalLM"
		if !reflect.DeepEqual(back.Config, want) {
			t.Errorf("config %+v, want %+v", back.Config, want)
		}
	}
}

func TestSaveDeterministic(t *testing.T) {
	m := randomModel(t, tinyLlama(), model.BF16, 3)
	m.Metadata = map[string]any{"b": "x", "a": int64(3), "c": []string{"p", "q"}, ConfigPrefix + "rope_scaling": `{"type":"linear","factor":2.0}`}
	var prev map[string][]byte
	for i := 0; i < 2; i++ {
		dir := filepath.Join(t.TempDir(), "out")
		if err := Save(dir, m, SaveOptions{MaxShardSize: 2000}); err != nil {
			t.Fatal(err)
		}
		files := dirFiles(t, dir)
		if prev != nil && !reflect.DeepEqual(files, prev) {
			t.Fatal("two saves differ")
		}
		prev = files
	}
}

func TestSharded(t *testing.T) {
	m := randomModel(t, tinyLlama(), model.F32, 4)
	got, dir := saveLoad(t, m, SaveOptions{MaxShardSize: 3000})
	sameTensors(t, got.Tensors, m.Tensors)
	files := dirFiles(t, dir)
	if _, ok := files[safetensors.IndexName]; !ok {
		t.Fatalf("no index among %v", keys(files))
	}
	n := 0
	for name := range files {
		if strings.HasSuffix(name, ".safetensors") {
			n++
		}
	}
	if n < 3 {
		t.Errorf("%d shards", n)
	}
}

func TestConfigJSON(t *testing.T) {
	m := randomModel(t, tinyLlama(), model.BF16, 5)
	m.Tokenizer = &model.Tokenizer{BOS: 1, EOS: 2, UNK: 0, PAD: -1}
	raw, err := configJSON(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "architectures": [
    "LlamaForCausalLM"
  ],
  "model_type": "llama",
  "hidden_size": 16,
  "intermediate_size": 24,
  "num_hidden_layers": 2,
  "num_attention_heads": 4,
  "num_key_value_heads": 2,
  "head_dim": 4,
  "hidden_act": "silu",
  "max_position_embeddings": 64,
  "rms_norm_eps": 0.00001,
  "rope_theta": 10000,
  "vocab_size": 32,
  "tie_word_embeddings": false,
  "bos_token_id": 1,
  "eos_token_id": 2,
  "torch_dtype": "bfloat16"
}
`
	if string(raw) != want {
		t.Errorf("config.json:\n%s\nwant\n%s", raw, want)
	}
}

// TestConfigExtrasKept loads a folder written the way transformers writes it
// and checks that keys shrink does not interpret survive Load and Save.
func TestConfigExtrasKept(t *testing.T) {
	m := randomModel(t, tinyLlama(), model.F32, 6)
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	cfg := `{"architectures":["MistralForCausalLM"],"model_type":"mistral","hidden_size":16,"intermediate_size":24,
"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":32,"max_position_embeddings":64,
"rms_norm_eps":1e-05,"hidden_act":"silu","sliding_window":4096,"bos_token_id":1,"eos_token_id":[2,7],
"rope_scaling":{"factor":8.0,"rope_type":"llama3"},"transformers_version":"4.44.0","torch_dtype":"float16","head_dim":null}`
	os.WriteFile(filepath.Join(src, "config.json"), []byte(cfg), 0o644)
	if err := safetensors.WriteFile(filepath.Join(src, safetensors.SingleName), m.Tensors, map[string]string{"format": "pt", "origin": "test"}, false); err != nil {
		t.Fatal(err)
	}
	got, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	c := got.Config
	if c.HFArchitecture != "MistralForCausalLM" || c.HeadDim != 4 || c.RopeTheta != 10000 || c.ContextLength != 64 || c.RMSNormEps != 1e-5 {
		t.Errorf("config %+v", c)
	}
	wantMeta := map[string]any{
		"origin":                              "test",
		ConfigPrefix + "sliding_window":       `4096`,
		ConfigPrefix + "bos_token_id":         `1`,
		ConfigPrefix + "eos_token_id":         `[2,7]`,
		ConfigPrefix + "rope_scaling":         `{"factor":8.0,"rope_type":"llama3"}`,
		ConfigPrefix + "transformers_version": `"4.44.0"`,
	}
	if !reflect.DeepEqual(got.Metadata, wantMeta) {
		t.Errorf("metadata\n%v\nwant\n%v", got.Metadata, wantMeta)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := Save(out, got, SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(out, "config.json"))
	var back map[string]any
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"sliding_window": 4096.0, "eos_token_id": []any{2.0, 7.0}, "torch_dtype": "float32",
		"rope_scaling": map[string]any{"factor": 8.0, "rope_type": "llama3"}, "model_type": "mistral", "head_dim": 4.0} {
		if !reflect.DeepEqual(back[k], v) {
			t.Errorf("config.json %s = %v, want %v", k, back[k], v)
		}
	}
	if !strings.Contains(string(raw), "\"rope_scaling\": {\n    \"factor\": 8.0,") {
		t.Errorf("kept keys are not re-indented verbatim:\n%s", raw)
	}
	again, err := Load(out)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if !reflect.DeepEqual(again.Metadata, got.Metadata) || !reflect.DeepEqual(again.Config, got.Config) {
		t.Errorf("second round trip changed the model:\n%v\n%v", again.Metadata, got.Metadata)
	}
}

func TestNestedRopeTheta(t *testing.T) {
	c, extras, err := parseConfig([]byte(`{"architectures":["LlamaForCausalLM"],"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,
"num_attention_heads":2,"vocab_size":4,"rope_parameters":{"rope_theta":500000.0,"rope_type":"default"},"dtype":"bfloat16"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.RopeTheta != 500000 || extras["rope_parameters"] == "" || extras["dtype"] != "" {
		t.Errorf("rope theta %g, extras %v", c.RopeTheta, extras)
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	m := randomModel(t, tinyLlama(), model.F32, 7)
	m.Metadata = map[string]any{
		"general.name":   "tiny",
		"general.count":  uint32(7),
		"general.ratio":  float32(0.5),
		"general.flag":   true,
		"general.tags":   []string{"a", "b"},
		"general.ids":    []int32{1, -2},
		"general.floats": []float64{1.5, 2},
		"json:not json":  "{nope",
		"format":         "ignored",
		"general.big":    int64(1) << 60,
		"general.sci":    1e-30,
		"general.empty":  []string{},
		"general.quoted": `say "hi" <&>`,
	}
	got, dir := saveLoad(t, m, SaveOptions{})
	f, err := safetensors.Open(filepath.Join(dir, safetensors.SingleName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Metadata["format"] != "pt" || f.Metadata["json:general.count"] != "7" || f.Metadata["general.name"] != "tiny" {
		t.Errorf("safetensors metadata %v", f.Metadata)
	}
	want := map[string]any{
		"general.name":   "tiny",
		"general.count":  int64(7),
		"general.ratio":  0.5,
		"general.flag":   true,
		"general.tags":   []string{"a", "b"},
		"general.ids":    []int64{1, -2},
		"general.floats": []float64{1.5, 2},
		"json:not json":  "{nope",
		"general.big":    int64(1) << 60,
		"general.sci":    1e-30,
		"general.empty":  []string{},
		"general.quoted": `say "hi" <&>`,
	}
	if !reflect.DeepEqual(got.Metadata, want) {
		t.Errorf("metadata\n%#v\nwant\n%#v", got.Metadata, want)
	}
}

func TestSaveErrors(t *testing.T) {
	m := randomModel(t, tinyLlama(), model.F32, 8)
	q := *m
	q.Tensors = append([]*model.Tensor(nil), m.Tensors...)
	q.Tensors[1] = &model.Tensor{Name: q.Tensors[1].Name, DType: model.Q4_0, Shape: []int{16}, Data: make([]byte, 0)}
	broken := *m
	broken.Tensors = m.Tensors[1:]
	badTok := *m
	badTok.Tokenizer = &model.Tokenizer{Kind: "llama", Tokens: []string{"a", "a"}, BOS: -1, EOS: -1, UNK: -1, PAD: -1}
	badFile := *m
	badFile.Tokenizer = &model.Tokenizer{Files: map[string][]byte{"../evil": nil}}
	reserved := *m
	reserved.Tokenizer = &model.Tokenizer{Files: map[string][]byte{"config.json": nil}}
	mlp := *m
	mlp.Config = model.Config{Arch: "bert"}
	tests := []struct {
		name string
		m    *model.Model
		want string
	}{
		{"partial block", &q, `tensor "model.layers.0.input_layernorm.weight": Q4_0 needs rows that are a multiple of 32, shape [16] has rows of 16`},
		{"invalid", &broken, `config needs tensor "model.embed_tokens.weight"`},
		{"duplicate tokens", &badTok, `token "a" is both id 0 and id 1`},
		{"bad file name", &badFile, "not a plain file name"},
		{"reserved file name", &reserved, "would overwrite"},
		{"unknown arch", &mlp, `unknown architecture "bert"`},
		{"nil", nil, "no model"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			err := Save(dir, tc.m, SaveOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("a failed Save left %s behind", dir)
			}
		})
	}
}

func TestSaveRefusesExisting(t *testing.T) {
	m := randomModel(t, tinyLlama(), model.F32, 9)
	dir := filepath.Join(t.TempDir(), "out")
	os.Mkdir(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "old.txt"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}"), 0o644) // an old model
	if err := Save(dir, m, SaveOptions{}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("error %v", err)
	}
	if err := Save(dir, m, SaveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "old.txt")); !os.IsNotExist(err) {
		t.Error("force kept the old folder's files")
	}
}

func TestLoadErrors(t *testing.T) {
	m := randomModel(t, tinyLlama(), model.F32, 10)
	good := filepath.Join(t.TempDir(), "good")
	if err := Save(good, m, SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	goodCfg, _ := os.ReadFile(filepath.Join(good, "config.json"))
	goodST, _ := os.ReadFile(filepath.Join(good, safetensors.SingleName))
	// setCfg changes config.json keys: pairs of key and value, nil deleting.
	setCfg := func(kvs ...any) string {
		var c map[string]any
		json.Unmarshal(goodCfg, &c)
		for i := 0; i < len(kvs); i += 2 {
			if k := kvs[i].(string); kvs[i+1] == nil {
				delete(c, k)
			} else {
				c[k] = kvs[i+1]
			}
		}
		b, _ := json.Marshal(c)
		return string(b)
	}
	hdrLen := 8 + int(goodST[0]) + int(goodST[1])<<8
	nonUTF8 := append([]byte(nil), goodST...)
	nonUTF8[bytes.Index(nonUTF8, []byte("model.norm"))] = 0xff
	tests := []struct {
		name  string
		files map[string]any // string or []byte; nil value: leave the file out
		want  string
	}{
		{"no config", map[string]any{"config.json": nil}, "no config.json; not a Hugging Face model folder"},
		{"config not json", map[string]any{"config.json": "{"}, "config.json: not a JSON object"},
		{"unknown arch", map[string]any{"config.json": setCfg("architectures", []string{"GPT2LMHeadModel"})}, `config.json: unknown architecture "GPT2LMHeadModel"`},
		{"unknown model_type", map[string]any{"config.json": `{"model_type":"bert"}`}, `unknown model_type "bert"`},
		{"no arch at all", map[string]any{"config.json": `{"hidden_size":4}`}, "neither architectures nor model_type"},
		{"missing field", map[string]any{"config.json": setCfg("hidden_size", nil)}, "config.json: hidden_size is missing"},
		{"wrong type", map[string]any{"config.json": setCfg("num_hidden_layers", "two")}, `num_hidden_layers: "two" is not a whole number`},
		{"gelu", map[string]any{"config.json": setCfg("hidden_act", "gelu")}, `hidden_act "gelu" is not supported`},
		{"bad nested rope theta", map[string]any{"config.json": setCfg("rope_theta", nil, "rope_parameters", map[string]any{"rope_theta": "big"})}, `rope_parameters.rope_theta: "big" is not a number`},
		{"config disagrees", map[string]any{"config.json": setCfg("intermediate_size", 32)}, `config.json: the config and the tensors disagree: tensor "model.layers.0.mlp.gate_proj.weight" has shape [24 16], the config says [32 16]`},
		{"bad config value", map[string]any{"config.json": setCfg("num_key_value_heads", 3)}, "config.json: the config and the tensors disagree: config: 4 heads is not a multiple of 3 kv heads"},
		{"untied without head", map[string]any{"config.json": setCfg("tie_word_embeddings", false), safetensors.SingleName: stripTensor(t, goodST, model.OutputHead)}, `config needs tensor "lm_head.weight"`},
		{"no weights", map[string]any{safetensors.SingleName: nil}, "no model.safetensors or model.safetensors.index.json"},
		{"pickle only", map[string]any{safetensors.SingleName: nil, "pytorch_model.bin": "x"}, "pytorch_model.bin is a pickle"},
		{"truncated weights", map[string]any{safetensors.SingleName: goodST[:hdrLen+10]}, "run past the end of the data"},
		{"non-utf8 name", map[string]any{safetensors.SingleName: nonUTF8}, "header is not valid UTF-8"},
		{"index missing shard", map[string]any{safetensors.IndexName: `{"weight_map":{"a":"model-00001-of-00002.safetensors"}}`}, "model-00001-of-00002.safetensors: no such file"},
		{"bad tokenizer", map[string]any{"tokenizer.json": "{"}, "tokenizer.json: unexpected end of JSON input"},
		{"tokenizer id too big", map[string]any{"tokenizer.json": `{"model":{"type":"BPE","vocab":{"a":0,"b":99},"merges":[]}}`}, "token id 99 is beyond the vocabulary size 32"},
		{"tokenizer id clash", map[string]any{"tokenizer.json": `{"added_tokens":[{"id":0,"content":"x","special":true}],"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}`}, `id 0 is "a" in the vocabulary and "x" in added_tokens`},
		{"bad merge", map[string]any{"tokenizer.json": `{"model":{"type":"BPE","vocab":{"a":0},"merges":["a"]}}`}, `merge 0 "a" is not two tokens`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "m")
			os.Mkdir(dir, 0o755)
			os.WriteFile(filepath.Join(dir, "config.json"), goodCfg, 0o644)
			os.WriteFile(filepath.Join(dir, safetensors.SingleName), goodST, 0o644)
			for name, v := range tc.files {
				p := filepath.Join(dir, name)
				switch x := v.(type) {
				case nil:
					os.Remove(p)
				case string:
					os.WriteFile(p, []byte(x), 0o644)
				case []byte:
					os.WriteFile(p, x, 0o644)
				}
			}
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// stripTensor re-encodes a safetensors file without one tensor.
func stripTensor(t *testing.T, raw []byte, name string) []byte {
	t.Helper()
	f, err := safetensors.Parse("x", raw)
	if err != nil {
		t.Fatal(err)
	}
	var keep []*model.Tensor
	for _, x := range f.Tensors {
		if x.Name != name {
			keep = append(keep, x)
		}
	}
	var buf bytes.Buffer
	if err := safetensors.Encode(&buf, keep, f.Metadata); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestTiedModelWithoutHead(t *testing.T) {
	cfg := tinyLlama()
	cfg.TiedEmbeddings = true
	m := randomModel(t, cfg, model.F32, 11)
	got, dir := saveLoad(t, m, SaveOptions{})
	if got.Tensor(model.OutputHead) != nil {
		t.Error("tied model gained an lm_head")
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if !strings.Contains(string(raw), `"tie_word_embeddings": true`) {
		t.Errorf("config.json:\n%s", raw)
	}
}

func TestCarriedFilesByteForByte(t *testing.T) {
	m := randomModel(t, tinyLlama(), model.F32, 12)
	tj := `{"version":"1.0","added_tokens":[{"id":0,"content":"<unk>","special":true},{"id":1,"content":"<s>","special":true},{"id":2,"content":"</s>","special":true}],
"normalizer":null,"pre_tokenizer":{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":false},
"post_processor":null,"decoder":{"type":"Sequence","decoders":[{"type":"ByteFallback"}]},
"model":{"type":"BPE","unk_token":"<unk>","byte_fallback":true,"vocab":{"<unk>":0,"<s>":1,"</s>":2,"▁":3,"a":4,"▁a":5},"merges":["▁ a"]}}`
	files := map[string][]byte{
		"tokenizer.json":          []byte(tj),
		"tokenizer.model":         {0, 1, 2, 255},
		"tokenizer_config.json":   []byte(`{"bos_token":{"content":"<s>","lstrip":false},"eos_token":"</s>"}`),
		"generation_config.json":  []byte("{\"do_sample\": true}\n"),
		"special_tokens_map.json": []byte(`{}`),
	}
	m.Tokenizer = &model.Tokenizer{Files: files}
	got, dir := saveLoad(t, m, SaveOptions{})
	written := dirFiles(t, dir)
	for name, b := range files {
		if !bytes.Equal(written[name], b) {
			t.Errorf("%s changed", name)
		}
	}
	if !reflect.DeepEqual(got.Tokenizer.Files, files) {
		t.Error("Files differ after loading")
	}
	tok := got.Tokenizer
	if tok.Kind != "llama" || len(tok.Tokens) != 32 || tok.BOS != 1 || tok.EOS != 2 || tok.UNK != 0 || !tok.AddBOS || !tok.AddSpacePrefix {
		t.Errorf("tokenizer %+v", tok)
	}
	if tok.Tokens[31] != "[PAD31]" || tok.Types[31] != model.TokenUnused || tok.Types[1] != model.TokenControl || tok.Types[0] != model.TokenUnknown {
		t.Errorf("padding or types: %q %v", tok.Tokens[31], tok.Types[:6])
	}
	if tok.Scores[5] != 0 || tok.Scores[3] != -1 || tok.Scores[4] != -2 {
		t.Errorf("scores %v", tok.Scores[:6])
	}
}

func TestMLP(t *testing.T) {
	cfg := model.Config{Arch: "mlp", MLP: &model.MLPConfig{Sizes: []int{6, 5, 3}, Activation: "gelu", Labels: []string{"x", "y", "z"}}}
	m := randomModel(t, cfg, model.F32, 13)
	got, dir := saveLoad(t, m, SaveOptions{})
	if !reflect.DeepEqual(got.Config, m.Config) {
		t.Errorf("config %+v, want %+v", got.Config.MLP, m.Config.MLP)
	}
	sameTensors(t, got.Tensors, m.Tensors)
	raw, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	want := "{\n  \"model_type\": \"mlp\",\n  \"layer_sizes\": [\n    6,\n    5,\n    3\n  ],\n  \"activation\": \"gelu\",\n  \"labels\": [\n    \"x\",\n    \"y\",\n    \"z\"\n  ],\n  \"torch_dtype\": \"float32\"\n}\n"
	if string(raw) != want {
		t.Errorf("config.json\n%s\nwant\n%s", raw, want)
	}
}

func sequentialDict(t *testing.T, names map[string][]int) string {
	t.Helper()
	var ts []*model.Tensor
	for _, name := range []string{"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias", "net.0.weight", "x"} {
		shape, ok := names[name]
		if !ok {
			continue
		}
		n := 1
		for _, s := range shape {
			n *= s
		}
		vals := make([]float32, n)
		for i := range vals {
			vals[i] = float32(i)
		}
		ts = append(ts, model.NewF32(name, shape, vals))
	}
	path := filepath.Join(t.TempDir(), "state.safetensors")
	if err := safetensors.WriteFile(path, ts, nil, false); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadStateDict(t *testing.T) {
	path := sequentialDict(t, map[string][]int{"0.weight": {5, 4}, "0.bias": {5}, "2.weight": {3, 5}, "2.bias": {3}})
	m, err := LoadStateDict(path, "mlp")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !reflect.DeepEqual(m.Config.MLP, &model.MLPConfig{Sizes: []int{4, 5, 3}, Activation: "relu"}) {
		t.Errorf("config %+v", m.Config.MLP)
	}
	var names []string
	for _, x := range m.Tensors {
		names = append(names, x.Name)
	}
	if got := strings.Join(names, " "); got != "layers.0.weight layers.0.bias layers.1.weight layers.1.bias" {
		t.Errorf("names %s", got)
	}
	if v, _ := m.Tensor("layers.1.weight").Float32(); v[14] != 14 {
		t.Errorf("data %v", v)
	}

	// A folder with an mlp config.json and nn.Sequential names loads too.
	dir := filepath.Join(t.TempDir(), "mlp")
	os.Mkdir(dir, 0o755)
	raw, _ := os.ReadFile(path)
	os.WriteFile(filepath.Join(dir, safetensors.SingleName), raw, 0o644)
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type":"mlp","layer_sizes":[4,5,3]}`), 0o644)
	m2, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	sameTensors(t, m2.Tensors, m.Tensors)

	bad := []struct {
		name string
		dict map[string][]int
		arch string
		want string
	}{
		{"arch", map[string][]int{"0.weight": {5, 4}, "0.bias": {5}}, "llama", `as arch "mlp" only, not "llama"`},
		{"no bias", map[string][]int{"0.weight": {5, 4}, "0.bias": {5}, "2.weight": {3, 5}}, "mlp", "layer 2 needs both a weight and a bias"},
		{"chain", map[string][]int{"0.weight": {5, 4}, "0.bias": {5}, "2.weight": {3, 6}, "2.bias": {3}}, "mlp", `"2.weight" takes 6 inputs, the layer before gives 5`},
		{"bias shape", map[string][]int{"0.weight": {5, 4}, "0.bias": {4}}, "mlp", `"0.bias" has shape [4], want [5]`},
		{"weight shape", map[string][]int{"0.weight": {20}, "0.bias": {5}}, "mlp", "a Linear weight is [out, in]"},
		{"foreign name", map[string][]int{"0.weight": {5, 4}, "0.bias": {5}, "x": {1}}, "mlp", `tensor "x" is not a parameter`},
		{"mixed prefix", map[string][]int{"0.weight": {5, 4}, "net.0.weight": {5, 4}}, "mlp", "does not share the prefix"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			p := sequentialDict(t, tc.dict)
			_, err := LoadStateDict(p, tc.arch)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestSaveNeverReplacesOtherFolders checks that --force replaces a model
// folder but refuses a folder that does not hold one.
func TestSaveNeverReplacesOtherFolders(t *testing.T) {
	m, err := model.Synthesize(model.Presets["stories260k"], 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keep := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = Save(dir, m, SaveOptions{Force: true})
	if err == nil || !strings.Contains(err.Error(), "not a model") {
		t.Fatalf("replacing a folder without config.json: %v", err)
	}
	if b, err := os.ReadFile(keep); err != nil || string(b) != "mine" {
		t.Fatalf("the folder was touched: %v", err)
	}
	out := filepath.Join(dir, "model")
	if err := Save(out, m, SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := Save(out, m, SaveOptions{Force: true}); err != nil {
		t.Errorf("replacing a model folder with force: %v", err)
	}
}
