package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/shrinkml/shrink/model"
)

// file assembles a safetensors file from a raw header and data section.
func file(header string, data []byte) []byte {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(header)))
	return append(append(n[:], header...), data...)
}

func encode(t testing.TB, tensors []*model.Tensor, md map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Encode(&buf, tensors, md); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func randTensor(r *rand.Rand, name string, d model.DType, shape ...int) *model.Tensor {
	n, err := model.ByteSize(d, shape)
	if err != nil {
		panic(err)
	}
	data := make([]byte, n)
	r.Read(data)
	return &model.Tensor{Name: name, DType: d, Shape: shape, Data: data}
}

// TestReferenceVectors checks the exact bytes the reference implementation's own
// tests expect for a single tensor, an empty file and metadata only.
func TestReferenceVectors(t *testing.T) {
	f32 := model.NewF32("attn.0", []int{1, 2, 3}, []float32{0, 1, 2, 3, 4, 5})
	tests := []struct {
		name    string
		tensors []*model.Tensor
		md      map[string]string
		header  string
	}{
		{"tensor", []*model.Tensor{f32}, nil,
			`{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}`},
		{"forced alignment", []*model.Tensor{{Name: "attn0", DType: model.F32, Shape: []int{1, 1, 2, 3}, Data: f32.Data}}, nil,
			`{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       `},
		{"empty", nil, nil, `{}      `},
		{"metadata only", nil, map[string]string{"framework": "pt"}, `{"__metadata__":{"framework":"pt"}}     `},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := encode(t, tc.tensors, tc.md)
			var data []byte
			for _, x := range tc.tensors {
				data = append(data, x.Data...)
			}
			if want := file(tc.header, data); !bytes.Equal(got, want) {
				t.Fatalf("got\n%q\nwant\n%q", got, want)
			}
			if len(got)%8 != 0 && len(tc.tensors) == 0 {
				t.Fatalf("length %d not padded", len(got))
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	tensors := []*model.Tensor{
		randTensor(r, "b", model.F16, 3, 5),
		randTensor(r, "a", model.F32, 7),
		randTensor(r, "z.bf", model.BF16, 2, 2, 2),
		randTensor(r, "i8", model.I8, 9),
		randTensor(r, "u8", model.U8, 1),
		randTensor(r, "i32", model.I32, 4, 1),
		randTensor(r, "scalar", model.F32),
		randTensor(r, "empty", model.F16, 0, 3),
		randTensor(r, "ünïcode\"\n\\\x01▁", model.F32, 2),
	}
	md := map[string]string{"format": "pt", "z": "last", "a": "first \"quoted\"\t<&>"}
	raw := encode(t, tensors, md)
	if again := encode(t, tensors, md); !bytes.Equal(raw, again) {
		t.Fatal("encoding is not deterministic")
	}
	f, err := Parse("mem", raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Metadata, md) {
		t.Errorf("metadata %v, want %v", f.Metadata, md)
	}
	if len(f.Tensors) != len(tensors) {
		t.Fatalf("%d tensors, want %d", len(f.Tensors), len(tensors))
	}
	// Written in the given order, so read back in the same (offset) order,
	// except that the empty tensor sorts before the one sharing its offset.
	for _, want := range tensors {
		got := f.Tensor(want.Name)
		if got == nil {
			t.Fatalf("tensor %q missing", want.Name)
		}
		if got.DType != want.DType || !reflect.DeepEqual(got.Shape, want.Shape) && !(len(got.Shape) == 0 && len(want.Shape) == 0) || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("tensor %q: got %s %v, want %s %v", want.Name, got.DType, got.Shape, want.DType, want.Shape)
		}
	}
	if f.DataStart%8 != 0 {
		t.Errorf("data starts at %d, not a multiple of 8", f.DataStart)
	}
}

func TestOffsetOrder(t *testing.T) {
	hdr := `{"c":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},` +
		`"e":{"dtype":"U8","shape":[0],"data_offsets":[2,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}`
	f, err := Parse("mem", file(hdr, []byte{0, 1, 2, 3, 4, 5}))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, x := range f.Tensors {
		names = append(names, x.Name)
	}
	if got := strings.Join(names, ","); got != "a,e,b,c" {
		t.Errorf("order %s, want a,e,b,c", got)
	}
	if f.Tensor("c").Data[0] != 4 {
		t.Errorf("tensor c reads %v", f.Tensor("c").Data)
	}
}

func TestHolesAreAllowed(t *testing.T) {
	hdr := `{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[3,4]}}`
	f, err := Parse("mem", file(hdr, []byte{1, 9, 9, 2, 9}))
	if err != nil {
		t.Fatal(err)
	}
	if f.Tensor("b").Data[0] != 2 {
		t.Errorf("b = %v", f.Tensor("b").Data)
	}
}

func TestBadInputs(t *testing.T) {
	ok := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	data8 := make([]byte, 8)
	long := make([]byte, 16)
	binary.LittleEndian.PutUint64(long, 1<<40)
	huge := make([]byte, 16)
	binary.LittleEndian.PutUint64(huge, math.MaxUint64)
	tests := []struct {
		name string
		raw  []byte
		want string
	}{
		{"short file", []byte{1, 2, 3}, "too short for the 8-byte header length"},
		{"header past end", file(ok, data8)[:20], "runs past the end of the file"},
		{"absurd header", long, "exceeds the limit of 100000000 bytes"},
		{"max uint64 header", huge, "exceeds the limit"},
		{"not utf8", file("{\"a\xff\":{}}", nil), "not valid UTF-8"},
		{"not json", file("{nope", nil), "not valid JSON"},
		{"not object", file(`[1,2]`, nil), "not a JSON object"},
		{"empty header", file(``, nil), "not a JSON object"},
		{"trailing", file(ok+`{}`, data8), "data after its JSON object"},
		{"truncated", file(`{"a":{"dtype":"F32"`, nil), "not valid JSON"},
		{"duplicate tensor", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, []byte{1, 2}), `key "a" twice`},
		{"duplicate field", file(`{"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{1}), `"dtype" appears twice`},
		{"duplicate metadata", file(`{"__metadata__":{"k":"1","k":"2"}}`, nil), `"k" appears twice`},
		{"metadata not string", file(`{"__metadata__":{"k":1}}`, nil), `value of "k" is a number, not a string`},
		{"metadata not object", file(`{"__metadata__":[1]}`, nil), "__metadata__: found"},
		{"missing dtype", file(`{"a":{"shape":[1],"data_offsets":[0,1]}}`, []byte{1}), "dtype is missing"},
		{"missing shape", file(`{"a":{"dtype":"U8","data_offsets":[0,1]}}`, []byte{1}), "shape is missing"},
		{"missing offsets", file(`{"a":{"dtype":"U8","shape":[1]}}`, []byte{1}), "data_offsets is missing"},
		{"unsupported dtype", file(`{"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}`, data8), "unsupported dtype F64"},
		{"unsupported bool", file(`{"a":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}}`, data8), "unsupported dtype BOOL"},
		{"unknown dtype", file(`{"a":{"dtype":"Q4_0","shape":[32],"data_offsets":[0,18]}}`, make([]byte, 18)), `unknown dtype "Q4_0"`},
		{"dtype not string", file(`{"a":{"dtype":4,"shape":[1],"data_offsets":[0,1]}}`, data8), "dtype is a number"},
		{"negative dim", file(`{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}`, data8), "negative number -1"},
		{"float dim", file(`{"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}`, data8), "not a 64-bit integer"},
		{"huge dim", file(`{"a":{"dtype":"U8","shape":[99999999999999999999],"data_offsets":[0,1]}}`, data8), "not a 64-bit integer"},
		{"overflowing shape", file(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,1]}}`, data8), "too large"},
		{"one offset", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}}`, data8), "has 1 numbers, want 2"},
		{"offsets reversed", file(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[4,2]}}`, data8), "end before they begin"},
		{"size mismatch", file(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, data8), "needs 12 bytes, data_offsets [0, 8] hold 8"},
		{"out of range", file(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}`, data8), "run past the end of the data (8 bytes)"},
		{"far out of range", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[9223372036854775806,9223372036854775807]}}`, data8), "run past the end of the data"},
		{"overlap", file(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}`, data8), `"b": data_offsets [2, 6] overlap tensor "a"`},
		{"same range", file(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}`, data8), "overlap"},
		{"empty name", file(`{"":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, data8), "empty name"},
		{"tensor not object", file(`{"a":[1]}`, nil), `tensor "a": found "["`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.safetensors", tc.raw)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "safetensors bad.safetensors: ") {
				t.Fatalf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestUnknownFieldsAndNullMetadata(t *testing.T) {
	f, err := Parse("mem", file(`{"__metadata__":null,"a":{"extra":{"x":[1,{"y":2}]},"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{7}))
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata != nil || f.Tensor("a").Data[0] != 7 {
		t.Errorf("got %v %v", f.Metadata, f.Tensor("a"))
	}
}

func TestWriteErrors(t *testing.T) {
	deep := &model.Tensor{Name: "q", DType: model.Q8_0, Shape: []int{1, 1, 1, 1, 1, 1, 1, 1, 32}, Data: make([]byte, 34)}
	tests := []struct {
		name    string
		tensors []*model.Tensor
		md      map[string]string
		want    string
	}{
		{"quantized rank 9", []*model.Tensor{deep}, nil, `tensor "q": Q8_0 shape [1 1 1 1 1 1 1 1 32] has rank 9`},
		{"reserved metadata", nil, map[string]string{"shrink.quant.tensor.a": "{}"}, `"shrink.quant.tensor.a" is reserved for the quantized layout`},
		{"duplicate", []*model.Tensor{model.NewF32("a", []int{1}, []float32{1}), model.NewF32("a", []int{1}, []float32{1})}, nil, `"a" appears twice`},
		{"bad size", []*model.Tensor{{Name: "a", DType: model.F32, Shape: []int{2}, Data: make([]byte, 4)}}, nil, "needs 8 bytes, has 4"},
		{"reserved name", []*model.Tensor{model.NewF32("__metadata__", []int{1}, []float32{1})}, nil, "cannot be named"},
		{"empty name", []*model.Tensor{model.NewF32("", []int{1}, []float32{1})}, nil, "empty name"},
		{"bad utf8 name", []*model.Tensor{model.NewF32("a\xff", []int{1}, []float32{1})}, nil, "not valid UTF-8"},
		{"bad utf8 metadata", nil, map[string]string{"k": "\xff"}, "not valid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Encode(&bytes.Buffer{}, tc.tensors, tc.md)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestStreamingWriter(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	a, b := randTensor(r, "a", model.F32, 3), randTensor(r, "b", model.BF16, 2, 2)
	infos := []Info{InfoOf(a), InfoOf(b)}
	var buf bytes.Buffer
	sw, err := NewWriter(&buf, infos, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.WriteTensor("b", b.Data); err == nil || !strings.Contains(err.Error(), `header has "a" next`) {
		t.Errorf("out of order: %v", err)
	}
	if err := sw.WriteTensor("a", a.Data[:4]); err == nil || !strings.Contains(err.Error(), "4 bytes written") {
		t.Errorf("short: %v", err)
	}
	if err := sw.WriteTensor("a", a.Data); err != nil {
		t.Fatal(err)
	}
	if err := sw.Close(); err == nil || !strings.Contains(err.Error(), "only 1 of 2") {
		t.Errorf("early close: %v", err)
	}
	if err := sw.WriteTensor("b", b.Data); err != nil {
		t.Fatal(err)
	}
	if err := sw.WriteTensor("c", nil); err == nil || !strings.Contains(err.Error(), "already written") {
		t.Errorf("extra: %v", err)
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	if want := encode(t, []*model.Tensor{a, b}, map[string]string{"format": "pt"}); !bytes.Equal(buf.Bytes(), want) {
		t.Error("streamed bytes differ from Encode")
	}
}

func TestOpenAliasesMapping(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	tensors := []*model.Tensor{randTensor(r, "a", model.F32, 64, 64), randTensor(r, "b", model.F32, 1000)}
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := WriteFile(path, tensors, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, tensors, nil, false); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("overwrite without force: %v", err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lo := uintptr(unsafe.Pointer(&f.data[0]))
	hi := lo + uintptr(len(f.data))
	for i, x := range f.Tensors {
		p := uintptr(unsafe.Pointer(&x.Data[0]))
		if p < lo || p+uintptr(len(x.Data)) > hi {
			t.Errorf("tensor %q data is not inside the file mapping", x.Name)
		}
		if want := lo + uintptr(f.DataStart) + uintptr(4*64*64*i); p != want {
			t.Errorf("tensor %q data at %#x, want %#x", x.Name, p, want)
		}
		if !bytes.Equal(x.Data, tensors[i].Data) {
			t.Errorf("tensor %q data differs", x.Name)
		}
		// An aligned F32 tensor decodes as a view of the mapping, not a copy.
		v, err := x.Float32()
		if err != nil {
			t.Fatal(err)
		}
		if uintptr(unsafe.Pointer(&v[0])) != p {
			t.Errorf("tensor %q Float32 copied the data", x.Name)
		}
		if cap(x.Data) != len(x.Data) {
			t.Errorf("tensor %q data has spare capacity %d", x.Name, cap(x.Data))
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenErrorsNameFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.safetensors")
	os.WriteFile(bad, []byte("garbage!garbage"), 0o644)
	for _, path := range []string{filepath.Join(dir, "missing.safetensors"), bad, dir} {
		_, err := Open(path)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Open(%s): %v", path, err)
		}
	}
}

// TestPythonFixture reads the file written by testdata/reference.py, an
// independent standard-library implementation, and checks that Go encodes the
// same tensors to the same bytes.
func TestPythonFixture(t *testing.T) {
	path := filepath.Join("testdata", "reference.safetensors")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	wantMD := map[string]string{"format": "pt", "note": "line\nbreak é\x01"}
	if !reflect.DeepEqual(f.Metadata, wantMD) {
		t.Errorf("metadata %q, want %q", f.Metadata, wantMD)
	}
	weird := "we\u00efrd\t\"name\"\\\u2581"
	want := map[string]struct {
		d      model.DType
		shape  []int
		values []float32
	}{
		"model.embed_tokens.weight": {model.F32, []int{3, 4}, []float32{-1, -0.75, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75}},
		"model.norm.weight":         {model.F16, []int{4}, []float32{1, -2.5, 0.5, 65504}},
		"lm_head.weight":            {model.BF16, []int{2, 3}, []float32{1, -0.5, 3, 0.0078125, -256, 1.5}},
		"ids":                       {model.I32, []int{5}, []float32{-3, 0, 7, 2147483647, -2147483648}},
		"mask":                      {model.U8, []int{2, 2}, []float32{0, 1, 255, 7}},
		"q8":                        {model.I8, []int{3}, []float32{-128, 0, 127}},
		"empty":                     {model.F32, []int{0, 4}, []float32{}},
		weird:                       {model.F32, []int{}, []float32{42}},
	}
	if len(f.Tensors) != len(want) {
		t.Fatalf("%d tensors, want %d", len(f.Tensors), len(want))
	}
	for _, x := range f.Tensors {
		w, ok := want[x.Name]
		if !ok {
			t.Fatalf("unexpected tensor %q", x.Name)
		}
		if x.DType != w.d || len(x.Shape) != len(w.shape) || (len(w.shape) > 0 && !reflect.DeepEqual(x.Shape, w.shape)) {
			t.Errorf("tensor %q: %s %v, want %s %v", x.Name, x.DType, x.Shape, w.d, w.shape)
			continue
		}
		got, err := x.Float32()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(w.values) {
			t.Errorf("tensor %q: %v, want %v", x.Name, got, w.values)
			continue
		}
		for i := range got {
			if got[i] != w.values[i] {
				t.Errorf("tensor %q: %v, want %v", x.Name, got, w.values)
				break
			}
		}
	}
	// Re-encode in the reference layout order: byte-identical to the fixture.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	shuffled := append([]*model.Tensor(nil), f.Tensors...)
	rand.New(rand.NewSource(4)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	if got := encode(t, ReferenceOrder(shuffled), f.Metadata); !bytes.Equal(got, raw) {
		t.Errorf("Go encoding differs from the Python fixture:\n%q\n%q", got, raw)
	}
}

func BenchmarkParseHeader(b *testing.B) {
	// A llama-like header: 32 layers of 9 tensors each.
	var infos []Info
	for l := 0; l < 32; l++ {
		for _, s := range []string{model.AttnNorm, model.AttnQ, model.AttnK, model.AttnV, model.AttnO, model.FFNNorm, model.FFNGate, model.FFNUp, model.FFNDown} {
			infos = append(infos, Info{Name: model.LayerTensor(l, s), DType: model.BF16, Shape: []int{4, 4}})
		}
	}
	var buf bytes.Buffer
	sw, err := NewWriter(&buf, infos, map[string]string{"format": "pt"})
	if err != nil {
		b.Fatal(err)
	}
	for _, in := range infos {
		sw.WriteTensor(in.Name, make([]byte, 32))
	}
	raw := buf.Bytes()
	b.SetBytes(int64(binary.LittleEndian.Uint64(raw)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Parse("bench", raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	// 64 MiB of F32: Open must cost the same as for a tiny file, since the
	// data is mapped, not read.
	r := rand.New(rand.NewSource(5))
	var tensors []*model.Tensor
	for i := 0; i < 16; i++ {
		tensors = append(tensors, randTensor(r, model.LayerTensor(i, model.AttnQ), model.F32, 1024, 1024))
	}
	path := filepath.Join(b.TempDir(), "big.safetensors")
	if err := WriteFile(path, tensors, nil, false); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
