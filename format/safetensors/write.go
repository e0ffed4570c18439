package safetensors

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/shrinkml/shrink/internal/fileio"
	"github.com/shrinkml/shrink/model"
)

// Info describes one tensor of a header to be written: its data follows in
// the order the infos are given.
type Info struct {
	Name  string
	DType model.DType
	Shape []int
}

// InfoOf returns the header description of t.
func InfoOf(t *model.Tensor) Info { return Info{Name: t.Name, DType: t.DType, Shape: t.Shape} }

// Header returns the JSON header for tensors laid out in the given order, padded
// with spaces to a multiple of 8 bytes, without the length prefix. It is the
// reference implementation's layout: compact JSON, __metadata__ first (its keys
// in byte order; omitted when empty), then the tensors in data order.
// Block-quantized tensors are described in the quantized layout (see the
// package documentation), whose keys metadata may not use.
func Header(infos []Info, metadata map[string]string) ([]byte, error) {
	seen := make(map[string]bool, len(infos))
	for _, in := range infos {
		if err := checkInfo(in); err != nil {
			return nil, err
		}
		if seen[in.Name] {
			return nil, fmt.Errorf("tensor %q appears twice", in.Name)
		}
		seen[in.Name] = true
	}
	metadata, err := quantMetadata(infos, metadata)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 0, 64+80*len(infos))
	buf = append(buf, '{')
	if len(metadata) > 0 {
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			if !utf8.ValidString(k) || !utf8.ValidString(metadata[k]) {
				return nil, fmt.Errorf("metadata key %q or its value is not valid UTF-8", k)
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		buf = append(buf, `"__metadata__":{`...)
		for i, k := range keys {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendString(buf, k)
			buf = append(buf, ':')
			buf = appendString(buf, metadata[k])
		}
		buf = append(buf, '}')
	}
	var offset int64
	for i, in := range infos {
		size, _ := model.ByteSize(in.DType, in.Shape)
		dtype, shape := storageOf(in.DType, in.Shape)
		if i > 0 || len(metadata) > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, in.Name)
		buf = append(buf, `:{"dtype":"`...)
		buf = append(buf, dtype.String()...)
		buf = append(buf, `","shape":[`...)
		for j, d := range shape {
			if j > 0 {
				buf = append(buf, ',')
			}
			buf = strconv.AppendInt(buf, int64(d), 10)
		}
		buf = append(buf, `],"data_offsets":[`...)
		buf = strconv.AppendInt(buf, offset, 10)
		buf = append(buf, ',')
		offset += size
		buf = strconv.AppendInt(buf, offset, 10)
		buf = append(buf, "]}"...)
	}
	buf = append(buf, '}')
	for len(buf)%8 != 0 {
		buf = append(buf, ' ')
	}
	if len(buf) > MaxHeaderSize {
		return nil, fmt.Errorf("header of %d bytes exceeds the limit of %d bytes", len(buf), MaxHeaderSize)
	}
	return buf, nil
}

func checkInfo(in Info) error {
	if in.Name == "" {
		return errors.New("a tensor has an empty name")
	}
	if !utf8.ValidString(in.Name) {
		return fmt.Errorf("tensor name %q is not valid UTF-8", in.Name)
	}
	if in.Name == "__metadata__" {
		return errors.New(`a tensor cannot be named "__metadata__"`)
	}
	if !CanStore(in.DType) {
		return fmt.Errorf("tensor %q has dtype %s, which safetensors cannot store", in.Name, in.DType)
	}
	if in.DType.Quantized() {
		if err := checkQuantShape(in.DType, in.Shape); err != nil {
			return fmt.Errorf("tensor %q: %w", in.Name, err)
		}
	}
	if _, err := model.ByteSize(in.DType, in.Shape); err != nil {
		return fmt.Errorf("tensor %q: %w", in.Name, err)
	}
	return nil
}

// appendString appends s as a JSON string escaped the way serde_json does:
// only '"', '\\' and control characters are escaped; other text is raw UTF-8.
func appendString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			buf = append(buf, '\\', '"')
		case c == '\\':
			buf = append(buf, '\\', '\\')
		case c == '\b':
			buf = append(buf, '\\', 'b')
		case c == '\f':
			buf = append(buf, '\\', 'f')
		case c == '\n':
			buf = append(buf, '\\', 'n')
		case c == '\r':
			buf = append(buf, '\\', 'r')
		case c == '\t':
			buf = append(buf, '\\', 't')
		case c < 0x20:
			buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			buf = append(buf, c)
		}
	}
	return append(buf, '"')
}

