// Package hf reads and writes Hugging Face model folders: config.json,
// safetensors weights (one file or shards with an index) and the tokenizer
// files, for the llama family (LlamaForCausalLM, MistralForCausalLM,
// Qwen2ForCausalLM) and shrink's MLP classifiers.
//
// Tensor names are Hugging Face's, which are shrink's canonical names, and q/k
// projection rows are in Hugging Face's rotate-half RoPE layout.
//
// Quantized models: tensors of GGUF's block types (Q8_0, Q4_0, Q4_1, ...) are
// stored byte for byte in shrink's quantized safetensors layout, a U8 matrix
// of blocks per tensor described in the __metadata__ (see package
// safetensors), and Load gives them back with their block type and shape.
// Weights of the INT types (int8 per channel, int4 groups) are stored in
// compressed-tensors' int-quantized and pack-quantized formats instead, with
// a quantization_config in config.json (see intquant.go), and Load reads
// such folders, llm-compressor's included, back into the INT types.
// config.json is the model's ordinary one; other readers see the block
// matrices as uint8 tensors and the unquantized tensors as usual.
//
// Metadata rules: config.json keys shrink does not interpret (rope_scaling,
// sliding_window, transformers_version, ...) are kept under ConfigPrefix and
// written back into config.json. The safetensors __metadata__ strings are kept
// under their own keys, except "format", which Save always writes as "pt"
// because transformers requires it. Non-string metadata values are written as
// JSON under JSONPrefix and decoded on Load, so integer and float types widen
// to int64 and float64.
//
// Tokenizer rules: the files in TokenizerFiles are carried byte for byte and
// always win over the parsed fields when saving. A BPE tokenizer.json is also
// parsed into the Tokenizer fields, with the vocabulary padded to vocab_size by
// "[PADn]" tokens of type TokenUnused, as llama.cpp's converter does. Scores of
// a llama-kind vocabulary come from the merge ranks: tokens a merge produces
// score 0, -1, -2, ... in the order of their first merge, other normal tokens
// continue the count in id order, and byte, control, unknown and unused tokens
// score 0; for a vocabulary converted from SentencePiece BPE this gives back
// the original scores. Save generates tokenizer.json (and tokenizer_config.json)
// for a tokenizer that has none, deriving a llama-kind vocabulary's merges from
// its scores as transformers' SentencePieceExtractor does.
package hf

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/shrinkml/shrink/format/safetensors"
	"github.com/shrinkml/shrink/internal/fileio"
	"github.com/shrinkml/shrink/model"
)

// ConfigPrefix prefixes the metadata keys holding config.json entries that
// shrink does not interpret ("hf.config.rope_scaling"); each value is the
// entry's compact JSON text.
const ConfigPrefix = "hf.config."

// JSONPrefix prefixes safetensors __metadata__ keys whose value is a
// non-string metadata value encoded as JSON ("json:general.file_type": "7").
// Load decodes them back into int64, float64, bool or string values or slices
// of one of those.
const JSONPrefix = "json:"

// DefaultMaxShardSize is the largest safetensors shard Save writes unless told
// otherwise, the same 5 GB as transformers' save_pretrained.
const DefaultMaxShardSize = 5_000_000_000

// maxFileSize bounds the JSON and tokenizer files read whole into memory.
const maxFileSize = 1 << 30

