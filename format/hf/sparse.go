package hf

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
	"sort"
	"strings"

	"github.com/shrinkml/shrink/model"
)

// Sparse storage follows compressed-tensors (the layout llm-compressor writes
// and vLLM reads; src/compressed_tensors/compressors/sparse_compressors/ and
// config/ of github.com/vllm-project/compressed-tensors). A compressed weight
// "M.weight" becomes, for the sparse-bitmask format:
//
//	M.shape       the dense shape [rows, cols]
//	M.compressed  the non-zero values in row-major order, 1-D, the weight's dtype
//	M.bitmask     U8 [rows, ceil(cols/8)]: bit c%8 (little-endian bit order,
//	              numpy.packbits(bitorder="little")) of byte c/8 is set where
//	              column c is stored
//	M.row_offsets the index in M.compressed of each row's first value
//
// and for sparse-24-bitmask (every group of 4 columns keeps exactly 2 entries,
// zeros included when a group has fewer non-zeros): M.shape as [2, 1],
// M.compressed [rows, cols/2] and M.bitmask as above. config.json gets
// "quantization_config": {"quant_method": "compressed-tensors",
// "sparsity_config": {"format", "global_sparsity", "ignore",
// "sparsity_structure", "targets"}}.
//
// One difference: compressed-tensors writes M.shape and M.row_offsets as I64,
// which shrink's safetensors layer does not hold; shrink writes I32 and reads
// I32 (I64 files from llm-compressor are refused by the safetensors reader).

// Sparse formats, compressed-tensors' names.
const (
	formatBitmask   = "sparse-bitmask"
	formatBitmask24 = "sparse-24-bitmask"
)

// StoreMinZeros is the fraction of zeros from which Save with Sparse stores a
// matrix as sparse-bitmask: values plus a bit per weight then take at most
// 0.78 of the dense size.
const StoreMinZeros = 0.25

// sparsityConfig is compressed-tensors' SparsityCompressionConfig.
type sparsityConfig struct {
	Format            string   `json:"format"`
	GlobalSparsity    float64  `json:"global_sparsity"`
	Ignore            []string `json:"ignore"`
	SparsityStructure string   `json:"sparsity_structure"`
	Targets           []string `json:"targets"`
}

type quantizationConfig struct {
	QuantMethod    string          `json:"quant_method"`
	SparsityConfig *sparsityConfig `json:"sparsity_config,omitempty"`
}

// sparseCandidate tells whether t can be stored sparse, and its zeros and 2:4-ness.
func sparseCandidate(t *model.Tensor) (zeros int, is24, ok bool) {
	if len(t.Shape) != 2 || !strings.HasSuffix(t.Name, ".weight") || t.Shape[0] <= 0 || t.Shape[1] <= 0 {
		return 0, false, false
	}
	if t.DType != model.F32 && t.DType != model.F16 && t.DType != model.BF16 {
		return 0, false, false
	}
	es := t.DType.BlockBytes()
	cols := t.Shape[1]
	is24 = cols%4 == 0
	for r := 0; r < t.Shape[0]; r++ {
		row := t.Data[r*cols*es : (r+1)*cols*es]
		for g := 0; g < cols; g += 4 {
			nz := 0
			for c := g; c < min(g+4, cols); c++ {
				if !isZero(row[c*es : (c+1)*es]) {
					nz++
				}
			}
			zeros += min(4, cols-g) - nz
			if nz > 2 {
				is24 = false
			}
		}
	}
	return zeros, is24, true
}

