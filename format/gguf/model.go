package gguf

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/shrinkml/shrink/internal/fileio"
	"github.com/shrinkml/shrink/model"
)

// MetaOutputCopy is the metadata key Load sets (to true) when the file stores
// a tied output head as a copy of the token embedding; Save then writes
// output.weight again instead of leaving it out.
const MetaOutputCopy = model.MetaOutputCopy

// Architectures Load accepts. Qwen2 uses llama's tensor names plus q/k/v
// biases, but llama.cpp applies NeoX (rotate-half) RoPE to it, so its q/k rows
// are stored unpermuted.
var archInfo = map[string]struct {
	hfArch string
	layout model.RopeLayout
}{
	"llama": {"", model.RopePairs},
	"qwen2": {"Qwen2ForCausalLM", model.RopeHalf},
}

// Load reads a GGUF file of a llama-family model. Tensor data is mapped, not
// copied: it stays valid until m.Close. Keys that the config and tokenizer do
// not consume are kept in m.Metadata with their Go values.
func Load(path string) (*model.Model, error) {
	data, closer, err := fileio.Map(path)
	if err != nil {
		return nil, fmt.Errorf("gguf %s: %w", path, err)
	}
	f, err := parse(data)
	if err == nil {
		var m *model.Model
		if m, err = toModel(f); err == nil {
			m.Source = path
			m.KeepAlive(closer)
			return m, nil
		}
	}
	closer.Close()
	return nil, fmt.Errorf("gguf %s: %w", path, err)
}

// keyReader looks up metadata keys and records which ones were consumed.
type keyReader struct {
	f    *File
	used map[string]bool
}

func (r *keyReader) get(key string) (Value, bool) {
	v, ok := r.f.Get(key)
	if ok {
		r.used[key] = true
	}
	return v, ok
}

// int reads an integer key; def is returned when the key is absent and
// required is false.
func (r *keyReader) int(key string, required bool, def int) (int, error) {
	v, ok := r.get(key)
	if !ok {
		if required {
			return 0, fmt.Errorf("missing key %s", key)
		}
		return def, nil
	}
	n, ok := v.Int()
	if !ok {
		if v.Type == TypeArray {
			return 0, fmt.Errorf("key %s is a per-layer array, which shrink does not support", key)
		}
		return 0, fmt.Errorf("key %s is a %s, want an integer", key, v.Type)
	}
	if n < 0 || n > math.MaxInt32 {
		return 0, fmt.Errorf("key %s is %d, out of range", key, n)
	}
	return int(n), nil
}

func (r *keyReader) float(key string, required bool, def float64) (float64, error) {
	v, ok := r.get(key)
	if !ok {
		if required {
			return 0, fmt.Errorf("missing key %s", key)
		}
		return def, nil
	}
	switch x := v.V.(type) {
	case float32:
		// The shortest decimal that rounds to the same f32, so that 1e-5
		// stored as f32 comes back as 1e-5 rather than 9.999999747378752e-06.
		return strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
	case float64:
		return x, nil
	}
	return 0, fmt.Errorf("key %s is a %s, want a float", key, v.Type)
}

func (r *keyReader) str(key string) (string, bool, error) {
	v, ok := r.get(key)
	if !ok {
		return "", false, nil
	}
	s, ok := v.V.(string)
	if !ok {
		return "", false, fmt.Errorf("key %s is a %s, want a string", key, v.Type)
	}
	return s, true, nil
}

func (r *keyReader) boolean(key string, def bool) (bool, error) {
	v, ok := r.get(key)
	if !ok {
		return def, nil
	}
	b, ok := v.V.(bool)
	if !ok {
		return false, fmt.Errorf("key %s is a %s, want a bool", key, v.Type)
	}
	return b, nil
}