// Load reads a Hugging Face model folder. Tensor data stays memory-mapped from
// the safetensors files until the model is closed.
func Load(dir string) (*model.Model, error) {
	cfgPath := filepath.Join(dir, "config.json")
	raw, err := readFile(cfgPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("hf %s: no config.json; not a Hugging Face model folder", dir)
	}
	if err != nil {
		return nil, err
	}
	cfg, extras, err := parseConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("hf %s: %w", cfgPath, err)
	}
	var ckpt *safetensors.Checkpoint
	index := filepath.Join(dir, safetensors.IndexName)
	single := filepath.Join(dir, safetensors.SingleName)
	switch {
	case exists(index):
		ckpt, err = safetensors.OpenIndex(index)
	case exists(single):
		ckpt, err = safetensors.OpenFile(single)
	default:
		hint := ""
		if exists(filepath.Join(dir, "pytorch_model.bin")) {
			hint = " (pytorch_model.bin is a pickle, which shrink does not read; convert it to safetensors)"
		}
		return nil, fmt.Errorf("hf %s: no %s or %s%s", dir, safetensors.SingleName, safetensors.IndexName, hint)
	}
	if err != nil {
		return nil, fmt.Errorf("hf %s: %w", dir, err)
	}
	tensors := ckpt.Tensors
	if sf, only, err := sparseFormat(extras); err != nil {
		ckpt.Close()
		return nil, fmt.Errorf("hf %s: %w", cfgPath, err)
	} else {
		fileOf := func(name string) string {
			for _, f := range ckpt.Files {
				if f.Tensor(name) != nil {
					return f.Name
				}
			}
			return dir
		}
		if tensors, err = decodeSparse(tensors, sf, fileOf); err != nil {
			ckpt.Close()
			return nil, fmt.Errorf("hf %w", err)
		}
		if sf != "" && only {
			delete(extras, "quantization_config") // the weights are dense now
		}
		isInt, err := intQuantFormat(extras)
		if err != nil {
			ckpt.Close()
			return nil, fmt.Errorf("hf %s: %w", cfgPath, err)
		}
		if isInt {
			if tensors, err = decodeInt(tensors, fileOf); err != nil {
				ckpt.Close()
				return nil, fmt.Errorf("hf %w", err)
			}
			delete(extras, "quantization_config") // the weights are shrink's INT types now
		}
	}
	m := &model.Model{Config: cfg, Tensors: tensors, Source: dir, Metadata: map[string]any{}}
	m.KeepAlive(ckpt)
	if err := finishLoad(m, dir, cfgPath, raw, ckpt.Metadata(), extras); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func finishLoad(m *model.Model, dir, cfgPath string, cfgRaw []byte, stMeta, extras map[string]string) error {
	switch m.Config.Arch {
	case "llama":
		if m.Tensor(model.LayerTensor(0, model.AttnQB)) != nil {
			m.Config.QKVBias = true
		}
	case "mlp":
		if m.Tensor(model.MLPWeight(0)) == nil {
			ts, _, err := sequentialToMLP(m.Tensors)
			if err != nil {
				return fmt.Errorf("hf %s: %w", dir, err)
			}
			m.Tensors = ts
		}
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("hf %s: the config and the tensors disagree: %w", cfgPath, err)
	}
	putMetadata(m, stMeta)
	for k, v := range extras {
		m.Metadata[ConfigPrefix+k] = v
	}
	files := map[string][]byte{}
	for _, name := range TokenizerFiles {
		p := filepath.Join(dir, name)
		if !exists(p) {
			continue
		}
		b, err := readFile(p)
		if err != nil {
			return err
		}
		files[name] = b
	}
	if len(files) > 0 {
		var cfg configFile
		json.Unmarshal(cfgRaw, &cfg) // already parsed once; an error cannot happen here
		tok, err := parseTokenizer(files, m.Config.VocabSize, cfg)
		if err != nil {
			return fmt.Errorf("hf %s: %w", dir, err)
		}
		m.Tokenizer = tok
	}
	return nil
}

// putMetadata copies safetensors __metadata__ into m.Metadata, decoding
// JSONPrefix values and leaving out "format".
func putMetadata(m *model.Model, stMeta map[string]string) {
	for k, v := range stMeta {
		if k == "format" {
			continue // container housekeeping; Save writes "pt"
		}
		m.Metadata[k] = v
		if name, ok := strings.CutPrefix(k, JSONPrefix); ok {
			if val, ok := decodeMetaJSON(v); ok {
				delete(m.Metadata, k)
				m.Metadata[name] = val
			}
		}
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// readFile reads a small file whole, refusing absurd sizes.
func readFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("hf %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("hf %s: not a regular file", path)
	}
	if st.Size() > maxFileSize {
		return nil, fmt.Errorf("hf %s: %d bytes is more than the %d this file may have", path, st.Size(), maxFileSize)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hf %s: %w", path, err)
	}
	return b, nil
}

// decodeMetaJSON decodes a JSONPrefix metadata value into one of the types
// model.Metadata allows.
func decodeMetaJSON(s string) (any, bool) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil || dec.More() {
		return nil, false
	}
	scalar := func(v any) (any, bool) {
		switch x := v.(type) {
		case bool, string:
			return x, true
		case json.Number:
			if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
				return i, true
			}
			if f, err := strconv.ParseFloat(string(x), 64); err == nil {
				return f, true
			}
		}
		return nil, false
	}
	list, ok := v.([]any)
	if !ok {
		return scalar(v)
	}
	vals := make([]any, len(list))
	kinds := map[string]bool{}
	for i, e := range list {
		x, ok := scalar(e)
		if !ok {
			return nil, false
		}
		vals[i] = x
		kinds[fmt.Sprintf("%T", x)] = true
	}
	if kinds["int64"] && kinds["float64"] && len(kinds) == 2 {
		for i, x := range vals {
			if n, ok := x.(int64); ok {
				vals[i] = float64(n)
			}
		}
		delete(kinds, "int64")
	}
	if len(kinds) > 1 {
		return nil, false
	}
	switch {
	case kinds["bool"]:
		return collect[bool](vals), true
	case kinds["string"]:
		return collect[string](vals), true
	case kinds["int64"]:
		return collect[int64](vals), true
	case kinds["float64"]:
		return collect[float64](vals), true
	}
	return []string{}, true
}

func collect[T any](vals []any) []T {
	out := make([]T, len(vals))
	for i, v := range vals {
		out[i] = v.(T)
	}
	return out
}

// safetensorsMetadata is the __metadata__ Save writes: "format": "pt" (which
// transformers requires), every string metadata value under its key, and every
// other value JSON-encoded under JSONPrefix+key. Keys under ConfigPrefix go to
// config.json instead.
func safetensorsMetadata(m *model.Model) (map[string]string, error) {
	md := map[string]string{}
	for _, k := range m.SortedMetadataKeys() {
		if strings.HasPrefix(k, ConfigPrefix) {
			continue
		}
		switch v := m.Metadata[k].(type) {
		case string:
			md[k] = v
		default:
			b, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("metadata %q: %v", k, err)
			}
			md[JSONPrefix+k] = string(b)
		}
	}
	md["format"] = "pt"
	return md, nil
}

