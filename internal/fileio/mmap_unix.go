//go:build unix

package fileio

import (
	"fmt"
	"os"
	"syscall"
)

type mapping struct{ data []byte }

func (m *mapping) Close() error {
	if m.data == nil {
		return nil
	}
	err := syscall.Munmap(m.data)
	m.data = nil
	return err
}

func mapFile(f *os.File, size int64) ([]byte, *mapping, error) {
	if size == 0 {
		return nil, &mapping{}, nil
	}
	if int64(int(size)) != size {
		return nil, nil, fmt.Errorf("file of %d bytes is too large to map", size)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return data, &mapping{data}, nil
}
