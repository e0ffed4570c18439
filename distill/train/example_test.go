package train_test

import (
	"fmt"

	"github.com/shrinkml/shrink/distill/train"
)

func ExampleTrain() {
	// Two classes: is the first feature larger than the second?
	var d train.Data
	for i := range 256 {
		a, b := float32(i%16)/16, float32(i/16)/16
		d.X = append(d.X, a, b)
		if a > b {
			d.Y = append(d.Y, 1)
		} else {
			d.Y = append(d.Y, 0)
		}
	}
	net, err := train.NewNetwork([]int{2, 16, 2}, train.ReLU, 1)
	if err != nil {
		panic(err)
	}
	opts := train.DefaultOptions()
	opts.Epochs, opts.Batch, opts.LR, opts.Threads = 30, 16, 1e-2, 1
	res, err := train.Train(net, d, opts)
	if err != nil {
		panic(err)
	}
	acc, _ := net.Accuracy(d.X, d.Y, 1)
	fmt.Printf("%d steps, %d parameters, accuracy above 95%%: %v\n", res.Steps, net.Params(), acc > 0.95)
	// Output: 480 steps, 82 parameters, accuracy above 95%: true
}