// toModel converts a parsed file into a model whose tensors alias f's data.
func toModel(f *File) (*model.Model, error) {
	r := &keyReader{f: f, used: map[string]bool{"general.alignment": true, PaddingKey: true}}
	arch, ok, err := r.str("general.architecture")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("missing key general.architecture")
	}
	ai, known := archInfo[arch]
	if !known {
		return nil, fmt.Errorf("architecture %q is not supported (only llama and qwen2)", arch)
	}
	m := &model.Model{Metadata: map[string]any{}}

	m.Tensors = make([]*model.Tensor, 0, len(f.Tensors))
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		dt, ok := ti.Type.DType()
		if !ok {
			return nil, fmt.Errorf("tensor %q: type %s is not supported", ti.Name, ti.Type)
		}
		m.Tensors = append(m.Tensors, &model.Tensor{Name: hfName(ti.Name), DType: dt, Shape: ti.Shape(), Data: ti.Data})
	}

	c := &m.Config
	c.Arch = "llama"
	c.HFArchitecture = ai.hfArch
	c.RopeLayout = ai.layout
	p := arch + "."
	if c.ContextLength, err = r.int(p+"context_length", true, 0); err != nil {
		return nil, err
	}
	if c.HiddenSize, err = r.int(p+"embedding_length", true, 0); err != nil {
		return nil, err
	}
	if c.NumLayers, err = r.int(p+"block_count", true, 0); err != nil {
		return nil, err
	}
	// Each block has nine tensors; checking this first keeps a lying
	// block_count from making Validate list millions of expected tensors.
	if need := 9*int64(c.NumLayers) + 2; need > int64(len(f.Tensors)) {
		return nil, fmt.Errorf("key %sblock_count is %d, which needs at least %d tensors; the file has %d", p, c.NumLayers, need, len(f.Tensors))
	}
	ffDefault := 0
	if t := m.Tensor(model.LayerTensor(0, model.FFNUp)); t != nil && len(t.Shape) == 2 {
		ffDefault = t.Shape[0]
	}
	if c.IntermediateSize, err = r.int(p+"feed_forward_length", ffDefault == 0, ffDefault); err != nil {
		return nil, err
	}
	if c.NumHeads, err = r.int(p+"attention.head_count", true, 0); err != nil {
		return nil, err
	}
	if c.NumHeads == 0 {
		return nil, fmt.Errorf("key %shead_count is 0", p+"attention.")
	}
	if c.NumKVHeads, err = r.int(p+"attention.head_count_kv", false, c.NumHeads); err != nil {
		return nil, err
	}
	if c.HeadDim, err = r.int(p+"attention.key_length", false, c.HiddenSize/c.NumHeads); err != nil {
		return nil, err
	}
	if _, ok := f.Get(p + "attention.key_length"); !ok && c.HiddenSize%c.NumHeads != 0 {
		return nil, fmt.Errorf("embedding length %d is not a multiple of %d heads", c.HiddenSize, c.NumHeads)
	}
	if vl, err := r.int(p+"attention.value_length", false, c.HeadDim); err != nil {
		return nil, err
	} else if vl != c.HeadDim {
		return nil, fmt.Errorf("key %sattention.value_length %d differs from the key length %d, which shrink does not support", p, vl, c.HeadDim)
	}
	rot, err := r.int(p+"rope.dimension_count", false, c.HeadDim)
	if err != nil {
		return nil, err
	}
	if rot != c.HeadDim {
		return nil, fmt.Errorf("key %srope.dimension_count is %d but the head dim is %d; partial RoPE is not supported", p, rot, c.HeadDim)
	}
	if c.RMSNormEps, err = r.float(p+"attention.layer_norm_rms_epsilon", true, 0); err != nil {
		return nil, err
	}
	if c.RopeTheta, err = r.float(p+"rope.freq_base", false, 10000); err != nil {
		return nil, err
	}
	// llama.cpp's llama2.c converter stores a tied head as a byte-for-byte
	// copy of the embedding. Such a model is tied; MetaOutputCopy lets Save
	// write the copy back so the file round-trips exactly.
	if out, emb := m.Tensor(model.OutputHead), m.Tensor(model.TokenEmbedding); out != nil && emb != nil &&
		out.DType == emb.DType && slices.Equal(out.Shape, emb.Shape) && bytes.Equal(out.Data, emb.Data) {
		m.Tensors = slices.DeleteFunc(m.Tensors, func(t *model.Tensor) bool { return t == out })
		m.Metadata[MetaOutputCopy] = true
	}
	c.TiedEmbeddings = m.Tensor(model.OutputHead) == nil
	c.QKVBias = m.Tensor(model.LayerTensor(0, model.AttnQB)) != nil

	if m.Tokenizer, err = readTokenizer(r); err != nil {
		return nil, err
	}
	if c.VocabSize, err = r.int(p+"vocab_size", false, 0); err != nil {
		return nil, err
	}
	if c.VocabSize == 0 {
		if m.Tokenizer != nil {
			c.VocabSize = len(m.Tokenizer.Tokens)
		} else if t := m.Tensor(model.TokenEmbedding); t != nil && len(t.Shape) == 2 {
			c.VocabSize = t.Shape[0]
		}
	}
	if m.Tokenizer != nil && len(m.Tokenizer.Tokens) > c.VocabSize {
		return nil, fmt.Errorf("the tokenizer has %d tokens, more than the vocab size %d", len(m.Tokenizer.Tokens), c.VocabSize)
	}

	// Keys Save derives from the tensors are not metadata.
	r.used["general.file_type"] = true
	r.used["general.quantization_version"] = true
	for _, kv := range f.KVs {
		if !r.used[kv.Key] {
			m.Metadata[kv.Key] = kv.Value.GoValue()
		}
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// readTokenizer builds the tokenizer from tokenizer.ggml.* keys. A file
// without tokenizer.ggml.model, or with a tokenizer model shrink does not
// interpret, gives nil and its keys stay metadata.
func readTokenizer(r *keyReader) (*model.Tokenizer, error) {
	const p = "tokenizer.ggml."
	v, ok := r.f.Get(p + "model")
	if !ok {
		return nil, nil
	}
	kind, _ := v.V.(string)
	if kind != "llama" && kind != "gpt2" {
		return nil, nil
	}
	r.used[p+"model"] = true
	tk := &model.Tokenizer{Kind: kind}
	tv, ok := r.get(p + "tokens")
	if !ok {
		return nil, fmt.Errorf("missing key %stokens", p)
	}
	if tk.Tokens, ok = tv.V.([]string); !ok {
		return nil, fmt.Errorf("key %stokens is %s, want an array of strings", p, tv)
	}
	n := len(tk.Tokens)
	if sv, ok := r.get(p + "scores"); ok {
		if tk.Scores, ok = sv.V.([]float32); !ok || len(tk.Scores) != n {
			return nil, fmt.Errorf("key %sscores is %s, want %d f32", p, sv, n)
		}
	}
	if tv, ok := r.get(p + "token_type"); ok {
		types, ok := tv.V.([]int32)
		if !ok || len(types) != n {
			return nil, fmt.Errorf("key %stoken_type is %s, want %d i32", p, tv, n)
		}
		tk.Types = make([]model.TokenType, n)
		for i, t := range types {
			tk.Types[i] = model.TokenType(t)
		}
	}
	if mv, ok := r.get(p + "merges"); ok {
		if tk.Merges, ok = mv.V.([]string); !ok {
			return nil, fmt.Errorf("key %smerges is %s, want an array of strings", p, mv)
		}
	}
	var err error
	if tk.Pre, _, err = r.str(p + "pre"); err != nil {
		return nil, err
	}
	llama := kind == "llama"
	ids := []struct {
		key string
		dst *int
		def int
	}{
		{"bos_token_id", &tk.BOS, -1}, {"eos_token_id", &tk.EOS, -1},
		{"unknown_token_id", &tk.UNK, -1}, {"padding_token_id", &tk.PAD, -1},
	}
	if llama { // llama.cpp's SentencePiece defaults
		ids[0].def, ids[1].def, ids[2].def = 1, 2, 0
	}
	for _, id := range ids {
		*id.dst = id.def
		if id.def >= n {
			*id.dst = -1
		}
		v, ok := r.get(p + id.key)
		if !ok {
			continue
		}
		x, ok := v.Int()
		switch {
		case !ok:
			return nil, fmt.Errorf("key %s%s is a %s, want an integer", p, id.key, v.Type)
		case x == math.MaxUint32 || x == -1:
			*id.dst = -1 // llama.cpp's "none"
		case x < 0 || x >= int64(n):
			return nil, fmt.Errorf("key %s%s is %d, out of range for %d tokens", p, id.key, x, n)
		default:
			*id.dst = int(x)
		}
	}
	if tk.AddBOS, err = r.boolean(p+"add_bos_token", llama); err != nil {
		return nil, err
	}
	if tk.AddEOS, err = r.boolean(p+"add_eos_token", false); err != nil {
		return nil, err
	}
	if tk.AddSpacePrefix, err = r.boolean(p+"add_space_prefix", llama); err != nil {
		return nil, err
	}
	return tk, nil
}
