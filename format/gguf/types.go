package gguf

import (
	"fmt"

	"github.com/shrinkml/shrink/model"
)

// GGMLType is a tensor's storage type, with ggml's numbering (enum ggml_type).
type GGMLType uint32

// The ggml tensor types. Numbers 4, 5, 31-33 and 36-38 belong to types that
// were removed from ggml and are not accepted.
const (
	GGMLF32     GGMLType = 0
	GGMLF16     GGMLType = 1
	GGMLQ4_0    GGMLType = 2
	GGMLQ4_1    GGMLType = 3
	GGMLQ5_0    GGMLType = 6
	GGMLQ5_1    GGMLType = 7
	GGMLQ8_0    GGMLType = 8
	GGMLQ8_1    GGMLType = 9
	GGMLQ2_K    GGMLType = 10
	GGMLQ3_K    GGMLType = 11
	GGMLQ4_K    GGMLType = 12
	GGMLQ5_K    GGMLType = 13
	GGMLQ6_K    GGMLType = 14
	GGMLQ8_K    GGMLType = 15
	GGMLIQ2_XXS GGMLType = 16
	GGMLIQ2_XS  GGMLType = 17
	GGMLIQ3_XXS GGMLType = 18
	GGMLIQ1_S   GGMLType = 19
	GGMLIQ4_NL  GGMLType = 20
	GGMLIQ3_S   GGMLType = 21
	GGMLIQ2_S   GGMLType = 22
	GGMLIQ4_XS  GGMLType = 23
	GGMLI8      GGMLType = 24
	GGMLI16     GGMLType = 25
	GGMLI32     GGMLType = 26
	GGMLI64     GGMLType = 27
	GGMLF64     GGMLType = 28
	GGMLIQ1_M   GGMLType = 29
	GGMLBF16    GGMLType = 30
	GGMLTQ1_0   GGMLType = 34
	GGMLTQ2_0   GGMLType = 35
	GGMLMXFP4   GGMLType = 39
	GGMLNVFP4   GGMLType = 40
	GGMLQ1_0    GGMLType = 41
)

type ggmlTypeInfo struct {
	name       string
	blockElems int64
	blockBytes int64
	dtype      model.DType // Invalid when shrink cannot hold the type
}

// ggmlTypes lists block sizes from ggml's type_traits and the block structs of
// ggml-common.h (e.g. block_q5_K: 2 halves + 12 scale bytes + 32 + 128 = 176).
var ggmlTypes = map[GGMLType]ggmlTypeInfo{
	GGMLF32:     {"F32", 1, 4, model.F32},
	GGMLF16:     {"F16", 1, 2, model.F16},
	GGMLQ4_0:    {"Q4_0", 32, 18, model.Q4_0},
	GGMLQ4_1:    {"Q4_1", 32, 20, model.Q4_1},
	GGMLQ5_0:    {"Q5_0", 32, 22, model.Invalid},
	GGMLQ5_1:    {"Q5_1", 32, 24, model.Invalid},
	GGMLQ8_0:    {"Q8_0", 32, 34, model.Q8_0},
	GGMLQ8_1:    {"Q8_1", 32, 36, model.Invalid},
	GGMLQ2_K:    {"Q2_K", 256, 84, model.Invalid},
	GGMLQ3_K:    {"Q3_K", 256, 110, model.Invalid},
	GGMLQ4_K:    {"Q4_K", 256, 144, model.Q4_K},
	GGMLQ5_K:    {"Q5_K", 256, 176, model.Invalid},
	GGMLQ6_K:    {"Q6_K", 256, 210, model.Q6_K},
	GGMLQ8_K:    {"Q8_K", 256, 292, model.Invalid},
	GGMLIQ2_XXS: {"IQ2_XXS", 256, 66, model.Invalid},
	GGMLIQ2_XS:  {"IQ2_XS", 256, 74, model.Invalid},
	GGMLIQ3_XXS: {"IQ3_XXS", 256, 98, model.Invalid},
	GGMLIQ1_S:   {"IQ1_S", 256, 50, model.Invalid},
	GGMLIQ4_NL:  {"IQ4_NL", 32, 18, model.Invalid},
	GGMLIQ3_S:   {"IQ3_S", 256, 110, model.Invalid},
	GGMLIQ2_S:   {"IQ2_S", 256, 82, model.Invalid},
	GGMLIQ4_XS:  {"IQ4_XS", 256, 136, model.Invalid},
	GGMLI8:      {"I8", 1, 1, model.I8},
	GGMLI16:     {"I16", 1, 2, model.Invalid},
	GGMLI32:     {"I32", 1, 4, model.I32},
	GGMLI64:     {"I64", 1, 8, model.Invalid},
	GGMLF64:     {"F64", 1, 8, model.Invalid},
	GGMLIQ1_M:   {"IQ1_M", 256, 56, model.Invalid},
	GGMLBF16:    {"BF16", 1, 2, model.BF16},
	GGMLTQ1_0:   {"TQ1_0", 256, 54, model.Invalid},
	GGMLTQ2_0:   {"TQ2_0", 256, 66, model.Invalid},
	GGMLMXFP4:   {"MXFP4", 32, 17, model.Invalid},
	GGMLNVFP4:   {"NVFP4", 64, 36, model.Invalid},
	GGMLQ1_0:    {"Q1_0", 128, 18, model.Invalid},
}

