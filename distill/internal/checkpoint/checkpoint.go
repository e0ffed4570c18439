// Package checkpoint reads and writes the training checkpoints of
// distill/train and distill/lm: a run's named float32 and bool arrays
// (weights, AdamW moments, masks), its step, its progress, and the settings a
// resumed run must share with it.
//
// A file is the magic "SHRKCKPT", a little-endian uint32 version, a uint32
// header length, the header (JSON), the arrays' raw little-endian values in
// the header's order (a bool as one byte, 0 or 1), and a CRC-32C of every
// byte before it. A reader checks the sizes the header declares against the
// file before it allocates anything, so a corrupt, truncated or lying file is
// an error, never a panic or a huge allocation.
package checkpoint

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"os"

	"github.com/shrinkml/shrink/internal/fileio"
)

// Magic opens every checkpoint file.
const Magic = "SHRKCKPT"

// Version is the layout this package writes and reads.
const Version = 1

// maxHeader bounds the header's length.
const maxHeader = 16 << 20

// Field is a setting a resumed run must share with the run that wrote the
// checkpoint, rendered as text.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Array is one named array: exactly one of F32 and Bool is set.
type Array struct {
	Name string
	F32  []float32
	Bool []bool
}

// File is a checkpoint's content.
type File struct {
	Engine string          // "mlp" or "llama"
	Step   int             // optimizer steps done
	Match  []Field         // settings a resume must share
	State  json.RawMessage // the engine's progress (losses, counters, sampler state)
	Arrays []Array
}

// header is the JSON header on disk.
type header struct {
	Engine string          `json:"engine"`
	Step   int             `json:"step"`
	Match  []Field         `json:"match"`
	State  json.RawMessage `json:"state,omitempty"`
	Arrays []arrayInfo     `json:"arrays"`
}

