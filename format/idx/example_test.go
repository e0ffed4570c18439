package idx_test

import (
	"bytes"
	"fmt"

	"github.com/shrinkml/shrink/format/idx"
)

func ExampleRead() {
	// Two labels, 9 and 0, as train-labels-idx1-ubyte stores them.
	file := []byte{0, 0, 0x08, 1, 0, 0, 0, 2, 9, 0}
	a, err := idx.Read(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		panic(err)
	}
	fmt.Println(a.Dims, a.Data, idx.FashionMNISTClasses[a.Data[0]])
	// Output: [2] [9 0] Ankle boot
}
