package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/shrinkml/shrink/model"
)

// The quantized layout's __metadata__ keys. QuantVersionKey holds the layout
// version, QuantVersion; QuantTensorPrefix followed by a tensor's name holds
// that tensor's logical dtype and shape as compact JSON, e.g.
// {"dtype":"Q4_0","shape":[288,768]}. Every other key under QuantPrefix is
// reserved.
const (
	QuantPrefix       = "shrink.quant."
	QuantVersionKey   = QuantPrefix + "version"
	QuantTensorPrefix = QuantPrefix + "tensor."
	QuantVersion      = "1"
)

// Bounds on a quantized tensor's logical shape, far beyond any real model:
// GGUF allows rank 4, and no dimension reaches 2^40.
const (
	maxQuantRank       = 8
	maxQuantDim  int64 = 1 << 40
)

// quantDTypes are the block types the layout stores, by their names in the
// metadata: shrink's names, which are GGUF's.
var quantDTypes = map[string]model.DType{
	"Q8_0": model.Q8_0, "Q4_0": model.Q4_0, "Q4_1": model.Q4_1, "Q4_K": model.Q4_K, "Q6_K": model.Q6_K,
	"INT8_CH": model.Int8Ch, "INT4_G32": model.Int4G32, "INT4_G64": model.Int4G64, "INT4_G128": model.Int4G128,
	"INT4_G32_ASYM": model.Int4G32Asym, "INT4_G64_ASYM": model.Int4G64Asym, "INT4_G128_ASYM": model.Int4G128Asym,
}

// quantNames lists quantDTypes for messages.
const quantNames = "Q8_0, Q4_0, Q4_1, Q4_K, Q6_K, INT8_CH or INT4_G{32,64,128}[_ASYM]"

// CanStore reports whether Encode can write tensors of dtype d: the dtypes
// safetensors has (see DTypeName), and block types in the quantized layout.
func CanStore(d model.DType) bool {
	if _, ok := DTypeName(d); ok {
		return true
	}
	_, ok := quantDTypes[d.String()]
	return ok
}

// storageOf returns the dtype and shape the header gives a tensor: its own,
// or for a block type U8 [rows, bytes per row], rows being the product of
// all dimensions but the last (an INT8_CH row starts with its 2-byte scale).
func storageOf(d model.DType, shape []int) (model.DType, []int) {
	if _, ok := quantDTypes[d.String()]; !ok {
		return d, shape
	}
	rows, cols := 1, 1
	if len(shape) > 0 {
		cols = shape[len(shape)-1]
		for _, s := range shape[:len(shape)-1] {
			rows *= s
		}
	}
	return model.U8, []int{rows, cols/d.BlockElems()*d.BlockBytes() + d.RowHeader()}
}

// checkQuantShape checks the logical shape of a block-quantized tensor.
func checkQuantShape(d model.DType, shape []int) error {
	if len(shape) == 0 || len(shape) > maxQuantRank {
		return fmt.Errorf("%s shape %v has rank %d; the quantized layout holds ranks 1 to %d", d, shape, len(shape), maxQuantRank)
	}
	for _, s := range shape {
		if int64(s) > maxQuantDim {
			return fmt.Errorf("%s shape %v has a dimension over the quantized layout's limit of %d", d, shape, maxQuantDim)
		}
	}
	_, err := model.ByteSize(d, shape)
	return err
}

// quantEntry renders the metadata value describing a quantized tensor.
func quantEntry(d model.DType, shape []int) string {
	b := append([]byte(nil), `{"dtype":"`...)
	b = append(b, d.String()...)
	b = append(b, `","shape":[`...)
	for i, s := range shape {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(s), 10)
	}
	return string(append(b, "]}"...))
}

// quantMetadata returns metadata plus the quantized layout's keys for the
// block-quantized infos. Callers' own keys may not use QuantPrefix.
func quantMetadata(infos []Info, metadata map[string]string) (map[string]string, error) {
	for k := range metadata {
		if strings.HasPrefix(k, QuantPrefix) {
			return nil, fmt.Errorf("metadata key %q is reserved for the quantized layout", k)
		}
	}
	var out map[string]string
	for _, in := range infos {
		if !in.DType.Quantized() {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(metadata)+8)
			for k, v := range metadata {
				out[k] = v
			}
			out[QuantVersionKey] = QuantVersion
		}
		out[QuantTensorPrefix+in.Name] = quantEntry(in.DType, in.Shape)
	}
	if out == nil {
		return metadata, nil
	}
	return out, nil
}

