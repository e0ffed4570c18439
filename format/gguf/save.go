package gguf

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"github.com/shrinkml/shrink/internal/fileio"
	"github.com/shrinkml/shrink/model"
)

// maxNameLen is the longest tensor name llama.cpp accepts (GGML_MAX_NAME - 1).
const maxNameLen = 63

// quantizationVersion is ggml's GGML_QNT_VERSION, written when tensors are quantized.
const quantizationVersion = 2

// ftypes maps the dominant dtype of the matrices to llama.cpp's LLAMA_FTYPE
// numbering (general.file_type); K-quants name the _M mixes llama-quantize makes.
var ftypes = []struct {
	dtype model.DType
	ftype uint32
}{
	{model.F32, 0}, {model.F16, 1}, {model.Q4_0, 2}, {model.Q4_1, 3}, {model.Q8_0, 7},
	{model.Q4_K, 15}, {model.Q6_K, 18}, {model.BF16, 32},
}

// configKeys are the per-architecture keys Load turns into the Config; Save
// writes them from the Config, never from metadata.
var configKeys = []string{
	"context_length", "embedding_length", "block_count", "feed_forward_length",
	"attention.head_count", "attention.head_count_kv", "attention.key_length", "attention.value_length",
	"attention.layer_norm_rms_epsilon", "rope.dimension_count", "rope.freq_base", "vocab_size",
}

// tokenizerKeys are the tokenizer.ggml.* keys Save writes from m.Tokenizer.
var tokenizerKeys = []string{
	"model", "pre", "tokens", "scores", "token_type", "merges", "bos_token_id", "eos_token_id",
	"unknown_token_id", "padding_token_id", "add_bos_token", "add_eos_token", "add_space_prefix",
}

// Save writes m as a GGUF file llama.cpp can load, atomically; an existing path
// is replaced only when force is set. Hugging Face q/k rows are permuted to
// llama.cpp's RoPE layout, tensors get GGUF names and llama.cpp's order, and
// m.Metadata follows the derived keys in sorted order. Tensor data has GGUF's
// default alignment (32 bytes) and the file no general.alignment key, as
// llama.cpp's converter writes: llama.cpp tools that copy a file's metadata
// into a new one (llama-quantize, and so ollama's quantizer) keep a
// general.alignment key but pad to 32 bytes, so a file with another
// alignment comes out of them unreadable. The data section still starts on a
// cache line (see PaddingKey), so tensors whose sizes are multiples of 64
// bytes, as float32 matrices of usual shapes are, all start on one.
func Save(path string, m *model.Model, force bool) error {
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	kvs, tensors, err := encodeModel(m, name)
	if err != nil {
		return fmt.Errorf("gguf %s: %w", path, err)
	}
	if kvs, err = padToLine(kvs, tensors); err != nil {
		return fmt.Errorf("gguf %s: %w", path, err)
	}
	err = fileio.WriteFile(path, force, func(w *bufio.Writer) error { return Write(w, kvs, tensors) })
	if errors.Is(err, fileio.ErrExists) {
		return err // already names the path
	} else if err != nil {
		return fmt.Errorf("gguf %s: %w", path, err)
	}
	return nil
}

// PaddingKey is the key of a string of spaces that Save adds, when needed, to
// make the tensor data start on a 64-byte boundary without a
// general.alignment key: float32 rows on a cache line stream about 8% faster
// from memory than rows 32 bytes off one. Readers ignore it.
const PaddingKey = "shrink.padding"