// Writer streams a safetensors file: the header is written first from the
// tensor descriptions, then each tensor's bytes in turn, so a caller never
// needs all tensor data in memory at once.
type Writer struct {
	w     io.Writer
	infos []Info
	sizes []int64
	next  int
	err   error
}

// NewWriter writes the header for infos (see Header) to w and returns a Writer
// that expects the tensors' data in the same order.
func NewWriter(w io.Writer, infos []Info, metadata map[string]string) (*Writer, error) {
	hdr, err := Header(infos, metadata)
	if err != nil {
		return nil, err
	}
	sw := &Writer{w: w, infos: infos, sizes: make([]int64, len(infos))}
	for i, in := range infos {
		sw.sizes[i], _ = model.ByteSize(in.DType, in.Shape)
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(hdr)))
	if _, err := w.Write(n[:]); err != nil {
		return nil, err
	}
	if _, err := w.Write(hdr); err != nil {
		return nil, err
	}
	return sw, nil
}

// WriteTensor writes the bytes of the next tensor, which must be the one named.
func (sw *Writer) WriteTensor(name string, data []byte) error {
	if sw.err != nil {
		return sw.err
	}
	if sw.next >= len(sw.infos) {
		return fmt.Errorf("tensor %q: all %d tensors of the header are already written", name, len(sw.infos))
	}
	in := sw.infos[sw.next]
	if name != in.Name {
		return fmt.Errorf("tensor %q written where the header has %q next", name, in.Name)
	}
	if int64(len(data)) != sw.sizes[sw.next] {
		return fmt.Errorf("tensor %q: %d bytes written, the header says %s %v, %d bytes", name, len(data), in.DType, in.Shape, sw.sizes[sw.next])
	}
	if _, err := sw.w.Write(data); err != nil {
		sw.err = err
		return err
	}
	sw.next++
	return nil
}

// Close reports an error when fewer tensors were written than the header lists.
// It does not close the underlying writer.
func (sw *Writer) Close() error {
	if sw.err != nil {
		return sw.err
	}
	if sw.next != len(sw.infos) {
		return fmt.Errorf("only %d of %d tensors were written; next is %q", sw.next, len(sw.infos), sw.infos[sw.next].Name)
	}
	return nil
}

// Encode writes tensors, laid out in the given order, and metadata to w as a
// safetensors file. The output depends only on the arguments.
func Encode(w io.Writer, tensors []*model.Tensor, metadata map[string]string) error {
	infos := make([]Info, len(tensors))
	for i, t := range tensors {
		if err := t.Check(); err != nil {
			return err
		}
		infos[i] = InfoOf(t)
	}
	sw, err := NewWriter(w, infos, metadata)
	if err != nil {
		return err
	}
	for _, t := range tensors {
		if err := sw.WriteTensor(t.Name, t.Data); err != nil {
			return err
		}
	}
	return sw.Close()
}

// WriteFile writes tensors and metadata to path atomically (see Encode). An
// existing file is replaced only when force is set.
func WriteFile(path string, tensors []*model.Tensor, metadata map[string]string, force bool) error {
	err := fileio.WriteFile(path, force, func(w *bufio.Writer) error {
		return Encode(w, tensors, metadata)
	})
	if err != nil {
		return fmt.Errorf("safetensors %s: %w", path, err)
	}
	return nil
}

// alignRank orders dtypes as the reference implementation's Dtype enum does
// (increasing alignment); block-quantized tensors rank as the U8 they are
// stored as.
var alignRank = map[model.DType]int{model.U8: 1, model.I8: 2, model.F16: 3, model.BF16: 4, model.I32: 5, model.F32: 6,
	model.Q8_0: 1, model.Q4_0: 1, model.Q4_1: 1, model.Q4_K: 1, model.Q6_K: 1,
	model.Int8Ch: 1, model.Int4G32: 1, model.Int4G64: 1, model.Int4G128: 1,
	model.Int4G32Asym: 1, model.Int4G64Asym: 1, model.Int4G128Asym: 1}

// ReferenceOrder returns tensors in the order the reference implementation
// (Python safetensors.torch.save_file) lays them out: by descending dtype
// alignment, then by name. Encoding in this order gives its bytes exactly when
// metadata has at most one key.
func ReferenceOrder(tensors []*model.Tensor) []*model.Tensor {
	out := append([]*model.Tensor(nil), tensors...)
	sort.SliceStable(out, func(i, j int) bool {
		ri, rj := alignRank[out[i].DType], alignRank[out[j].DType]
		if ri != rj {
			return ri > rj
		}
		return out[i].Name < out[j].Name
	})
	return out
}