type arrayInfo struct {
	Name string `json:"name"`
	Type string `json:"type"` // "f32" or "bool"
	Len  int64  `json:"len"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Write writes f to path atomically: into a temporary file beside it,
// synced, then renamed over path.
func Write(path string, f *File) error {
	h := header{Engine: f.Engine, Step: f.Step, Match: f.Match, State: f.State}
	for _, a := range f.Arrays {
		switch {
		case a.F32 != nil && a.Bool == nil:
			h.Arrays = append(h.Arrays, arrayInfo{a.Name, "f32", int64(len(a.F32))})
		case a.Bool != nil && a.F32 == nil:
			h.Arrays = append(h.Arrays, arrayInfo{a.Name, "bool", int64(len(a.Bool))})
		default:
			return fmt.Errorf("checkpoint %s: array %q must have one of F32 and Bool", path, a.Name)
		}
	}
	hj, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if len(hj) > maxHeader {
		return fmt.Errorf("checkpoint %s: a header of %d bytes is over the limit of %d", path, len(hj), maxHeader)
	}
	err = fileio.WriteFile(path, true, func(out *bufio.Writer) error {
		crc := crc32.New(castagnoli)
		w := io.MultiWriter(out, crc)
		var pre [16]byte
		copy(pre[:], Magic)
		binary.LittleEndian.PutUint32(pre[8:], Version)
		binary.LittleEndian.PutUint32(pre[12:], uint32(len(hj)))
		w.Write(pre[:])
		w.Write(hj)
		chunk := make([]byte, 0, 1<<16)
		flush := func() {
			w.Write(chunk)
			chunk = chunk[:0]
		}
		for _, a := range f.Arrays {
			for _, v := range a.F32 {
				if len(chunk)+4 > cap(chunk) {
					flush()
				}
				chunk = binary.LittleEndian.AppendUint32(chunk, math.Float32bits(v))
			}
			for _, v := range a.Bool {
				if len(chunk)+1 > cap(chunk) {
					flush()
				}
				b := byte(0)
				if v {
					b = 1
				}
				chunk = append(chunk, b)
			}
		}
		flush()
		var sum [4]byte
		binary.LittleEndian.PutUint32(sum[:], crc.Sum32())
		_, err := out.Write(sum[:])
		return err
	})
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return nil
}

// Read reads and checks the checkpoint at path.
func Read(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	f, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return f, nil
}

// Decode parses and checks a checkpoint held in memory.
func Decode(data []byte) (*File, error) {
	if len(data) < 20 || string(data[:8]) != Magic {
		return nil, errors.New("not a shrink checkpoint (no SHRKCKPT header)")
	}
	if v := binary.LittleEndian.Uint32(data[8:]); v != Version {
		return nil, fmt.Errorf("version %d; this shrink reads version %d", v, Version)
	}
	hl := int64(binary.LittleEndian.Uint32(data[12:]))
	if hl > maxHeader || 16+hl+4 > int64(len(data)) {
		return nil, fmt.Errorf("a header of %d bytes does not fit in a file of %d (truncated?)", hl, len(data))
	}
	var h header
	dec := json.NewDecoder(bytes.NewReader(data[16 : 16+hl]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if h.Engine == "" || h.Step < 0 {
		return nil, fmt.Errorf("header: engine %q, step %d", h.Engine, h.Step)
	}
	// The arrays must fill the file exactly; sizes are checked one by one
	// so that no sum overflows.
	body := int64(len(data)) - 16 - hl - 4
	need := int64(0)
	seen := map[string]bool{}
	for _, a := range h.Arrays {
		size := int64(4)
		if a.Type == "bool" {
			size = 1
		} else if a.Type != "f32" {
			return nil, fmt.Errorf("array %q has type %q; want f32 or bool", a.Name, a.Type)
		}
		if seen[a.Name] {
			return nil, fmt.Errorf("array %q appears twice", a.Name)
		}
		seen[a.Name] = true
		if a.Len < 0 || a.Len > (body-need)/size {
			return nil, fmt.Errorf("array %q of %d values does not fit in the file's %d bytes (truncated?)", a.Name, a.Len, len(data))
		}
		need += a.Len * size
	}
	if need != body {
		return nil, fmt.Errorf("the arrays take %d bytes but the file holds %d after its header", need, body)
	}
	end := len(data) - 4
	if got, want := crc32.Checksum(data[:end], castagnoli), binary.LittleEndian.Uint32(data[end:]); got != want {
		return nil, fmt.Errorf("checksum %08x, the file says %08x: the file is corrupt", got, want)
	}
	f := &File{Engine: h.Engine, Step: h.Step, Match: h.Match, State: h.State}
	off := 16 + hl
	for _, a := range h.Arrays {
		arr := Array{Name: a.Name}
		if a.Type == "f32" {
			arr.F32 = make([]float32, a.Len)
			for i := range arr.F32 {
				arr.F32[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[off+4*int64(i):]))
			}
			off += 4 * a.Len
		} else {
			arr.Bool = make([]bool, a.Len)
			for i := range arr.Bool {
				switch data[off+int64(i)] {
				case 0:
				case 1:
					arr.Bool[i] = true
				default:
					return nil, fmt.Errorf("array %q: value %d is not a bool", a.Name, data[off+int64(i)])
				}
			}
			off += a.Len
		}
		f.Arrays = append(f.Arrays, arr)
	}
	return f, nil
}

// Check reports the first setting of want that the checkpoint at path does
// not share, naming the file and the field, and a checkpoint of another
// engine.
func (f *File) Check(path, engine string, want []Field) error {
	if f.Engine != engine {
		return fmt.Errorf("checkpoint %s: written by the %s trainer, not %s", path, f.Engine, engine)
	}
	have := make(map[string]string, len(f.Match))
	for _, m := range f.Match {
		have[m.Name] = m.Value
	}
	for _, w := range want {
		v, ok := have[w.Name]
		switch {
		case !ok:
			return fmt.Errorf("checkpoint %s: no %s recorded; it was written by another version of shrink or another kind of run", path, w.Name)
		case v != w.Value:
			return fmt.Errorf("checkpoint %s: %s is %s there but %s in this run; resume with the settings it was written with", path, w.Name, v, w.Value)
		}
		delete(have, w.Name)
	}
	for _, m := range f.Match { // in the file's order, for a stable message
		if _, ok := have[m.Name]; ok {
			return fmt.Errorf("checkpoint %s: it records %s = %s, which this run does not have", path, m.Name, m.Value)
		}
	}
	return nil
}

// F32 returns the float32 array name, which must hold n values.
func (f *File) F32(path, name string, n int) ([]float32, error) {
	for _, a := range f.Arrays {
		if a.Name == name {
			if a.F32 == nil || len(a.F32) != n {
				return nil, fmt.Errorf("checkpoint %s: array %q has %d values; want %d float32s", path, name, max(len(a.F32), len(a.Bool)), n)
			}
			return a.F32, nil
		}
	}
	return nil, fmt.Errorf("checkpoint %s: no array %q", path, name)
}

// Bool returns the bool array name, which must hold n values, or nil when
// the checkpoint has none of that name.
func (f *File) Bool(path, name string, n int) ([]bool, error) {
	for _, a := range f.Arrays {
		if a.Name == name {
			if a.Bool == nil || len(a.Bool) != n {
				return nil, fmt.Errorf("checkpoint %s: array %q has %d values; want %d bools", path, name, max(len(a.F32), len(a.Bool)), n)
			}
			return a.Bool, nil
		}
	}
	return nil, nil
}

// Hasher sums training data so that a resume can tell it was given the
// same: a CRC-32C of the values' little-endian bytes, with their count.
type Hasher struct {
	h   hash.Hash32
	n   int64
	buf []byte
}

// NewHasher returns an empty Hasher.
func NewHasher() *Hasher {
	return &Hasher{h: crc32.New(castagnoli), buf: make([]byte, 0, 1<<16)}
}

func (h *Hasher) put(v uint32) {
	if len(h.buf)+4 > cap(h.buf) {
		h.h.Write(h.buf)
		h.buf = h.buf[:0]
	}
	h.buf = binary.LittleEndian.AppendUint32(h.buf, v)
	h.n++
}

// F32 adds float32 values.
func (h *Hasher) F32(v []float32) {
	for _, x := range v {
		h.put(math.Float32bits(x))
	}
}

// Ints adds integers, each as its low 32 bits.
func (h *Hasher) Ints(v []int) {
	for _, x := range v {
		h.put(uint32(x))
	}
}

// String renders the sum and the count of values.
func (h *Hasher) String() string {
	h.h.Write(h.buf)
	h.buf = h.buf[:0]
	return fmt.Sprintf("%d values, crc32c %08x", h.n, h.h.Sum32())
}
