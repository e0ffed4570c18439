package gguf

import (
	"fmt"
	"math"
)

// ValueType is the type tag GGUF stores before every metadata value.
type ValueType uint32

// The GGUF metadata value types, with the file format's numbering.
const (
	TypeUint8 ValueType = iota
	TypeInt8
	TypeUint16
	TypeInt16
	TypeUint32
	TypeInt32
	TypeFloat32
	TypeBool
	TypeString
	TypeArray
	TypeUint64
	TypeInt64
	TypeFloat64
)

var valueTypeNames = [...]string{"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"}

// String returns the short name of t, e.g. "u32" or "string".
func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("ValueType(%d)", uint32(t))
}

// Valid reports whether t is one of the thirteen GGUF value types.
func (t ValueType) Valid() bool { return t <= TypeFloat64 }

// minSize is the fewest bytes a value of type t occupies in a file; it bounds
// element counts before anything is allocated.
func (t ValueType) minSize() int64 {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64, TypeString:
		return 8
	case TypeArray:
		return 12
	}
	return 1
}

// Value is one metadata value together with its GGUF type, so that it can be
// written back exactly as it was read.
//
// V holds uint8, int8, uint16, int16, uint32, int32, float32, bool, string,
// uint64, int64 or float64 for scalars. An array of scalars holds a slice of
// the element's Go type ([]string, []float32, ...) with Elem set to the element
// type; an array of arrays holds []Value with Elem == TypeArray.
type Value struct {
	Type ValueType
	Elem ValueType
	V    any
}

// KV is one metadata key/value pair.
type KV struct {
	Key   string
	Value Value
}

// ValueOf wraps a Go value in a Value. Scalars and slices of the GGUF Go types
// map to themselves; int and uint become i64 and u64, []int becomes an i64
// array, and []any whose elements are arrays becomes an array of arrays.
func ValueOf(v any) (Value, error) {
	switch x := v.(type) {
	case Value:
		return x, nil
	case uint8:
		return Value{Type: TypeUint8, V: x}, nil
	case int8:
		return Value{Type: TypeInt8, V: x}, nil
	case uint16:
		return Value{Type: TypeUint16, V: x}, nil
	case int16:
		return Value{Type: TypeInt16, V: x}, nil
	case uint32:
		return Value{Type: TypeUint32, V: x}, nil
	case int32:
		return Value{Type: TypeInt32, V: x}, nil
	case float32:
		return Value{Type: TypeFloat32, V: x}, nil
	case bool:
		return Value{Type: TypeBool, V: x}, nil
	case string:
		return Value{Type: TypeString, V: x}, nil
	case uint64:
		return Value{Type: TypeUint64, V: x}, nil
	case int64:
		return Value{Type: TypeInt64, V: x}, nil
	case float64:
		return Value{Type: TypeFloat64, V: x}, nil
	case int:
		return Value{Type: TypeInt64, V: int64(x)}, nil
	case uint:
		return Value{Type: TypeUint64, V: uint64(x)}, nil
	case []uint8:
		return Value{Type: TypeArray, Elem: TypeUint8, V: x}, nil
	case []int8:
		return Value{Type: TypeArray, Elem: TypeInt8, V: x}, nil
	case []uint16:
		return Value{Type: TypeArray, Elem: TypeUint16, V: x}, nil
	case []int16:
		return Value{Type: TypeArray, Elem: TypeInt16, V: x}, nil
	case []uint32:
		return Value{Type: TypeArray, Elem: TypeUint32, V: x}, nil
	case []int32:
		return Value{Type: TypeArray, Elem: TypeInt32, V: x}, nil
	case []float32:
		return Value{Type: TypeArray, Elem: TypeFloat32, V: x}, nil
	case []bool:
		return Value{Type: TypeArray, Elem: TypeBool, V: x}, nil
	case []string:
		return Value{Type: TypeArray, Elem: TypeString, V: x}, nil
	case []uint64:
		return Value{Type: TypeArray, Elem: TypeUint64, V: x}, nil
	case []int64:
		return Value{Type: TypeArray, Elem: TypeInt64, V: x}, nil
	case []float64:
		return Value{Type: TypeArray, Elem: TypeFloat64, V: x}, nil
	case []int:
		out := make([]int64, len(x))
		for i, e := range x {
			out[i] = int64(e)
		}
		return Value{Type: TypeArray, Elem: TypeInt64, V: out}, nil
	case []Value:
		for i, e := range x {
			if e.Type != TypeArray {
				return Value{}, fmt.Errorf("element %d of an array of arrays is a %s", i, e.Type)
			}
		}
		return Value{Type: TypeArray, Elem: TypeArray, V: x}, nil
	case []any:
		out := make([]Value, len(x))
		for i, e := range x {
			ev, err := ValueOf(e)
			if err != nil {
				return Value{}, fmt.Errorf("element %d: %w", i, err)
			}
			if ev.Type != TypeArray {
				return Value{}, fmt.Errorf("element %d of an array of arrays is a %s", i, ev.Type)
			}
			out[i] = ev
		}
		return Value{Type: TypeArray, Elem: TypeArray, V: out}, nil
	}
	return Value{}, fmt.Errorf("cannot store a %T in GGUF", v)
}

// GoValue returns the value as plain Go data: V itself, except that an array
// of arrays becomes []any holding the inner arrays' Go values.
func (v Value) GoValue() any {
	if vs, ok := v.V.([]Value); ok {
		out := make([]any, len(vs))
		for i, e := range vs {
			out[i] = e.GoValue()
		}
		return out
	}
	return v.V
}

// Int returns an integer value of any width; ok is false for other types and
// for u64 values beyond the int64 range.
func (v Value) Int() (n int64, ok bool) {
	switch x := v.V.(type) {
	case uint8:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case int16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case int32:
		return int64(x), true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	case int64:
		return x, true
	}
	return 0, false
}

// Float returns an f32 or f64 value as float64; ok is false for other types.
func (v Value) Float() (f float64, ok bool) {
	switch x := v.V.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// String formats the value for messages; long arrays are abbreviated.
func (v Value) String() string {
	if v.Type == TypeArray {
		n := arrayLen(v.V)
		return fmt.Sprintf("[%d x %s]", n, v.Elem)
	}
	if s, ok := v.V.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v.V)
}

func arrayLen(v any) int {
	switch x := v.(type) {
	case []uint8:
		return len(x)
	case []int8:
		return len(x)
	case []uint16:
		return len(x)
	case []int16:
		return len(x)
	case []uint32:
		return len(x)
	case []int32:
		return len(x)
	case []float32:
		return len(x)
	case []bool:
		return len(x)
	case []string:
		return len(x)
	case []uint64:
		return len(x)
	case []int64:
		return len(x)
	case []float64:
		return len(x)
	case []Value:
		return len(x)
	}
	return -1
}
