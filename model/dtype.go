package model

import (
	"fmt"
	"strings"
)

// DType is the storage type of a tensor's elements.
type DType uint8

// The storage types shrink reads and writes. Block types pack a fixed number of
// weights of one row together with their scale(s); the Q types' layouts are
// GGUF's, the INT types' are shrink's (see IntLayouts in blocks.go).
const (
	Invalid DType = iota
	F32
	F16
	BF16
	I8
	U8
	I32
	Q8_0
	Q4_0
	Q4_1
	Q4_K
	Q6_K
	// Int8Ch is int8 with one fp16 scale per row (per output channel).
	Int8Ch
	// Int4G32 to Int4G128Asym are 4-bit codes in groups of 32, 64 or 128
	// weights of a row, each group with an fp16 scale (and, for the Asym
	// types, an integer zero point).
	Int4G32
	Int4G64
	Int4G128
	Int4G32Asym
	Int4G64Asym
	Int4G128Asym
)

type dtypeInfo struct {
	name       string
	blockElems int // weights per block (1 for scalar types)
	blockBytes int // bytes per block
	rowHeader  int // bytes each row stores before its blocks (Int8Ch's scale)
}

var dtypeInfos = [...]dtypeInfo{
	Invalid: {"invalid", 0, 0, 0},
	F32:     {"F32", 1, 4, 0},
	F16:     {"F16", 1, 2, 0},
	BF16:    {"BF16", 1, 2, 0},
	I8:      {"I8", 1, 1, 0},
	U8:      {"U8", 1, 1, 0},
	I32:     {"I32", 1, 4, 0},
	Q8_0:    {"Q8_0", 32, 34, 0},
	Q4_0:    {"Q4_0", 32, 18, 0},
	Q4_1:    {"Q4_1", 32, 20, 0},
	Q4_K:    {"Q4_K", 256, 144, 0},
	Q6_K:    {"Q6_K", 256, 210, 0},

	Int8Ch:       {"INT8_CH", 1, 1, 2},
	Int4G32:      {"INT4_G32", 32, 2 + 16, 0},
	Int4G64:      {"INT4_G64", 64, 2 + 32, 0},
	Int4G128:     {"INT4_G128", 128, 2 + 64, 0},
	Int4G32Asym:  {"INT4_G32_ASYM", 32, 3 + 16, 0},
	Int4G64Asym:  {"INT4_G64_ASYM", 64, 3 + 32, 0},
	Int4G128Asym: {"INT4_G128_ASYM", 128, 3 + 64, 0},
}

// String returns the upper-case name used in reports, e.g. "F32" or "Q4_0".
func (d DType) String() string {
	if int(d) < len(dtypeInfos) {
		return dtypeInfos[d].name
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// Valid reports whether d is a known storage type.
func (d DType) Valid() bool { return d > Invalid && int(d) < len(dtypeInfos) }

// BlockElems is the number of elements one block holds (1 for scalar types).
func (d DType) BlockElems() int {
	if !d.Valid() {
		return 0
	}
	return dtypeInfos[d].blockElems
}

// BlockBytes is the size in bytes of one block (the element size for scalar types).
func (d DType) BlockBytes() int {
	if !d.Valid() {
		return 0
	}
	return dtypeInfos[d].blockBytes
}

// RowHeader is the number of bytes each row stores before its blocks: 2 for
// Int8Ch, whose rows start with their fp16 scale, and 0 for every other type.
func (d DType) RowHeader() int {
	if !d.Valid() {
		return 0
	}
	return dtypeInfos[d].rowHeader
}

// Quantized reports whether d is a quantized type: blocks with scales, or
// (Int8Ch) rows with a scale.
func (d DType) Quantized() bool { return d.BlockElems() > 1 || d.RowHeader() > 0 }

// Float reports whether d is one of the plain floating-point types.
func (d DType) Float() bool { return d == F32 || d == F16 || d == BF16 }

// BitsPerWeight is the storage cost of one element, block scales included;
// a row header (Int8Ch's scale) adds 8*RowHeader/cols more.
func (d DType) BitsPerWeight() float64 {
	if !d.Valid() {
		return 0
	}
	return float64(8*d.BlockBytes()) / float64(d.BlockElems())
}

// ParseDType accepts a dtype name in any case ("f16", "Q4_0", "bf16").
func ParseDType(s string) (DType, error) {
	for i, info := range dtypeInfos {
		if i != int(Invalid) && strings.EqualFold(info.name, s) {
			return DType(i), nil
		}
	}
	return Invalid, fmt.Errorf("unknown dtype %q", s)
}

// ByteSize returns the number of bytes a tensor of this dtype and shape occupies.
// The last dimension is the row; block types need rows that are a whole number of
// blocks, and a type with a row header (Int8Ch) adds it to every row. Overflow and
// negative dimensions are errors, so a lying header cannot make the caller
// allocate an absurd amount.
func ByteSize(d DType, shape []int) (int64, error) {
	if !d.Valid() {
		return 0, fmt.Errorf("unknown dtype %d", uint8(d))
	}
	const limit = 1 << 62
	n, rows := int64(1), int64(1)
	for i, s := range shape {
		if s < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if s != 0 && n > limit/int64(s) {
			return 0, fmt.Errorf("shape %v is too large", shape)
		}
		n *= int64(s)
		if i < len(shape)-1 {
			if s != 0 && rows > limit/int64(s) {
				return 0, fmt.Errorf("shape %v is too large", shape)
			}
			rows *= int64(s)
		}
	}
	be, bb, h := int64(d.BlockElems()), int64(d.BlockBytes()), int64(d.RowHeader())
	row := int64(1)
	if len(shape) > 0 {
		row = int64(shape[len(shape)-1])
	}
	if be > 1 && row%be != 0 {
		return 0, fmt.Errorf("%s needs rows that are a multiple of %d, shape %v has rows of %d", d, be, shape, row)
	}
	if n/be > limit/bb || (h > 0 && rows > limit/h) {
		return 0, fmt.Errorf("shape %v is too large", shape)
	}
	blocks, header := n/be*bb, rows*h
	if blocks > limit-header {
		return 0, fmt.Errorf("shape %v is too large", shape)
	}
	return blocks + header, nil
}

// RowBytes is the size of one row of cols elements of d: its blocks and its
// row header. It is an error when cols is not a whole number of blocks.
func RowBytes(d DType, cols int) (int, error) {
	n, err := ByteSize(d, []int{cols})
	return int(n), err
}
