package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/model"
)

// quantFixture returns tensors of every block type, in several ranks, among
// plain ones.
func quantFixture() []*model.Tensor {
	r := rand.New(rand.NewSource(9))
	return []*model.Tensor{
		randTensor(r, "norm", model.F32, 8),
		randTensor(r, "q8", model.Q8_0, 4, 64),
		randTensor(r, "q4", model.Q4_0, 2, 3, 32),
		randTensor(r, "q41", model.Q4_1, 96),
		randTensor(r, "k4", model.Q4_K, 2, 256),
		randTensor(r, "k6", model.Q6_K, 1, 256),
		randTensor(r, "empty", model.Q8_0, 0, 32),
		randTensor(r, "bytes", model.U8, 3, 5),
		randTensor(r, "i8", model.Int8Ch, 3, 5),
		randTensor(r, "i4", model.Int4G128, 2, 256),
		randTensor(r, "i4a", model.Int4G32Asym, 2, 2, 64),
		randTensor(r, "i4b", model.Int4G64Asym, 64),
	}
}

func TestQuantRoundTrip(t *testing.T) {
	ts := quantFixture()
	raw := encode(t, ts, map[string]string{"format": "pt"})
	f, err := Parse("mem", raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Metadata, map[string]string{"format": "pt"}) {
		t.Errorf("metadata %v keeps the layout's keys", f.Metadata)
	}
	for _, want := range ts {
		got := f.Tensor(want.Name)
		if got == nil || got.DType != want.DType || !reflect.DeepEqual(got.Shape, want.Shape) || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("tensor %q: got %v, want %s %v", want.Name, got, want.DType, want.Shape)
		}
	}
	if again := encode(t, f.Tensors, f.Metadata); !bytes.Equal(again, encode(t, f.Tensors, map[string]string{"format": "pt"})) {
		t.Error("re-encoding a parsed file changes it")
	}

	// An ordinary reader sees U8 matrices of blocks and the metadata strings.
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(bytes.TrimRight(raw[8:8+binary.LittleEndian.Uint64(raw)], " "), &hdr); err != nil {
		t.Fatal(err)
	}
	var md map[string]string
	json.Unmarshal(hdr["__metadata__"], &md)
	wantMD := map[string]string{
		"format":                    "pt",
		"shrink.quant.version":      "1",
		"shrink.quant.tensor.q8":    `{"dtype":"Q8_0","shape":[4,64]}`,
		"shrink.quant.tensor.q4":    `{"dtype":"Q4_0","shape":[2,3,32]}`,
		"shrink.quant.tensor.q41":   `{"dtype":"Q4_1","shape":[96]}`,
		"shrink.quant.tensor.k4":    `{"dtype":"Q4_K","shape":[2,256]}`,
		"shrink.quant.tensor.k6":    `{"dtype":"Q6_K","shape":[1,256]}`,
		"shrink.quant.tensor.empty": `{"dtype":"Q8_0","shape":[0,32]}`,
		"shrink.quant.tensor.i8":    `{"dtype":"INT8_CH","shape":[3,5]}`,
		"shrink.quant.tensor.i4":    `{"dtype":"INT4_G128","shape":[2,256]}`,
		"shrink.quant.tensor.i4a":   `{"dtype":"INT4_G32_ASYM","shape":[2,2,64]}`,
		"shrink.quant.tensor.i4b":   `{"dtype":"INT4_G64_ASYM","shape":[64]}`,
	}
	if !reflect.DeepEqual(md, wantMD) {
		t.Errorf("__metadata__ %v, want %v", md, wantMD)
	}
	storage := map[string]string{
		"q8": `{"dtype":"U8","shape":[4,68]`, "q4": `{"dtype":"U8","shape":[6,18]`, "q41": `{"dtype":"U8","shape":[1,60]`,
		"k4": `{"dtype":"U8","shape":[2,144]`, "k6": `{"dtype":"U8","shape":[1,210]`, "empty": `{"dtype":"U8","shape":[0,34]`,
		"norm": `{"dtype":"F32","shape":[8]`,
		// Rows of 5 int8 codes after their fp16 scale; groups of 128 with
		// an fp16 scale; groups of 32 and 64 with a scale and a zero point.
		"i8": `{"dtype":"U8","shape":[3,7]`, "i4": `{"dtype":"U8","shape":[2,132]`,
		"i4a": `{"dtype":"U8","shape":[4,38]`, "i4b": `{"dtype":"U8","shape":[1,35]`,
	}
	for name, want := range storage {
		if !strings.HasPrefix(string(hdr[name]), want) {
			t.Errorf("tensor %q is stored as %s, want %s...", name, hdr[name], want)
		}
	}
}