// padToLine appends a PaddingKey of 0 to 63 spaces to kvs when the data
// section would otherwise start 32 bytes off a 64-byte line.
func padToLine(kvs []KV, tensors []TensorInfo) ([]KV, error) {
	header, align, err := encodeHeader(kvs, tensors)
	if err != nil || len(tensors) == 0 || align != DefaultAlignment {
		return kvs, err
	}
	n := int64(len(header))
	if alignUp(n, align)%64 == 0 {
		return kvs, nil
	}
	// The key adds its length and name, a type and the string's length.
	n += 8 + int64(len(PaddingKey)) + 4 + 8
	spaces := (64 - n%64) % 64
	kvs = append(slices.Clip(kvs), KV{Key: PaddingKey, Value: Value{Type: TypeString, V: strings.Repeat(" ", int(spaces))}})
	if header, _, err = encodeHeader(kvs, tensors); err != nil || alignUp(int64(len(header)), align)%64 != 0 {
		return nil, fmt.Errorf("padding the header to a 64-byte line failed (%d bytes): %v", len(header), err)
	}
	return kvs, nil
}

// kvList builds the key/value list and remembers which keys it holds.
type kvList struct {
	kvs  []KV
	have map[string]bool
}

func (l *kvList) add(key string, v Value) {
	l.kvs = append(l.kvs, KV{Key: key, Value: v})
	l.have[key] = true
}

func (l *kvList) u32(key string, n int) error {
	if n < 0 || int64(n) > math.MaxUint32 {
		return fmt.Errorf("%s %d does not fit in a u32", key, n)
	}
	l.add(key, Value{Type: TypeUint32, V: uint32(n)})
	return nil
}

// encodeModel turns m into the key/values and tensors Save writes; name is
// general.name when the metadata has none.
func encodeModel(m *model.Model, name string) ([]KV, []TensorInfo, error) {
	c := m.Config
	if c.Arch != "llama" {
		return nil, nil, fmt.Errorf("GGUF output supports llama-family models, not %q", c.Arch)
	}
	arch, layout := "llama", model.RopePairs
	if c.HFArchitecture == "Qwen2ForCausalLM" {
		arch, layout = "qwen2", model.RopeHalf
		if !c.QKVBias {
			return nil, nil, fmt.Errorf("llama.cpp's qwen2 needs q/k/v biases, which this model lacks")
		}
	}
	if err := m.Validate(); err != nil {
		return nil, nil, err
	}
	mm, err := m.WithRopeLayout(layout)
	if err != nil {
		return nil, nil, err
	}
	c = mm.Config

	l := &kvList{have: map[string]bool{}}
	l.add("general.architecture", Value{Type: TypeString, V: arch})
	if s, ok := m.Metadata["general.name"].(string); ok {
		name = s
	}
	l.add("general.name", Value{Type: TypeString, V: name})
	p := arch + "."
	for _, kv := range []struct {
		key string
		n   int
	}{
		{"context_length", c.ContextLength}, {"embedding_length", c.HiddenSize},
		{"block_count", c.NumLayers}, {"feed_forward_length", c.IntermediateSize},
		{"rope.dimension_count", c.HeadDim}, {"attention.head_count", c.NumHeads},
		{"attention.head_count_kv", c.NumKVHeads},
	} {
		if err := l.u32(p+kv.key, kv.n); err != nil {
			return nil, nil, err
		}
	}
	if c.HeadDim*c.NumHeads != c.HiddenSize {
		if err := l.u32(p+"attention.key_length", c.HeadDim); err != nil {
			return nil, nil, err
		}
		if err := l.u32(p+"attention.value_length", c.HeadDim); err != nil {
			return nil, nil, err
		}
	}
	l.add(p+"attention.layer_norm_rms_epsilon", Value{Type: TypeFloat32, V: float32(c.RMSNormEps)})
	l.add(p+"rope.freq_base", Value{Type: TypeFloat32, V: float32(c.RopeTheta)})
	if err := l.u32(p+"vocab_size", c.VocabSize); err != nil {
		return nil, nil, err
	}
	if ft, ok := fileType(mm.Tensors); ok {
		l.add("general.file_type", Value{Type: TypeUint32, V: ft})
	}
	for _, t := range mm.Tensors {
		if t.DType.Quantized() {
			l.add("general.quantization_version", Value{Type: TypeUint32, V: uint32(quantizationVersion)})
			break
		}
	}
	if err := addTokenizer(l, mm.Tokenizer, c.VocabSize); err != nil {
		return nil, nil, err
	}

	skip := map[string]bool{"general.alignment": true, "general.file_type": true, "general.quantization_version": true, MetaOutputCopy: true}
	for _, k := range configKeys {
		skip[p+k] = true
	}
	if l.have["tokenizer.ggml.model"] {
		for _, k := range tokenizerKeys {
			skip["tokenizer.ggml."+k] = true
		}
	}
	for _, k := range m.SortedMetadataKeys() {
		if l.have[k] || skip[k] {
			continue
		}
		v, err := ValueOf(m.Metadata[k])
		if err != nil {
			return nil, nil, fmt.Errorf("metadata %q: %w", k, err)
		}
		l.add(k, v)
	}

	if copyHead, _ := m.Metadata[MetaOutputCopy].(bool); copyHead && c.TiedEmbeddings {
		if emb := mm.Tensor(model.TokenEmbedding); emb != nil {
			head := *emb
			head.Name = model.OutputHead
			mm.Tensors = append(slices.Clip(mm.Tensors), &head)
		}
	}
	tensors, err := encodeTensors(mm)
	if err != nil {
		return nil, nil, err
	}
	return l.kvs, tensors, nil
}

