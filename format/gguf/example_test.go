package gguf_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/shrinkml/shrink/format/gguf"
)

// Write a GGUF container with two key/values and one tensor, then read it back.
func ExampleWrite() {
	kvs := []gguf.KV{
		{Key: "general.architecture", Value: gguf.Value{Type: gguf.TypeString, V: "llama"}},
		{Key: "llama.context_length", Value: gguf.Value{Type: gguf.TypeUint32, V: uint32(512)}},
	}
	// A PyTorch [2, 3] F32 weight: ggml's ne lists the row length first.
	w := gguf.TensorInfo{Name: "w.weight", Type: gguf.GGMLF32, Dims: []int64{3, 2}, Data: make([]byte, 24)}
	var buf bytes.Buffer
	if err := gguf.Write(&buf, kvs, []gguf.TensorInfo{w}); err != nil {
		log.Fatal(err)
	}
	f, err := gguf.Read(buf.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	for _, kv := range f.KVs {
		fmt.Println(kv.Key, kv.Value.Type, kv.Value)
	}
	t := f.Tensor("w.weight")
	fmt.Println(t.Name, t.Type, t.Shape(), len(t.Data), "bytes at", f.DataOffset+t.Offset)
	// Output:
	// general.architecture string "llama"
	// llama.context_length u32 512
	// w.weight F32 [2 3] 24 bytes at 160
}
