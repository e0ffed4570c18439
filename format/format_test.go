package format

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/format/gguf"
	"github.com/shrinkml/shrink/internal/shareddata"
	"github.com/shrinkml/shrink/model"
)

const storiesF32GGUF = "gguf/stories260K-F32.gguf"

// load reads path with Load and closes the model when the test ends.
func load(t *testing.T, path string) *model.Model {
	t.Helper()
	m, _, err := Load(path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// sameTensors fails unless a and b hold the same tensors, bit for bit, once
// both are in the pair RoPE layout.
func sameTensors(t *testing.T, what string, a, b *model.Model) {
	t.Helper()
	pa, err := a.WithRopeLayout(model.RopePairs)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := b.WithRopeLayout(model.RopePairs)
	if err != nil {
		t.Fatal(err)
	}
	if len(pa.Tensors) != len(pb.Tensors) {
		t.Fatalf("%s: %d tensors, want %d", what, len(pb.Tensors), len(pa.Tensors))
	}
	for _, ta := range pa.Tensors {
		tb := pb.Tensor(ta.Name)
		switch {
		case tb == nil:
			t.Errorf("%s: tensor %s missing", what, ta.Name)
		case tb.DType != ta.DType || !slices.Equal(tb.Shape, ta.Shape):
			t.Errorf("%s: tensor %s is %s %v, want %s %v", what, ta.Name, tb.DType, tb.Shape, ta.DType, ta.Shape)
		case !bytes.Equal(tb.Data, ta.Data):
			t.Errorf("%s: tensor %s: bytes differ", what, ta.Name)
		}
	}
}

// TestRoundTripStories260K takes the real llama2.c model through an HF folder,
// a GGUF file and an HF folder again and expects every tensor bit-identical,
// and the same tensors as llama.cpp's own conversion of it.
func TestRoundTripStories260K(t *testing.T) {
	bin := shareddata.Path(t, shareddata.Stories260KBin)
	ref := shareddata.Path(t, storiesF32GGUF)
	dir := t.TempDir()
	orig := load(t, bin)
	if s := orig.Summarize(); s.Architecture != "llama" || s.Parameters != 260032 {
		t.Fatalf("%s: %s with %d parameters, want llama with 260032", bin, s.Architecture, s.Parameters)
	}

	hf1, g, hf2 := filepath.Join(dir, "hf1"), filepath.Join(dir, "m.gguf"), filepath.Join(dir, "hf2")
	steps := []struct {
		src, dst string
		to       Kind
	}{{bin, hf1, HF}, {hf1, g, GGUF}, {g, hf2, HF}}
	for _, st := range steps {
		m := load(t, st.src)
		if err := Save(st.src, st.dst, m, SaveOptions{To: st.to}); err != nil {
			t.Fatal(err)
		}
		sameTensors(t, st.dst, orig, load(t, st.dst))
	}

	llamacpp := load(t, ref)
	sameTensors(t, ref, orig, llamacpp)
	if llamacpp.Summarize().Parameters != 260032 {
		t.Errorf("%s: %d parameters, want 260032", ref, llamacpp.Summarize().Parameters)
	}

	// The GGUF written straight from the .bin: every tensor llama.cpp's
	// converter wrote has the same type, dims and bytes, except output.weight,
	// which is left out because the head is tied (llama.cpp then reuses
	// token_embd.weight).
	direct := filepath.Join(dir, "direct.gguf")
	if err := Save(bin, direct, orig, SaveOptions{To: GGUF}); err != nil {
		t.Fatal(err)
	}
	want, got := readGGUF(t, ref), readGGUF(t, direct)
	for _, wt := range want.Tensors {
		gt := got.Tensor(wt.Name)
		if gt == nil {
			if wt.Name != "output.weight" {
				t.Errorf("tensor %s missing", wt.Name)
			}
			continue
		}
		if gt.Type != wt.Type || !slices.Equal(gt.Dims, wt.Dims) || !bytes.Equal(gt.Data, wt.Data) {
			t.Errorf("tensor %s differs from llama.cpp's", wt.Name)
		}
	}
	if len(got.Tensors) != len(want.Tensors)-1 {
		t.Errorf("%d tensors, want %d", len(got.Tensors), len(want.Tensors)-1)
	}
	for _, key := range []string{
		"general.architecture", "llama.context_length", "llama.embedding_length", "llama.block_count",
		"llama.feed_forward_length", "llama.rope.dimension_count", "llama.attention.head_count",
		"llama.attention.head_count_kv", "llama.attention.layer_norm_rms_epsilon", "llama.rope.freq_base",
		"tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
		"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
	} {
		wv, inRef := want.Get(key)
		gv, ok := got.Get(key)
		if !ok {
			t.Errorf("key %s missing", key)
		} else if inRef && !reflect.DeepEqual(gv, wv) {
			t.Errorf("key %s = %v, llama.cpp wrote %v", key, gv.V, wv.V)
		}
	}
}

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

func TestSaveRefusesInputs(t *testing.T) {
	dir := t.TempDir()
	m := synth(t, 1)
	src := filepath.Join(dir, "m.gguf")
	if err := Save("", src, m, SaveOptions{To: GGUF}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(src)

	// The source itself, with or without --force.
	for _, force := range []bool{false, true} {
		err := Save(src, src, m, SaveOptions{To: GGUF, Force: force})
		if !errors.Is(err, ErrSamePath) {
			t.Errorf("force=%v: saving over the source: %v, want ErrSamePath", force, err)
		}
	}
	// A folder that holds the source.
	if err := Save(src, dir, m, SaveOptions{To: HF, Force: true}); !errors.Is(err, ErrSamePath) {
		t.Errorf("saving over the source's folder: %v, want ErrSamePath", err)
	}
	// Another existing file needs Force.
	other := filepath.Join(dir, "other.gguf")
	if err := os.WriteFile(other, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Save(src, other, m, SaveOptions{To: GGUF}); err == nil || !strings.Contains(err.Error(), other) {
		t.Errorf("existing destination without force: %v", err)
	}
	if b, _ := os.ReadFile(other); string(b) != "keep" {
		t.Errorf("existing destination was changed without force")
	}
	if err := Save(src, other, m, SaveOptions{To: GGUF, Force: true}); err != nil {
		t.Errorf("existing destination with force: %v", err)
	}
	if after, _ := os.ReadFile(src); !bytes.Equal(before, after) {
		t.Errorf("the source changed")
	}
}

func TestConvertDType(t *testing.T) {
	dir := t.TempDir()
	m := synth(t, 2)
	for _, d := range []model.DType{model.F16, model.BF16, model.F32} {
		out := filepath.Join(dir, d.String()+".gguf")
		if err := Save("", out, m, SaveOptions{To: GGUF, DType: d}); err != nil {
			t.Fatal(err)
		}
		back := load(t, out)
		for _, tt := range back.Tensors {
			// GGUF keeps norm weights (vectors) in F32, as llama.cpp needs.
			if len(tt.Shape) == 1 && tt.DType != model.F32 || len(tt.Shape) > 1 && tt.DType != d {
				t.Errorf("%s: %s %v is %s", out, tt.Name, tt.Shape, tt.DType)
			}
		}
	}
}

func TestDetect(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		path string
		want Kind
		err  string
	}{
		{write("a.gguf", "GGUF\x03\x00\x00\x00"), GGUF, ""},
		{write("renamed.bin", "GGUF\x03\x00\x00\x00"), GGUF, ""},
		{write("m.safetensors", "\x08\x00\x00\x00\x00\x00\x00\x00{}      "), Safetensors, ""},
		{write("model.bin", "\x40\x00\x00\x00"), Llama2C, ""},
		{dir, HF, ""},
		{write("notes.txt", "hello"), "", "not a GGUF file"},
		{filepath.Join(dir, "missing.gguf"), "", "no such file"},
	}
	for _, c := range cases {
		got, err := Detect(c.path)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), c.path) {
				t.Errorf("Detect(%s) = %v, want an error naming the file and containing %q", c.path, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Detect(%s) = %q, %v; want %q", c.path, got, err, c.want)
		}
	}
}

func synth(t *testing.T, seed uint64) *model.Model {
	t.Helper()
	m, err := model.Synthesize(model.Presets["stories260k"], seed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseOutputKind(t *testing.T) {
	for _, c := range []struct {
		to, dst string
		want    Kind
		err     string
	}{
		{"", "out.gguf", GGUF, ""},
		{"", "OUT.GGUF", GGUF, ""},
		{"", "model.bin", Llama2C, ""},
		{"", "folder", HF, ""},
		{"", "x.safetensors", HF, ""},
		{"gguf", "folder", GGUF, ""},
		{"hf", "out.gguf", HF, ""},
		{"safetensors", "x", HF, ""},
		{"llama2c", "x", Llama2C, ""},
		{"onnx", "x", "", `--to "onnx"`},
	} {
		got, err := ParseOutputKind(c.to, c.dst)
		if got != c.want || (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("ParseOutputKind(%q, %q) = %q, %v; want %q, %q", c.to, c.dst, got, err, c.want, c.err)
		}
	}
}
