// Package safetensors reads and writes the safetensors container: an 8-byte
// little-endian header length, a JSON header naming each tensor's dtype, shape
// and byte range, then the raw little-endian tensor bytes.
//
// Files are memory-mapped and tensor data is never copied: each tensor's Data
// is a slice of the mapping, valid until the File is closed. Reading is strict
// about anything that could make a tensor read the wrong bytes (ranges past the
// data, overlapping ranges, sizes that disagree with the shape, duplicate
// names) and lenient about holes between tensors, which the format forbids but
// which are harmless.
//
// # Quantized layout
//
// Safetensors has no dtype for GGUF's block-quantized types, so shrink stores
// them in a layout of its own (version 1) that ordinary readers see as plain
// U8 tensors, while every other tensor stays as it is. A tensor of a block type
// (Q8_0, Q4_0, Q4_1, Q4_K or Q6_K) and logical shape [d0, ..., dn-1, cols],
// cols a multiple of the block size, is stored as a U8 tensor of shape
// [d0*...*dn-1, cols/block_elems*block_bytes] holding exactly GGUF's blocks,
// row after row. The header's __metadata__ records its logical dtype and
// shape as a JSON object in a string, beside the layout's version; a Q4_0
// matrix "w" of [288, 768] is stored as U8 [288, 432] (24 blocks of 18 bytes a
// row) and described by
//
//	"shrink.quant.tensor.w": "{\"dtype\":\"Q4_0\",\"shape\":[288,768]}",
//	"shrink.quant.version": "1"
//
// Each file (each shard of a sharded checkpoint) describes the tensors it
// holds. Parse and Open return such tensors with their block
// type and logical shape, and drop the layout's keys from the File's
// Metadata; Encode and the writers built on it write them. Reading rejects
// anything inconsistent: a key naming a tensor the file lacks, an unknown
// dtype or version, storage that is not U8 or whose shape disagrees with the
// logical one, columns that are not whole blocks, ranks above 8, dimensions
// above 2^40, and keys under "shrink.quant." the layout does not define.
// Other tools read such a tensor as the uint8 matrix of its blocks.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/shrinkml/shrink/internal/fileio"
	"github.com/shrinkml/shrink/model"
)

// MaxHeaderSize is the largest JSON header accepted, the limit of the
// reference implementation (100 MB).
const MaxHeaderSize = 100_000_000

// File is an opened safetensors file. Its tensors' Data alias the file mapping
// and must not be used after Close.
type File struct {
	// Name is the path the file was read from (or the name given to Parse).
	Name string
	// Metadata is the header's __metadata__ map, nil when the header has none.
	// The quantized layout's keys are not in it: they are read into the
	// tensors they describe.
	Metadata map[string]string
	// Tensors are in data (offset) order.
	Tensors []*model.Tensor
	// DataStart is the offset of the first data byte: 8 plus the header length.
	DataStart int64

	data   []byte
	closer io.Closer
}

// Open maps path read-only and parses it. Tensor data is not copied.
func Open(path string) (*File, error) {
	data, closer, err := fileio.Map(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	f, err := Parse(path, data)
	if err != nil {
		closer.Close()
		return nil, err
	}
	f.closer = closer
	return f, nil
}

// Parse parses a whole safetensors file held in data; name is used in error
// messages. Tensor data alias data.
func Parse(name string, data []byte) (*File, error) {
	h, err := parseHeader(data)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", name, err)
	}
	f := &File{Name: name, Metadata: h.metadata, DataStart: h.dataStart, data: data}
	f.Tensors = make([]*model.Tensor, len(h.tensors))
	for i, ti := range h.tensors {
		b, e := h.dataStart+ti.begin, h.dataStart+ti.end
		f.Tensors[i] = &model.Tensor{Name: ti.name, DType: ti.dtype, Shape: ti.shape, Data: data[b:e:e]}
	}
	if err := applyQuant(f); err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", name, err)
	}
	return f, nil
}