// SaveOptions controls Save.
type SaveOptions struct {
	// Force replaces an existing folder.
	Force bool
	// MaxShardSize is the most tensor bytes per safetensors file; 0 means
	// DefaultMaxShardSize. A larger model is written as shards with an index.
	MaxShardSize int64
	// Sparse stores each 2-D F32 matrix that benefits in compressed-tensors'
	// sparse layouts: exactly 2:4 matrices as sparse-24-bitmask, others at
	// least StoreMinZeros zeros as sparse-bitmask, and records them in
	// config.json's sparsity_config. Load decodes them back to dense.
	Sparse bool
}

// reserved are the names Save writes itself; tokenizer files may not use them.
var reservedName = regexp.MustCompile(`^(config\.json|model\.safetensors(\.index\.json)?|model-\d+-of-\d+\.safetensors)$`)

// Save writes m as a Hugging Face model folder, atomically: config.json, the
// weights as safetensors (sharded above MaxShardSize; block-quantized tensors
// in the safetensors package's quantized layout), and the tokenizer files.
// Carried tokenizer files are written byte for byte; a tokenizer without a
// tokenizer.json (from llama2.c or GGUF) gets a generated tokenizer.json and,
// if missing, tokenizer_config.json. q/k rows in the pairs layout are permuted
// to rotate-half first. The output depends only on m.
func Save(dir string, m *model.Model, opts SaveOptions) error {
	if m == nil {
		return fmt.Errorf("hf %s: no model", dir)
	}
	// Replacing a folder deletes it: only ever one that holds a model.
	if st, err := os.Stat(dir); err == nil && st.IsDir() && opts.Force {
		if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
			return fmt.Errorf("hf %s: the folder exists and holds no config.json; refusing to replace a folder that is not a model", dir)
		}
	}
	for _, t := range m.Tensors {
		if !safetensors.CanStore(t.DType) {
			return fmt.Errorf("hf %s: tensor %q has dtype %s, which safetensors cannot store", dir, t.Name, t.DType)
		}
	}
	if m.Config.Arch == "llama" && m.Config.RopeLayout != model.RopeHalf {
		hm, err := m.WithRopeLayout(model.RopeHalf)
		if err != nil {
			return fmt.Errorf("hf %s: %w", dir, err)
		}
		m = hm
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("hf %s: %w", dir, err)
	}
	if opts.Sparse {
		sm, err := sparseSave(m)
		if err != nil {
			return fmt.Errorf("hf %s: %w", dir, err)
		}
		m = sm
	}
	im, err := intSave(m)
	if err != nil {
		return fmt.Errorf("hf %s: %w", dir, err)
	}
	m = im
	cfgJSON, err := configJSON(m)
	if err != nil {
		return fmt.Errorf("hf %s: config.json: %w", dir, err)
	}
	md, err := safetensorsMetadata(m)
	if err != nil {
		return fmt.Errorf("hf %s: %w", dir, err)
	}
	files := map[string][]byte{}
	if tok := m.Tokenizer; tok != nil {
		for name, b := range tok.Files {
			if name == "" || name != filepath.Base(name) || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
				return fmt.Errorf("hf %s: tokenizer file name %q is not a plain file name", dir, name)
			}
			if reservedName.MatchString(name) {
				return fmt.Errorf("hf %s: tokenizer file %q would overwrite the model's own", dir, name)
			}
			files[name] = b
		}
		if _, ok := files["tokenizer.json"]; !ok && len(tok.Tokens) > 0 {
			tj, tc, err := generateTokenizer(tok, m.Config.ContextLength)
			if err != nil {
				return fmt.Errorf("hf %s: tokenizer.json: %w", dir, err)
			}
			files["tokenizer.json"] = tj
			if _, ok := files["tokenizer_config.json"]; !ok {
				files["tokenizer_config.json"] = tc
			}
		}
	}
	maxShard := opts.MaxShardSize
	if maxShard <= 0 {
		maxShard = DefaultMaxShardSize
	}
	err = fileio.WriteDir(dir, opts.Force, func(tmp string) error {
		if err := writeBytes(filepath.Join(tmp, "config.json"), cfgJSON); err != nil {
			return err
		}
		if _, err := safetensors.WriteSharded(tmp, m.Tensors, md, maxShard); err != nil {
			return err
		}
		names := make([]string, 0, len(files))
		for name := range files {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if err := writeBytes(filepath.Join(tmp, name), files[name]); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, fileio.ErrExists) {
		return err // already names the folder
	} else if err != nil {
		return fmt.Errorf("hf %s: %w", dir, err)
	}
	return nil
}

func writeBytes(path string, b []byte) error {
	return fileio.CreateFile(path, func(w *bufio.Writer) error {
		_, err := w.Write(b)
		return err
	})
}