// fileType picks general.file_type from the dtype holding most matrix elements.
func fileType(ts []*model.Tensor) (uint32, bool) {
	elems := map[model.DType]int64{}
	for _, t := range ts {
		if len(t.Shape) == 2 {
			elems[t.DType] += int64(t.Elems())
		}
	}
	if len(elems) == 0 {
		return 0, true // llama.cpp's ALL_F32 for a model without matrices
	}
	best, bestN := model.Invalid, int64(-1)
	for _, d := range []model.DType{model.F32, model.F16, model.BF16, model.Q8_0, model.Q4_0, model.Q4_1, model.Q4_K, model.Q6_K, model.I8, model.I32, model.U8} {
		if elems[d] > bestN {
			best, bestN = d, elems[d]
		}
	}
	for _, f := range ftypes {
		if f.dtype == best {
			return f.ftype, true
		}
	}
	return 0, false
}

// addTokenizer writes the tokenizer.ggml.* keys, padding the vocabulary to
// vocabSize the way llama.cpp's converter does ("[PADn]", unused, score -10000).
func addTokenizer(l *kvList, tk *model.Tokenizer, vocabSize int) error {
	if tk == nil || len(tk.Tokens) == 0 {
		return nil
	}
	const p = "tokenizer.ggml."
	if tk.Kind != "llama" && tk.Kind != "gpt2" {
		return fmt.Errorf("tokenizer kind %q cannot be written to GGUF (only llama and gpt2)", tk.Kind)
	}
	n := len(tk.Tokens)
	if n > vocabSize {
		return fmt.Errorf("the tokenizer has %d tokens, more than the vocab size %d", n, vocabSize)
	}
	if len(tk.Scores) != 0 && len(tk.Scores) != n {
		return fmt.Errorf("the tokenizer has %d scores for %d tokens", len(tk.Scores), n)
	}
	if len(tk.Types) != 0 && len(tk.Types) != n {
		return fmt.Errorf("the tokenizer has %d token types for %d tokens", len(tk.Types), n)
	}
	tokens := append(make([]string, 0, vocabSize), tk.Tokens...)
	for i := n; i < vocabSize; i++ {
		tokens = append(tokens, fmt.Sprintf("[PAD%d]", i))
	}
	l.add(p+"model", Value{Type: TypeString, V: tk.Kind})
	if tk.Pre != "" {
		l.add(p+"pre", Value{Type: TypeString, V: tk.Pre})
	}
	l.add(p+"tokens", Value{Type: TypeArray, Elem: TypeString, V: tokens})
	if len(tk.Scores) != 0 {
		scores := append(make([]float32, 0, vocabSize), tk.Scores...)
		for i := n; i < vocabSize; i++ {
			scores = append(scores, -10000)
		}
		l.add(p+"scores", Value{Type: TypeArray, Elem: TypeFloat32, V: scores})
	}
	if len(tk.Types) != 0 {
		types := make([]int32, vocabSize)
		for i := range types {
			types[i] = int32(model.TokenUnused)
			if i < n {
				types[i] = int32(tk.Types[i])
			}
		}
		l.add(p+"token_type", Value{Type: TypeArray, Elem: TypeInt32, V: types})
	}
	if len(tk.Merges) != 0 {
		l.add(p+"merges", Value{Type: TypeArray, Elem: TypeString, V: append([]string(nil), tk.Merges...)})
	}
	for _, id := range []struct {
		key string
		v   int
	}{{"bos_token_id", tk.BOS}, {"eos_token_id", tk.EOS}, {"unknown_token_id", tk.UNK}, {"padding_token_id", tk.PAD}} {
		if id.v < 0 {
			continue
		}
		if id.v >= vocabSize {
			return fmt.Errorf("tokenizer %s %d is out of range for %d tokens", id.key, id.v, vocabSize)
		}
		l.add(p+id.key, Value{Type: TypeUint32, V: uint32(id.v)})
	}
	l.add(p+"add_bos_token", Value{Type: TypeBool, V: tk.AddBOS})
	l.add(p+"add_eos_token", Value{Type: TypeBool, V: tk.AddEOS})
	l.add(p+"add_space_prefix", Value{Type: TypeBool, V: tk.AddSpacePrefix})
	return nil
}

