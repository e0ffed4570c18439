package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"unicode/utf8"
)

// Magic is the four bytes every GGUF file starts with.
const Magic = "GGUF"

// DefaultAlignment is the tensor data alignment when general.alignment is absent.
const DefaultAlignment = 32

// MaxDims is the most dimensions a ggml tensor can have (GGML_MAX_DIMS).
const MaxDims = 4

// maxArrayDepth bounds nested arrays so that a crafted file cannot recurse deeply.
const maxArrayDepth = 8

// File is a parsed GGUF buffer.
type File struct {
	// Version is the format version, 2 or 3 (identical for little-endian files).
	Version uint32
	// KVs are the metadata in file order.
	KVs []KV
	// Tensors are the tensor infos in file order.
	Tensors []TensorInfo
	// Alignment is general.alignment, or DefaultAlignment when absent.
	Alignment int64
	// DataOffset is where the tensor data section starts in the buffer.
	DataOffset int64
}

// TensorInfo describes one tensor. Dims is ggml's ne: Dims[0] is the length of
// a row, so a PyTorch [out, in] weight has Dims [in, out].
type TensorInfo struct {
	Name string
	Type GGMLType
	Dims []int64
	// Offset is relative to the data section; Write computes it and ignores
	// the value it is given.
	Offset int64
	// Data is the tensor's bytes. After Read it aliases the buffer that was
	// read; for Write it is the payload.
	Data []byte
}

// Shape returns the dimensions in PyTorch order (Dims reversed).
func (t *TensorInfo) Shape() []int {
	s := make([]int, len(t.Dims))
	for i, d := range t.Dims {
		s[len(s)-1-i] = int(d)
	}
	return s
}

// Get returns the value of key.
func (f *File) Get(key string) (Value, bool) {
	for _, kv := range f.KVs {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return Value{}, false
}

// Tensor returns the info of the named tensor, or nil.
func (f *File) Tensor(name string) *TensorInfo {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i]
		}
	}
	return nil
}

// Read parses a GGUF buffer. Every count and length is checked against the
// buffer's size before anything is allocated; tensor Data slices alias data.
func Read(data []byte) (*File, error) {
	f, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	return f, nil
}

// decoder reads little-endian fields from a buffer and remembers the first error.
type decoder struct {
	buf []byte
	off int64
}

func (d *decoder) remaining() int64 { return int64(len(d.buf)) - d.off }

func (d *decoder) take(n int64, what string) ([]byte, error) {
	if n < 0 || n > d.remaining() {
		return nil, fmt.Errorf("truncated at offset %d: %s needs %d bytes, %d remain", d.off, what, n, d.remaining())
	}
	b := d.buf[d.off : d.off+n]
	d.off += n
	return b, nil
}

