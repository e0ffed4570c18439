package train

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// interrupted is what an OnStep panics with to stop a run as a crash would.
type interrupted struct{}

// trainUntil runs Train and stops it, by a panic from OnStep, after step
// stop (from 1; 0 runs to the end). It reports whether the run was stopped.
func trainUntil(t *testing.T, n *Network, d Data, opts Options, stop int) (res Result, stopped bool) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(interrupted); !ok {
				panic(r)
			}
			stopped = true
		}
	}()
	opts.OnStep = func(step, steps int, loss float64) {
		if step == stop {
			panic(interrupted{})
		}
	}
	res, err := Train(n, d, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res, false
}

// TestResumeIsExact stops runs at several steps, resumes each from its last
// checkpoint in a fresh network, and wants the weights, masks and epoch
// losses of the uninterrupted run, bit for bit.
func TestResumeIsExact(t *testing.T) {
	d := blobs(300, 4, 12, 1) // 9 steps of 32 per epoch
	soft := d
	teacher, _ := NewNetwork([]int{12, 24, 4}, GELU, 9)
	z, _ := teacher.Logits(d.X, 1)
	soft.Soft = SoftTargets(z, 4, 2)
	for _, c := range []struct {
		name        string
		d           Data
		act         Activation
		threads     int
		every, stop int // checkpoint every, stop after step (the resume starts at the last multiple of every)
		prune       *Schedule
		mask        bool
	}{
		{"mid-epoch", d, ReLU, 1, 4, 14, nil, false},
		{"epoch boundary", d, GELU, 2, 9, 10, nil, false},
		{"distill 3 threads", soft, ReLU, 3, 5, 6, nil, false},
		{"gradual pruning", d, ReLU, 2, 3, 13, &Schedule{Initial: 0.2, Final: 0.6, Start: 2, Every: 4, Count: 3}, false},
		{"masked", soft, GELU, 2, 7, 8, nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			net := func() *Network {
				n, _ := NewNetwork([]int{12, 16, 8, 4}, c.act, 5)
				if c.mask {
					n.SetMask(1, randomMask(16*8, 0.5, 3))
				}
				return n
			}
			opts := DefaultOptions()
			opts.Steps, opts.Batch, opts.LR, opts.Threads, opts.Prune = 30, 32, 1e-2, c.threads, c.prune
			opts.Temperature, opts.Alpha = 2, 0.6

			want := net()
			wantRes, _ := trainUntil(t, want, c.d, opts, 0)

			opts.Checkpoint, opts.CheckpointEvery = filepath.Join(dir, "run.ckpt"), c.every
			first := net()
			if _, stopped := trainUntil(t, first, c.d, opts, c.stop); !stopped {
				t.Fatal("the run was not interrupted")
			}
			opts.Resume = opts.Checkpoint
			got := net()
			if c.mask {
				got.SetMask(1, nil) // the checkpoint's masks replace the network's
			}
			res, _ := trainUntil(t, got, c.d, opts, 0)
			if !slices.Equal(got.params, want.params) || !slices.Equal(got.mask, want.mask) {
				t.Fatal("the resumed run's weights or masks differ from the uninterrupted run's")
			}
			if !reflect.DeepEqual(res.Epochs, wantRes.Epochs) || res.Examples != wantRes.Examples || res.Steps != wantRes.Steps {
				t.Errorf("resumed result %+v, uninterrupted %+v", res, wantRes)
			}
			// The checkpoint written at the end resumes to the same weights
			// at once.
			again := net()
			if _, err := Train(again, c.d, opts); err != nil || !slices.Equal(again.params, want.params) {
				t.Errorf("resuming a finished run: %v, weights equal %v", err, slices.Equal(again.params, want.params))
			}
		})
	}
}

// TestResumeRefusesOtherRuns changes one setting at a time and wants an
// error naming the file and the setting.
func TestResumeRefusesOtherRuns(t *testing.T) {
	d := blobs(200, 3, 6, 1)
	path := filepath.Join(t.TempDir(), "c.ckpt")
	base := DefaultOptions()
	base.Steps, base.Batch, base.Threads, base.Checkpoint = 5, 20, 2, path
	n, _ := NewNetwork([]int{6, 8, 3}, ReLU, 1)
	if _, err := Train(n, d, base); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("checkpoint of %d parameters: %d bytes", n.Params(), st.Size())
	other := blobs(200, 3, 6, 2)
	for _, c := range []struct {
		name  string
		sizes []int
		d     Data
		edit  func(o *Options)
		msg   string
	}{
		{"batch", nil, d, func(o *Options) { o.Batch = 10 }, "batch is 20 there but 10"},
		{"seed", nil, d, func(o *Options) { o.Seed = 2 }, "seed is 1 there but 2"},
		{"steps", nil, d, func(o *Options) { o.Steps = 6 }, "steps is 5 there but 6"},
		{"threads", nil, d, func(o *Options) { o.Threads = 1 }, "threads is 2 there but 1"},
		{"lr", nil, d, func(o *Options) { o.LR = 0.1 }, "lr is 0.001 there but 0.1"},
		{"shape", []int{6, 9, 3}, d, func(o *Options) {}, "layer sizes is [6 8 3] there but [6 9 3]"},
		{"data", nil, other, func(o *Options) {}, "data is"},
		{"pruning", nil, d, func(o *Options) { o.Prune = &Schedule{Final: 0.5, Start: 1} }, "no pruning schedule recorded"},
		{"missing", nil, d, func(o *Options) { o.Resume = path + ".none" }, "c.ckpt.none"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sizes := c.sizes
			if sizes == nil {
				sizes = []int{6, 8, 3}
			}
			n, _ := NewNetwork(sizes, ReLU, 1)
			o := base
			o.Checkpoint, o.Resume = "", path
			c.edit(&o)
			_, err := Train(n, c.d, o)
			if err == nil || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "c.ckpt") {
				t.Errorf("%v; want an error naming the file and %q", err, c.msg)
			}
		})
	}
	// A truncated file is an error, not a panic.
	b, _ := os.ReadFile(path)
	os.WriteFile(path, b[:len(b)/2], 0o644)
	o := base
	o.Checkpoint, o.Resume = "", path
	if _, err := Train(n, d, o); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("resuming from a truncated checkpoint: %v", err)
	}
}