// isZero reports whether a float's bytes are +0 (only +0: -0 is kept so the
// round trip is bit-exact, as compressed-tensors' tensor != 0 would not).
func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// encodeSparse replaces the matrices of ts that benefit by their compressed
// parts, and returns the config.json entry (nil when none does). When every
// matrix worth compressing is exactly 2:4 the model uses sparse-24-bitmask,
// else sparse-bitmask for those with StoreMinZeros zeros.
func encodeSparse(ts []*model.Tensor) ([]*model.Tensor, *quantizationConfig) {
	type cand struct {
		zeros int
		is24  bool
	}
	cands := map[*model.Tensor]cand{}
	var zeros, total int
	all24, any24, anyBits := true, false, false
	for _, t := range ts {
		z, is24, ok := sparseCandidate(t)
		if !ok {
			continue
		}
		zeros += z
		total += t.Elems()
		is24 = is24 && z > 0
		bitsWorth := float64(z) >= StoreMinZeros*float64(t.Elems())
		if !is24 && !bitsWorth {
			continue
		}
		cands[t] = cand{z, is24}
		any24 = any24 || is24
		anyBits = anyBits || bitsWorth
		if bitsWorth && !is24 {
			all24 = false
		}
	}
	if len(cands) == 0 {
		return ts, nil
	}
	cfg := &sparsityConfig{Format: formatBitmask, SparsityStructure: "unstructured", Ignore: []string{}}
	if all24 && any24 {
		cfg.Format, cfg.SparsityStructure = formatBitmask24, "2:4"
	}
	if total > 0 {
		cfg.GlobalSparsity = float64(zeros) / float64(total)
	}
	var out []*model.Tensor
	for _, t := range ts {
		c, ok := cands[t]
		use := ok && (cfg.Format == formatBitmask24 && c.is24 ||
			cfg.Format == formatBitmask && float64(c.zeros) >= StoreMinZeros*float64(t.Elems()))
		if !use {
			out = append(out, t)
			continue
		}
		prefix := strings.TrimSuffix(t.Name, ".weight")
		cfg.Targets = append(cfg.Targets, prefix)
		if cfg.Format == formatBitmask24 {
			out = append(out, compress24(prefix, t)...)
		} else {
			out = append(out, compressBitmask(prefix, t)...)
		}
	}
	sort.Strings(cfg.Targets)
	return out, &quantizationConfig{QuantMethod: "compressed-tensors", SparsityConfig: cfg}
}

func i32Tensor(name string, shape []int, vals []int) *model.Tensor {
	b := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(int32(v)))
	}
	return &model.Tensor{Name: name, DType: model.I32, Shape: shape, Data: b}
}

// compressBitmask is compressed-tensors' bitmask_compress.
func compressBitmask(prefix string, t *model.Tensor) []*model.Tensor {
	rows, cols := t.Shape[0], t.Shape[1]
	es := t.DType.BlockBytes()
	mb := (cols + 7) / 8
	mask := make([]byte, rows*mb)
	var vals []byte
	offs := make([]int, rows)
	n := 0
	for r := 0; r < rows; r++ {
		offs[r] = n
		for c := 0; c < cols; c++ {
			v := t.Data[(r*cols+c)*es : (r*cols+c+1)*es]
			if !isZero(v) {
				mask[r*mb+c/8] |= 1 << (c % 8)
				vals = append(vals, v...)
				n++
			}
		}
	}
	return []*model.Tensor{
		i32Tensor(prefix+".shape", []int{2}, []int{rows, cols}),
		{Name: prefix + ".compressed", DType: t.DType, Shape: []int{n}, Data: vals},
		{Name: prefix + ".bitmask", DType: model.U8, Shape: []int{rows, mb}, Data: mask},
		i32Tensor(prefix+".row_offsets", []int{rows}, offs),
	}
}

// compress24 is compressed-tensors' sparse24_bitmask_compress for a matrix
// with at most 2 non-zeros per group of 4: the non-zeros, then the group's
// first zeros to make 2.
func compress24(prefix string, t *model.Tensor) []*model.Tensor {
	rows, cols := t.Shape[0], t.Shape[1]
	es := t.DType.BlockBytes()
	mb := (cols + 7) / 8
	mask := make([]byte, rows*mb)
	vals := make([]byte, 0, rows*cols/2*es)
	for r := 0; r < rows; r++ {
		for g := 0; g < cols; g += 4 {
			var keep [4]bool
			k := 0
			for c := g; c < g+4; c++ {
				if !isZero(t.Data[(r*cols+c)*es : (r*cols+c+1)*es]) {
					keep[c-g] = true
					k++
				}
			}
			for i := 0; i < 4 && k < 2; i++ {
				if !keep[i] {
					keep[i] = true
					k++
				}
			}
			for i, kp := range keep {
				if kp {
					c := g + i
					mask[r*mb+c/8] |= 1 << (c % 8)
					vals = append(vals, t.Data[(r*cols+c)*es:(r*cols+c+1)*es]...)
				}
			}
		}
	}
	return []*model.Tensor{
		i32Tensor(prefix+".shape", []int{2, 1}, []int{rows, cols}),
		{Name: prefix + ".compressed", DType: t.DType, Shape: []int{rows, cols / 2}, Data: vals},
		{Name: prefix + ".bitmask", DType: model.U8, Shape: []int{rows, mb}, Data: mask},
	}
}

