package train

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/shrinkml/shrink/distill/internal/checkpoint"
)

// mlpState is the progress a checkpoint keeps besides the arrays: what
// Result reports, and the example-order generator's state, which a resume
// replays from the seed and checks.
type mlpState struct {
	Step      int     `json:"-"`
	Examples  int     `json:"examples"`
	Epochs    []Epoch `json:"epochs"`
	EpochLoss float64 `json:"epoch_loss"` // the current epoch's summed loss
	RNG       []byte  `json:"rng"`
}

// fields are the settings a resumed run must share with the one that wrote
// its checkpoint: everything that changes the weights it ends with.
func (t *trainer) fields(d Data, steps int) []checkpoint.Field {
	n, o := t.n, t.opts
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	h := checkpoint.NewHasher()
	h.F32(d.X)
	h.Ints(d.Y)
	h.F32(d.Soft)
	f := []checkpoint.Field{
		{Name: "layer sizes", Value: fmt.Sprint(n.Sizes)}, {Name: "activation", Value: string(n.Act)},
		{Name: "data", Value: h.String()}, {Name: "soft targets", Value: strconv.FormatBool(d.Soft != nil)},
		{Name: "steps", Value: strconv.Itoa(steps)}, {Name: "batch", Value: strconv.Itoa(o.Batch)},
		{Name: "seed", Value: strconv.FormatUint(o.Seed, 10)}, {Name: "threads", Value: strconv.Itoa(t.threads)},
		{Name: "lr", Value: g(o.LR)}, {Name: "weight decay", Value: g(o.WeightDecay)},
		{Name: "beta1", Value: g(o.Beta1)}, {Name: "beta2", Value: g(o.Beta2)}, {Name: "eps", Value: g(o.Eps)},
		{Name: "warmup", Value: g(o.Warmup)}, {Name: "clip", Value: g(o.Clip)},
	}
	if d.Soft != nil {
		f = append(f, checkpoint.Field{Name: "temperature", Value: g(o.Temperature)}, checkpoint.Field{Name: "alpha", Value: g(o.Alpha)})
	}
	if p := o.Prune; p != nil {
		f = append(f, checkpoint.Field{Name: "pruning schedule", Value: fmt.Sprintf("%+v", *p)})
	}
	hid := "none"
	if t.hid != nil {
		th := checkpoint.NewHasher()
		th.F32(o.HiddenTeacher.params)
		hid = fmt.Sprintf("%s, teacher %v %s weights %s", t.hid, o.HiddenTeacher.Sizes, o.HiddenTeacher.Act, th)
	}
	return append(f, checkpoint.Field{Name: "hidden loss", Value: hid})
}

// arrays are the trainer's state a checkpoint holds, but for the masks.
func (t *trainer) arrays() []checkpoint.Array {
	a := []checkpoint.Array{{Name: "params", F32: t.n.params}, {Name: "adam.m", F32: t.m}, {Name: "adam.v", F32: t.v}}
	if t.hid != nil && len(t.hid.Params) > 0 {
		a = append(a, checkpoint.Array{Name: "hidden.proj", F32: t.hid.Params},
			checkpoint.Array{Name: "hidden.adam.m", F32: t.hm}, checkpoint.Array{Name: "hidden.adam.v", F32: t.hv})
	}
	return a
}

// save writes the run's state after st.Step steps to path.
func (t *trainer) save(path string, fields []checkpoint.Field, st mlpState) error {
	state, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("train: checkpoint %s: %w", path, err)
	}
	f := &checkpoint.File{Engine: "mlp", Step: st.Step, Match: fields, State: state, Arrays: t.arrays()}
	if t.n.mask != nil {
		f.Arrays = append(f.Arrays, checkpoint.Array{Name: "mask", Bool: t.n.mask})
	}
	if err := checkpoint.Write(path, f); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// resume loads the checkpoint at path, which must have been written with
// fields, into the network and the optimizer, and returns its progress.
func (t *trainer) resume(path string, fields []checkpoint.Field) (mlpState, error) {
	var st mlpState
	f, err := checkpoint.Read(path)
	if err != nil {
		return st, fmt.Errorf("train: %w", err)
	}
	if err := f.Check(path, "mlp", fields); err != nil {
		return st, fmt.Errorf("train: %w", err)
	}
	if err := json.Unmarshal(f.State, &st); err != nil {
		return st, fmt.Errorf("train: checkpoint %s: state: %w", path, err)
	}
	st.Step = f.Step
	n := t.n
	want := t.arrays()
	vals := make([][]float32, len(want))
	for i, a := range want {
		if vals[i], err = f.F32(path, a.Name, len(a.F32)); err != nil {
			return st, fmt.Errorf("train: %w", err)
		}
	}
	mask, err := f.Bool(path, "mask", len(n.params))
	if err != nil {
		return st, fmt.Errorf("train: %w", err)
	}
	if len(f.Arrays) != len(want)+min(len(mask), 1) {
		return st, fmt.Errorf("train: checkpoint %s: %d arrays; want %d and an optional mask", path, len(f.Arrays), len(want))
	}
	for i, a := range want {
		copy(a.F32, vals[i])
	}
	n.mask = mask
	n.maskGen++
	t.transposeWeights(0, 1)
	t.syncMasks()
	if t.hid != nil {
		t.hid.Refresh()
	}
	return st, nil
}
