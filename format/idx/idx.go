// Package idx reads IDX files, the format of the MNIST and Fashion-MNIST
// images and labels, plain or gzipped, and the Fashion-MNIST folder layout.
//
// An IDX file is two zero bytes, a type byte (0x08 for unsigned bytes, the
// only type shrink reads), a dimension count, each dimension as a big-endian
// uint32, then the elements in row-major order.
package idx

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// Array is an IDX array of unsigned bytes: Data holds the product of Dims
// elements in row-major order.
type Array struct {
	Dims []int
	Data []byte
}

// maxDims bounds the dimension count; MNIST-style files have one to three.
const maxDims = 8

// maxRatio is the largest expansion deflate can give (a run of one byte
// costs at least one bit per 258 bytes, about 1032:1), so a gzipped file of
// n bytes cannot hold more than maxRatio*n bytes of array.
const maxRatio = 1032

// Read reads one IDX array of unsigned bytes from r, plain or gzipped (told
// by the gzip magic). size is the number of bytes r holds: dimensions whose
// product r could not hold are refused before anything is allocated, and a
// gzipped array is read in pieces, so memory never outgrows the data.
func Read(r io.Reader, size int64) (*Array, error) {
	br := bufio.NewReader(r)
	limit := size
	var src io.Reader = br
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		src = zr
		limit = size * maxRatio
	}
	var hdr [4]byte
	if _, err := io.ReadFull(src, hdr[:]); err != nil {
		return nil, fmt.Errorf("header: %w", unexpected(err))
	}
	if hdr[0] != 0 || hdr[1] != 0 {
		return nil, fmt.Errorf("not an IDX file: it starts with %#02x %#02x, not two zero bytes", hdr[0], hdr[1])
	}
	if hdr[2] != 0x08 {
		return nil, fmt.Errorf("element type %#02x (%s) is not supported; shrink reads unsigned-byte (0x08) IDX files", hdr[2], typeName(hdr[2]))
	}
	nd := int(hdr[3])
	if nd == 0 || nd > maxDims {
		return nil, fmt.Errorf("%d dimensions; want 1 to %d", nd, maxDims)
	}
	raw := make([]byte, 4*nd)
	if _, err := io.ReadFull(src, raw); err != nil {
		return nil, fmt.Errorf("dimensions: %w", unexpected(err))
	}
	a := &Array{Dims: make([]int, nd)}
	avail := limit - int64(4+4*nd)
	total := int64(1)
	for i := range a.Dims {
		d := int64(binary.BigEndian.Uint32(raw[4*i:]))
		a.Dims[i] = int(d)
		// total stays at most avail, so the product cannot overflow.
		if d != 0 && total > avail/d {
			return nil, fmt.Errorf("dimensions %v hold more bytes than the %d-byte file can", dimsOf(raw), size)
		}
		total *= d
	}
	if src == br {
		// A plain file: the size is known, so the array is read in one piece.
		if total != avail {
			return nil, fmt.Errorf("dimensions %v hold %d bytes, but %d follow the header", a.Dims, total, avail)
		}
		a.Data = make([]byte, total)
		if _, err := io.ReadFull(br, a.Data); err != nil {
			return nil, fmt.Errorf("data: %w", unexpected(err))
		}
		return a, nil
	}
	// A gzipped file: read at most one byte more than the array, growing
	// the buffer as the data arrives, and read to the end so that gzip
	// checks its CRC.
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(src, total+1)); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	switch n := int64(buf.Len()); {
	case n < total:
		return nil, fmt.Errorf("data: %d of the %d bytes the dimensions %v promise: %w", n, total, a.Dims, io.ErrUnexpectedEOF)
	case n > total:
		return nil, fmt.Errorf("data: more than the %d bytes the dimensions %v hold", total, a.Dims)
	}
	a.Data = buf.Bytes()
	return a, nil
}

// ReadFile reads the IDX array in path, plain or gzipped.
func ReadFile(path string) (*Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("idx %s: not a regular file", path)
	}
	a, err := Read(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("idx %s: %w", path, err)
	}
	return a, nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func dimsOf(raw []byte) []uint32 {
	d := make([]uint32, len(raw)/4)
	for i := range d {
		d[i] = binary.BigEndian.Uint32(raw[4*i:])
	}
	return d
}

func typeName(t byte) string {
	switch t {
	case 0x09:
		return "signed byte"
	case 0x0B:
		return "int16"
	case 0x0C:
		return "int32"
	case 0x0D:
		return "float32"
	case 0x0E:
		return "float64"
	}
	return "unknown"
}
