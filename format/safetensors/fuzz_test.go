package safetensors

import (
	"bytes"
	"maps"
	"slices"
	"testing"
	"unsafe"

	"github.com/shrinkml/shrink/model"
)

// FuzzHeader parses arbitrary bytes as a whole safetensors file, tensors in
// the quantized layout included. Parsing must never panic, and anything it
// accepts must describe tensors that lie inside the data, do not overlap, and
// re-encode to a file that parses to the same tensors.
func FuzzHeader(f *testing.F) {
	f.Add(file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)))
	f.Add(file(`{"__metadata__":{"format":"pt"},"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[0,4]},"a":{"dtype":"U8","shape":[0],"data_offsets":[4,4]}}`, make([]byte, 6)))
	f.Add(file(`{"a":{"dtype":"I8","shape":[],"data_offsets":[1,2]}}  `, []byte{1, 2}))
	f.Add(file(`{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"F16","shape":[2],"data_offsets":[2,6]}}`, make([]byte, 6)))
	f.Add(file(`{}`, nil))
	f.Add(file(`{"__metadata__":{"shrink.quant.tensor.q":"{\"dtype\":\"Q4_0\",\"shape\":[2,32]}","shrink.quant.version":"1"},`+
		`"q":{"dtype":"U8","shape":[2,18],"data_offsets":[0,36]}}`, make([]byte, 36)))
	f.Add(file(`{"__metadata__":{"shrink.quant.tensor.q":"{\"dtype\":\"Q8_0\",\"shape\":[1,64]}","shrink.quant.version":"1"},`+
		`"q":{"dtype":"U8","shape":[2,34],"data_offsets":[0,68]}}`, make([]byte, 68)))
	f.Add(file(`{"__metadata__":{"shrink.quant.tensor.q":"{\"dtype\":\"INT8_CH\",\"shape\":[2,3]}","shrink.quant.version":"1"},`+
		`"q":{"dtype":"U8","shape":[2,5],"data_offsets":[0,10]}}`, make([]byte, 10)))
	f.Add(file(`{"__metadata__":{"shrink.quant.tensor.q":"{\"dtype\":\"INT4_G32_ASYM\",\"shape\":[1,64]}","shrink.quant.version":"1"},`+
		`"q":{"dtype":"U8","shape":[1,38],"data_offsets":[0,38]}}`, make([]byte, 38)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz", data)
		if err != nil {
			return
		}
		var prevEnd int64
		for _, x := range file.Tensors {
			if err := x.Check(); err != nil {
				t.Fatalf("accepted a bad tensor: %v", err)
			}
			if len(x.Data) == 0 {
				continue
			}
			// Tensors alias data with their capacity cut to their length, so
			// the offset comes from the addresses.
			begin := int64(uintptr(unsafe.Pointer(unsafe.SliceData(x.Data)))-uintptr(unsafe.Pointer(unsafe.SliceData(data)))) - file.DataStart
			if begin < prevEnd {
				t.Fatalf("tensor %q overlaps", x.Name)
			}
			prevEnd = begin + int64(len(x.Data))
		}
		var buf bytes.Buffer
		if err := Encode(&buf, file.Tensors, file.Metadata); err != nil {
			t.Fatalf("re-encoding an accepted file: %v", err)
		}
		again, err := Parse("again", buf.Bytes())
		if err != nil {
			t.Fatalf("re-parsing: %v", err)
		}
		if !maps.Equal(again.Metadata, file.Metadata) {
			t.Fatalf("metadata %v after a round trip, want %v", again.Metadata, file.Metadata)
		}
		if len(again.Tensors) != len(file.Tensors) {
			t.Fatalf("%d tensors after a round trip, want %d", len(again.Tensors), len(file.Tensors))
		}
		byName := map[string]*model.Tensor{}
		for _, x := range again.Tensors {
			byName[x.Name] = x
		}
		for _, x := range file.Tensors {
			y := byName[x.Name]
			if y == nil || y.DType != x.DType || !slices.Equal(y.Shape, x.Shape) || !bytes.Equal(y.Data, x.Data) {
				t.Fatalf("tensor %q changed in a round trip", x.Name)
			}
		}
	})
}