// encodeTensors lists m's tensors under GGUF names: the llama tensors in
// llama.cpp's converter order, then any others in model order. Vectors (norm
// weights, biases) held in F16 or BF16 are widened to F32, exactly, as
// llama.cpp's converter stores them: its CPU kernels multiply and add
// float32 activations by float32 vectors only, and abort on a half one.
func encodeTensors(m *model.Model) ([]TensorInfo, error) {
	byName := make(map[string]*model.Tensor, len(m.Tensors))
	for _, t := range m.Tensors {
		byName[t.Name] = t
	}
	placed := make(map[string]bool, len(m.Tensors))
	ordered := make([]*model.Tensor, 0, len(m.Tensors))
	for _, name := range tensorOrder(m.Config.NumLayers) {
		if t := byName[name]; t != nil && !placed[name] {
			ordered = append(ordered, t)
			placed[name] = true
		}
	}
	for _, t := range m.Tensors {
		if !placed[t.Name] {
			ordered = append(ordered, t)
			placed[t.Name] = true
		}
	}
	out := make([]TensorInfo, 0, len(ordered))
	for _, t := range ordered {
		name := ggufName(t.Name)
		if len(name) > maxNameLen {
			return nil, fmt.Errorf("tensor %q: GGUF name %q is longer than llama.cpp's %d bytes", t.Name, name, maxNameLen)
		}
		if len(t.Shape) == 1 && (t.DType == model.F16 || t.DType == model.BF16) {
			wide, err := t.Convert(model.F32)
			if err != nil {
				return nil, err
			}
			t = wide
		}
		typ, ok := GGMLTypeOf(t.DType)
		if !ok && t.DType.Quantized() {
			return nil, fmt.Errorf("tensor %q: dtype %s has no GGUF type (GGUF has no per-channel int8 or int4 group types): quantize to q8_0 or q4_0 for GGUF, or write a Hugging Face folder", t.Name, t.DType)
		} else if !ok {
			return nil, fmt.Errorf("tensor %q: dtype %s has no GGUF type", t.Name, t.DType)
		}
		if len(t.Shape) > MaxDims {
			return nil, fmt.Errorf("tensor %q: shape %v has more than %d dimensions", t.Name, t.Shape, MaxDims)
		}
		dims := make([]int64, len(t.Shape))
		for i, s := range t.Shape {
			dims[len(dims)-1-i] = int64(s)
		}
		out = append(out, TensorInfo{Name: name, Type: typ, Dims: dims, Data: t.Data})
	}
	return out, nil
}
