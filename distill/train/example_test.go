package train_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

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

func ExampleTrain_resume() {
	var d train.Data
	for i := range 256 {
		a, b := float32(i%16)/16, float32(i/16)/16
		d.X = append(d.X, a, b)
		d.Y = append(d.Y, int(a*2)) // is the first feature at least 1/2?
	}
	dir, _ := os.MkdirTemp("", "resume")
	defer os.RemoveAll(dir)
	opts := train.DefaultOptions()
	opts.Steps, opts.Batch, opts.Threads = 40, 16, 1
	whole, _ := train.NewNetwork([]int{2, 8, 2}, train.ReLU, 1)
	if _, err := train.Train(whole, d, opts); err != nil {
		panic(err)
	}
	// A run that checkpoints every 10 steps stops after 25 (a crash, say)...
	opts.Checkpoint, opts.CheckpointEvery = filepath.Join(dir, "run.ckpt"), 10
	opts.OnStep = func(step, steps int, loss float64) {
		if step == 25 {
			panic("stop")
		}
	}
	func() {
		defer func() { recover() }()
		first, _ := train.NewNetwork([]int{2, 8, 2}, train.ReLU, 1)
		train.Train(first, d, opts)
	}()
	// ...and a fresh process resumes it from step 20.
	opts.OnStep, opts.Resume = nil, opts.Checkpoint
	resumed, _ := train.NewNetwork([]int{2, 8, 2}, train.ReLU, 1)
	if _, err := train.Train(resumed, d, opts); err != nil {
		panic(err)
	}
	a, _ := whole.Logits(d.X, 1)
	b, _ := resumed.Logits(d.X, 1)
	fmt.Println("same weights as the uninterrupted run:", slices.Equal(a, b))
	// Output: same weights as the uninterrupted run: true
}
