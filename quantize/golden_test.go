package quantize_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/shrinkml/shrink/format/gguf"
	"github.com/shrinkml/shrink/internal/shareddata"
	"github.com/shrinkml/shrink/model"
	"github.com/shrinkml/shrink/quantize"
)

// readGGUF parses a GGUF file into its raw tensors, by GGUF name.
func readGGUF(t *testing.T, path string) *gguf.File {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Read(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return f
}

// sameTensors compares every tensor of two GGUF files: type, shape and bytes.
func sameTensors(t *testing.T, got, want *gguf.File) (matrices int) {
	t.Helper()
	if len(got.Tensors) != len(want.Tensors) {
		t.Errorf("%d tensors, want %d", len(got.Tensors), len(want.Tensors))
	}
	for _, w := range want.Tensors {
		g := got.Tensor(w.Name)
		switch {
		case g == nil:
			t.Errorf("tensor %s is missing", w.Name)
		case g.Type != w.Type || fmt.Sprint(g.Dims) != fmt.Sprint(w.Dims):
			t.Errorf("tensor %s is %s %v, want %s %v", w.Name, g.Type, g.Dims, w.Type, w.Dims)
		case !bytes.Equal(g.Data, w.Data):
			n := 0
			for i := range w.Data {
				if g.Data[i] != w.Data[i] {
					n++
				}
			}
			t.Errorf("tensor %s (%s): %d of %d bytes differ", w.Name, w.Type, n, len(w.Data))
		case len(w.Dims) == 2:
			matrices++
		}
	}
	return matrices
}

// TestMatchesLlamaQuantize quantizes the padded stories260K F32 GGUF and
// compares every tensor with what llama-quantize wrote: with --pure for each
// scheme, and the default Q4_0 mix (Q8_0 output head).
func TestMatchesLlamaQuantize(t *testing.T) {
	// The default mix needs the copied head recognised, by gguf's key.
	if quantize.OutputCopyKey != gguf.MetaOutputCopy {
		t.Fatalf("quantize reads %q, format/gguf writes %q", quantize.OutputCopyKey, gguf.MetaOutputCopy)
	}
	src := shareddata.Path(t, "gguf/stories260K-pad192-F32.gguf")
	m, err := gguf.Load(src)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, c := range []struct {
		scheme quantize.Scheme
		pure   bool
		ref    string
	}{
		{quantize.Q8_0, true, "gguf/stories260K-pad192-Q8_0-pure.gguf"},
		{quantize.Q4_0, true, "gguf/stories260K-pad192-Q4_0-pure.gguf"},
		{quantize.Q4_1, true, "gguf/stories260K-pad192-Q4_1-pure.gguf"},
		{quantize.Q4_0, false, "gguf/stories260K-pad192-Q4_0.gguf"},
	} {
		t.Run(filepath.Base(c.ref), func(t *testing.T) {
			ref := shareddata.Path(t, c.ref)
			q, rep, err := quantize.Quantize(m, quantize.Options{Scheme: c.scheme, Pure: c.pure})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Fallback != 0 || len(rep.Warnings) != 0 {
				t.Errorf("fallbacks %d, warnings %q", rep.Fallback, rep.Warnings)
			}
			out := filepath.Join(t.TempDir(), "q.gguf")
			if err := gguf.Save(out, q, false); err != nil {
				t.Fatal(err)
			}
			if n := sameTensors(t, readGGUF(t, out), readGGUF(t, ref)); n != 37 {
				t.Errorf("%d matrices equal, want 37", n)
			}
			t.Logf("%s pure=%v: %d -> %d bytes, %.3f bits/weight, worst rel RMSE %.4f (%s), mean %.4f",
				c.scheme, c.pure, rep.BytesBefore, rep.BytesAfter, rep.BitsPerWeight, rep.WorstRelRMSE, rep.WorstTensor, rep.MeanRelRMSE)
		})
	}
	// The input is untouched: still F32 and tied by a copied head.
	for _, tt := range m.Tensors {
		if tt.DType != model.F32 {
			t.Errorf("input tensor %s became %s", tt.Name, tt.DType)
		}
	}
	if !m.Config.TiedEmbeddings || m.Metadata[gguf.MetaOutputCopy] != true {
		t.Error("the input model's tying changed")
	}
}
