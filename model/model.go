// Package model holds shrink's single in-memory representation of a checkpoint:
// an architecture config, ordered named tensors, the tokenizer and free-form
// metadata. Every reader produces a *Model and every writer consumes one.
package model

import (
	"errors"
	"fmt"
	"io"
	"sort"
)

// MetaOutputCopy is the Metadata key (set to true) of a model read from a
// file that stores its tied output head as a copy of the token embedding, as
// llama.cpp's llama2.c converter writes GGUF; writers and quantizers that
// keep the copy read it.
const MetaOutputCopy = "gguf.output_is_embedding_copy"

// Model is a checkpoint in memory. Tensor data may be memory-mapped from the
// file it was read from; Close releases the mapping.
type Model struct {
	Config    Config
	Tensors   []*Tensor
	Tokenizer *Tokenizer
	// Metadata holds keys shrink does not interpret (GGUF key/values,
	// safetensors __metadata__), so that they survive a round trip. Values are
	// bool, string, integer or float scalars of a fixed size, or slices of them.
	Metadata map[string]any
	// Source is the path the model was read from, for messages.
	Source string

	closers []io.Closer
}

// Tensor returns the tensor with the given name, or nil.
func (m *Model) Tensor(name string) *Tensor {
	for _, t := range m.Tensors {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Parameters counts the elements of all tensors.
func (m *Model) Parameters() int64 {
	var n int64
	for _, t := range m.Tensors {
		n += int64(t.Elems())
	}
	return n
}

// TensorBytes is the total size of the tensor data.
func (m *Model) TensorBytes() int64 {
	var n int64
	for _, t := range m.Tensors {
		n += int64(len(t.Data))
	}
	return n
}

// KeepAlive registers a resource, such as a file mapping, that tensor data
// depends on; Close releases it.
func (m *Model) KeepAlive(c io.Closer) { m.closers = append(m.closers, c) }

// Close releases memory mappings. The model's tensors must not be used afterwards.
func (m *Model) Close() error {
	var errs []error
	for i := len(m.closers) - 1; i >= 0; i-- {
		errs = append(errs, m.closers[i].Close())
	}
	m.closers = nil
	return errors.Join(errs...)
}

// Validate checks that every tensor is well formed, names are unique, and the
// config agrees with the tensors: each expected tensor is present with the
// expected shape. Extra tensors are allowed.
func (m *Model) Validate() error {
	seen := make(map[string]*Tensor, len(m.Tensors))
	for _, t := range m.Tensors {
		if _, dup := seen[t.Name]; dup {
			return fmt.Errorf("duplicate tensor name %q", t.Name)
		}
		seen[t.Name] = t
		if err := t.Check(); err != nil {
			return err
		}
	}
	if err := m.Config.Check(); err != nil {
		return err
	}
	for _, e := range m.Config.Expected() {
		t, ok := seen[e.Name]
		if !ok {
			return fmt.Errorf("config needs tensor %q, which is missing", e.Name)
		}
		if !sameShape(t.Shape, e.Shape) {
			return fmt.Errorf("tensor %q has shape %v, the config says %v", e.Name, t.Shape, e.Shape)
		}
	}
	return nil
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// SortedMetadataKeys returns the metadata keys in byte order, for deterministic output.
func (m *Model) SortedMetadataKeys() []string {
	keys := make([]string, 0, len(m.Metadata))
	for k := range m.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
