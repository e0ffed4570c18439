package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/internal/shareddata"
)

// TestFinetune prunes a small classifier in one shot and fine-tunes it: the
// zeros stay exactly where they were, the accuracy recovers, a seed gives the
// same bytes twice, and a teacher can join in.
func TestFinetune(t *testing.T) {
	data, teacher := smallTeacher(t)
	dir := t.TempDir()
	pruned := filepath.Join(dir, "pruned")
	mustShrink(t, "prune", teacher, pruned, "--sparsity", "0.85", "-q")
	args := func(out string, extra ...string) []string {
		return append([]string{"finetune", pruned, out, "--data", data, "--limit", "1500", "--val", "300",
			"--steps", "48", "--batch", "50", "--lr", "3e-3", "--threads", "2", "-q"}, extra...)
	}
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	var rep recoveryReport
	if err := json.Unmarshal([]byte(mustShrink(t, args(a, "--json")...)), &rep); err != nil {
		t.Fatal(err)
	}
	before, after := zeros(t, pruned), zeros(t, a)
	masked := 0
	for l := range before {
		if !slices.Equal(before[l], after[l]) {
			t.Errorf("layer %d: the zeros moved in fine-tuning", l)
		}
		for _, z := range before[l] {
			if z {
				masked++
			}
		}
	}
	if rep.MaskedAtStart != masked || rep.Schedule != nil || rep.OneShotAccuracy != nil || rep.Train.Steps != 48 ||
		rep.WeightsKept != rep.Weights-int64(masked) {
		t.Errorf("report %+v; %d zeros in the source", rep, masked)
	}
	t.Logf("85%% sparse: test accuracy %.4f before fine-tuning, %.4f after", rep.AccuracyBefore, rep.Accuracy)
	if !(rep.Accuracy > rep.AccuracyBefore) {
		t.Errorf("fine-tuning took the test accuracy from %.4f to %.4f", rep.AccuracyBefore, rep.Accuracy)
	}
	table := mustShrink(t, args(b)...)
	for _, want := range []string{"fine-tuning with", "zero weights held at zero", "85.00% sparse", "sparsity reached", "test accuracy before", "test accuracy after"} {
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

	// With the dense model as the teacher.
	rep = recoveryReport{}
	if err := json.Unmarshal([]byte(mustShrink(t, args(filepath.Join(dir, "c"), "--teacher", teacher, "--alpha", "0.5", "--json")...)), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Teacher != teacher || rep.Alpha != 0.5 || rep.MaskedAtStart != masked {
		t.Errorf("with a teacher: %+v", rep)
	}
	if !slices.Equal(zeros(t, filepath.Join(dir, "c"))[0], before[0]) {
		t.Errorf("with a teacher, the zeros moved")
	}
}

func TestFinetuneErrors(t *testing.T) {
	data := shareddata.FashionMNIST(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "mlp")
	mustShrink(t, "train", "--hidden", "4", "--data", data, "--limit", "300", "--val", "100", "--steps", "2", "--batch", "50", "-q", src)
	out := filepath.Join(dir, "out")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{src, out, "--temperature", "2"}, "give --teacher"},
		{[]string{src, out, "--steps", "-1"}, "--steps -1"},
		{[]string{src, out, "--lr", "0"}, "--lr 0"},
		{[]string{src, out, "--teacher", filepath.Join(dir, "none")}, "none"},
		{[]string{src, filepath.Join(dir, "out.gguf")}, "writes a Hugging Face folder"},
		{[]string{src, src}, "destination exists"},
		{[]string{filepath.Join(dir, "missing"), out}, "missing"},
		{[]string{src}, "accepts 2 arg(s)"},
	} {
		_, stderr, code := shrink(t, append([]string{"finetune", "-q", "--data", data, "--limit", "300", "--val", "100"}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("finetune %s: exit %d, %q; want 2 and %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
	bin := shareddata.Path(t, shareddata.Stories260KBin)
	_, stderr, code := shrink(t, "finetune", "-q", "--data", data, bin, out)
	if code != 2 || !strings.Contains(stderr, "--data applies to an mlp classifier") {
		t.Errorf("a llama model: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a failed finetune wrote %s", out)
	}
}
