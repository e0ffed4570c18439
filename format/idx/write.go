package idx

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Write writes a as a plain IDX file of unsigned bytes; wrap w in a gzip
// writer for the .gz files MNIST-style data sets ship.
func Write(w io.Writer, a *Array) error {
	if len(a.Dims) == 0 || len(a.Dims) > maxDims {
		return fmt.Errorf("idx: %d dimensions; want 1 to %d", len(a.Dims), maxDims)
	}
	hdr := []byte{0, 0, 0x08, byte(len(a.Dims))}
	total := 1
	for _, d := range a.Dims {
		if d < 0 || uint64(d) > math.MaxUint32 || (d > 0 && total > math.MaxInt/d) {
			return fmt.Errorf("idx: dimensions %v do not fit the format", a.Dims)
		}
		total *= d
		hdr = binary.BigEndian.AppendUint32(hdr, uint32(d))
	}
	if total != len(a.Data) {
		return fmt.Errorf("idx: dimensions %v hold %d bytes, not the %d given", a.Dims, total, len(a.Data))
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err := w.Write(a.Data)
	return err
}
