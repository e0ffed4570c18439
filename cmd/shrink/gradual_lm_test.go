package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/distill/train"
	"github.com/shrinkml/shrink/format"
	"github.com/shrinkml/shrink/format/idx"
	"github.com/shrinkml/shrink/model"
)

// tinyLM trains a tiny llama model on text in dir, as train --arch llama
// does, and returns the text and the model's path.
func tinyLM(t *testing.T, dir string) (text, path string) {
	t.Helper()
	text = lmText(t, dir, 1500, 1)
	path = filepath.Join(dir, "dense.gguf")
	mustShrink(t, "train", "--arch", "llama", "--text", text, "--vocab", "300", "--dim", "16", "--layers", "2", "--heads", "2",
		"--kv-heads", "1", "--hidden", "32", "--ctx", "32", "--steps", "80", "--batch", "4", "--threads", "2", "--seed", "3", "--quiet", path)
	return text, path
}

// linearZeros returns the zero mask of every linear matrix of the llama
// model at path, by name, with the q and k rows in the pair RoPE layout.
func linearZeros(t *testing.T, path string) map[string][]bool {
	t.Helper()
	m, _, err := format.Load(path, format.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// A Hugging Face folder holds the q and k rows in another order.
	if m, err = m.WithRopeLayout(model.RopePairs); err != nil {
		t.Fatal(err)
	}
	out := map[string][]bool{}
	for l := range m.Config.NumLayers {
		for _, c := range matrixColumns {
			name := model.LayerTensor(l, c.suffix)
			v, err := m.Tensor(name).Float32()
			if err != nil {
				t.Fatal(err)
			}
			z := make([]bool, len(v))
			for i, x := range v {
				z[i] = x == 0
			}
			out[name] = z
		}
	}
	return out
}

// TestGradualPruneLlama prunes a tiny trained language model gradually: the
// report follows the schedule, every linear matrix ends at exactly round(s·n)
// zeros (or all of them together, with --scope global), the held-out
// perplexity beats one-shot pruning's, a seed gives the same bytes twice, and
// GGUF and Hugging Face folders (sparse or dense) come out.
func TestGradualPruneLlama(t *testing.T) {
	dir := t.TempDir()
	text, dense := tinyLM(t, dir)
	args := func(out string, extra ...string) []string {
		return append([]string{"prune", "--gradual", "--sparsity", "0.6", "--text", text, "--ctx", "32", "--steps", "40", "--batch", "4",
			"--lr", "3e-3", "--threads", "2", "--seed", "3", "-q", dense, out}, extra...)
	}
	a, b := filepath.Join(dir, "a.gguf"), filepath.Join(dir, "b.gguf")
	var rep lmRecoveryReport
	if err := json.Unmarshal([]byte(mustShrink(t, args(a, "--json")...)), &rep); err != nil {
		t.Fatal(err)
	}
	// 40 steps, the ramp over the first 20 in 30 intervals: one step apart.
	if s := rep.Schedule; s == nil || s.Start != 0 || s.Every != 1 || s.Count != 20 || s.End != 20 || s.FinalSparsity != 0.6 || s.Scope != "layer" {
		t.Errorf("schedule %+v", rep.Schedule)
	}
	if rep.Arch != "llama" || rep.Train.Steps != 40 || rep.Context != 32 || rep.Heldout != "last 10% of text" || len(rep.Matrices) != 14 ||
		rep.DestKind != string(format.GGUF) || rep.Teacher != "" || !(rep.HeldoutTokens > 100) || rep.MaskedAtStart != 0 {
		t.Errorf("report %+v", rep)
	}
	for _, ms := range rep.Matrices {
		if want := ms.Params - int64(math.Round(0.6*float64(ms.Params))); ms.Kept != want {
			t.Errorf("%s: %d of %d kept, want %d", ms.Name, ms.Kept, ms.Params, want)
		}
	}
	if rep.OneShotPerplexity == nil {
		t.Fatal("no one-shot perplexity")
	}
	t.Logf("60%% sparse: held-out perplexity %.3f dense, %.3f one-shot, %.3f gradual", rep.PerplexityBefore, *rep.OneShotPerplexity, rep.Perplexity)
	if !(rep.Perplexity < *rep.OneShotPerplexity) || !(rep.PerplexityBefore < *rep.OneShotPerplexity) {
		t.Errorf("perplexities: before %g, one-shot %v, after %g", rep.PerplexityBefore, *rep.OneShotPerplexity, rep.Perplexity)
	}
	table := mustShrink(t, args(b)...)
	for _, want := range []string{"sparsity per matrix", "60.0%", "gradual magnitude, 0.0% -> 60.0% of the linear matrices, each matrix",
		"before steps 0, 1, ..., 20 (21 prunings, cubic)", "40 of 4 windows of 32 tokens", "sparsity reached", "% of the linear matrices",
		"held-out perplexity before", "one-shot magnitude", "held-out perplexity after"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	x, _ := os.ReadFile(a)
	y, _ := os.ReadFile(b)
	if len(x) == 0 || !bytes.Equal(x, y) {
		t.Error("two runs with the same seed and threads write different files")
	}
	if out := mustShrink(t, "run", a, "-p", "the model", "-n", "8", "--threads", "1"); len(out) == 0 {
		t.Error("run printed nothing")
	}
	if _, errOut, code := shrink(t, args(a)...); code != 2 || !strings.Contains(errOut, "destination exists") {
		t.Errorf("over an existing output: exit %d, %s", code, errOut)
	}

	// One threshold over all the matrices, a ramp in intervals of 4 steps
	// from step 10, self-distillation, a separate held-out file, and
	// Hugging Face folders, sparse and dense, that hold the same weights.
	held := lmText(t, dir, 100, 9)
	for _, c := range []struct {
		name  string
		extra []string
	}{
		{"sparse", nil},
		{"dense", []string{"--dense"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, "global-"+c.name)
			var rep lmRecoveryReport
			if err := json.Unmarshal([]byte(mustShrink(t, args(out, append([]string{"--json", "--scope", "global", "--initial-sparsity", "0.2",
				"--ramp-start", "0.25", "--prune-every", "4", "--ramp-end", "0.75", "--distill", "--heldout", held}, c.extra...)...)...)), &rep); err != nil {
				t.Fatal(err)
			}
			if s := rep.Schedule; s == nil || s.Start != 10 || s.Every != 4 || s.Count != 5 || s.End != 30 || s.InitialSparsity != 0.2 || s.Scope != "global" {
				t.Errorf("global schedule %+v", rep.Schedule)
			}
			if want := rep.Weights - int64(math.Round(0.6*float64(rep.Weights))); rep.WeightsKept != want || rep.Teacher != dense ||
				rep.Temperature != 1 || rep.Alpha != 0.5 || rep.Heldout != held || rep.DestKind != string(format.HF) {
				t.Errorf("global: %d of %d kept, want %d; report %+v", rep.WeightsKept, rep.Weights, want, rep)
			}
			t.Logf("global 60%%, self-distilled: held-out perplexity %.3f dense, %.3f one-shot, %.3f gradual", rep.PerplexityBefore, *rep.OneShotPerplexity, rep.Perplexity)
		})
	}
	sparse, denseOut := linearZeros(t, filepath.Join(dir, "global-sparse")), linearZeros(t, filepath.Join(dir, "global-dense"))
	for name, z := range sparse {
		if !slices.Equal(z, denseOut[name]) {
			t.Errorf("%s: the sparse and the dense folder hold different zeros", name)
		}
	}
}

// TestFinetuneLlama prunes a tiny language model in one shot and fine-tunes
// it, alone and with the dense model as the teacher: the zeros stay where
// they were and the held-out perplexity recovers.
func TestFinetuneLlama(t *testing.T) {
	dir := t.TempDir()
	text, dense := tinyLM(t, dir)
	pruned := filepath.Join(dir, "pruned.gguf")
	mustShrink(t, "prune", dense, pruned, "--sparsity", "0.7", "-q")
	before := linearZeros(t, pruned)
	masked := 0
	for _, z := range before {
		for _, v := range z {
			if v {
				masked++
			}
		}
	}
	for _, c := range []struct {
		name  string
		extra []string
	}{
		{"alone", nil},
		{"teacher", []string{"--teacher", dense, "--temperature", "2"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, "ft-"+c.name)
			var rep lmRecoveryReport
			if err := json.Unmarshal([]byte(mustShrink(t, append([]string{"finetune", pruned, out, "--text", text, "--ctx", "32", "--steps", "30",
				"--batch", "4", "--lr", "3e-3", "--threads", "2", "-q", "--json"}, c.extra...)...)), &rep); err != nil {
				t.Fatal(err)
			}
			for name, z := range linearZeros(t, out) {
				if !slices.Equal(z, before[name]) {
					t.Errorf("%s: the zeros moved in fine-tuning", name)
				}
			}
			if rep.MaskedAtStart != masked || rep.Schedule != nil || rep.OneShotPerplexity != nil || rep.Train.Steps != 30 ||
				rep.WeightsKept != rep.Weights-int64(masked) || rep.DestKind != string(format.HF) {
				t.Errorf("report %+v; %d zeros in the source", rep, masked)
			}
			if (c.name == "teacher") != (rep.TeacherPerplexity != nil) || (c.name == "teacher") != (rep.Temperature == 2) {
				t.Errorf("teacher %q, perplexity %v, T %g", rep.Teacher, rep.TeacherPerplexity, rep.Temperature)
			}
			t.Logf("70%% sparse, %s: held-out perplexity %.3f before fine-tuning, %.3f after", c.name, rep.PerplexityBefore, rep.Perplexity)
			if !(rep.Perplexity < rep.PerplexityBefore) {
				t.Errorf("fine-tuning took the held-out perplexity from %.3f to %.3f", rep.PerplexityBefore, rep.Perplexity)
			}
		})
	}
	table := mustShrink(t, "finetune", pruned, filepath.Join(dir, "table.gguf"), "--text", text, "--ctx", "32", "--steps", "5", "--batch", "2", "-q")
	for _, want := range []string{"fine-tuning with", "zero weights held at zero", "69.9%", "held-out perplexity before", "held-out perplexity after"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

// TestRecoveryLlamaErrors gives prune --gradual and finetune flags that do
// not fit the model's architecture, and bad values: each exits 2 naming the
// problem and writes nothing.
func TestRecoveryLlamaErrors(t *testing.T) {
	dir := t.TempDir()
	text := lmText(t, dir, 200, 1)
	lmPath := filepath.Join(dir, "lm.gguf")
	mustShrink(t, "train", "--arch", "llama", "--text", text, "--vocab", "300", "--dim", "8", "--layers", "1", "--heads", "2",
		"--kv-heads", "1", "--hidden", "16", "--ctx", "16", "--steps", "2", "--batch", "2", "--quiet", lmPath)
	other := filepath.Join(dir, "other.gguf")
	mustShrink(t, "synth", other, "--preset", "stories260k")
	net, err := train.NewNetwork([]int{784, 4, 10}, train.ReLU, 1)
	if err != nil {
		t.Fatal(err)
	}
	mlp := filepath.Join(dir, "mlp")
	if err := format.Save("", mlp, net.Model(idx.FashionMNISTClasses), format.SaveOptions{To: format.HF}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.gguf")
	gradual := func(src string, extra ...string) []string {
		return append([]string{"prune", "-q", "--gradual", "--sparsity", "0.5", src, out}, extra...)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{gradual(lmPath), "--text is required with a llama model"},
		{gradual(lmPath, "--text", text, "--epochs", "2"), "--epochs applies to an mlp classifier"},
		{gradual(lmPath, "--text", text, "--data", dir), "--data applies to an mlp classifier"},
		{gradual(lmPath, "--text", text, "--ctx", "4096"), "--ctx 4096: want 2 to the model's context of 16"},
		{gradual(lmPath, "--text", filepath.Join(dir, "none.txt"), "--ctx", "16"), "none.txt"},
		{gradual(lmPath, "--text", text, "--steps", "0"), "--steps 0: want at least 1"},
		{gradual(lmPath, "--text", text, "--lr", "0"), "--lr 0"},
		{gradual(lmPath, "--text", text, "--calib", text), "--calib does not apply to --gradual"},
		{gradual(mlp, "--text", text), "--text applies to a llama model"},
		{gradual(mlp, "--ctx", "8"), "--ctx applies to a llama model"},
		{[]string{"prune", "-q", "--sparsity", "0.5", lmPath, out, "--text", text}, "--text applies to --gradual only"},
		{[]string{"finetune", "-q", lmPath, out, "--text", text, "--ctx", "16", "--teacher", other}, "vocabulary of 512 differs"},
		{[]string{"finetune", "-q", lmPath, out, "--text", text, "--ctx", "16", "--alpha", "0.2"}, "give --teacher"},
		{[]string{"finetune", "-q", lmPath, out, "--text", text, "--ctx", "16", "--teacher", mlp}, "must be one, not \"mlp\""},
		{[]string{"finetune", "-q", lmPath, out, "--text", text, "--ctx", "16", "--limit", "10"}, "--limit applies to an mlp classifier"},
		{[]string{"finetune", "-q", mlp, out, "--heldout", text}, "--heldout applies to a llama model"},
	} {
		_, stderr, code := shrink(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("shrink %s: exit %d, %q; want 2 and %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a failed command wrote %s", out)
	}
}
