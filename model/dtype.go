package model

import (
	"fmt"
	"strings"
)

// DType is the storage type of a tensor's elements.
type DType uint8

// The storage types shrink reads and writes. Block types pack a fixed number of
// weights of one row together with their scale(s); their layouts are GGUF's.
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
)

type dtypeInfo struct {
	name       string
	blockElems int // weights per block (1 for scalar types)
	blockBytes int // bytes per block
}

var dtypeInfos = [...]dtypeInfo{
	Invalid: {"invalid", 0, 0},
	F32:     {"F32", 1, 4},
	F16:     {"F16", 1, 2},
	BF16:    {"BF16", 1, 2},
	I8:      {"I8", 1, 1},
	U8:      {"U8", 1, 1},
	I32:     {"I32", 1, 4},
	Q8_0:    {"Q8_0", 32, 34},
	Q4_0:    {"Q4_0", 32, 18},
	Q4_1:    {"Q4_1", 32, 20},
	Q4_K:    {"Q4_K", 256, 144},
	Q6_K:    {"Q6_K", 256, 210},
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

// Quantized reports whether d is a block-quantized type.
func (d DType) Quantized() bool { return d.BlockElems() > 1 }

// Float reports whether d is one of the plain floating-point types.
func (d DType) Float() bool { return d == F32 || d == F16 || d == BF16 }

// BitsPerWeight is the storage cost of one element, scales included.
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
// blocks. Overflow and negative dimensions are errors, so a lying header cannot
// make the caller allocate an absurd amount.
func ByteSize(d DType, shape []int) (int64, error) {
	if !d.Valid() {
		return 0, fmt.Errorf("unknown dtype %d", uint8(d))
	}
	n := int64(1)
	for _, s := range shape {
		if s < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if s != 0 && n > (1<<62)/int64(s) {
			return 0, fmt.Errorf("shape %v is too large", shape)
		}
		n *= int64(s)
	}
	be := int64(d.BlockElems())
	if be > 1 {
		row := int64(1)
		if len(shape) > 0 {
			row = int64(shape[len(shape)-1])
		}
		if row%be != 0 {
			return 0, fmt.Errorf("%s needs rows that are a multiple of %d, shape %v has rows of %d", d, be, shape, row)
		}
	}
	return n / be * int64(d.BlockBytes()), nil
}
