package llama2c

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"testing"
)

// refGGUF is the little that the tests need from a GGUF file written by
// llama.cpp: its key/values and F32 tensors. It is written here, apart from
// format/gguf, so that it is an independent reference.
type refGGUF struct {
	kv      map[string]any
	tensors map[string]refTensor
}

type refTensor struct {
	ne   []uint64 // GGUF order: ne[0] is the row length
	data []byte
}

type refReader struct {
	b   []byte
	off int
}

func (r *refReader) take(n int) []byte {
	if n < 0 || r.off+n > len(r.b) {
		panic(fmt.Sprintf("gguf reference reader: %d bytes at %d run past %d", n, r.off, len(r.b)))
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}
func (r *refReader) u32() uint32 { return binary.LittleEndian.Uint32(r.take(4)) }
func (r *refReader) u64() uint64 { return binary.LittleEndian.Uint64(r.take(8)) }
func (r *refReader) str() string { return string(r.take(int(r.u64()))) }

func (r *refReader) value(typ uint32) any {
	switch typ {
	case 0, 1, 7: // u8, i8, bool
		return r.take(1)[0]
	case 2, 3: // u16, i16
		return binary.LittleEndian.Uint16(r.take(2))
	case 4:
		return r.u32()
	case 5:
		return int32(r.u32())
	case 6:
		return math.Float32frombits(r.u32())
	case 8:
		return r.str()
	case 9:
		et, n := r.u32(), r.u64()
		out := make([]any, n)
		for i := range out {
			out[i] = r.value(et)
		}
		return out
	case 10, 11:
		return r.u64()
	case 12:
		return math.Float64frombits(r.u64())
	}
	panic(fmt.Sprintf("gguf reference reader: value type %d", typ))
}

func readRefGGUF(t *testing.T, path string) *refGGUF {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := &refReader{b: b}
	if string(r.take(4)) != "GGUF" {
		t.Fatalf("%s: not a GGUF file", path)
	}
	r.u32() // version
	nt, nkv := r.u64(), r.u64()
	g := &refGGUF{kv: map[string]any{}, tensors: map[string]refTensor{}}
	for i := uint64(0); i < nkv; i++ {
		k := r.str()
		g.kv[k] = r.value(r.u32())
	}
	type info struct {
		name string
		ne   []uint64
		typ  uint32
		off  uint64
	}
	infos := make([]info, nt)
	for i := range infos {
		infos[i].name = r.str()
		infos[i].ne = make([]uint64, r.u32())
		for j := range infos[i].ne {
			infos[i].ne[j] = r.u64()
		}
		infos[i].typ, infos[i].off = r.u32(), r.u64()
	}
	align := 32
	if a, ok := g.kv["general.alignment"].(uint32); ok {
		align = int(a)
	}
	start := (r.off + align - 1) / align * align
	for _, in := range infos {
		if in.typ != 0 {
			t.Fatalf("%s: tensor %s has GGUF type %d; the reference reader reads F32 only", path, in.name, in.typ)
		}
		n := uint64(4)
		for _, d := range in.ne {
			n *= d
		}
		s := uint64(start) + in.off
		g.tensors[in.name] = refTensor{ne: in.ne, data: b[s : s+n]}
	}
	return g
}
