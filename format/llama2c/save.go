package llama2c

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/shrinkml/shrink/internal/fileio"
	"github.com/shrinkml/shrink/model"
)

// Save writes m as a version-0 llama2.c checkpoint. F16 and BF16 tensors are
// widened to float32; quantized tensors are an error. Q and K rows are
// permuted to RoPE pair order when needed. An existing file is replaced only
// when force is set. The tokenizer is not written; see SaveTokenizer.
func Save(path string, m *model.Model, force bool) error {
	return fileio.WriteFile(path, force, func(w *bufio.Writer) error {
		return encode(w, path, m)
	})
}

// SaveWithTokenizer writes m as Save does and its tokenizer, when it has
// one, beside it as tok<vocab>.bin, where Load finds it. A tok<vocab>.bin
// already there is left alone when it holds the same tokenizer and is an
// error otherwise (it may belong to another model, so force never replaces
// it); in that case nothing is written.
func SaveWithTokenizer(path string, m *model.Model, force bool) error {
	if m.Tokenizer == nil {
		return Save(path, m, force)
	}
	tokPath := filepath.Join(filepath.Dir(path), fmt.Sprintf("tok%d.bin", m.Config.VocabSize))
	var want bytes.Buffer
	if err := encodeTokenizer(&want, tokPath, m.Tokenizer); err != nil {
		return err
	}
	have, err := os.ReadFile(tokPath)
	switch {
	case err == nil && !bytes.Equal(have, want.Bytes()):
		return fmt.Errorf("llama2c %s: %s already holds another tokenizer; write the model into another folder", path, tokPath)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("llama2c %s: %w", path, err)
	}
	if err := Save(path, m, force); err != nil {
		return err
	}
	if err == nil {
		return nil // the same tokenizer is already there
	}
	return fileio.WriteFile(tokPath, false, func(w *bufio.Writer) error {
		_, err := w.Write(want.Bytes())
		return err
	})
}

// encode writes m in the version-0 layout to w; name is used in messages.
func encode(w io.Writer, name string, m *model.Model) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("llama2c %s: "+format, append([]any{name}, args...)...)
	}
	c := &m.Config
	if c.Arch != "llama" {
		return fail("architecture %q cannot be stored; llama2.c holds llama models only", c.Arch)
	}
	if c.QKVBias {
		return fail("the model has q/k/v biases, which llama2.c cannot store")
	}
	if err := m.Validate(); err != nil {
		return fail("%w", err)
	}
	if c.NumHeads*c.HeadDim != c.HiddenSize {
		return fail("head dim %d times %d heads is not the hidden size %d; llama2.c derives head size as dim/n_heads",
			c.HeadDim, c.NumHeads, c.HiddenSize)
	}
	if float32(c.RopeTheta) != RopeTheta {
		return fail("rope theta %g cannot be stored; llama2.c always uses %g", c.RopeTheta, RopeTheta)
	}
	if float32(c.RMSNormEps) != RMSNormEps {
		return fail("rms norm eps %g cannot be stored; llama2.c always uses %g", c.RMSNormEps, RMSNormEps)
	}
	expected := map[string]bool{}
	for _, e := range c.Expected() {
		expected[e.Name] = true
	}
	for _, t := range m.Tensors {
		if !expected[t.Name] {
			return fail("tensor %q has no place in a llama2.c checkpoint", t.Name)
		}
		if !t.DType.Float() {
			return fail("tensor %q is %s; llama2.c stores float32 only (dequantize first)", t.Name, t.DType)
		}
	}
	if c.RopeLayout != model.RopePairs {
		pm, err := m.WithRopeLayout(model.RopePairs)
		if err != nil {
			return fail("%w", err)
		}
		m, c = pm, &pm.Config
	}

	vocab := c.VocabSize
	if !c.TiedEmbeddings {
		vocab = -vocab
	}
	hdr := [7]int32{int32(c.HiddenSize), int32(c.IntermediateSize), int32(c.NumLayers),
		int32(c.NumHeads), int32(c.NumKVHeads), int32(vocab), int32(c.ContextLength)}
	if err := binary.Write(w, binary.LittleEndian, hdr[:]); err != nil {
		return fail("%w", err)
	}
	var scratch []byte
	write := func(names ...string) error {
		for _, n := range names {
			t := m.Tensor(n)
			if t.DType == model.F32 {
				if _, err := w.Write(t.Data); err != nil {
					return fail("%w", err)
				}
				continue
			}
			vals, err := t.Float32()
			if err != nil {
				return fail("%w", err)
			}
			scratch = appendF32(scratch[:0], vals)
			if _, err := w.Write(scratch); err != nil {
				return fail("%w", err)
			}
		}
		return nil
	}
	perLayer := func(suffix string) []string {
		names := make([]string, c.NumLayers)
		for l := range names {
			names[l] = model.LayerTensor(l, suffix)
		}
		return names
	}
	groups := [][]string{
		{model.TokenEmbedding},
		perLayer(model.AttnNorm),
		perLayer(model.AttnQ),
		perLayer(model.AttnK),
		perLayer(model.AttnV),
		perLayer(model.AttnO),
		perLayer(model.FFNNorm),
		perLayer(model.FFNGate), // w1
		perLayer(model.FFNDown), // w2
		perLayer(model.FFNUp),   // w3
		{model.FinalNorm},
	}
	for _, g := range groups {
		if err := write(g...); err != nil {
			return err
		}
	}
	if err := writeRope(w, c.HeadDim, c.ContextLength, m.Metadata[MetaRopePatch]); err != nil {
		return fail("%w", err)
	}
	if !c.TiedEmbeddings {
		return write(model.OutputHead)
	}
	return nil
}

func appendF32(dst []byte, vals []float32) []byte {
	for _, v := range vals {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
	}
	return dst
}
