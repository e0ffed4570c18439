package safetensors_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/shrinkml/shrink/format/safetensors"
	"github.com/shrinkml/shrink/model"
)

func Example() {
	tensors := []*model.Tensor{
		model.NewF32("weight", []int{2, 2}, []float32{1, 2, 3, 4}),
		model.NewF32("bias", []int{2}, []float32{0.5, -0.5}),
	}
	var buf bytes.Buffer
	if err := safetensors.Encode(&buf, tensors, map[string]string{"format": "pt"}); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", bytes.TrimRight(buf.Bytes()[8:buf.Len()-24], " "))

	f, err := safetensors.Parse("example", buf.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range f.Tensors {
		v, _ := t.Float32()
		fmt.Println(t.Name, t.DType, t.Shape, v)
	}
	// Output:
	// {"__metadata__":{"format":"pt"},"weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"bias":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}
	// weight F32 [2 2] [1 2 3 4]
	// bias F32 [2] [0.5 -0.5]
}