func (d *decoder) u8(what string) (uint8, error) {
	b, err := d.take(1, what)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (d *decoder) u16(what string) (uint16, error) {
	b, err := d.take(2, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func (d *decoder) u32(what string) (uint32, error) {
	b, err := d.take(4, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (d *decoder) u64(what string) (uint64, error) {
	b, err := d.take(8, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// str reads a u64 length and that many bytes, checking the length against the
// bytes that remain before copying.
func (d *decoder) str(what string) (string, error) {
	start := d.off
	n, err := d.u64(what + " length")
	if err != nil {
		return "", err
	}
	if n > uint64(d.remaining()) {
		return "", fmt.Errorf("%s at offset %d claims %d bytes, only %d remain", what, start, n, d.remaining())
	}
	b, _ := d.take(int64(n), what)
	return string(b), nil
}

// count reads a count of elements of at least minSize bytes each and rejects
// counts that the remaining bytes cannot hold.
func (d *decoder) count(what string, minSize int64, signed bool) (int64, error) {
	start := d.off
	n, err := d.u64(what)
	if err != nil {
		return 0, err
	}
	if signed && int64(n) < 0 {
		return 0, fmt.Errorf("%s at offset %d is negative (%d)", what, start, int64(n))
	}
	if n > uint64(d.remaining()/minSize) {
		return 0, fmt.Errorf("%s at offset %d is %d, more than the %d remaining bytes can hold", what, start, n, d.remaining())
	}
	return int64(n), nil
}

func parse(data []byte) (*File, error) {
	d := &decoder{buf: data}
	magic, err := d.take(4, "magic")
	if err != nil {
		return nil, err
	}
	if string(magic) != Magic {
		return nil, fmt.Errorf("bad magic %q, not a GGUF file", magic)
	}
	version, err := d.u32("version")
	if err != nil {
		return nil, err
	}
	switch {
	case version == 2 || version == 3:
	case version&0xffff == 0 && version != 0:
		return nil, fmt.Errorf("unsupported version %d (a big-endian file?)", version)
	default:
		return nil, fmt.Errorf("unsupported version %d (want 2 or 3)", version)
	}
	// The minimum sizes of a tensor info (name length, n_dims, type, offset)
	// and of a key/value (key length, type, one byte) bound both counts.
	nTensors, err := d.count("tensor count", 8+4+4+8, true)
	if err != nil {
		return nil, err
	}
	nKV, err := d.count("key/value count", 8+4+1, true)
	if err != nil {
		return nil, err
	}
	f := &File{Version: version, Alignment: DefaultAlignment}

	f.KVs = make([]KV, 0, nKV)
	keys := make(map[string]bool, nKV)
	for i := int64(0); i < nKV; i++ {
		off := d.off
		key, err := d.str(fmt.Sprintf("key %d", i))
		if err != nil {
			return nil, err
		}
		if !utf8.ValidString(key) {
			return nil, fmt.Errorf("key %d at offset %d is not valid UTF-8: %q", i, off, key)
		}
		if keys[key] {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		keys[key] = true
		typ, err := d.u32(fmt.Sprintf("type of key %q", key))
		if err != nil {
			return nil, err
		}
		v, err := d.value(ValueType(typ), 0)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		f.KVs = append(f.KVs, KV{Key: key, Value: v})
	}
	if v, ok := f.Get("general.alignment"); ok {
		a, ok := v.V.(uint32)
		if !ok {
			return nil, fmt.Errorf("general.alignment is a %s, want u32", v.Type)
		}
		if a == 0 || a&(a-1) != 0 {
			return nil, fmt.Errorf("general.alignment %d is not a nonzero power of two", a)
		}
		f.Alignment = int64(a)
	}

	f.Tensors = make([]TensorInfo, 0, nTensors)
	names := make(map[string]bool, nTensors)
	for i := int64(0); i < nTensors; i++ {
		off := d.off
		name, err := d.str(fmt.Sprintf("name of tensor %d", i))
		if err != nil {
			return nil, err
		}
		if !utf8.ValidString(name) {
			return nil, fmt.Errorf("name of tensor %d at offset %d is not valid UTF-8: %q", i, off, name)
		}
		if names[name] {
			return nil, fmt.Errorf("duplicate tensor name %q", name)
		}
		names[name] = true
		nDims, err := d.u32(fmt.Sprintf("tensor %q: n_dims", name))
		if err != nil {
			return nil, err
		}
		if nDims > MaxDims {
			return nil, fmt.Errorf("tensor %q: %d dimensions, at most %d are allowed", name, nDims, MaxDims)
		}
		ti := TensorInfo{Name: name, Dims: make([]int64, nDims)}
		for j := range ti.Dims {
			v, err := d.u64(fmt.Sprintf("tensor %q: ne[%d]", name, j))
			if err != nil {
				return nil, err
			}
			if int64(v) < 0 {
				return nil, fmt.Errorf("tensor %q: ne[%d] is negative (%d)", name, j, int64(v))
			}
			ti.Dims[j] = int64(v)
		}
		typ, err := d.u32(fmt.Sprintf("tensor %q: type", name))
		if err != nil {
			return nil, err
		}
		ti.Type = GGMLType(typ)
		if !ti.Type.Known() {
			return nil, fmt.Errorf("tensor %q: unknown tensor type %d", name, typ)
		}
		offset, err := d.u64(fmt.Sprintf("tensor %q: offset", name))
		if err != nil {
			return nil, err
		}
		if offset > math.MaxInt64 {
			return nil, fmt.Errorf("tensor %q: offset %d is beyond any file", name, offset)
		}
		ti.Offset = int64(offset)
		if ti.Offset%f.Alignment != 0 {
			return nil, fmt.Errorf("tensor %q: offset %d is not aligned to %d", name, ti.Offset, f.Alignment)
		}
		f.Tensors = append(f.Tensors, ti)
	}

	f.DataOffset = alignUp(d.off, f.Alignment)
	type span struct {
		start, end int64
		name       string
	}
	spans := make([]span, 0, len(f.Tensors))
	for i := range f.Tensors {
		t := &f.Tensors[i]
		size, err := tensorBytes(t.Type, t.Dims)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		if size == 0 {
			t.Data = data[:0:0]
			continue
		}
		start := f.DataOffset + t.Offset
		if t.Offset > int64(len(data)) || start > int64(len(data)) || size > int64(len(data))-start {
			return nil, fmt.Errorf("tensor %q: data range [%d, +%d) at offset %d is beyond the end of the file (%d bytes)",
				t.Name, t.Offset, size, f.DataOffset, len(data))
		}
		t.Data = data[start : start+size : start+size]
		spans = append(spans, span{start, start + size, t.Name})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			return nil, fmt.Errorf("tensors %q and %q overlap in the data section", spans[i-1].name, spans[i].name)
		}
	}
	return f, nil
}

func alignUp(n, a int64) int64 { return (n + a - 1) / a * a }

// value reads one value of type t; depth counts enclosing arrays.
func (d *decoder) value(t ValueType, depth int) (Value, error) {
	v := Value{Type: t}
	var err error
	switch t {
	case TypeUint8:
		v.V, err = d.u8("u8 value")
	case TypeInt8:
		var x uint8
		x, err = d.u8("i8 value")
		v.V = int8(x)
	case TypeUint16:
		v.V, err = d.u16("u16 value")
	case TypeInt16:
		var x uint16
		x, err = d.u16("i16 value")
		v.V = int16(x)
	case TypeUint32:
		v.V, err = d.u32("u32 value")
	case TypeInt32:
		var x uint32
		x, err = d.u32("i32 value")
		v.V = int32(x)
	case TypeFloat32:
		var x uint32
		x, err = d.u32("f32 value")
		v.V = math.Float32frombits(x)
	case TypeBool:
		v.V, err = d.boolean()
	case TypeString:
		v.V, err = d.str("string value")
	case TypeUint64:
		v.V, err = d.u64("u64 value")
	case TypeInt64:
		var x uint64
		x, err = d.u64("i64 value")
		v.V = int64(x)
	case TypeFloat64:
		var x uint64
		x, err = d.u64("f64 value")
		v.V = math.Float64frombits(x)
	case TypeArray:
		return d.array(depth)
	default:
		return v, fmt.Errorf("unknown value type %d at offset %d", uint32(t), d.off-4)
	}
	return v, err
}

func (d *decoder) boolean() (bool, error) {
	b, err := d.u8("bool value")
	if err != nil {
		return false, err
	}
	if b > 1 {
		return false, fmt.Errorf("bool value %d at offset %d is neither 0 nor 1", b, d.off-1)
	}
	return b == 1, nil
}

func (d *decoder) array(depth int) (Value, error) {
	if depth >= maxArrayDepth {
		return Value{}, fmt.Errorf("arrays nested deeper than %d at offset %d", maxArrayDepth, d.off)
	}
	et, err := d.u32("array element type")
	if err != nil {
		return Value{}, err
	}
	elem := ValueType(et)
	if !elem.Valid() {
		return Value{}, fmt.Errorf("unknown value type %d for array elements at offset %d", et, d.off-4)
	}
	n, err := d.count("array length", elem.minSize(), false)
	if err != nil {
		return Value{}, err
	}
	// count checked n*minSize against the remaining bytes, so the takes of
	// fixed-size elements below cannot fail.
	v := Value{Type: TypeArray, Elem: elem}
	switch elem {
	case TypeUint8:
		b, _ := d.take(n, "array")
		v.V = append([]uint8(nil), b...)
	case TypeInt8:
		b, _ := d.take(n, "array")
		out := make([]int8, n)
		for i := range out {
			out[i] = int8(b[i])
		}
		v.V = out
	case TypeUint16:
		b, _ := d.take(2*n, "array")
		out := make([]uint16, n)
		for i := range out {
			out[i] = binary.LittleEndian.Uint16(b[2*i:])
		}
		v.V = out
	case TypeInt16:
		b, _ := d.take(2*n, "array")
		out := make([]int16, n)
		for i := range out {
			out[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
		}
		v.V = out
	case TypeUint32:
		b, _ := d.take(4*n, "array")
		out := make([]uint32, n)
		for i := range out {
			out[i] = binary.LittleEndian.Uint32(b[4*i:])
		}
		v.V = out
	case TypeInt32:
		b, _ := d.take(4*n, "array")
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
		}
		v.V = out
	case TypeFloat32:
		b, _ := d.take(4*n, "array")
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		v.V = out
	case TypeBool:
		out := make([]bool, n)
		for i := range out {
			if out[i], err = d.boolean(); err != nil {
				return Value{}, fmt.Errorf("element %d: %w", i, err)
			}
		}
		v.V = out
	case TypeUint64:
		b, _ := d.take(8*n, "array")
		out := make([]uint64, n)
		for i := range out {
			out[i] = binary.LittleEndian.Uint64(b[8*i:])
		}
		v.V = out
	case TypeInt64:
		b, _ := d.take(8*n, "array")
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
		v.V = out
	case TypeFloat64:
		b, _ := d.take(8*n, "array")
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		}
		v.V = out
	case TypeString:
		out := make([]string, n)
		for i := range out {
			if out[i], err = d.str(fmt.Sprintf("string %d of array", i)); err != nil {
				return Value{}, err
			}
		}
		v.V = out
	case TypeArray:
		out := make([]Value, n)
		for i := range out {
			if out[i], err = d.array(depth + 1); err != nil {
				return Value{}, fmt.Errorf("element %d: %w", i, err)
			}
		}
		v.V = out
	}
	return v, nil
}
