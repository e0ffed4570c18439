package hf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/shrinkml/shrink/model"
)

// archInfo describes a supported causal-LM class.
type archInfo struct {
	modelType  string
	defaultCtx int // max_position_embeddings when config.json omits it
}

var archs = map[string]archInfo{
	"LlamaForCausalLM":   {"llama", 2048},
	"MistralForCausalLM": {"mistral", 4096 * 32},
	"Qwen2ForCausalLM":   {"qwen2", 32768},
}

// llamaKeys are the config.json keys shrink interprets for the llama family;
// any other key is kept verbatim in the model's metadata.
var llamaKeys = map[string]bool{
	"architectures": true, "model_type": true, "hidden_size": true, "intermediate_size": true,
	"num_hidden_layers": true, "num_attention_heads": true, "num_key_value_heads": true, "head_dim": true,
	"rms_norm_eps": true, "rope_theta": true, "vocab_size": true, "max_position_embeddings": true,
	"tie_word_embeddings": true, "torch_dtype": true, "dtype": true, "hidden_act": true,
}

var mlpKeys = map[string]bool{"model_type": true, "layer_sizes": true, "activation": true, "labels": true, "torch_dtype": true, "dtype": true}

// configFile is config.json decoded member by member.
type configFile map[string]json.RawMessage

func (c configFile) has(key string) bool {
	v, ok := c[key]
	return ok && string(v) != "null"
}

func (c configFile) get(key string, dst any, required bool) error {
	if !c.has(key) {
		if required {
			return fmt.Errorf("%s is missing", key)
		}
		return nil
	}
	if err := json.Unmarshal(c[key], dst); err != nil {
		return fmt.Errorf("%s: %s is not a %s", key, c[key], kindOf(dst))
	}
	return nil
}

func kindOf(dst any) string {
	switch dst.(type) {
	case *int:
		return "whole number"
	case *float64:
		return "number"
	case *bool:
		return "boolean"
	case *string:
		return "string"
	}
	return "value of the expected type"
}

// parseConfig reads config.json into a Config. Keys it does not interpret are
// returned as compact JSON text, to be kept in the model's metadata.
func parseConfig(raw []byte) (model.Config, map[string]string, error) {
	var cfg model.Config
	var c configFile
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&c); err != nil {
		return cfg, nil, fmt.Errorf("not a JSON object: %v", err)
	}
	if c == nil {
		return cfg, nil, errors.New("not a JSON object")
	}
	var modelType string
	var architectures []string
	if err := c.get("model_type", &modelType, false); err != nil {
		return cfg, nil, err
	}
	if c.has("architectures") {
		if err := json.Unmarshal(c["architectures"], &architectures); err != nil {
			return cfg, nil, fmt.Errorf("architectures: %s is not a list of names", c["architectures"])
		}
	}
	known := llamaKeys
	if modelType == "mlp" {
		if err := parseMLPConfig(c, &cfg); err != nil {
			return cfg, nil, err
		}
		known = mlpKeys
	} else if err := parseLlamaConfig(c, modelType, architectures, &cfg); err != nil {
		return cfg, nil, err
	}
	extras := map[string]string{}
	for k, v := range c {
		if known[k] {
			continue
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err != nil {
			return cfg, nil, fmt.Errorf("%s: %v", k, err)
		}
		extras[k] = buf.String()
	}
	return cfg, extras, nil
}

func parseLlamaConfig(c configFile, modelType string, architectures []string, cfg *model.Config) error {
	var arch string
	switch {
	case len(architectures) > 0:
		arch = architectures[0]
		if _, ok := archs[arch]; !ok {
			return fmt.Errorf("unknown architecture %q (shrink reads %s and mlp classifiers)", arch, supported())
		}
	case modelType != "":
		for name, info := range archs {
			if info.modelType == modelType {
				arch = name
			}
		}
		if arch == "" {
			return fmt.Errorf("unknown model_type %q and no architectures (shrink reads %s and mlp classifiers)", modelType, supported())
		}
	default:
		return errors.New("neither architectures nor model_type says what model this is")
	}
	info := archs[arch]
	cfg.Arch, cfg.HFArchitecture = "llama", arch
	for _, f := range []struct {
		key string
		dst *int
	}{
		{"hidden_size", &cfg.HiddenSize}, {"intermediate_size", &cfg.IntermediateSize},
		{"num_hidden_layers", &cfg.NumLayers}, {"num_attention_heads", &cfg.NumHeads}, {"vocab_size", &cfg.VocabSize},
	} {
		if err := c.get(f.key, f.dst, true); err != nil {
			return err
		}
	}
	cfg.NumKVHeads = cfg.NumHeads
	if cfg.NumHeads > 0 {
		cfg.HeadDim = cfg.HiddenSize / cfg.NumHeads
	}
	cfg.ContextLength = info.defaultCtx
	cfg.RMSNormEps = 1e-6
	cfg.RopeTheta = 10000
	for _, f := range []struct {
		key string
		dst any
	}{
		{"num_key_value_heads", &cfg.NumKVHeads}, {"head_dim", &cfg.HeadDim},
		{"max_position_embeddings", &cfg.ContextLength}, {"rms_norm_eps", &cfg.RMSNormEps},
		{"rope_theta", &cfg.RopeTheta}, {"tie_word_embeddings", &cfg.TiedEmbeddings},
	} {
		if err := c.get(f.key, f.dst, false); err != nil {
			return err
		}
	}
	if !c.has("rope_theta") && c.has("rope_parameters") {
		// Newer transformers nest rope_theta in rope_parameters.
		var rp configFile
		if json.Unmarshal(c["rope_parameters"], &rp) == nil {
			if err := rp.get("rope_theta", &cfg.RopeTheta, false); err != nil {
				return fmt.Errorf("rope_parameters.%w", err)
			}
		}
	}
	var act string
	if err := c.get("hidden_act", &act, false); err != nil {
		return err
	}
	if act != "" && act != "silu" {
		return fmt.Errorf("hidden_act %q is not supported (the llama family uses silu)", act)
	}
	cfg.QKVBias = arch == "Qwen2ForCausalLM"
	cfg.RopeLayout = model.RopeHalf
	return nil
}

