//go:build !unix

package fileio

import (
	"io"
	"os"
)

type mapping struct{}

func (m *mapping) Close() error { return nil }

// mapFile reads the whole file where memory mapping is not available.
func mapFile(f *os.File, size int64) ([]byte, *mapping, error) {
	data := make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, nil, err
	}
	return data, &mapping{}, nil
}
