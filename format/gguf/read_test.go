package gguf

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// The keys of stories260K-F32.gguf in file order, as llama.cpp's llama2.c
// converter wrote them (dumped with an independent Python reader).
var refF32Keys = []struct {
	key string
	typ ValueType
	val string
}{
	{"tokenizer.ggml.tokens", TypeArray, "[512 x string]"},
	{"tokenizer.ggml.scores", TypeArray, "[512 x f32]"},
	{"tokenizer.ggml.token_type", TypeArray, "[512 x i32]"},
	{"tokenizer.ggml.model", TypeString, `"llama"`},
	{"general.architecture", TypeString, `"llama"`},
	{"general.name", TypeString, `"llama"`},
	{"tokenizer.ggml.unknown_token_id", TypeUint32, "0"},
	{"tokenizer.ggml.bos_token_id", TypeUint32, "1"},
	{"tokenizer.ggml.eos_token_id", TypeUint32, "2"},
	{"tokenizer.ggml.seperator_token_id", TypeUint32, "4294967295"},
	{"tokenizer.ggml.padding_token_id", TypeUint32, "4294967295"},
	{"llama.context_length", TypeUint32, "512"},
	{"llama.embedding_length", TypeUint32, "64"},
	{"llama.feed_forward_length", TypeUint32, "172"},
	{"llama.attention.head_count", TypeUint32, "8"},
	{"llama.attention.head_count_kv", TypeUint32, "4"},
	{"llama.block_count", TypeUint32, "5"},
	{"llama.rope.dimension_count", TypeUint32, "8"},
	{"llama.attention.layer_norm_rms_epsilon", TypeFloat32, "1e-05"},
}

