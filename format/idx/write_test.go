package idx

import (
	"bytes"
	"compress/gzip"
	"io"
	"slices"
	"strings"
	"testing"
)

// TestWrite round-trips arrays through Write and Read, plain and gzipped,
// and refuses arrays the format cannot hold.
func TestWrite(t *testing.T) {
	for _, a := range []*Array{
		{Dims: []int{3}, Data: []byte{1, 2, 3}},
		{Dims: []int{2, 3, 5}, Data: bytes.Repeat([]byte{7, 0, 255}, 10)},
		{Dims: []int{0, 28, 28}, Data: []byte{}},
	} {
		for _, gz := range []bool{false, true} {
			var buf bytes.Buffer
			var w io.Writer = &buf
			zw := gzip.NewWriter(&buf)
			if gz {
				w = zw
			}
			if err := Write(w, a); err != nil {
				t.Fatalf("%v: %v", a.Dims, err)
			}
			if gz {
				zw.Close()
			}
			got, err := Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			if err != nil || !slices.Equal(got.Dims, a.Dims) || !bytes.Equal(got.Data, a.Data) {
				t.Errorf("%v gzip %v: read back %v, %v", a.Dims, gz, got, err)
			}
		}
	}
	for _, c := range []struct {
		a    *Array
		want string
	}{
		{&Array{}, "0 dimensions"},
		{&Array{Dims: make([]int, 9)}, "9 dimensions"},
		{&Array{Dims: []int{-1}}, "do not fit"},
		{&Array{Dims: []int{2, 2}, Data: []byte{1, 2, 3}}, "hold 4 bytes, not the 3 given"},
	} {
		if err := Write(&bytes.Buffer{}, c.a); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.a.Dims, err, c.want)
		}
	}
}