// sparseSave returns a shallow copy of m whose tensors are compressed
// and whose config.json carries the sparsity config, or m when nothing is.
func sparseSave(m *model.Model) (*model.Model, error) {
	ts, qc := encodeSparse(m.Tensors)
	if qc == nil {
		return m, nil
	}
	return withQuantConfig(m, ts, qc)
}

// withQuantConfig returns a shallow copy of m with tensors ts and qc as
// config.json's quantization_config.
func withQuantConfig(m *model.Model, ts []*model.Tensor, qc any) (*model.Model, error) {
	b, err := json.Marshal(qc)
	if err != nil {
		return nil, err
	}
	out := *m
	out.Tensors = ts
	out.Metadata = make(map[string]any, len(m.Metadata)+1)
	for k, v := range m.Metadata {
		out.Metadata[k] = v
	}
	out.Metadata[ConfigPrefix+"quantization_config"] = string(b)
	return &out, nil
}

// sparseFormat reads the sparsity format from config.json's
// quantization_config ("" when there is none) and tells whether the entry
// holds nothing else, so that Load can drop it once the weights are dense.
func sparseFormat(extras map[string]string) (format string, onlySparsity bool, err error) {
	raw, ok := extras["quantization_config"]
	if !ok {
		return "", false, nil
	}
	var all map[string]json.RawMessage
	if json.Unmarshal([]byte(raw), &all) != nil {
		return "", false, nil
	}
	sc, ok := all["sparsity_config"]
	if !ok || string(sc) == "null" {
		return "", false, nil
	}
	var cfg sparsityConfig
	if err := json.Unmarshal(sc, &cfg); err != nil {
		return "", false, fmt.Errorf("quantization_config.sparsity_config: %v", err)
	}
	switch cfg.Format {
	case formatBitmask, formatBitmask24, "dense":
	default:
		return "", false, fmt.Errorf("quantization_config.sparsity_config: format %q is not supported (shrink reads %s and %s)", cfg.Format, formatBitmask, formatBitmask24)
	}
	only := true
	for k := range all {
		switch k {
		case "quant_method", "sparsity_config", "version", "format", "ignore", "global_compression_ratio", "quantization_status", "kv_cache_scheme":
		case "config_groups":
			if s := strings.TrimSpace(string(all[k])); s != "{}" && s != "null" {
				only = false
			}
		default:
			only = false
		}
	}
	return cfg.Format, only, nil
}

// decodeSparse replaces each compressed weight's parts in ts by the dense
// weight, decoded into new memory. format is the config's sparsity format
// ("" infers it from the parts present); fileOf names a tensor's file for
// errors.
func decodeSparse(ts []*model.Tensor, format string, fileOf func(string) string) ([]*model.Tensor, error) {
	byName := map[string]*model.Tensor{}
	for _, t := range ts {
		byName[t.Name] = t
	}
	parts := map[string]bool{}
	var out []*model.Tensor
	for _, t := range ts {
		prefix, ok := strings.CutSuffix(t.Name, ".compressed")
		if !ok {
			continue
		}
		mask := byName[prefix+".bitmask"]
		shape := byName[prefix+".shape"]
		if mask == nil || shape == nil {
			continue // not a sparse weight (a compressed tensor of another kind)
		}
		offs := byName[prefix+".row_offsets"]
		f := format
		if f == "" || f == "dense" {
			f = formatBitmask24
			if offs != nil {
				f = formatBitmask
			}
		}
		if byName[prefix+".weight"] != nil {
			return nil, fmt.Errorf("%s: tensor %q is stored both dense and compressed", fileOf(prefix+".weight"), prefix+".weight")
		}
		d, err := decodeWeight(prefix, f, t, mask, shape, offs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fileOf(t.Name), err)
		}
		parts[t.Name], parts[mask.Name], parts[shape.Name] = true, true, true
		if offs != nil {
			parts[offs.Name] = true
		}
		byName[d.Name] = d
	}
	if len(parts) == 0 {
		return ts, nil
	}
	for _, t := range ts {
		if prefix, ok := strings.CutSuffix(t.Name, ".compressed"); ok && parts[t.Name] {
			out = append(out, byName[prefix+".weight"])
			continue
		}
		if !parts[t.Name] {
			out = append(out, t)
		}
	}
	return out, nil
}

// maxSparseElems bounds a decoded matrix (16 GiB of F32), whatever its shape claims.
const maxSparseElems = 1 << 32