func TestReadReferenceF32(t *testing.T) {
	data, err := os.ReadFile(refPath(t, refF32))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Read(data)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 3 || f.Alignment != 32 || f.DataOffset != 14176 {
		t.Errorf("version %d alignment %d data offset %d, want 3 32 14176", f.Version, f.Alignment, f.DataOffset)
	}
	if len(f.KVs) != len(refF32Keys) {
		t.Fatalf("%d keys, want %d", len(f.KVs), len(refF32Keys))
	}
	for i, want := range refF32Keys {
		kv := f.KVs[i]
		if kv.Key != want.key || kv.Value.Type != want.typ || kv.Value.String() != want.val {
			t.Errorf("key %d: %s %s %s, want %s %s %s", i, kv.Key, kv.Value.Type, kv.Value, want.key, want.typ, want.val)
		}
	}
	tokens, _ := f.Get("tokenizer.ggml.tokens")
	if tk := tokens.V.([]string); tk[0] != "<unk>" || tk[3] != "<0x00>" || tk[511] == "" {
		t.Errorf("tokens start %q", tk[:4])
	}
	// Tensor names and order of llama.cpp's llama2.c converter.
	var want []string
	want = append(want, "token_embd.weight", "output_norm.weight", "output.weight")
	for l := 0; l < 5; l++ {
		for _, n := range []string{"attn_q", "attn_k", "attn_v", "attn_output", "attn_norm", "ffn_gate", "ffn_down", "ffn_up", "ffn_norm"} {
			want = append(want, fmt.Sprintf("blk.%d.%s.weight", l, n))
		}
	}
	var got []string
	for _, ti := range f.Tensors {
		got = append(got, ti.Name)
		if ti.Type != GGMLF32 {
			t.Errorf("tensor %s has type %s", ti.Name, ti.Type)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tensor names\n got %v\nwant %v", got, want)
	}
	shapes := map[string][]int{
		"token_embd.weight": {512, 64}, "output_norm.weight": {64}, "blk.0.attn_k.weight": {32, 64},
		"blk.4.ffn_down.weight": {64, 172}, "blk.2.ffn_gate.weight": {172, 64},
	}
	for name, s := range shapes {
		ti := f.Tensor(name)
		if ti == nil || !reflect.DeepEqual(ti.Shape(), s) {
			t.Errorf("tensor %s: shape %v, want %v", name, ti.Shape(), s)
		}
	}
	if f.Tensor("blk.0.attn_k.weight").Dims[0] != 64 {
		t.Errorf("ne[0] should be the row length")
	}
	// The embedding is the first tensor: its data starts at the data offset.
	if e := f.Tensor("token_embd.weight"); !bytes.Equal(e.Data[:8], data[14176:14184]) {
		t.Errorf("embedding data does not start at the data offset")
	}
}

// TestRewriteByteExact writes every reference file back from its own key/values
// and tensors and expects llama.cpp's bytes exactly: header, padding and data.
func TestRewriteByteExact(t *testing.T) {
	for _, rel := range allRefs {
		t.Run(rel, func(t *testing.T) {
			data, err := os.ReadFile(refPath(t, rel))
			if err != nil {
				t.Fatal(err)
			}
			f, err := Read(data)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := Write(&buf, f.KVs, f.Tensors); err != nil {
				t.Fatal(err)
			}
			out := buf.Bytes()
			if len(out) != len(data) {
				t.Fatalf("rewrite has %d bytes, the original %d", len(out), len(data))
			}
			if !bytes.Equal(out[:f.DataOffset], data[:f.DataOffset]) {
				t.Errorf("header region differs")
			}
			for _, ti := range f.Tensors {
				start := f.DataOffset + ti.Offset
				if !bytes.Equal(out[start:start+int64(len(ti.Data))], ti.Data) {
					t.Errorf("tensor %s data differs", ti.Name)
				}
			}
			if !bytes.Equal(out, data) {
				t.Errorf("files differ")
			}
		})
	}
}

// allTypesFile holds one key of every value type, nested arrays included, and
// two tensors; it is built by hand, not by Write.
func allTypesFile() []byte {
	f := header(2, 16)
	f.str("u8").u32(0).u8(200)
	f.str("i8").u32(1).u8(0x80)
	f.str("u16").u32(2).u16(65535)
	f.str("i16").u32(3).u16(0x8000)
	f.str("u32").u32(4).u32(4000000000)
	f.str("i32").u32(5).u32(0xffffffff)
	f.str("f32").u32(6).f32(1.5)
	f.str("bool").u32(7).u8(1)
	f.str("string").u32(8).str("héllo")
	f.str("u64").u32(10).u64(1 << 63)
	f.str("i64").u32(11).i64(-5)
	f.str("f64").u32(12).f64(-0.25)
	f.str("arr.i16").u32(9).u32(3).u64(2).u16(1).u16(0xffff)
	f.str("arr.str").u32(9).u32(8).u64(2).str("a").str("")
	// An array of two arrays: [[1, 2] as u8, ["x"]].
	f.str("arr.nested").u32(9).u32(9).u64(2).u32(0).u64(2).u8(1).u8(2).u32(8).u64(1).str("x")
	f.str("general.alignment").u32(4).u32(64)
	f.tinfo("a", 0, 0, 2, 3) // F32 [3, 2] in PyTorch order: 24 bytes
	f.tinfo("b", 24, 64, 5)  // I8 [5] at the next 64-aligned offset
	for len(f.b)%64 != 0 {
		f.b = append(f.b, 0)
	}
	for i := 0; i < 6; i++ {
		f.f32(float32(i))
	}
	f.zeros(64 - 24)
	f.raw(1, 2, 3, 4, 5).zeros(64 - 5)
	return f.b
}

func TestReadAllValueTypes(t *testing.T) {
	data := allTypesFile()
	f, err := Read(data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Value{
		"u8":      {Type: TypeUint8, V: uint8(200)},
		"i8":      {Type: TypeInt8, V: int8(-128)},
		"u16":     {Type: TypeUint16, V: uint16(65535)},
		"i16":     {Type: TypeInt16, V: int16(-32768)},
		"u32":     {Type: TypeUint32, V: uint32(4000000000)},
		"i32":     {Type: TypeInt32, V: int32(-1)},
		"f32":     {Type: TypeFloat32, V: float32(1.5)},
		"bool":    {Type: TypeBool, V: true},
		"string":  {Type: TypeString, V: "héllo"},
		"u64":     {Type: TypeUint64, V: uint64(1 << 63)},
		"i64":     {Type: TypeInt64, V: int64(-5)},
		"f64":     {Type: TypeFloat64, V: -0.25},
		"arr.i16": {Type: TypeArray, Elem: TypeInt16, V: []int16{1, -1}},
		"arr.str": {Type: TypeArray, Elem: TypeString, V: []string{"a", ""}},
		"arr.nested": {Type: TypeArray, Elem: TypeArray, V: []Value{
			{Type: TypeArray, Elem: TypeUint8, V: []uint8{1, 2}},
			{Type: TypeArray, Elem: TypeString, V: []string{"x"}},
		}},
		"general.alignment": {Type: TypeUint32, V: uint32(64)},
	}
	if len(f.KVs) != len(want) {
		t.Fatalf("%d keys, want %d", len(f.KVs), len(want))
	}
	for _, kv := range f.KVs {
		if !reflect.DeepEqual(kv.Value, want[kv.Key]) {
			t.Errorf("%s = %#v, want %#v", kv.Key, kv.Value, want[kv.Key])
		}
	}
	if got := f.KVs[14].Value.GoValue(); !reflect.DeepEqual(got, []any{[]uint8{1, 2}, []string{"x"}}) {
		t.Errorf("nested GoValue = %#v", got)
	}
	if f.Alignment != 64 || f.DataOffset%64 != 0 {
		t.Errorf("alignment %d, data offset %d", f.Alignment, f.DataOffset)
	}
	a, b := f.Tensor("a"), f.Tensor("b")
	if !reflect.DeepEqual(a.Shape(), []int{3, 2}) || len(a.Data) != 24 || !reflect.DeepEqual(b.Data, []byte{1, 2, 3, 4, 5}) {
		t.Errorf("tensors a %v %d bytes, b %v", a.Shape(), len(a.Data), b.Data)
	}
	// Write reproduces the hand-built bytes exactly, custom alignment included.
	var buf bytes.Buffer
	if err := Write(&buf, f.KVs, f.Tensors); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), data) {
		t.Errorf("rewrite differs from the hand-built file")
	}
}

