package checkpoint

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func sample() *File {
	return &File{Engine: "mlp", Step: 7,
		Match: []Field{{"batch", "16"}, {"seed", "3"}},
		State: json.RawMessage(`{"loss":0.5}`),
		Arrays: []Array{{Name: "params", F32: []float32{1, -2.5, 3e-8}}, {Name: "mask", Bool: []bool{true, false, true}},
			{Name: "empty", F32: []float32{}}}}
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.ckpt")
	want := sample()
	if err := Write(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back %+v, wrote %+v", got, want)
	}
	// Writing again replaces the file and leaves no temporary file.
	want.Step = 8
	if err := Write(path, want); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("the folder holds %d entries after two writes", len(entries))
	}
	if got, err := Read(path); err != nil || got.Step != 8 {
		t.Errorf("step %v, %v after a rewrite", got, err)
	}
}

func TestCheck(t *testing.T) {
	f := sample()
	for _, c := range []struct {
		engine string
		want   []Field
		msg    string
	}{
		{"mlp", []Field{{"batch", "16"}, {"seed", "3"}}, ""},
		{"llama", []Field{{"batch", "16"}, {"seed", "3"}}, "written by the mlp trainer"},
		{"mlp", []Field{{"batch", "32"}, {"seed", "3"}}, "batch is 16 there but 32 in this run"},
		{"mlp", []Field{{"batch", "16"}, {"seed", "3"}, {"steps", "9"}}, "no steps recorded"},
		{"mlp", []Field{{"batch", "16"}}, "records seed = 3"},
	} {
		err := f.Check("x.ckpt", c.engine, c.want)
		if c.msg == "" && err != nil || c.msg != "" && (err == nil || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "x.ckpt")) {
			t.Errorf("Check(%s, %v) = %v; want %q", c.engine, c.want, err, c.msg)
		}
	}
}

// encoded returns sample() as the bytes Write writes.
func encoded(t testing.TB) []byte {
	path := filepath.Join(t.TempDir(), "c")
	if err := Write(path, sample()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeErrors(t *testing.T) {
	good := encoded(t)
	hl := int(binary.LittleEndian.Uint32(good[12:]))
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	// lying rewrites the header, keeping its length, and fixes the checksum
	// so that only the sizes can give it away.
	lying := func(from, to string) []byte {
		return edit(func(b []byte) []byte {
			h := strings.Replace(string(b[16:16+hl]), from, to, 1)
			if len(h) != hl {
				t.Fatalf("%q -> %q changes the header's length", from, to)
			}
			copy(b[16:], h)
			return b
		})
	}
	for _, c := range []struct {
		name string
		data []byte
		msg  string
	}{
		{"empty", nil, "not a shrink checkpoint"},
		{"magic", edit(func(b []byte) []byte { b[0] = 'X'; return b }), "not a shrink checkpoint"},
		{"version", edit(func(b []byte) []byte { b[8] = 9; return b }), "version 9"},
		{"header length", edit(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[12:], 1<<31); return b }), "does not fit"},
		{"truncated", good[:len(good)-5], "truncated"},
		{"extra bytes", append(append([]byte(nil), good...), 0, 0), "bytes but the file holds"},
		{"truncated header", good[:30], "does not fit"},
		{"flipped value", edit(func(b []byte) []byte { b[16+hl+2] ^= 1; return b }), "checksum"},
		{"huge array", lying(`"len":3`, `"len":9`), "does not fit"},
		{"negative array", lying(`"len":3`, `"len":-`), "header"},
		{"bad type", lying(`"f32"`, `"f64"`), "type \"f64\""},
		{"bad header", lying(`{"engine"`, `["engine"`), "header"},
	} {
		if _, err := Decode(c.data); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v; want an error naming %q", c.name, err, c.msg)
		}
	}
	if _, err := Read(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("reading a missing file succeeded")
	}
}

// FuzzDecode feeds the reader corrupt files: it must return an error or a
// checkpoint that writes back to the same bytes, never panic or allocate
// beyond the input's size.
func FuzzDecode(f *testing.F) {
	f.Add(encoded(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		ck, err := Decode(data)
		if err != nil {
			return
		}
		path := filepath.Join(t.TempDir(), "c")
		if err := Write(path, ck); err != nil {
			t.Fatal(err)
		}
		if _, err := Read(path); err != nil {
			t.Fatalf("a decoded checkpoint does not read back: %v", err)
		}
	})
}