// Tensor returns the tensor with the given name, or nil.
func (f *File) Tensor(name string) *model.Tensor {
	for _, t := range f.Tensors {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Close releases the file mapping.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	err := f.closer.Close()
	f.closer = nil
	f.data = nil
	return err
}

// dtypeNames maps the header's dtype strings to shrink's dtypes.
var dtypeNames = map[string]model.DType{
	"F32": model.F32, "F16": model.F16, "BF16": model.BF16,
	"I8": model.I8, "U8": model.U8, "I32": model.I32,
}

// otherDTypes are valid safetensors dtypes that shrink does not read.
var otherDTypes = map[string]bool{
	"BOOL": true, "F4": true, "F6_E2M3": true, "F6_E3M2": true, "F8_E5M2": true, "F8_E4M3": true,
	"F8_E8M0": true, "I16": true, "U16": true, "U32": true, "F64": true, "I64": true, "U64": true,
	"C64": true,
}

// DTypeName returns the safetensors name of d ("F32", "BF16", ...) and whether
// safetensors has such a dtype; block-quantized types have none and are
// stored in the quantized layout instead (see CanStore).
func DTypeName(d model.DType) (string, bool) {
	switch d {
	case model.F32, model.F16, model.BF16, model.I8, model.U8, model.I32:
		return d.String(), true
	}
	return "", false
}

type tensorInfo struct {
	name       string
	dtype      model.DType
	shape      []int
	begin, end int64 // relative to the data section
}

type header struct {
	metadata  map[string]string
	tensors   []tensorInfo // offset order
	dataStart int64
}

// parseHeader parses and validates the header of a whole file held in data.
// It never allocates more than a small multiple of len(data).
func parseHeader(data []byte) (*header, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("file is %d bytes, too short for the 8-byte header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("header length %d exceeds the limit of %d bytes", n, MaxHeaderSize)
	}
	if n > uint64(len(data)-8) {
		return nil, fmt.Errorf("header length %d runs past the end of the file (%d bytes)", n, len(data))
	}
	raw := data[8 : 8+n]
	if !utf8.Valid(raw) {
		return nil, errors.New("header is not valid UTF-8")
	}
	h := &header{dataStart: 8 + int64(n)}
	dataLen := int64(len(data)) - h.dataStart

	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := expectDelim(dec, '{'); err != nil {
		return nil, fmt.Errorf("header is not a JSON object: %v", err)
	}
	seen := map[string]bool{}
	for dec.More() {
		key, err := readKey(dec)
		if err != nil {
			return nil, fmt.Errorf("header is not valid JSON: %w", err)
		}
		if seen[key] {
			return nil, fmt.Errorf("header has the key %q twice", key)
		}
		seen[key] = true
		if key == "__metadata__" {
			if h.metadata, err = readMetadata(dec); err != nil {
				return nil, jsonError("__metadata__", err)
			}
			continue
		}
		ti, err := readTensorInfo(dec, key)
		if err != nil {
			return nil, jsonError(fmt.Sprintf("tensor %q", key), err)
		}
		if ti.end > dataLen {
			return nil, fmt.Errorf("tensor %q: data_offsets [%d, %d] run past the end of the data (%d bytes)", key, ti.begin, ti.end, dataLen)
		}
		h.tensors = append(h.tensors, ti)
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, fmt.Errorf("header is not valid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("header has data after its JSON object")
	}

	sort.Slice(h.tensors, func(i, j int) bool {
		a, b := &h.tensors[i], &h.tensors[j]
		if a.begin != b.begin {
			return a.begin < b.begin
		}
		if a.end != b.end {
			return a.end < b.end
		}
		return a.name < b.name
	})
	var maxEnd int64
	var maxName string
	for _, ti := range h.tensors {
		if ti.begin == ti.end {
			continue // an empty range overlaps nothing
		}
		if ti.begin < maxEnd {
			return nil, fmt.Errorf("tensor %q: data_offsets [%d, %d] overlap tensor %q, which ends at %d", ti.name, ti.begin, ti.end, maxName, maxEnd)
		}
		maxEnd, maxName = ti.end, ti.name
	}
	return h, nil
}

// syntaxError marks a malformed JSON text, as opposed to valid JSON with
// wrong content.
type syntaxError struct{ err error }

func (e *syntaxError) Error() string { return e.err.Error() }

// token is dec.Token with a premature end reported as a syntax error.
func token(dec *json.Decoder) (json.Token, error) {
	tok, err := dec.Token()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, &syntaxError{err}
	}
	return tok, nil
}

// jsonError words an error found while reading the header.
func jsonError(context string, err error) error {
	var se *syntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("header is not valid JSON: %v", se.err)
	}
	return fmt.Errorf("%s: %w", context, err)
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := token(dec)
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("found %v where %q was expected", describe(tok), string(want))
	}
	return nil
}