// TestReadVersion2 accepts version 2, whose little-endian layout is version 3's.
func TestReadVersion2(t *testing.T) {
	data := allTypesFile()
	data[4] = 2
	f, err := Read(data)
	if err != nil || f.Version != 2 {
		t.Fatalf("version 2: %v", err)
	}
}

func TestReadErrors(t *testing.T) {
	kv := func(nKV int64) *fb { return header(0, nKV) }
	tensorFile := func(build func(f *fb)) []byte {
		f := header(1, 0)
		build(f)
		return f.b
	}
	nested := kv(1).str("deep")
	nested.u32(9)
	for i := 0; i < 9; i++ {
		nested.u32(9).u64(1)
	}
	nested.u32(0).u64(0)

	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "truncated at offset 0: magic"},
		{"short magic", []byte("GGU"), "truncated"},
		{"bad magic", (&fb{}).raw('G', 'G', 'M', 'L').u32(3).i64(0).i64(0).b, `bad magic "GGML"`},
		{"version 1", (&fb{}).raw('G', 'G', 'U', 'F').u32(1).i64(0).i64(0).b, "unsupported version 1"},
		{"big-endian", (&fb{}).raw('G', 'G', 'U', 'F').u32(3 << 24).i64(0).i64(0).b, "big-endian"},
		{"no counts", (&fb{}).raw('G', 'G', 'U', 'F').u32(3).b, "truncated at offset 8: tensor count"},
		{"2^60 tensors", header(1<<60, 0).b, "tensor count at offset 8 is 1152921504606846976, more than"},
		{"2^60 keys", header(0, 1<<60).b, "key/value count at offset 16 is 1152921504606846976, more than"},
		{"negative tensor count", header(-1, 0).b, "tensor count at offset 8 is negative"},
		{"key length lie", kv(1).u64(1 << 40).zeros(20).b, "key 0 at offset 24 claims 1099511627776 bytes"},
		{"string length lie", kv(1).str("k").u32(8).u64(1 << 62).zeros(4).b, `key "k": string value at offset 37 claims 4611686018427387904 bytes`},
		{"unknown value type", kv(1).str("k").u32(13).zeros(8).b, `key "k": unknown value type 13`},
		{"unknown element type", kv(1).str("k").u32(9).u32(77).u64(0).b, "unknown value type 77 for array elements"},
		{"2^60 array", kv(1).str("k").u32(9).u32(4).u64(1 << 60).zeros(16).b, "array length at offset 41 is 1152921504606846976, more than"},
		{"array truncated", kv(1).str("k").u32(9).u32(4).u64(3).u32(1).b, "array length at offset 41 is 3, more than the 4 remaining bytes"},
		{"string array lie", kv(1).str("k").u32(9).u32(8).u64(2).str("a").u64(1 << 50).b, "string 1 of array at offset"},
		{"nested too deep", nested.b, "nested deeper than 8"},
		{"bool 2", kv(1).str("k").u32(7).u8(2).b, "bool value 2 at offset 37 is neither 0 nor 1"},
		{"bool array 7", kv(1).str("k").u32(9).u32(7).u64(2).u8(1).u8(7).b, "element 1: bool value 7"},
		{"duplicate key", kv(2).str("k").u32(0).u8(1).str("k").u32(0).u8(2).b, `duplicate key "k"`},
		{"non-UTF-8 key", kv(1).str("k\xff").u32(0).u8(1).b, "key 0 at offset 24 is not valid UTF-8"},
		{"alignment 0", kv(1).str("general.alignment").u32(4).u32(0).b, "general.alignment 0 is not a nonzero power of two"},
		{"alignment 48", kv(1).str("general.alignment").u32(4).u32(48).b, "general.alignment 48 is not a nonzero power of two"},
		{"alignment u64", kv(1).str("general.alignment").u32(10).u64(32).b, "general.alignment is a u64, want u32"},
		{"5 dims", tensorFile(func(f *fb) { f.tinfo("t", 0, 0, 1, 1, 1, 1, 1) }), `tensor "t": 5 dimensions, at most 4`},
		{"negative dim", tensorFile(func(f *fb) { f.tinfo("t", 0, 0, 4, -2) }), `tensor "t": ne[1] is negative (-2)`},
		{"dims overflow", tensorFile(func(f *fb) { f.tinfo("t", 0, 0, 1<<40, 1<<40) }), `tensor "t": dimensions [1099511627776 1099511627776] are too large`},
		{"bytes overflow", tensorFile(func(f *fb) { f.tinfo("t", 0, 0, 1<<31, 1<<31) }), `tensor "t": dimensions [2147483648 2147483648] are too large`},
		{"unknown type 99", tensorFile(func(f *fb) { f.tinfo("t", 99, 0, 4) }), `tensor "t": unknown tensor type 99`},
		{"removed type 4", tensorFile(func(f *fb) { f.tinfo("t", 4, 0, 32) }), `tensor "t": unknown tensor type 4`},
		{"partial block", tensorFile(func(f *fb) { f.tinfo("t", 2, 0, 33, 1) }), `tensor "t": Q4_0 needs rows that are a multiple of 32, ne[0] is 33`},
		{"unaligned offset", tensorFile(func(f *fb) { f.tinfo("t", 0, 4, 1) }), `tensor "t": offset 4 is not aligned to 32`},
		{"offset beyond int64", tensorFile(func(f *fb) { f.tinfo("t", 0, 1<<63, 1) }), `tensor "t": offset 9223372036854775808 is beyond any file`},
		{"offset out of range", tensorFile(func(f *fb) { f.tinfo("t", 0, 1<<40, 8).pad().zeros(32) }), `tensor "t": data range [1099511627776, +32)`},
		{"data truncated", tensorFile(func(f *fb) { f.tinfo("t", 0, 0, 8).pad().zeros(31) }), "is beyond the end of the file"},
		{"no tensor info", header(1, 0).b, "tensor count at offset 8 is 1, more than the 8 remaining bytes can hold"},
		{"tensor info cut", header(1, 0).str("t").u32(1).zeros(8).b, `truncated at offset 45: tensor "t": type needs 4 bytes, 0 remain`},
		{"name length lie", header(1, 0).u64(1 << 61).zeros(30).b, "name of tensor 0 at offset 24 claims 2305843009213693952 bytes"},
		{"non-UTF-8 name", tensorFile(func(f *fb) { f.tinfo("bad\xc3", 0, 0, 1) }), "name of tensor 0 at offset 24 is not valid UTF-8"},
		{"duplicate tensor", (func() []byte {
			f := header(2, 0).tinfo("t", 0, 0, 8).tinfo("t", 0, 32, 8)
			return f.pad().zeros(64).b
		})(), `duplicate tensor name "t"`},
		{"overlap", (func() []byte {
			f := header(2, 0).tinfo("a", 0, 0, 16).tinfo("b", 0, 32, 8)
			return f.pad().zeros(64).b
		})(), `tensors "a" and "b" overlap`},
		{"same offset", (func() []byte {
			f := header(2, 0).tinfo("a", 0, 0, 8).tinfo("b", 0, 0, 8)
			return f.pad().zeros(32).b
		})(), "overlap"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Read(tc.data)
			if err == nil {
				t.Fatalf("no error, got %d keys %d tensors", len(f.KVs), len(f.Tensors))
			}
			if !strings.HasPrefix(err.Error(), "gguf: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// TestReadTruncated cuts valid files at every length and expects an error,
// never a panic, for each cut that loses part of a tensor, and success for
// cuts inside the final padding.
func TestReadTruncated(t *testing.T) {
	for name, data := range map[string][]byte{"all types": allTypesFile(), "micro model": microModelFile(t)} {
		f, err := Read(data)
		if err != nil {
			t.Fatal(err)
		}
		var whole int64 // end of the last tensor's data
		for _, ti := range f.Tensors {
			whole = max(whole, f.DataOffset+ti.Offset+int64(len(ti.Data)))
		}
		for n := 0; n < len(data); n++ {
			_, err := Read(data[:n])
			if int64(n) < whole && err == nil {
				t.Errorf("%s truncated to %d of %d bytes: no error", name, n, len(data))
			}
			if int64(n) >= whole && err != nil {
				t.Errorf("%s truncated to %d bytes, inside the final padding: %v", name, n, err)
			}
		}
	}
}

// TestReadDoesNotAllocateForLies checks that lying counts fail before any
// allocation proportional to them.
func TestReadDoesNotAllocateForLies(t *testing.T) {
	inputs := [][]byte{
		header(1<<40, 0).b,
		header(0, 1<<40).b,
		header(0, 1).str("k").u32(9).u32(8).u64(1 << 40).b,
		header(0, 1).str("k").u32(9).u32(9).u64(1 << 40).b,
		header(0, 1).str("k").u32(8).u64(1 << 40).b,
	}
	for i, in := range inputs {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := Read(in)
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("input %d: no error", i)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<16 {
			t.Errorf("input %d: allocated %d bytes before failing", i, n)
		}
	}
}
