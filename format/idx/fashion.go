package idx

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// FashionMNISTDir is where Debian's dataset-fashion-mnist package puts the
// Fashion-MNIST files.
const FashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// FashionMNISTInstall is the command that installs the data set.
const FashionMNISTInstall = "apt-get install dataset-fashion-mnist"

// FashionMNISTClasses names the ten Fashion-MNIST labels, in label order.
var FashionMNISTClasses = []string{
	"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
	"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
}

// Part selects the training or the test half of an MNIST-style data set.
type Part string

// The two parts and the prefixes of their files.
const (
	Train Part = "train"
	Test  Part = "t10k"
)

// Images are labelled images: image i is Pixels[i*Rows*Cols:(i+1)*Rows*Cols],
// row-major, with label Labels[i].
type Images struct {
	N, Rows, Cols int
	Pixels        []byte
	Labels        []byte
}

// Features returns the pixels scaled to [0, 1] (pixel/255), image after
// image: the input convention of the classifiers shrink trains.
func (s *Images) Features() []float32 {
	x := make([]float32, len(s.Pixels))
	for i, p := range s.Pixels {
		x[i] = float32(p) / 255
	}
	return x
}

// Classes returns the labels as ints.
func (s *Images) Classes() []int {
	y := make([]int, len(s.Labels))
	for i, l := range s.Labels {
		y[i] = int(l)
	}
	return y
}

// Slice returns images [from, to) of s, sharing its memory.
func (s *Images) Slice(from, to int) *Images {
	px := s.Rows * s.Cols
	return &Images{N: to - from, Rows: s.Rows, Cols: s.Cols,
		Pixels: s.Pixels[from*px : to*px : to*px], Labels: s.Labels[from:to:to]}
}

// LoadFashionMNIST reads one part of Fashion-MNIST (or of MNIST, which has
// the same layout) from dir: PART-images-idx3-ubyte and PART-labels-idx1-ubyte,
// each gzipped (.gz) or plain. A missing file gives an error that says how to
// install the data set.
func LoadFashionMNIST(dir string, part Part) (*Images, error) {
	if part != Train && part != Test {
		return nil, fmt.Errorf("fashion-mnist: unknown part %q; want %q or %q", part, Train, Test)
	}
	imgPath, err := find(dir, string(part)+"-images-idx3-ubyte")
	if err != nil {
		return nil, err
	}
	labPath, err := find(dir, string(part)+"-labels-idx1-ubyte")
	if err != nil {
		return nil, err
	}
	img, err := ReadFile(imgPath)
	if err != nil {
		return nil, err
	}
	lab, err := ReadFile(labPath)
	if err != nil {
		return nil, err
	}
	if len(img.Dims) != 3 {
		return nil, fmt.Errorf("idx %s: dimensions %v; want images [N rows cols]", imgPath, img.Dims)
	}
	if len(lab.Dims) != 1 {
		return nil, fmt.Errorf("idx %s: dimensions %v; want labels [N]", labPath, lab.Dims)
	}
	if img.Dims[0] != lab.Dims[0] {
		return nil, fmt.Errorf("fashion-mnist %s: %d images but %d labels", dir, img.Dims[0], lab.Dims[0])
	}
	for i, l := range lab.Data {
		if int(l) >= len(FashionMNISTClasses) {
			return nil, fmt.Errorf("idx %s: label %d of image %d is not one of the %d classes", labPath, l, i, len(FashionMNISTClasses))
		}
	}
	return &Images{N: img.Dims[0], Rows: img.Dims[1], Cols: img.Dims[2], Pixels: img.Data, Labels: lab.Data}, nil
}

// find returns dir/name.gz, else dir/name.
func find(dir, name string) (string, error) {
	for _, p := range []string{filepath.Join(dir, name+".gz"), filepath.Join(dir, name)} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
	hint := ""
	if dir == FashionMNISTDir {
		hint = fmt.Sprintf("; install the data set with `%s`", FashionMNISTInstall)
	} else {
		hint = fmt.Sprintf("; `%s` puts the files in %s", FashionMNISTInstall, FashionMNISTDir)
	}
	return "", fmt.Errorf("fashion-mnist %s: no %s.gz or %s%s", dir, name, name, hint)
}
