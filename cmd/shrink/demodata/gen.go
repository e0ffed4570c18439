//go:build ignore

// gen writes the data files of shrink demo (see README.md here) from their
// sources, the same bytes every time:
//
//	go run ./cmd/shrink/demodata/gen.go fashion /usr/share/datasets/fashion-mnist cmd/shrink/demodata/fashion-mnist
//
// fashion copies the first fashionTrain training images and the first
// fashionTest test images of Fashion-MNIST, as gzipped IDX files with
// Fashion-MNIST's names.
package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"

	"github.com/shrinkml/shrink/format/idx"
)

const (
	fashionTrain = 3000
	fashionTest  = 2000
)

func main() {
	if len(os.Args) != 4 || os.Args[1] != "fashion" {
		fmt.Fprintln(os.Stderr, "usage: go run gen.go fashion FASHION_MNIST_DIR OUT_DIR")
		os.Exit(2)
	}
	if err := fashion(os.Args[2], os.Args[3]); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func fashion(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, p := range []struct {
		part idx.Part
		n    int
	}{{idx.Train, fashionTrain}, {idx.Test, fashionTest}} {
		s, err := idx.LoadFashionMNIST(src, p.part)
		if err != nil {
			return err
		}
		if s.N < p.n {
			return fmt.Errorf("%s: %d %s images, want at least %d", src, s.N, p.part, p.n)
		}
		s = s.Slice(0, p.n)
		for _, f := range []struct {
			kind string
			a    *idx.Array
		}{
			{"images-idx3-ubyte", &idx.Array{Dims: []int{s.N, s.Rows, s.Cols}, Data: s.Pixels}},
			{"labels-idx1-ubyte", &idx.Array{Dims: []int{s.N}, Data: s.Labels}},
		} {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			if err := idx.Write(zw, f.a); err != nil {
				return err
			}
			if err := zw.Close(); err != nil {
				return err
			}
			name := filepath.Join(dst, fmt.Sprintf("%s-%s.gz", p.part, f.kind))
			if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