// TestQuantDocumentedExample checks the example of the package documentation.
func TestQuantDocumentedExample(t *testing.T) {
	w := randTensor(rand.New(rand.NewSource(1)), "w", model.Q4_0, 288, 768)
	raw := encode(t, []*model.Tensor{w}, nil)
	want := `{"__metadata__":{"shrink.quant.tensor.w":"{\"dtype\":\"Q4_0\",\"shape\":[288,768]}","shrink.quant.version":"1"},` +
		`"w":{"dtype":"U8","shape":[288,432],"data_offsets":[0,124416]}}`
	if got := string(bytes.TrimRight(raw[8:8+binary.LittleEndian.Uint64(raw)], " ")); got != want {
		t.Errorf("header\n%s\nwant\n%s", got, want)
	}
}

func TestQuantStreamingAndOrder(t *testing.T) {
	ts := quantFixture()
	var buf bytes.Buffer
	infos := make([]Info, len(ts))
	for i, x := range ts {
		infos[i] = InfoOf(x)
	}
	sw, err := NewWriter(&buf, infos, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ts {
		if err := sw.WriteTensor(x.Name, x.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), encode(t, ts, nil)) {
		t.Error("the streaming writer and Encode disagree")
	}
	var names []string
	for _, x := range ReferenceOrder(ts) {
		names = append(names, x.Name)
	}
	if got := strings.Join(names, " "); got != "norm bytes empty i4 i4a i4b i8 k4 k6 q4 q41 q8" {
		t.Errorf("reference order %s: quantized tensors sort as U8", got)
	}
}

func TestQuantSharded(t *testing.T) {
	ts := quantFixture()
	dir := t.TempDir()
	md := map[string]string{"format": "pt"}
	if _, err := WriteSharded(dir, ts, md, 300); err != nil {
		t.Fatal(err)
	}
	c, err := OpenIndex(filepath.Join(dir, IndexName))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.Files) < 3 {
		t.Fatalf("%d shards, want several", len(c.Files))
	}
	for _, f := range c.Files {
		if !reflect.DeepEqual(f.Metadata, md) {
			t.Errorf("%s: metadata %v", f.Name, f.Metadata)
		}
	}
	if len(c.Tensors) != len(ts) {
		t.Fatalf("%d tensors, want %d", len(c.Tensors), len(ts))
	}
	for i, x := range c.Tensors {
		w := ts[i]
		if x.Name != w.Name || x.DType != w.DType || !reflect.DeepEqual(x.Shape, w.Shape) || !bytes.Equal(x.Data, w.Data) {
			t.Errorf("tensor %d: got %s %s %v, want %s %s %v", i, x.Name, x.DType, x.Shape, w.Name, w.DType, w.Shape)
		}
	}
}

// quantFile builds a file with one stored tensor "w" and the given metadata
// entries, written as raw JSON members of __metadata__.
func quantFile(storage string, size int, meta string) []byte {
	return file(`{"__metadata__":{`+meta+`},"w":{"dtype":`+storage+`,"data_offsets":[0,`+strconv.Itoa(size)+`]}}`, make([]byte, size))
}

