package gguf

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestWriteLayout(t *testing.T) {
	kvs := []KV{
		{"general.architecture", Value{Type: TypeString, V: "llama"}},
		{"x", Value{Type: TypeArray, Elem: TypeFloat32, V: []float32{1, 2}}},
	}
	tensors := []TensorInfo{
		{Name: "a", Type: GGMLF32, Dims: []int64{3}, Data: make([]byte, 12), Offset: 999},
		{Name: "b", Type: GGMLQ8_0, Dims: []int64{32, 2}, Data: bytes.Repeat([]byte{7}, 68)},
		{Name: "empty", Type: GGMLF16, Dims: []int64{0, 5}, Data: nil},
		{Name: "c", Type: GGMLI8, Dims: []int64{1}, Data: []byte{9}},
	}
	var buf bytes.Buffer
	if err := Write(&buf, kvs, tensors); err != nil {
		t.Fatal(err)
	}
	f, err := Read(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	wantOffsets := []int64{0, 32, 128, 128} // 12 -> 32, 68 -> 96, 0, 1 -> 32
	for i, ti := range f.Tensors {
		if ti.Offset != wantOffsets[i] {
			t.Errorf("tensor %s at offset %d, want %d", ti.Name, ti.Offset, wantOffsets[i])
		}
		if !bytes.Equal(ti.Data, tensors[i].Data) || !reflect.DeepEqual(ti.Dims, tensors[i].Dims) || ti.Type != tensors[i].Type {
			t.Errorf("tensor %s does not read back", ti.Name)
		}
	}
	if got, want := int64(buf.Len()), f.DataOffset+128+32; got != want {
		t.Errorf("file is %d bytes, want %d (the last tensor padded too)", got, want)
	}
	if !reflect.DeepEqual(f.KVs, kvs) {
		t.Errorf("key/values do not read back: %v", f.KVs)
	}
	var again bytes.Buffer
	Write(&again, kvs, tensors)
	if !bytes.Equal(again.Bytes(), buf.Bytes()) {
		t.Errorf("Write is not deterministic")
	}
}

func TestWriteErrors(t *testing.T) {
	f32 := func(name string, n int64) TensorInfo {
		return TensorInfo{Name: name, Type: GGMLF32, Dims: []int64{n}, Data: make([]byte, 4*n)}
	}
	tests := []struct {
		name    string
		kvs     []KV
		tensors []TensorInfo
		want    string
	}{
		{"duplicate key", []KV{{"k", Value{Type: TypeBool, V: true}}, {"k", Value{Type: TypeBool, V: false}}}, nil, `duplicate key "k"`},
		{"non-UTF-8 key", []KV{{"\xff", Value{Type: TypeBool, V: true}}}, nil, "not valid UTF-8"},
		{"type mismatch", []KV{{"k", Value{Type: TypeUint32, V: int32(1)}}}, nil, `key "k": value of type u32 holds a int32`},
		{"unknown type", []KV{{"k", Value{Type: 42, V: int32(1)}}}, nil, `key "k": unknown value type 42`},
		{"array mismatch", []KV{{"k", Value{Type: TypeArray, Elem: TypeInt32, V: []float32{1}}}}, nil, `key "k": array of i32 holds a []float32`},
		{"array not slice", []KV{{"k", Value{Type: TypeArray, Elem: TypeInt32, V: 3}}}, nil, "array of i32 holds a int"},
		{"nested not array", []KV{{"k", Value{Type: TypeArray, Elem: TypeArray, V: []Value{{Type: TypeUint8, V: uint8(1)}}}}}, nil, "element 0 of an array of arrays is a u8"},
		{"alignment type", []KV{{"general.alignment", Value{Type: TypeUint64, V: uint64(32)}}}, nil, "general.alignment must be a u32"},
		{"alignment value", []KV{{"general.alignment", Value{Type: TypeUint32, V: uint32(24)}}}, nil, "general.alignment 24 is not a nonzero power of two"},
		{"duplicate tensor", nil, []TensorInfo{f32("t", 1), f32("t", 1)}, `duplicate tensor name "t"`},
		{"non-UTF-8 tensor", nil, []TensorInfo{f32("\xc3", 1)}, "not valid UTF-8"},
		{"short data", nil, []TensorInfo{{Name: "t", Type: GGMLF32, Dims: []int64{4}, Data: make([]byte, 15)}}, `tensor "t": F32 [4] needs 16 bytes, has 15`},
		{"too many dims", nil, []TensorInfo{{Name: "t", Type: GGMLF32, Dims: []int64{1, 1, 1, 1, 1}, Data: make([]byte, 4)}}, "5 dimensions"},
		{"partial block", nil, []TensorInfo{{Name: "t", Type: GGMLQ4_0, Dims: []int64{16}, Data: make([]byte, 9)}}, "multiple of 32"},
		{"unknown tensor type", nil, []TensorInfo{{Name: "t", Type: 5, Dims: []int64{1}, Data: make([]byte, 4)}}, "unknown tensor type 5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Write(&buf, tc.kvs, tc.tensors)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n <= 0 {
		return 0, errors.New("disk full")
	}
	w.n--
	return len(p), nil
}

func TestWritePassesWriterErrors(t *testing.T) {
	tensors := []TensorInfo{{Name: "t", Type: GGMLF32, Dims: []int64{3}, Data: make([]byte, 12)}}
	for n := 0; n < 4; n++ {
		if err := Write(&failWriter{n}, nil, tensors); err == nil || err.Error() != "disk full" {
			t.Errorf("failing after %d writes: %v", n, err)
		}
	}
	if err := Write(io.Discard, nil, tensors); err != nil {
		t.Error(err)
	}
}

func TestValueOf(t *testing.T) {
	tests := []struct {
		in   any
		want Value
	}{
		{uint8(1), Value{Type: TypeUint8, V: uint8(1)}},
		{int(-3), Value{Type: TypeInt64, V: int64(-3)}},
		{uint(3), Value{Type: TypeUint64, V: uint64(3)}},
		{"s", Value{Type: TypeString, V: "s"}},
		{[]int{1, 2}, Value{Type: TypeArray, Elem: TypeInt64, V: []int64{1, 2}}},
		{[]bool{true}, Value{Type: TypeArray, Elem: TypeBool, V: []bool{true}}},
		{[]any{[]uint16{1}}, Value{Type: TypeArray, Elem: TypeArray, V: []Value{{Type: TypeArray, Elem: TypeUint16, V: []uint16{1}}}}},
	}
	for _, tc := range tests {
		got, err := ValueOf(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ValueOf(%#v) = %#v, %v", tc.in, got, err)
		}
	}
	for _, bad := range []any{map[string]int{}, []any{1}, struct{}{}, []any{[]any{map[int]int{}}}} {
		if _, err := ValueOf(bad); err == nil {
			t.Errorf("ValueOf(%#v): no error", bad)
		}
	}
}