// String returns ggml's name for t in upper case, e.g. "Q4_K".
func (t GGMLType) String() string {
	if info, ok := ggmlTypes[t]; ok {
		return info.name
	}
	return fmt.Sprintf("GGMLType(%d)", uint32(t))
}

// Known reports whether t is a ggml type whose block size is known.
func (t GGMLType) Known() bool {
	_, ok := ggmlTypes[t]
	return ok
}

// BlockElems is the number of weights in one block (1 for scalar types, 0 if unknown).
func (t GGMLType) BlockElems() int64 { return ggmlTypes[t].blockElems }

// BlockBytes is the size of one block in bytes (0 if unknown).
func (t GGMLType) BlockBytes() int64 { return ggmlTypes[t].blockBytes }

// DType returns the shrink dtype holding the same bytes, or false when shrink
// has no such dtype (Q5_K, IQ types, I16, F64, ...).
func (t GGMLType) DType() (model.DType, bool) {
	info, ok := ggmlTypes[t]
	if !ok || info.dtype == model.Invalid {
		return model.Invalid, false
	}
	return info.dtype, true
}

// GGMLTypeOf returns the ggml type that stores dtype d, or false when GGUF has none (U8).
func GGMLTypeOf(d model.DType) (GGMLType, bool) {
	for _, t := range ggmlTypeOrder {
		if ggmlTypes[t].dtype == d && d != model.Invalid {
			return t, true
		}
	}
	return 0, false
}

// ggmlTypeOrder fixes an iteration order over ggmlTypes for deterministic lookups.
var ggmlTypeOrder = []GGMLType{GGMLF32, GGMLF16, GGMLQ4_0, GGMLQ4_1, GGMLQ8_0, GGMLQ4_K, GGMLQ6_K, GGMLI8, GGMLI32, GGMLBF16}

// tensorBytes returns the data size of a tensor of type t with dims ne, or an
// error when a dimension is negative, the row is not whole blocks, or the size
// overflows.
func tensorBytes(t GGMLType, ne []int64) (int64, error) {
	info, ok := ggmlTypes[t]
	if !ok {
		return 0, fmt.Errorf("unknown tensor type %d", uint32(t))
	}
	n := int64(1)
	for _, d := range ne {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in %v", ne)
		}
		if d != 0 && n > (1<<62)/d {
			return 0, fmt.Errorf("dimensions %v are too large", ne)
		}
		n *= d
	}
	row := int64(1)
	if len(ne) > 0 {
		row = ne[0]
	}
	if row%info.blockElems != 0 {
		return 0, fmt.Errorf("%s needs rows that are a multiple of %d, ne[0] is %d", info.name, info.blockElems, row)
	}
	blocks := n / info.blockElems
	if blocks != 0 && blocks > (1<<62)/info.blockBytes {
		return 0, fmt.Errorf("dimensions %v are too large", ne)
	}
	return blocks * info.blockBytes, nil
}