func TestQuantBadInputs(t *testing.T) {
	const v1 = `"shrink.quant.version":"1",`
	entry := func(value string) string {
		b, _ := json.Marshal(value)
		return v1 + `"shrink.quant.tensor.w":` + string(b)
	}
	q8 := `"U8","shape":[2,34]`
	tests := []struct {
		name string
		raw  []byte
		want string
	}{
		{"absent tensor", quantFile(q8, 68, v1+`"shrink.quant.tensor.x":"{\"dtype\":\"Q8_0\",\"shape\":[2,32]}"`),
			`key "shrink.quant.tensor.x" describes tensor "x", which the file does not hold`},
		{"unknown dtype", quantFile(q8, 68, entry(`{"dtype":"Q5_0","shape":[2,32]}`)), `tensor "w": __metadata__ "shrink.quant.tensor.w": dtype "Q5_0" is not a block type`},
		{"lower-case dtype", quantFile(q8, 68, entry(`{"dtype":"q8_0","shape":[2,32]}`)), `dtype "q8_0" is not a block type`},
		{"scalar dtype", quantFile(q8, 68, entry(`{"dtype":"F16","shape":[2,34]}`)), `dtype "F16" is not a block type`},
		{"dtype not string", quantFile(q8, 68, entry(`{"dtype":8,"shape":[2,32]}`)), `tensor "w"`},
		{"not U8", quantFile(`"I8","shape":[2,34]`, 68, entry(`{"dtype":"Q8_0","shape":[2,32]}`)), `tensor "w": the quantized layout stores Q8_0 blocks as U8, the header says I8`},
		{"F32 storage", quantFile(`"F32","shape":[2,32]`, 256, entry(`{"dtype":"Q8_0","shape":[2,32]}`)), "stores Q8_0 blocks as U8, the header says F32"},
		{"wrong byte count", quantFile(q8, 68, entry(`{"dtype":"Q8_0","shape":[2,64]}`)), `tensor "w": Q8_0 [2 64] is stored as U8 [2 68], the header says U8 [2 34]`},
		{"wrong row split", quantFile(`"U8","shape":[1,68]`, 68, entry(`{"dtype":"Q8_0","shape":[2,32]}`)), `Q8_0 [2 32] is stored as U8 [2 34], the header says U8 [1 68]`},
		{"flat storage", quantFile(`"U8","shape":[68]`, 68, entry(`{"dtype":"Q8_0","shape":[2,32]}`)), `the header says U8 [68]`},
		{"partial block", quantFile(q8, 68, entry(`{"dtype":"Q8_0","shape":[2,30]}`)), "Q8_0 needs rows that are a multiple of 32, shape [2 30] has rows of 30"},
		{"partial group", quantFile(q8, 68, entry(`{"dtype":"INT4_G64","shape":[2,32]}`)), "INT4_G64 needs rows that are a multiple of 64"},
		{"int8 rows without scales", quantFile(q8, 68, entry(`{"dtype":"INT8_CH","shape":[2,34]}`)), "INT8_CH [2 34] is stored as U8 [2 36], the header says U8 [2 34]"},
		{"int4 zero points missing", quantFile(`"U8","shape":[2,18]`, 36, entry(`{"dtype":"INT4_G32_ASYM","shape":[2,32]}`)), "INT4_G32_ASYM [2 32] is stored as U8 [2 19]"},
		{"lower-case int dtype", quantFile(q8, 68, entry(`{"dtype":"int8_ch","shape":[2,32]}`)), `dtype "int8_ch" is not a block type`},
		{"rank 0", quantFile(q8, 68, entry(`{"dtype":"Q8_0","shape":[]}`)), "has rank 0"},
		{"rank 9", quantFile(q8, 68, entry(`{"dtype":"Q8_0","shape":[1,1,1,1,1,1,1,2,32]}`)), "rank 9; the quantized layout holds ranks 1 to 8"},
		{"negative dim", quantFile(q8, 68, entry(`{"dtype":"Q8_0","shape":[-2,32]}`)), "dimension -2, outside 0 to 1099511627776"},
		{"huge dim", quantFile(q8, 68, entry(`{"dtype":"Q8_0","shape":[2,2199023255552]}`)), "dimension 2199023255552"},
		{"float dim", quantFile(q8, 68, entry(`{"dtype":"Q8_0","shape":[2.5,32]}`)), `want {"dtype"`},
		{"overflow", quantFile(q8, 68, entry(`{"dtype":"Q8_0","shape":[1099511627776,1099511627776,32]}`)), "too large"},
		{"missing dtype", quantFile(q8, 68, entry(`{"shape":[2,32]}`)), "dtype is missing"},
		{"missing shape", quantFile(q8, 68, entry(`{"dtype":"Q8_0"}`)), "shape is missing"},
		{"unknown field", quantFile(q8, 68, entry(`{"dtype":"Q8_0","shape":[2,32],"scale":1}`)), `unknown field "scale"`},
		{"not json", quantFile(q8, 68, entry(`Q8_0 [2,32]`)), `want {"dtype":"Q8_0","shape":[rows,cols]}`},
		{"trailing data", quantFile(q8, 68, entry(`{"dtype":"Q8_0","shape":[2,32]} {}`)), "data after the JSON object"},
		{"no version", quantFile(q8, 68, `"shrink.quant.tensor.w":"{\"dtype\":\"Q8_0\",\"shape\":[2,32]}"`), `describes quantized tensor "w" but has no "shrink.quant.version"`},
		{"newer version", quantFile(q8, 68, `"shrink.quant.version":"2"`), `"shrink.quant.version" is "2"; this shrink reads quantized layout version 1`},
		{"unknown key", quantFile(q8, 68, v1+`"shrink.quant.scheme":"q8_0"`), `key "shrink.quant.scheme" is not part of quantized layout version 1`},
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

// TestQuantVersionAlone accepts a version key with no quantized tensor.
func TestQuantVersionAlone(t *testing.T) {
	f, err := Parse("mem", quantFile(`"U8","shape":[2,34]`, 68, `"shrink.quant.version":"1","k":"v"`))
	if err != nil {
		t.Fatal(err)
	}
	if w := f.Tensor("w"); w.DType != model.U8 || !reflect.DeepEqual(f.Metadata, map[string]string{"k": "v"}) {
		t.Errorf("got %s, metadata %v", w.DType, f.Metadata)
	}
}

func TestCanStore(t *testing.T) {
	for d := model.DType(0); d <= model.Int4G128Asym+1; d++ {
		want := d.Valid()
		if got := CanStore(d); got != want {
			t.Errorf("CanStore(%s) = %v, want %v", d, got, want)
		}
	}
}

// TestQuantFuzzSeeds keeps the layout's seeds of FuzzHeader meaningful: the
// valid ones parse to quantized tensors and the others fail.
func TestQuantFuzzSeeds(t *testing.T) {
	for name, valid := range map[string]bool{
		"quant_q8_q4": true, "quant_3d_k_empty": true, "quant_absent": false,
		"quant_size_lie": false, "quant_huge_shape": false, "quant_i8_no_version": false, "quant_empty_huge_dims": true,
		"quant_int8_int4": true, "quant_int8_empty_rows": true, "quant_int4_asym_lie": false,
	} {
		raw, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzHeader", name))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		quoted, ok := strings.CutPrefix(lines[len(lines)-1], "[]byte(")
		data, err := strconv.Unquote(strings.TrimSuffix(quoted, ")"))
		if !ok || err != nil {
			t.Fatalf("%s: not a []byte corpus entry: %v", name, err)
		}
		f, err := Parse(name, []byte(data))
		if valid != (err == nil) {
			t.Errorf("%s: error %v", name, err)
			continue
		}
		if valid && !f.Tensors[0].DType.Quantized() {
			t.Errorf("%s: first tensor is %s", name, f.Tensors[0].DType)
		}
	}
}
