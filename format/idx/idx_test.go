package idx_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/format/idx"
	"github.com/shrinkml/shrink/internal/shareddata"
)

// encode builds an unsigned-byte IDX file with the given dimensions and data.
func encode(dims []uint32, data []byte) []byte {
	b := []byte{0, 0, 0x08, byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return append(b, data...)
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func read(b []byte) (*idx.Array, error) { return idx.Read(bytes.NewReader(b), int64(len(b))) }

func TestRead(t *testing.T) {
	data := []byte{1, 2, 3, 4, 5, 6}
	for _, file := range [][]byte{encode([]uint32{2, 3}, data), gz(encode([]uint32{2, 3}, data))} {
		a, err := read(file)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Dims) != 2 || a.Dims[0] != 2 || a.Dims[1] != 3 || !bytes.Equal(a.Data, data) {
			t.Errorf("got %v %v", a.Dims, a.Data)
		}
	}
	empty, err := read(encode([]uint32{0, 28, 28}, nil))
	if err != nil || len(empty.Data) != 0 {
		t.Errorf("an empty array: %v, %v", empty, err)
	}
}

func TestReadErrors(t *testing.T) {
	good := encode([]uint32{2, 3}, []byte{1, 2, 3, 4, 5, 6})
	cases := []struct {
		name string
		file []byte
		msg  string
	}{
		{"empty", nil, "unexpected EOF"},
		{"bad magic", append([]byte{1}, good[1:]...), "not an IDX file"},
		{"float type", append([]byte{0, 0, 0x0D}, good[3:]...), "float32"},
		{"no dims", []byte{0, 0, 8, 0}, "0 dimensions"},
		{"too many dims", []byte{0, 0, 8, 9}, "9 dimensions"},
		{"cut dims", good[:6], "dimensions: unexpected EOF"},
		{"short data", good[:len(good)-1], "more bytes than the 17-byte file"},
		{"trailing", append(append([]byte{}, good...), 7), "hold 6 bytes, but 7 follow"},
		{"lying dims", encode([]uint32{60000, 28, 28}, []byte{1}), "more bytes than the"},
		{"overflow", encode([]uint32{1 << 31, 1 << 31, 1 << 31, 1 << 31}, nil), "more bytes than the"},
		{"gzip short", gz(good[:len(good)-1]), "5 of the 6 bytes"},
		{"gzip long", gz(append(append([]byte{}, good...), 7)), "more than the 6 bytes"},
		{"gzip lying dims", gz(encode([]uint32{1 << 30, 1 << 30}, []byte{1})), "more bytes than the"},
		{"gzip cut", gz(good)[:20], "unexpected EOF"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := read(c.file)
			if err == nil || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %v, want one containing %q", err, c.msg)
			}
		})
	}
	// A gzip stream with a corrupted CRC is refused.
	z := gz(good)
	z[len(z)-6] ^= 0xff
	if _, err := read(z); err == nil || !errors.Is(err, gzip.ErrChecksum) {
		t.Errorf("bad checksum: error %v", err)
	}
}

// TestReadLargeGzip reads a gzipped array much larger than bufio's and
// bytes.Buffer's first allocations, as the real files are.
func TestReadLargeGzip(t *testing.T) {
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i * 7 / 5)
	}
	a, err := read(gz(encode([]uint32{3 << 10, 1 << 10}, data)))
	if err != nil || !bytes.Equal(a.Data, data) {
		t.Fatalf("%v", err)
	}
}