func readKey(dec *json.Decoder) (string, error) {
	tok, err := token(dec)
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("found %v where a key was expected", describe(tok))
	}
	return s, nil
}

func describe(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		return strconv.Quote(string(v))
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}

// readMetadata reads the __metadata__ value: an object of strings, or null.
func readMetadata(dec *json.Decoder) (map[string]string, error) {
	tok, err := token(dec)
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("found %v where an object of strings was expected", describe(tok))
	}
	md := map[string]string{}
	for dec.More() {
		key, err := readKey(dec)
		if err != nil {
			return nil, err
		}
		if _, dup := md[key]; dup {
			return nil, fmt.Errorf("key %q appears twice", key)
		}
		tok, err := token(dec)
		if err != nil {
			return nil, err
		}
		s, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("value of %q is %v, not a string", key, describe(tok))
		}
		md[key] = s
	}
	return md, expectDelim(dec, '}')
}

func readTensorInfo(dec *json.Decoder, name string) (tensorInfo, error) {
	ti := tensorInfo{name: name}
	if name == "" {
		return ti, errors.New("a tensor has an empty name")
	}
	if err := expectDelim(dec, '{'); err != nil {
		return ti, err
	}
	var dtypeName string
	var haveDType, haveShape, haveOffsets bool
	seen := map[string]bool{}
	for dec.More() {
		key, err := readKey(dec)
		if err != nil {
			return ti, err
		}
		if seen[key] {
			return ti, fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		switch key {
		case "dtype":
			tok, err := token(dec)
			if err != nil {
				return ti, err
			}
			s, ok := tok.(string)
			if !ok {
				return ti, fmt.Errorf("dtype is %v, not a string", describe(tok))
			}
			dtypeName, haveDType = s, true
		case "shape":
			dims, err := readInts(dec, "shape", -1)
			if err != nil {
				return ti, err
			}
			ti.shape = make([]int, len(dims))
			for i, d := range dims {
				if int64(int(d)) != d {
					return ti, fmt.Errorf("dimension %d does not fit an int", d)
				}
				ti.shape[i] = int(d)
			}
			haveShape = true
		case "data_offsets":
			offs, err := readInts(dec, "data_offsets", 2)
			if err != nil {
				return ti, err
			}
			ti.begin, ti.end = offs[0], offs[1]
			haveOffsets = true
		default:
			// Unknown keys are ignored, as the reference implementation does.
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return ti, &syntaxError{err}
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return ti, err
	}
	switch {
	case !haveDType:
		return ti, errors.New("dtype is missing")
	case !haveShape:
		return ti, errors.New("shape is missing")
	case !haveOffsets:
		return ti, errors.New("data_offsets is missing")
	}
	d, ok := dtypeNames[dtypeName]
	if !ok {
		if otherDTypes[dtypeName] {
			return ti, fmt.Errorf("unsupported dtype %s (shrink reads F32, F16, BF16, I8, U8 and I32)", dtypeName)
		}
		return ti, fmt.Errorf("unknown dtype %q", dtypeName)
	}
	ti.dtype = d
	if ti.end < ti.begin {
		return ti, fmt.Errorf("data_offsets [%d, %d] end before they begin", ti.begin, ti.end)
	}
	size, err := model.ByteSize(d, ti.shape)
	if err != nil {
		return ti, err
	}
	if size != ti.end-ti.begin {
		return ti, fmt.Errorf("%s %v needs %d bytes, data_offsets [%d, %d] hold %d", d, ti.shape, size, ti.begin, ti.end, ti.end-ti.begin)
	}
	return ti, nil
}

// readInts reads an array of non-negative integers; want >= 0 fixes its length.
func readInts(dec *json.Decoder, what string, want int) ([]int64, error) {
	if err := expectDelim(dec, '['); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var out []int64
	for dec.More() {
		tok, err := token(dec)
		if err != nil {
			return nil, err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%s holds %v, not an integer", what, describe(tok))
		}
		v, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s holds %s, not a 64-bit integer", what, num)
		}
		if v < 0 {
			return nil, fmt.Errorf("%s holds the negative number %d", what, v)
		}
		out = append(out, v)
	}
	if err := expectDelim(dec, ']'); err != nil {
		return nil, err
	}
	if want >= 0 && len(out) != want {
		return nil, fmt.Errorf("%s has %d numbers, want %d", what, len(out), want)
	}
	return out, nil
}
