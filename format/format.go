// Package format loads any checkpoint shrink understands and saves models as
// GGUF or Hugging Face directories (or an mlp classifier as a bare safetensors
// state dict), choosing the reader or writer from the path. The per-format
// packages below it do the work.
package format

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/shrinkml/shrink/format/gguf"
	"github.com/shrinkml/shrink/format/hf"
	"github.com/shrinkml/shrink/format/llama2c"
	"github.com/shrinkml/shrink/model"
)

// Kind names a checkpoint format.
type Kind string

// The formats shrink reads; GGUF and HF are also written, and Safetensors for
// mlp classifiers (a bare state dict).
const (
	GGUF        Kind = "gguf"
	HF          Kind = "safetensors" // a Hugging Face directory
	Safetensors Kind = "safetensors-file"
	Llama2C     Kind = "llama2c"
)

// LoadOptions tune loading.
type LoadOptions struct {
	// Arch is the architecture of a bare state dict without config.json;
	// "mlp" reads a PyTorch nn.Sequential of Linear layers.
	Arch string
}

// Detect tells a checkpoint's format from its contents: a directory is a
// Hugging Face folder, a file starting with "GGUF" is GGUF, a .safetensors file
// is a bare state dict, and a .bin file is a llama2.c checkpoint.
func Detect(path string) (Kind, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if st.IsDir() {
		return HF, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	magic := make([]byte, 4)
	n, _ := io.ReadFull(f, magic)
	switch {
	case bytes.Equal(magic[:n], []byte("GGUF")):
		return GGUF, nil
	case strings.EqualFold(filepath.Ext(path), ".safetensors"):
		return Safetensors, nil
	case strings.EqualFold(filepath.Ext(path), ".bin"):
		return Llama2C, nil
	}
	return "", fmt.Errorf("%s: not a GGUF file, Hugging Face directory, .safetensors or llama2.c .bin file", path)
}

// Load reads the checkpoint at path in whatever format it is.
func Load(path string, opts LoadOptions) (*model.Model, Kind, error) {
	kind, err := Detect(path)
	if err != nil {
		return nil, "", err
	}
	var m *model.Model
	switch kind {
	case GGUF:
		m, err = gguf.Load(path)
	case HF:
		m, err = hf.Load(path)
	case Safetensors:
		arch := opts.Arch
		if arch == "" {
			// A model.safetensors inside a Hugging Face folder: read the folder.
			if _, serr := os.Stat(filepath.Join(filepath.Dir(path), "config.json")); serr == nil {
				m, err = hf.Load(filepath.Dir(path))
				kind = HF
				break
			}
			return nil, kind, fmt.Errorf("%s: a bare safetensors state dict needs --arch (e.g. --arch mlp) or a config.json beside it", path)
		}
		m, err = hf.LoadStateDict(path, arch)
	case Llama2C:
		m, err = llama2c.Load(path)
	}
	if err != nil {
		return nil, kind, err
	}
	if m.Source == "" {
		m.Source = path
	}
	return m, kind, nil
}

// SaveOptions choose the output.
type SaveOptions struct {
	// To is GGUF, HF or Safetensors (an mlp classifier's bare state dict, see
	// hf.SaveStateDict).
	To Kind
	// DType, when F32, F16 or BF16, converts every float tensor to it.
	DType model.DType
	// Force replaces an existing destination.
	Force bool
	// Sparse stores sparse F32 matrices of Hugging Face output in
	// compressed-tensors' sparse-bitmask or sparse-24-bitmask layout (see
	// hf.SaveOptions.Sparse); the rest stay dense. GGUF output is always dense.
	Sparse bool
}

// ParseOutputKind reads --to ("gguf", "safetensors", "hf" or empty) and falls
// back to the destination's name: a .gguf name is GGUF, anything else a folder.
func ParseOutputKind(to, dst string) (Kind, error) {
	switch strings.ToLower(to) {
	case "gguf":
		return GGUF, nil
	case "safetensors", "hf":
		return HF, nil
	case "llama2c":
		return Llama2C, nil
	case "":
		switch {
		case strings.EqualFold(filepath.Ext(dst), ".gguf"):
			return GGUF, nil
		case strings.EqualFold(filepath.Ext(dst), ".bin"):
			return Llama2C, nil
		}
		return HF, nil
	}
	return "", fmt.Errorf("--to %q: want gguf, safetensors or llama2c", to)
}

// ErrSamePath is returned when the destination is the source.
var ErrSamePath = errors.New("destination is the source; refusing to overwrite an input")

// Save writes m to dst. src is the path m was read from: dst may never be it,
// nor a folder that contains it.
func Save(src, dst string, m *model.Model, opts SaveOptions) error {
	if same, err := samePath(src, dst); err != nil {
		return err
	} else if same {
		return fmt.Errorf("%s: %w", dst, ErrSamePath)
	}
	if opts.DType != model.Invalid {
		conv, err := convertFloats(m, opts.DType)
		if err != nil {
			return err
		}
		m = conv
	}
	switch opts.To {
	case GGUF:
		return gguf.Save(dst, m, opts.Force)
	case HF:
		return hf.Save(dst, m, hf.SaveOptions{Force: opts.Force, Sparse: opts.Sparse})
	case Safetensors:
		if opts.Sparse {
			return fmt.Errorf("%s: sparse storage needs a Hugging Face folder's config.json; a bare safetensors file is always dense", dst)
		}
		return hf.SaveStateDict(dst, m, opts.Force)
	case Llama2C:
		if opts.Sparse {
			return fmt.Errorf("%s: sparse storage needs a Hugging Face folder's config.json; a llama2.c checkpoint is always dense", dst)
		}
		return llama2c.SaveWithTokenizer(dst, m, opts.Force)
	}
	return fmt.Errorf("cannot write format %q", opts.To)
}

// convertFloats returns a shallow copy of m whose float tensors are stored as d.
func convertFloats(m *model.Model, d model.DType) (*model.Model, error) {
	out := *m
	out.Tensors = make([]*model.Tensor, len(m.Tensors))
	for i, t := range m.Tensors {
		if !t.DType.Float() {
			out.Tensors[i] = t
			continue
		}
		c, err := t.Convert(d)
		if err != nil {
			return nil, err
		}
		out.Tensors[i] = c
	}
	return &out, nil
}

// samePath reports whether dst names src, or a folder that holds src.
func samePath(src, dst string) (bool, error) {
	if src == "" {
		return false, nil
	}
	dstInfo, err := os.Stat(dst)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	for p := src; ; p = filepath.Dir(p) {
		if info, err := os.Stat(p); err == nil && os.SameFile(info, dstInfo) {
			return true, nil
		}
		abs, err := filepath.Abs(p)
		if err != nil || filepath.Dir(abs) == abs {
			return false, nil
		}
		p = abs
	}
}

// DiskBytes is the size of a file, or of all files under a folder.
func DiskBytes(path string) (int64, error) {
	var total int64
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			total += info.Size()
		}
		return nil
	})
	return total, err
}