// writeSet writes an MNIST-layout part into dir.
func writeSet(t *testing.T, dir string, part string, n int, labels []byte, zip bool) {
	t.Helper()
	px := make([]byte, n*2*3)
	for i := range px {
		px[i] = byte(i)
	}
	files := map[string][]byte{
		part + "-images-idx3-ubyte": encode([]uint32{uint32(n), 2, 3}, px),
		part + "-labels-idx1-ubyte": encode([]uint32{uint32(len(labels))}, labels),
	}
	for name, b := range files {
		if zip {
			name, b = name+".gz", gz(b)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadFashionMNISTLayout(t *testing.T) {
	dir := t.TempDir()
	writeSet(t, dir, "t10k", 4, []byte{9, 0, 3, 1}, false)
	writeSet(t, dir, "train", 2, []byte{1, 2}, true)
	s, err := idx.LoadFashionMNIST(dir, idx.Test)
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 4 || s.Rows != 2 || s.Cols != 3 || s.Labels[0] != 9 {
		t.Errorf("test part: %+v", s)
	}
	if x := s.Features(); len(x) != 24 || x[0] != 0 || x[23] != 23.0/255 {
		t.Errorf("features %v", x)
	}
	if y := s.Classes(); len(y) != 4 || y[2] != 3 {
		t.Errorf("classes %v", y)
	}
	if tail := s.Slice(1, 3); tail.N != 2 || tail.Labels[0] != 0 || tail.Pixels[0] != 6 || len(tail.Pixels) != 12 {
		t.Errorf("slice %+v", tail)
	}
	if s, err := idx.LoadFashionMNIST(dir, idx.Train); err != nil || s.N != 2 {
		t.Errorf("gzipped train part: %v %v", s, err)
	}

	bad := t.TempDir()
	writeSet(t, bad, "t10k", 4, []byte{9, 0, 3}, false)
	if _, err := idx.LoadFashionMNIST(bad, idx.Test); err == nil || !strings.Contains(err.Error(), "4 images but 3 labels") {
		t.Errorf("count mismatch: %v", err)
	}
	writeSet(t, bad, "t10k", 3, []byte{9, 10, 3}, false)
	if _, err := idx.LoadFashionMNIST(bad, idx.Test); err == nil || !strings.Contains(err.Error(), "label 10 of image 1") {
		t.Errorf("bad label: %v", err)
	}
	_, err = idx.LoadFashionMNIST(filepath.Join(dir, "nope"), idx.Test)
	if err == nil || !strings.Contains(err.Error(), "apt-get install dataset-fashion-mnist") || !strings.Contains(err.Error(), "t10k-images-idx3-ubyte") {
		t.Errorf("missing folder: %v", err)
	}
	if _, err := idx.LoadFashionMNIST(dir, "val"); err == nil {
		t.Errorf("unknown part: no error")
	}
}

// TestFashionMNIST reads the installed data set: 60,000 training and 10,000
// test images of 28x28 pixels, each class a tenth of each part.
func TestFashionMNIST(t *testing.T) {
	dir := shareddata.FashionMNIST(t)
	for _, c := range []struct {
		part idx.Part
		n    int
	}{{idx.Train, 60000}, {idx.Test, 10000}} {
		s, err := idx.LoadFashionMNIST(dir, c.part)
		if err != nil {
			t.Fatal(err)
		}
		if s.N != c.n || s.Rows != 28 || s.Cols != 28 || len(s.Pixels) != c.n*784 {
			t.Fatalf("%s: %d images of %dx%d", c.part, s.N, s.Rows, s.Cols)
		}
		count := make([]int, 10)
		for _, l := range s.Labels {
			count[l]++
		}
		for k, n := range count {
			if n != c.n/10 {
				t.Errorf("%s: class %d has %d images, want %d", c.part, k, n, c.n/10)
			}
		}
		// Both parts start with an ankle boot.
		if s.Labels[0] != 9 {
			t.Errorf("%s: first label %d, want 9", c.part, s.Labels[0])
		}
	}
}

// FuzzIDX reads arbitrary bytes as an IDX file. It must never panic, and
// anything it accepts holds exactly the bytes its dimensions promise, no
// more than the input could (capped by its size, times deflate's largest
// ratio for gzip).
func FuzzIDX(f *testing.F) {
	f.Add(encode([]uint32{2, 3}, []byte{1, 2, 3, 4, 5, 6}))
	f.Add(gz(encode([]uint32{3}, []byte{7, 8, 9})))
	f.Add(encode([]uint32{60000, 28, 28}, []byte{1}))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := read(data)
		if err != nil {
			return
		}
		total := 1
		for _, d := range a.Dims {
			total *= d
		}
		if total != len(a.Data) {
			t.Fatalf("dimensions %v, %d bytes", a.Dims, len(a.Data))
		}
		if len(a.Data) > 1032*len(data) {
			t.Fatalf("%d bytes from a %d-byte input", len(a.Data), len(data))
		}
		if len(data) > 1 && data[0] == 0 {
			// A plain file: the data is the input's tail.
			if !bytes.Equal(a.Data, data[len(data)-len(a.Data):]) {
				t.Fatalf("the data is not the input's tail")
			}
		}
	})
}
