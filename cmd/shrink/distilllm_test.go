package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDistillLlama trains a tiny language model as the teacher, then
// distills it into a smaller random student with a scratch baseline, and
// into a student made of every second teacher layer; one seed writes the
// same bytes twice.
func TestDistillLlama(t *testing.T) {
	dir := t.TempDir()
	text := lmText(t, dir, 1500, 1)
	teacher := filepath.Join(dir, "teacher.gguf")
	mustShrink(t, "train", "--arch", "llama", "--text", text, "--vocab", "300", "--dim", "16", "--layers", "2", "--heads", "2",
		"--kv-heads", "1", "--hidden", "32", "--ctx", "32", "--steps", "60", "--batch", "4", "--threads", "2", "--seed", "3", "--quiet", teacher)

	a, b := filepath.Join(dir, "a.gguf"), filepath.Join(dir, "b.gguf")
	args := []string{"distill", "--teacher", teacher, "--text", text, "--student-dim", "8", "--student-layers", "1", "--student-heads", "2",
		"--student-kv-heads", "1", "--student-hidden", "16", "--ctx", "32", "--steps", "30", "--batch", "4", "--threads", "2", "--seed", "5", "--quiet"}
	rep := readJSON(t, mustShrink(t, append(args, a, "--baseline", "--json")...))
	st, sc, te := rep["student_stats"].(map[string]any), rep["scratch_stats"].(map[string]any), rep["teacher_stats"].(map[string]any)
	t.Logf("held-out perplexity: teacher %.2f, scratch %.2f, distilled %.2f", te["heldout_perplexity"], sc["heldout_perplexity"], st["heldout_perplexity"])
	params := 300*8*2 + 8 + (8 + 8*(8+4+4) + 8*8 + 8 + 2*16*8 + 8*16)
	shape := rep["student_shape"].(map[string]any)
	if st["parameters"] != float64(params) || sc["parameters"] != st["parameters"] || shape["dim"] != 8.0 || shape["vocab"] != 300.0 ||
		rep["student_init"] != "random" || rep["temperature"] != 1.0 || rep["alpha"] != 0.5 || rep["heldout"] != "last 10% of text" ||
		rep["perplexity_gain"] != sc["heldout_perplexity"].(float64)-st["heldout_perplexity"].(float64) ||
		!(st["heldout_perplexity"].(float64) < 300) || !(te["heldout_perplexity"].(float64) < st["heldout_perplexity"].(float64)) ||
		!(st["decode_tokens_per_s"].(float64) > 0) || rep["x_smaller"].(float64) < 1.5 {
		t.Errorf("distill --json: %v", rep)
	}
	table := mustShrink(t, append(args, b, "--baseline")...)
	for _, want := range []string{"held-out perplexity", "scratch", "distilled", "decode tokens/s", "dim 8, 1 layers, 2 heads, 1 kv heads, hidden 16 (random)",
		"30 steps of 4 windows of 32 tokens", "T 1, alpha 0.5, seed 5", "gain over scratch"} {
		if !strings.Contains(table, want) {
			t.Errorf("distill table lacks %q:\n%s", want, table)
		}
	}
	x, _ := os.ReadFile(a)
	y, _ := os.ReadFile(b)
	if len(x) == 0 || !bytes.Equal(x, y) {
		t.Error("two distillations with the same seed and threads write different files")
	}
	if out := mustShrink(t, "run", a, "-p", "the model", "-n", "8", "--threads", "1"); len(out) == 0 {
		t.Error("run printed nothing")
	}

	c := filepath.Join(dir, "c.gguf")
	rep = readJSON(t, mustShrink(t, "distill", "--teacher", teacher, "--text", text, "--student-from-teacher", "every-2nd-layer", "--ctx", "32",
		"--steps", "5", "--batch", "2", "--temperature", "2", "--alpha", "0.5", "--hidden-loss", "cosine", "--hidden-weight", "0.5", "--quiet", "--json", c))
	shape = rep["student_shape"].(map[string]any)
	if shape["layers"] != 1.0 || shape["dim"] != 16.0 || shape["hidden"] != 32.0 || rep["student_init"] != "every-2nd-layer of the teacher" ||
		rep["scratch_stats"] != nil || rep["temperature"] != 2.0 || rep["alpha"] != 0.5 || rep["hidden_loss"] != "cosine" || rep["hidden_weight"] != 0.5 {
		t.Errorf("distill --student-from-teacher --json: %v", rep)
	}
}

func TestDistillLlamaErrors(t *testing.T) {
	dir := t.TempDir()
	text := lmText(t, dir, 100, 1)
	teacher := filepath.Join(dir, "t.gguf")
	mustShrink(t, "synth", teacher, "--preset", "stories260k")
	out := filepath.Join(dir, "out.gguf")
	l := []string{"distill", out, "--teacher", teacher, "--text", text}
	shape := []string{"--student-dim", "16", "--student-layers", "1", "--student-hidden", "32"}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{l, "needs --student-dim, --student-layers and one --student-hidden"},
		{append(l, "--student-dim", "16", "--student-layers", "1", "--student-hidden", "32,8"), "one --student-hidden"},
		{append(l, "--student-dim", "15", "--student-layers", "1", "--student-hidden", "32"), "--student-dim"},
		{append(l, "--student-from-teacher", "every-other-layer"), `--student-from-teacher "every-other-layer"`},
		{append(l, "--student-from-teacher", "every-9th-layer"), "keeping one layer in 9 needs a teacher with at least 9 layers; it has 5"},
		{append(l, "--student-from-teacher", "every-2nd-layer", "--student-dim", "8"), "--student-dim and --student-from-teacher"},
		{append(append(l, shape...), "--epochs", "2"), "--epochs applies to an MLP teacher"},
		{append(append(l, shape...), "--ctx", "4096"), "--ctx 4096"},
		{append(append(l, shape...), "--steps", "-1"), "--steps -1"},
		{append(append(l, shape...), "--hidden-loss", "l1"), `--hidden-loss "l1"`},
		{append(append(l, shape...), "--hidden-weight", "2"), "--hidden-weight applies to a --hidden-loss"},
		{append(append(l, shape...), "--hidden-loss", "mse", "--hidden-weight", "0"), "--hidden-weight 0"},
		{append(append([]string{"distill", out, "--teacher", teacher}, shape...), "--text", filepath.Join(dir, "none.txt")), "none.txt"},
	} {
		_, errOut, code := shrink(t, c.args...)
		if code != 2 || !strings.Contains(errOut, c.msg) {
			t.Errorf("shrink %s: exit %d, %q; want exit 2 naming %q", strings.Join(c.args, " "), code, errOut, c.msg)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed distill left its output behind")
	}
}
