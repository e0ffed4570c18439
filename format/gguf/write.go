package gguf

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"unicode/utf8"
)

// Write writes a GGUF version 3 file: the key/values in the given order, the
// tensor infos in the given order, and each tensor's data at the next aligned
// offset, zero-padded to the alignment (general.alignment from kvs, else 32),
// as llama.cpp's writer does; a file without tensors ends after its header. Everything is validated before the first byte is
// written. The output depends only on the arguments.
func Write(w io.Writer, kvs []KV, tensors []TensorInfo) error {
	header, align, err := encodeHeader(kvs, tensors)
	if err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if _, err := w.Write(header); err != nil {
		return err
	}
	var zeros [256]byte
	pad := func(n int64) error {
		for n > 0 {
			k := min(n, int64(len(zeros)))
			if _, err := w.Write(zeros[:k]); err != nil {
				return err
			}
			n -= k
		}
		return nil
	}
	if len(tensors) == 0 {
		// No data section, so nothing to align: padding to a huge
		// general.alignment would only write zeros.
		return nil
	}
	if err := pad(alignUp(int64(len(header)), align) - int64(len(header))); err != nil {
		return err
	}
	for i := range tensors {
		data := tensors[i].Data
		if _, err := w.Write(data); err != nil {
			return err
		}
		if err := pad(alignUp(int64(len(data)), align) - int64(len(data))); err != nil {
			return err
		}
	}
	return nil
}

// encodeHeader validates the arguments and returns the bytes before the data
// section (without the final padding) and the alignment.
func encodeHeader(kvs []KV, tensors []TensorInfo) ([]byte, int64, error) {
	align := int64(DefaultAlignment)
	keys := make(map[string]bool, len(kvs))
	for _, kv := range kvs {
		if !utf8.ValidString(kv.Key) {
			return nil, 0, fmt.Errorf("key %q is not valid UTF-8", kv.Key)
		}
		if keys[kv.Key] {
			return nil, 0, fmt.Errorf("duplicate key %q", kv.Key)
		}
		keys[kv.Key] = true
		if kv.Key == "general.alignment" {
			a, ok := kv.Value.V.(uint32)
			if !ok || kv.Value.Type != TypeUint32 {
				return nil, 0, fmt.Errorf("general.alignment must be a u32, not %s", kv.Value.Type)
			}
			if a == 0 || a&(a-1) != 0 {
				return nil, 0, fmt.Errorf("general.alignment %d is not a nonzero power of two", a)
			}
			align = int64(a)
		}
	}
	b := make([]byte, 0, 1<<16)
	b = append(b, Magic...)
	b = binary.LittleEndian.AppendUint32(b, 3)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(tensors)))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(kvs)))
	var err error
	for _, kv := range kvs {
		b = appendString(b, kv.Key)
		b = binary.LittleEndian.AppendUint32(b, uint32(kv.Value.Type))
		if b, err = appendValue(b, kv.Value, 0); err != nil {
			return nil, 0, fmt.Errorf("key %q: %w", kv.Key, err)
		}
	}
	names := make(map[string]bool, len(tensors))
	var offset int64
	for i := range tensors {
		t := &tensors[i]
		if !utf8.ValidString(t.Name) {
			return nil, 0, fmt.Errorf("tensor name %q is not valid UTF-8", t.Name)
		}
		if names[t.Name] {
			return nil, 0, fmt.Errorf("duplicate tensor name %q", t.Name)
		}
		names[t.Name] = true
		if len(t.Dims) > MaxDims {
			return nil, 0, fmt.Errorf("tensor %q: %d dimensions, at most %d are allowed", t.Name, len(t.Dims), MaxDims)
		}
		size, err := tensorBytes(t.Type, t.Dims)
		if err != nil {
			return nil, 0, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		if int64(len(t.Data)) != size {
			return nil, 0, fmt.Errorf("tensor %q: %s %v needs %d bytes, has %d", t.Name, t.Type, t.Dims, size, len(t.Data))
		}
		b = appendString(b, t.Name)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(t.Dims)))
		for _, d := range t.Dims {
			b = binary.LittleEndian.AppendUint64(b, uint64(d))
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(t.Type))
		b = binary.LittleEndian.AppendUint64(b, uint64(offset))
		offset += alignUp(size, align)
	}
	return b, align, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// appendValue encodes v, checking that its Go value matches its GGUF type.
