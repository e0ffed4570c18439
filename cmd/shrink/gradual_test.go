package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/format"
	"github.com/shrinkml/shrink/internal/shareddata"
	"github.com/shrinkml/shrink/model"
)

// smallTeacher trains an MLP classifier on 1,200 Fashion-MNIST images and
// returns the data folder and the model's path.
func smallTeacher(t *testing.T) (data, path string) {
	t.Helper()
	data = shareddata.FashionMNIST(t)
	path = filepath.Join(t.TempDir(), "teacher")
	mustShrink(t, "train", "--hidden", "32,16", "--data", data, "--limit", "1500", "--val", "300", "--epochs", "6",
		"--batch", "50", "--lr", "3e-3", "--threads", "2", "--quiet", path)
	return data, path
}

// zeros returns each weight matrix's zero mask of the model at path.
func zeros(t *testing.T, path string) [][]bool {
	t.Helper()
	m, _, err := format.Load(path, format.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var out [][]bool
	for l := range len(m.Config.MLP.Sizes) - 1 {
		v, err := m.Tensor(model.MLPWeight(l)).Float32()
		if err != nil {
			t.Fatal(err)
		}
		z := make([]bool, len(v))
		for i, x := range v {
			z[i] = x == 0
		}
		out = append(out, z)
	}
	return out
}

// TestGradualPrune prunes a small classifier gradually: the report follows
// the schedule, every matrix ends at exactly round(s·n) zeros (or the whole
// model does, with --scope global), a seed gives the same bytes twice, and the
// table has the accuracies and the sparsity.
func TestGradualPrune(t *testing.T) {
	data, teacher := smallTeacher(t)
	dir := t.TempDir()
	args := func(out string, extra ...string) []string {
		return append([]string{"prune", "--gradual", "--sparsity", "0.8", "--data", data, "--limit", "1500", "--val", "300",
			"--steps", "72", "--batch", "50", "--lr", "3e-3", "--threads", "2", "--seed", "3", "-q", teacher, out}, extra...)
	}
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	var rep recoveryReport
	if err := json.Unmarshal([]byte(mustShrink(t, args(a, "--json")...)), &rep); err != nil {
		t.Fatal(err)
	}
	// 72 steps, the ramp over the first 36 in 30 intervals: one step apart.
	if s := rep.Schedule; s == nil || s.Start != 0 || s.Every != 1 || s.Count != 36 || s.End != 36 || s.FinalSparsity != 0.8 || s.Scope != "layer" {
		t.Errorf("schedule %+v", rep.Schedule)
	}
	if rep.Train.Steps != 72 || rep.TrainExamples != 1200 || rep.ValExamples != 300 || rep.TestExamples != 10000 || len(rep.Matrices) != 3 {
		t.Errorf("report %+v", rep)
	}
	for _, ms := range rep.Matrices {
		if want := ms.Params - int64(math.Round(0.8*float64(ms.Params))); ms.Kept != want {
			t.Errorf("%s: %d of %d kept, want %d", ms.Name, ms.Kept, ms.Params, want)
		}
	}
	if rep.OneShotAccuracy == nil {
		t.Fatalf("no one-shot accuracy")
	}
	t.Logf("80%% sparse: test accuracy %.4f dense, %.4f one-shot, %.4f gradual", rep.AccuracyBefore, *rep.OneShotAccuracy, rep.Accuracy)
	if !(rep.Accuracy > *rep.OneShotAccuracy) ||
		math.Abs(rep.AccuracyChangePoints-100*(rep.Accuracy-rep.AccuracyBefore)) > 1e-9 {
		t.Errorf("accuracies: before %g, one-shot %v, after %g, change %g", rep.AccuracyBefore, rep.OneShotAccuracy, rep.Accuracy, rep.AccuracyChangePoints)
	}
	table := mustShrink(t, args(b)...)
	for _, want := range []string{"gradual magnitude, 0.0% -> 80.0%, each matrix", "before steps 0, 1, ..., 36 (37 prunings, cubic)",
		"layers.0.weight [32 784]", "80.00% sparse", "sparsity reached", "test accuracy before", "one-shot magnitude", "test accuracy after"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	for _, name := range []string{"model.safetensors", "config.json"} {
		x, _ := os.ReadFile(filepath.Join(a, name))
		y, _ := os.ReadFile(filepath.Join(b, name))
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs with the same seed", name)
		}
	}
	if _, errOut, code := shrink(t, args(a)...); code != 2 || !strings.Contains(errOut, "destination exists") {
		t.Errorf("over an existing output: exit %d, %s", code, errOut)
	}

	// One threshold over all the matrices, a ramp in 9 intervals of 4 steps
	// from step 18, self-distillation, dense storage.
	g := filepath.Join(dir, "global")
	rep = recoveryReport{}
	if err := json.Unmarshal([]byte(mustShrink(t, args(g, "--json", "--scope", "global", "--initial-sparsity", "0.2",
		"--ramp-start", "0.25", "--prune-every", "4", "--ramp-end", "0.75", "--distill", "--temperature", "2", "--dense")...)), &rep); err != nil {
		t.Fatal(err)
	}
	if s := rep.Schedule; s == nil || s.Start != 18 || s.Every != 4 || s.Count != 9 || s.End != 54 || s.InitialSparsity != 0.2 || s.Scope != "global" {
		t.Errorf("global schedule %+v", rep.Schedule)
	}
	if want := rep.Weights - int64(math.Round(0.8*float64(rep.Weights))); rep.WeightsKept != want || rep.Teacher != teacher || rep.Temperature != 2 {
		t.Errorf("global: %d of %d kept, want %d; teacher %q, T %g", rep.WeightsKept, rep.Weights, want, rep.Teacher, rep.Temperature)
	}
}

func TestGradualPruneErrors(t *testing.T) {
	data := shareddata.FashionMNIST(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "mlp")
	mustShrink(t, "train", "--hidden", "4", "--data", data, "--limit", "300", "--val", "100", "--steps", "2", "--batch", "50", "-q", src)
	out := filepath.Join(dir, "out")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{src, out, "--sparsity", "0.5", "--lr", "0.01"}, "--lr applies to --gradual only"},
		{[]string{src, out, "--sparsity", "0.5", "--distill"}, "--distill applies to --gradual only"},
		{[]string{src, out, "--gradual"}, "--sparsity or --pattern is required"},
		{[]string{src, out, "--gradual", "--pattern", "2:4"}, "--pattern does not apply to --gradual"},
		{[]string{src, out, "--gradual", "--sparsity", "0.5", "--method", "wanda"}, "--gradual prunes by magnitude"},
		{[]string{src, out, "--gradual", "--sparsity", "0.5", "--include", "x"}, "--include does not apply"},
		{[]string{src, filepath.Join(dir, "out.gguf"), "--gradual", "--sparsity", "0.5"}, "writes a Hugging Face folder"},
		{[]string{src, out, "--gradual", "--sparsity", "0.5", "--ramp-end", "1.5"}, "--ramp-end 1.5"},
		{[]string{src, out, "--gradual", "--sparsity", "0.5", "--initial-sparsity", "0.6"}, "--initial-sparsity 0.6"},
		{[]string{src, out, "--gradual", "--sparsity", "0.5", "--prune-every", "2", "--prunings", "3"}, "both given"},
		{[]string{src, out, "--gradual", "--sparsity", "0.5", "--batch", "0"}, "--batch 0"},
		{[]string{src, out, "--gradual", "--sparsity", "0.5", "--alpha", "2"}, "--alpha 2"},
		{[]string{src, src, "--gradual", "--sparsity", "0.5"}, "destination exists"},
	} {
		_, stderr, code := shrink(t, append([]string{"prune", "-q"}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("prune %s: exit %d, %q; want 2 and %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
	// A llama model trains on --text, not on --data.
	bin := shareddata.Path(t, shareddata.Stories260KBin)
	_, stderr, code := shrink(t, "prune", "--gradual", "--sparsity", "0.5", "--data", data, "-q", bin, out)
	if code != 2 || !strings.Contains(stderr, "--data applies to an mlp classifier") {
		t.Errorf("a llama model: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a failed prune wrote %s", out)
	}
}
