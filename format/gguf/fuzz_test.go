package gguf

import (
	"bytes"
	"testing"

	"github.com/shrinkml/shrink/model"
)

// microConfig is the smallest llama config Check accepts, for fuzz seeds.
func microConfig() model.Config {
	return model.Config{
		Arch: "llama", HiddenSize: 4, IntermediateSize: 4, NumLayers: 1, NumHeads: 2, NumKVHeads: 1,
		HeadDim: 2, VocabSize: 6, ContextLength: 8, RMSNormEps: 1e-5, RopeTheta: 10000,
	}
}

// microModelFile is a complete, loadable GGUF file of a few kilobytes; edit,
// when set, changes its key/values before they are written.
func microModelFile(tb testing.TB, edit ...func(kvs []KV)) []byte {
	kvs, tensors, err := encodeModel(randomModel(microConfig(), 11), "micro")
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range edit {
		e(kvs)
	}
	var buf bytes.Buffer
	if err := Write(&buf, kvs, tensors); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestMicroModelFileLoads(t *testing.T) {
	f, err := Read(microModelFile(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := toModel(f); err != nil {
		t.Fatal(err)
	}
}

// FuzzRead feeds arbitrary bytes to Read. Whatever Read accepts must write
// back, read again, and write back to the same bytes; the model conversion and
// its inverse must return errors rather than panic.
func FuzzRead(f *testing.F) {
	micro := microModelFile(f)
	f.Add(micro)
	f.Add(micro[:len(micro)/2])
	f.Add(microModelFile(f, func(kvs []KV) {
		for i := range kvs {
			if kvs[i].Key == "llama.block_count" {
				kvs[i].Value.V = uint32(1 << 24) // must fail fast, not allocate per layer
			}
		}
	}))
	f.Add(allTypesFile())
	f.Add(header(0, 0).b)
	f.Add(header(1, 1).str("general.alignment").u32(4).u32(64).tinfo("t", 12, 0, 256).b)
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Read(data)
		if err != nil {
			return
		}
		var once bytes.Buffer
		if err := Write(&once, file.KVs, file.Tensors); err != nil {
			t.Fatalf("Write rejects what Read accepted: %v", err)
		}
		again, err := Read(once.Bytes())
		if err != nil {
			t.Fatalf("Read rejects what Write wrote: %v", err)
		}
		var twice bytes.Buffer
		if err := Write(&twice, again.KVs, again.Tensors); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(once.Bytes(), twice.Bytes()) {
			t.Fatalf("write/read/write is not stable")
		}
		m, err := toModel(file)
		if err != nil {
			return
		}
		if kvs, tensors, err := encodeModel(m, "fuzz"); err == nil {
			if err := Write(&bytes.Buffer{}, kvs, tensors); err != nil {
				t.Fatalf("Write rejects what encodeModel made: %v", err)
			}
		}
	})
}