func appendValue(b []byte, v Value, depth int) ([]byte, error) {
	le := binary.LittleEndian
	mismatch := func() error {
		if v.Type == TypeArray {
			return fmt.Errorf("array of %s holds a %T", v.Elem, v.V)
		}
		return fmt.Errorf("value of type %s holds a %T", v.Type, v.V)
	}
	if v.Type != TypeArray {
		switch x := v.V.(type) {
		case uint8:
			if v.Type == TypeUint8 {
				return append(b, x), nil
			}
		case int8:
			if v.Type == TypeInt8 {
				return append(b, uint8(x)), nil
			}
		case uint16:
			if v.Type == TypeUint16 {
				return le.AppendUint16(b, x), nil
			}
		case int16:
			if v.Type == TypeInt16 {
				return le.AppendUint16(b, uint16(x)), nil
			}
		case uint32:
			if v.Type == TypeUint32 {
				return le.AppendUint32(b, x), nil
			}
		case int32:
			if v.Type == TypeInt32 {
				return le.AppendUint32(b, uint32(x)), nil
			}
		case float32:
			if v.Type == TypeFloat32 {
				return le.AppendUint32(b, math.Float32bits(x)), nil
			}
		case bool:
			if v.Type == TypeBool {
				return appendBool(b, x), nil
			}
		case string:
			if v.Type == TypeString {
				return appendString(b, x), nil
			}
		case uint64:
			if v.Type == TypeUint64 {
				return le.AppendUint64(b, x), nil
			}
		case int64:
			if v.Type == TypeInt64 {
				return le.AppendUint64(b, uint64(x)), nil
			}
		case float64:
			if v.Type == TypeFloat64 {
				return le.AppendUint64(b, math.Float64bits(x)), nil
			}
		}
		if !v.Type.Valid() {
			return nil, fmt.Errorf("unknown value type %d", uint32(v.Type))
		}
		return nil, mismatch()
	}
	if depth >= maxArrayDepth {
		return nil, fmt.Errorf("arrays nested deeper than %d", maxArrayDepth)
	}
	n := arrayLen(v.V)
	if n < 0 {
		return nil, mismatch()
	}
	b = le.AppendUint32(b, uint32(v.Elem))
	b = le.AppendUint64(b, uint64(n))
	switch x := v.V.(type) {
	case []uint8:
		if v.Elem == TypeUint8 {
			return append(b, x...), nil
		}
	case []int8:
		if v.Elem == TypeInt8 {
			for _, e := range x {
				b = append(b, uint8(e))
			}
			return b, nil
		}
	case []uint16:
		if v.Elem == TypeUint16 {
			for _, e := range x {
				b = le.AppendUint16(b, e)
			}
			return b, nil
		}
	case []int16:
		if v.Elem == TypeInt16 {
			for _, e := range x {
				b = le.AppendUint16(b, uint16(e))
			}
			return b, nil
		}
	case []uint32:
		if v.Elem == TypeUint32 {
			for _, e := range x {
				b = le.AppendUint32(b, e)
			}
			return b, nil
		}
	case []int32:
		if v.Elem == TypeInt32 {
			for _, e := range x {
				b = le.AppendUint32(b, uint32(e))
			}
			return b, nil
		}
	case []float32:
		if v.Elem == TypeFloat32 {
			for _, e := range x {
				b = le.AppendUint32(b, math.Float32bits(e))
			}
			return b, nil
		}
	case []bool:
		if v.Elem == TypeBool {
			for _, e := range x {
				b = appendBool(b, e)
			}
			return b, nil
		}
	case []string:
		if v.Elem == TypeString {
			for _, e := range x {
				b = appendString(b, e)
			}
			return b, nil
		}
	case []uint64:
		if v.Elem == TypeUint64 {
			for _, e := range x {
				b = le.AppendUint64(b, e)
			}
			return b, nil
		}
	case []int64:
		if v.Elem == TypeInt64 {
			for _, e := range x {
				b = le.AppendUint64(b, uint64(e))
			}
			return b, nil
		}
	case []float64:
		if v.Elem == TypeFloat64 {
			for _, e := range x {
				b = le.AppendUint64(b, math.Float64bits(e))
			}
			return b, nil
		}
	case []Value:
		if v.Elem == TypeArray {
			var err error
			for i, e := range x {
				if e.Type != TypeArray {
					return nil, fmt.Errorf("element %d of an array of arrays is a %s", i, e.Type)
				}
				if b, err = appendValue(b, e, depth+1); err != nil {
					return nil, fmt.Errorf("element %d: %w", i, err)
				}
			}
			return b, nil
		}
	}
	return nil, mismatch()
}
