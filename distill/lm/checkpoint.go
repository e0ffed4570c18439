package lm

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/shrinkml/shrink/distill/internal/checkpoint"
)

// lmState is the progress a checkpoint keeps besides the arrays: what
// Result reports, and the window generator's state, which a resume replays
// from the seed and checks.
type lmState struct {
	Step      int     `json:"-"`
	Tokens    int64   `json:"tokens"`
	FirstLoss float64 `json:"first_loss"`
	TailLoss  float64 `json:"tail_loss"` // the summed loss of the last 5% of the steps so far
	RNG       []byte  `json:"rng"`
}

// fields are the settings a resumed run must share with the one that wrote
// its checkpoint: everything that changes the weights it ends with.
func (tr *trainer) fields(tokens []int) []checkpoint.Field {
	o, c := tr.opts, tr.m.Config
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	h := checkpoint.NewHasher()
	h.Ints(tokens)
	teacher := "none"
	switch {
	case o.Teacher != nil:
		th := checkpoint.NewHasher()
		th.F32(o.Teacher.params)
		teacher = fmt.Sprintf("model %+v, weights %s", o.Teacher.Config, th.String())
	case o.TeacherLogits != nil:
		teacher = "logits function"
	}
	f := []checkpoint.Field{
		{Name: "config", Value: fmt.Sprintf("%+v", c)}, {Name: "tokens", Value: h.String()},
		{Name: "steps", Value: strconv.Itoa(o.Steps)}, {Name: "batch", Value: strconv.Itoa(o.Batch)},
		{Name: "context", Value: strconv.Itoa(o.Context)}, {Name: "bos", Value: strconv.Itoa(o.BOS)},
		{Name: "seed", Value: strconv.FormatUint(o.Seed, 10)}, {Name: "threads", Value: strconv.Itoa(tr.threads)},
		{Name: "lr", Value: g(o.LR)}, {Name: "weight decay", Value: g(o.WeightDecay)},
		{Name: "beta1", Value: g(o.Beta1)}, {Name: "beta2", Value: g(o.Beta2)}, {Name: "eps", Value: g(o.Eps)},
		{Name: "warmup", Value: g(o.Warmup)}, {Name: "clip", Value: g(o.Clip)}, {Name: "teacher", Value: teacher},
	}
	if teacher != "none" {
		f = append(f, checkpoint.Field{Name: "temperature", Value: g(o.Temperature)}, checkpoint.Field{Name: "alpha", Value: g(o.Alpha)})
	}
	if p := o.Prune; p != nil {
		f = append(f, checkpoint.Field{Name: "pruning schedule", Value: fmt.Sprintf("%+v", *p)})
	}
	hid := "none"
	if tr.hid != nil {
		hid = tr.hid.String()
	}
	return append(f, checkpoint.Field{Name: "hidden loss", Value: hid})
}

// arrays are the trainer's state a checkpoint holds, but for the masks.
func (tr *trainer) arrays() []checkpoint.Array {
	a := []checkpoint.Array{{Name: "params", F32: tr.m.params}, {Name: "adam.m", F32: tr.mom}, {Name: "adam.v", F32: tr.v}}
	if tr.hid != nil && len(tr.hid.Params) > 0 {
		a = append(a, checkpoint.Array{Name: "hidden.proj", F32: tr.hid.Params},
			checkpoint.Array{Name: "hidden.adam.m", F32: tr.hm}, checkpoint.Array{Name: "hidden.adam.v", F32: tr.hv})
	}
	return a
}

// save writes the run's state after st.Step steps to path.
func (tr *trainer) save(path string, fields []checkpoint.Field, st lmState) error {
	state, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("lm: checkpoint %s: %w", path, err)
	}
	f := &checkpoint.File{Engine: "llama", Step: st.Step, Match: fields, State: state, Arrays: tr.arrays()}
	if tr.m.mask != nil {
		f.Arrays = append(f.Arrays, checkpoint.Array{Name: "mask", Bool: tr.m.mask})
	}
	if err := checkpoint.Write(path, f); err != nil {
		return fmt.Errorf("lm: %w", err)
	}
	return nil
}

// resume loads the checkpoint at path, which must have been written with
// fields, into the model and the optimizer, and returns its progress.
func (tr *trainer) resume(path string, fields []checkpoint.Field) (lmState, error) {
	var st lmState
	f, err := checkpoint.Read(path)
	if err != nil {
		return st, fmt.Errorf("lm: %w", err)
	}
	if err := f.Check(path, "llama", fields); err != nil {
		return st, fmt.Errorf("lm: %w", err)
	}
	if err := json.Unmarshal(f.State, &st); err != nil {
		return st, fmt.Errorf("lm: checkpoint %s: state: %w", path, err)
	}
	st.Step = f.Step
	want := tr.arrays()
	vals := make([][]float32, len(want))
	for i, a := range want {
		if vals[i], err = f.F32(path, a.Name, len(a.F32)); err != nil {
			return st, fmt.Errorf("lm: %w", err)
		}
	}
	mask, err := f.Bool(path, "mask", len(tr.m.params))
	if err != nil {
		return st, fmt.Errorf("lm: %w", err)
	}
	if len(f.Arrays) != len(want)+min(len(mask), 1) {
		return st, fmt.Errorf("lm: checkpoint %s: %d arrays; want %d and an optional mask", path, len(f.Arrays), len(want))
	}
	for i, a := range want {
		copy(a.F32, vals[i])
	}
	tr.m.mask = mask
	tr.m.maskGen++
	tr.t.refresh(tr.m, 0, 1)
	tr.syncMasks()
	if tr.hid != nil {
		tr.hid.Refresh()
	}
	return st, nil
}