func supported() string {
	names := make([]string, 0, len(archs))
	for n := range archs {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func parseMLPConfig(c configFile, cfg *model.Config) error {
	mc := &model.MLPConfig{Activation: "relu"}
	if !c.has("layer_sizes") {
		return errors.New("layer_sizes is missing")
	}
	if err := json.Unmarshal(c["layer_sizes"], &mc.Sizes); err != nil {
		return fmt.Errorf("layer_sizes: %s is not a list of whole numbers", c["layer_sizes"])
	}
	if err := c.get("activation", &mc.Activation, false); err != nil {
		return err
	}
	if c.has("labels") {
		if err := json.Unmarshal(c["labels"], &mc.Labels); err != nil {
			return fmt.Errorf("labels: %s is not a list of strings", c["labels"])
		}
	}
	cfg.Arch, cfg.MLP = "mlp", mc
	return nil
}

// torchDType names the dtype of a model's floating-point weights for
// config.json: that of the token embedding, else of the first float tensor.
func torchDType(m *model.Model) string {
	names := map[model.DType]string{model.F32: "float32", model.F16: "float16", model.BF16: "bfloat16"}
	if t := m.Tensor(model.TokenEmbedding); t != nil && names[t.DType] != "" {
		return names[t.DType]
	}
	for _, t := range m.Tensors {
		if n := names[t.DType]; n != "" {
			return n
		}
	}
	return "float32"
}

// configJSON renders config.json: the keys shrink interprets in a fixed order,
// then the kept keys of the original config.json in byte order.
func configJSON(m *model.Model) ([]byte, error) {
	c := &m.Config
	extras := map[string]string{}
	for k, v := range m.Metadata {
		if name, ok := strings.CutPrefix(k, ConfigPrefix); ok {
			if s, ok := v.(string); ok {
				extras[name] = s
			}
		}
	}
	var o obj
	written := map[string]bool{}
	add := func(k string, v any) {
		o = append(o, kv{k, v})
		written[k] = true
	}
	addDefault := func(k string, v any) {
		if _, kept := extras[k]; !kept {
			add(k, v)
		}
	}
	switch c.Arch {
	case "llama":
		arch := c.HFArchitecture
		if arch == "" {
			arch = "LlamaForCausalLM"
			if c.QKVBias {
				arch = "Qwen2ForCausalLM"
			}
		}
		info, ok := archs[arch]
		if !ok {
			return nil, fmt.Errorf("unknown Hugging Face architecture %q (shrink writes %s)", arch, supported())
		}
		add("architectures", []string{arch})
		add("model_type", info.modelType)
		add("hidden_size", c.HiddenSize)
		add("intermediate_size", c.IntermediateSize)
		add("num_hidden_layers", c.NumLayers)
		add("num_attention_heads", c.NumHeads)
		add("num_key_value_heads", c.NumKVHeads)
		add("head_dim", c.HeadDim)
		add("hidden_act", "silu")
		add("max_position_embeddings", c.ContextLength)
		add("rms_norm_eps", c.RMSNormEps)
		add("rope_theta", c.RopeTheta)
		add("vocab_size", c.VocabSize)
		add("tie_word_embeddings", c.TiedEmbeddings)
		if tok := m.Tokenizer; tok != nil {
			if tok.BOS >= 0 {
				addDefault("bos_token_id", tok.BOS)
			}
			if tok.EOS >= 0 {
				addDefault("eos_token_id", tok.EOS)
			}
		}
	case "mlp":
		add("model_type", "mlp")
		add("layer_sizes", c.MLP.Sizes)
		add("activation", c.MLP.Activation)
		if len(c.MLP.Labels) > 0 {
			add("labels", c.MLP.Labels)
		}
	default:
		return nil, fmt.Errorf("architecture %q cannot be written as a Hugging Face model", c.Arch)
	}
	add("torch_dtype", torchDType(m))
	keys := make([]string, 0, len(extras))
	for k := range extras {
		if !written[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !json.Valid([]byte(extras[k])) {
			return nil, fmt.Errorf("metadata %s%s holds %q, which is not JSON", ConfigPrefix, k, extras[k])
		}
		o = append(o, kv{k, rawJSON(extras[k])})
	}
	return marshalIndent(o)
}
