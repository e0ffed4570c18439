package model

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// Tensor is one named array of a checkpoint. Shape is in PyTorch order, so a
// linear weight is [out, in] and the last dimension is the contiguous row.
// Data holds the raw little-endian bytes; it may point into a read-only
// memory-mapped file and must then not be written to.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// NewF32 returns an F32 tensor holding a copy of values.
func NewF32(name string, shape []int, values []float32) *Tensor {
	data := make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
	}
	return &Tensor{Name: name, DType: F32, Shape: append([]int(nil), shape...), Data: data}
}

// Elems is the number of elements (the product of the shape).
func (t *Tensor) Elems() int {
	n := 1
	for _, s := range t.Shape {
		n *= s
	}
	return n
}

// Cols is the length of one row (the last dimension), or 1 for a scalar.
func (t *Tensor) Cols() int {
	if len(t.Shape) == 0 {
		return 1
	}
	return t.Shape[len(t.Shape)-1]
}

// Rows is the number of rows: the product of all dimensions but the last.
func (t *Tensor) Rows() int {
	if t.Cols() == 0 {
		return 0
	}
	return t.Elems() / t.Cols()
}

// Check verifies that the byte length matches the dtype and shape.
func (t *Tensor) Check() error {
	want, err := ByteSize(t.DType, t.Shape)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if int64(len(t.Data)) != want {
		return fmt.Errorf("tensor %q: %s %v needs %d bytes, has %d", t.Name, t.DType, t.Shape, want, len(t.Data))
	}
	return nil
}

// Float32 returns the elements as float32. An aligned F32 tensor is returned as
// a view of its bytes without copying (treat it as read-only); any other dtype
// is decoded into a new slice.
func (t *Tensor) Float32() ([]float32, error) {
	if err := t.Check(); err != nil {
		return nil, err
	}
	n := t.Elems()
	if t.DType == F32 && n > 0 && hostLittleEndian && uintptr(unsafe.Pointer(&t.Data[0]))%4 == 0 {
		return unsafe.Slice((*float32)(unsafe.Pointer(&t.Data[0])), n), nil
	}
	out := make([]float32, n)
	if err := Dequantize(out, t.DType, t.Data); err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	return out, nil
}

var hostLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// Convert returns a copy of t stored as dtype d, which must be F32, F16 or BF16.
func (t *Tensor) Convert(d DType) (*Tensor, error) {
	if !d.Float() {
		return nil, fmt.Errorf("tensor %q: conversion to %s is quantization, not a dtype change", t.Name, d)
	}
	if t.DType == d {
		return t, nil
	}
	vals, err := t.Float32()
	if err != nil {
		return nil, err
	}
	out := &Tensor{Name: t.Name, DType: d, Shape: append([]int(nil), t.Shape...)}
	switch d {
	case F32:
		out.Data = make([]byte, 4*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint32(out.Data[4*i:], math.Float32bits(v))
		}
	case F16:
		out.Data = make([]byte, 2*len(vals))
		EncodeF16(out.Data, vals)
	case BF16:
		out.Data = make([]byte, 2*len(vals))
		EncodeBF16(out.Data, vals)
	}
	return out, nil
}