// applyQuant turns the U8 tensors the metadata describes into tensors of
// their block type and logical shape, and removes the layout's keys from the
// metadata. It checks everything and allocates nothing in proportion to the
// shapes it reads.
func applyQuant(f *File) error {
	var keys []string
	for k := range f.Metadata {
		if strings.HasPrefix(k, QuantPrefix) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	sort.Strings(keys)
	version, haveVersion := f.Metadata[QuantVersionKey]
	if haveVersion && version != QuantVersion {
		return fmt.Errorf("__metadata__ %q is %q; this shrink reads quantized layout version %s", QuantVersionKey, version, QuantVersion)
	}
	byName := make(map[string]*model.Tensor, len(f.Tensors))
	for _, t := range f.Tensors {
		byName[t.Name] = t
	}
	for _, k := range keys {
		if k == QuantVersionKey {
			continue
		}
		name, ok := strings.CutPrefix(k, QuantTensorPrefix)
		if !ok {
			return fmt.Errorf("__metadata__ key %q is not part of quantized layout version %s", k, QuantVersion)
		}
		if !haveVersion {
			return fmt.Errorf("__metadata__ describes quantized tensor %q but has no %q", name, QuantVersionKey)
		}
		t := byName[name]
		if t == nil {
			return fmt.Errorf("__metadata__ key %q describes tensor %q, which the file does not hold", k, name)
		}
		d, shape, err := parseQuantEntry(f.Metadata[k])
		if err != nil {
			return fmt.Errorf("tensor %q: __metadata__ %q: %w", name, k, err)
		}
		sd, sshape := storageOf(d, shape)
		if t.DType != sd {
			return fmt.Errorf("tensor %q: the quantized layout stores %s blocks as %s, the header says %s", name, d, sd, t.DType)
		}
		if !slices.Equal(t.Shape, sshape) {
			return fmt.Errorf("tensor %q: %s %v is stored as %s %v, the header says %s %v", name, d, shape, sd, sshape, t.DType, t.Shape)
		}
		// Equal storage shapes give equal byte counts, and Parse has checked
		// the header's byte count against the data.
		t.DType, t.Shape = d, shape
	}
	md := make(map[string]string, len(f.Metadata)-len(keys))
	for k, v := range f.Metadata {
		if !strings.HasPrefix(k, QuantPrefix) {
			md[k] = v
		}
	}
	f.Metadata = md
	return nil
}

// parseQuantEntry reads a metadata value written by quantEntry; other
// spellings of the same JSON object are accepted.
func parseQuantEntry(s string) (model.DType, []int, error) {
	var v struct {
		DType *string  `json:"dtype"`
		Shape *[]int64 `json:"shape"`
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return model.Invalid, nil, fmt.Errorf(`want {"dtype":"Q8_0","shape":[rows,cols]}: %v`, err)
	}
	if _, err := dec.Token(); err == nil {
		return model.Invalid, nil, errors.New("data after the JSON object")
	}
	switch {
	case v.DType == nil:
		return model.Invalid, nil, errors.New("dtype is missing")
	case v.Shape == nil:
		return model.Invalid, nil, errors.New("shape is missing")
	}
	d, ok := quantDTypes[*v.DType]
	if !ok {
		return model.Invalid, nil, fmt.Errorf("dtype %q is not a block type of the layout (%s)", *v.DType, quantNames)
	}
	if len(*v.Shape) > maxQuantRank {
		return model.Invalid, nil, fmt.Errorf("shape has rank %d; the quantized layout holds ranks 1 to %d", len(*v.Shape), maxQuantRank)
	}
	shape := make([]int, len(*v.Shape))
	for i, x := range *v.Shape {
		if x < 0 || x > maxQuantDim || int64(int(x)) != x {
			return model.Invalid, nil, fmt.Errorf("shape %v has dimension %d, outside 0 to %d", *v.Shape, x, maxQuantDim)
		}
		shape[i] = int(x)
	}
	if err := checkQuantShape(d, shape); err != nil {
		return model.Invalid, nil, err
	}
	return d, shape, nil
}