// decodeWeight is compressed-tensors' bitmask_decompress (and
// sparse24_bitmask_decompress), validating every part first.
func decodeWeight(prefix, format string, vals, mask, shape, offs *model.Tensor) (*model.Tensor, error) {
	name := prefix + ".weight"
	bad := func(format string, a ...any) error {
		return fmt.Errorf("sparse tensor %q: %s", name, fmt.Sprintf(format, a...))
	}
	if shape.DType != model.I32 || shape.Elems() != 2 || shape.Check() != nil {
		return nil, bad("%s must hold 2 I32 dimensions, has dtype %s and shape %v", shape.Name, shape.DType, shape.Shape)
	}
	rows := int(int32(binary.LittleEndian.Uint32(shape.Data)))
	cols := int(int32(binary.LittleEndian.Uint32(shape.Data[4:])))
	if rows <= 0 || cols <= 0 || int64(rows) > maxSparseElems/int64(cols) {
		return nil, bad("shape [%d %d] is not a matrix shrink can hold", rows, cols)
	}
	mb := (cols + 7) / 8
	if mask.DType != model.U8 || len(mask.Shape) != 2 || mask.Shape[0] != rows || mask.Shape[1] != mb || mask.Check() != nil {
		return nil, bad("%s has dtype %s and shape %v, want U8 [%d %d] for shape [%d %d]", mask.Name, mask.DType, mask.Shape, rows, mb, rows, cols)
	}
	switch vals.DType {
	case model.F32, model.F16, model.BF16:
	default:
		return nil, bad("%s has dtype %s; shrink reads F32, F16 and BF16 values", vals.Name, vals.DType)
	}
	if err := vals.Check(); err != nil {
		return nil, bad("%v", err)
	}
	es := vals.DType.BlockBytes()
	// Count each row's bits; padding bits past the last column must be clear.
	counts := make([]int, rows)
	total := 0
	for r := 0; r < rows; r++ {
		row := mask.Data[r*mb : (r+1)*mb]
		if pad := cols % 8; pad != 0 && row[mb-1]>>pad != 0 {
			return nil, bad("%s row %d sets bits past column %d", mask.Name, r, cols)
		}
		for _, b := range row {
			counts[r] += bits.OnesCount8(b)
		}
		total += counts[r]
	}
	switch format {
	case formatBitmask24:
		if cols%4 != 0 || len(vals.Shape) != 2 || vals.Shape[0] != rows || vals.Shape[1] != cols/2 {
			return nil, bad("%s has shape %v, want [%d %d] for 2:4 shape [%d %d]", vals.Name, vals.Shape, rows, cols/2, rows, cols)
		}
		for r := 0; r < rows; r++ {
			for g := 0; g < cols; g += 4 {
				b := mask.Data[r*mb+g/8] >> (g % 8) & 15
				if bits.OnesCount8(b) != 2 {
					return nil, bad("%s row %d, columns %d..%d: %d entries, want 2 in every group of 4", mask.Name, r, g, g+3, bits.OnesCount8(b))
				}
			}
		}
	case formatBitmask:
		if len(vals.Shape) != 1 {
			return nil, bad("%s has shape %v, want 1 dimension", vals.Name, vals.Shape)
		}
		if offs != nil {
			if offs.DType != model.I32 || len(offs.Shape) != 1 || offs.Shape[0] != rows || offs.Check() != nil {
				return nil, bad("%s has dtype %s and shape %v, want I32 [%d]", offs.Name, offs.DType, offs.Shape, rows)
			}
			n := 0
			for r := 0; r < rows; r++ {
				o := int(int32(binary.LittleEndian.Uint32(offs.Data[4*r:])))
				if o != n {
					return nil, bad("%s[%d] is %d; the bitmask puts row %d at %d of %d values (row offsets out of range)", offs.Name, r, o, r, n, vals.Elems())
				}
				n += counts[r]
			}
		}
	default:
		return nil, bad("unknown sparse format %q", format)
	}
	if vals.Elems() != total {
		return nil, bad("%s holds %d values, the bitmask marks %d", vals.Name, vals.Elems(), total)
	}
	dense := make([]byte, rows*cols*es)
	k := 0
	for r := 0; r < rows; r++ {
		row := mask.Data[r*mb : (r+1)*mb]
		for i, b := range row {
			for ; b != 0; b &= b - 1 { // the set bits, lowest first
				c := r*cols + 8*i + bits.TrailingZeros8(b)
				copy(dense[c*es:(c+1)*es], vals.Data[k*es:(k+1)*es])
				k++
			}
		}
	}
	return &model.Tensor{Name: name, DType: vals.DType, Shape: []int{rows, cols}, Data: dense}, nil
}
