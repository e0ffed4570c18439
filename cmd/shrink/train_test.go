package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/format/idx"
	"github.com/shrinkml/shrink/internal/shareddata"
)

// writeIDX writes a gzipped unsigned-byte IDX file.
func writeIDX(t *testing.T, path string, dims []int, data []byte) {
	t.Helper()
	var raw bytes.Buffer
	raw.Write([]byte{0, 0, 8, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&raw, binary.BigEndian, uint32(d))
	}
	raw.Write(data)
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	w.Write(raw.Bytes())
	w.Close()
	if err := os.WriteFile(path, z.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fakeFashion writes a folder in Fashion-MNIST's layout whose images are
// noise plus a bright bar in a row that gives away the class: a data set
// any MLP learns in one epoch.
func fakeFashion(t *testing.T, nTrain, nTest int) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, p := range []struct {
		part string
		n    int
	}{{"train", nTrain}, {"t10k", nTest}} {
		px, labels := make([]byte, p.n*784), make([]byte, p.n)
		for i := range labels {
			c := rng.IntN(10)
			labels[i] = byte(c)
			img := px[i*784 : (i+1)*784]
			for j := range img {
				img[j] = byte(rng.IntN(50))
			}
			for j := 4; j < 24; j++ {
				img[(2*c+4)*28+j] = 255
			}
		}
		writeIDX(t, filepath.Join(dir, p.part+"-images-idx3-ubyte.gz"), []int{p.n, 28, 28}, px)
		writeIDX(t, filepath.Join(dir, p.part+"-labels-idx1-ubyte.gz"), []int{p.n}, labels)
	}
	return dir
}

func readJSON(t *testing.T, out string) map[string]any {
	t.Helper()
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	return rep
}

// TestTrainDistillEval runs the three commands on a fake data set: train
// writes the same bytes twice for one seed, distill compares with a
// student from scratch, and eval --dataset scores and compares classifiers.
func TestTrainDistillEval(t *testing.T) {
	data := fakeFashion(t, 1200, 300)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	args := []string{"train", "--hidden", "24,12", "--data", data, "--val", "200", "--epochs", "2", "--batch", "50", "--lr", "1e-2", "--seed", "3", "--threads", "2", "--quiet"}
	rep := readJSON(t, mustShrink(t, append(args, a, "--json")...))
	if rep["test_accuracy"].(float64) < 0.9 || rep["parameters"] != float64(784*24+24+24*12+12+12*10+10) ||
		rep["train_examples"] != 1000.0 || rep["val_examples"] != 200.0 || rep["test_examples"] != 300.0 ||
		rep["steps"] != 40.0 || len(rep["epochs"].([]any)) != 2 || !(rep["examples_per_s"].(float64) > 0) {
		t.Errorf("train --json: %v", rep)
	}
	table := mustShrink(t, append(args, b)...)
	for _, want := range []string{"test accuracy", "epoch 2", "[784 24 12 10], relu", "1,000 train, 200 validation, 300 test images"} {
		if !strings.Contains(table, want) {
			t.Errorf("train table lacks %q:\n%s", want, table)
		}
	}
	for _, name := range []string{"model.safetensors", "config.json"} {
		x, _ := os.ReadFile(filepath.Join(a, name))
		y, _ := os.ReadFile(filepath.Join(b, name))
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs with the same seed and threads", name)
		}
	}
	if _, errOut, code := shrink(t, append(args, a)...); code != 2 || !strings.Contains(errOut, "exists") {
		t.Errorf("train over an existing model: exit %d, %s", code, errOut)
	}

	s := filepath.Join(dir, "student")
	rep = readJSON(t, mustShrink(t, "distill", "--teacher", a, s, "--student-hidden", "6", "--data", data, "--val", "200",
		"--epochs", "2", "--batch", "50", "--lr", "1e-2", "--baseline", "--json", "--quiet"))
	st, sc, te := rep["student_stats"].(map[string]any), rep["scratch_stats"].(map[string]any), rep["teacher_stats"].(map[string]any)
	if st["parameters"] != float64(784*6+6+6*10+10) || sc["parameters"] != st["parameters"] || te["parameters"] != float64(784*24+24+24*12+12+12*10+10) ||
		st["test_accuracy"].(float64) < 0.5 || rep["gain_points"] == nil || rep["x_smaller"].(float64) < 3 {
		t.Errorf("distill --json: %v", rep)
	}
	table = mustShrink(t, "distill", "--teacher", a, filepath.Join(dir, "s2"), "--student-hidden", "6", "--data", data, "--val", "200",
		"--steps", "10", "--batch", "50", "--baseline", "--temperature", "2", "--alpha", "0.5")
	for _, want := range []string{"teacher", "scratch", "distilled", "test accuracy", "examples/s", "10 steps of 50 examples, T 2, alpha 0.5", "gain over scratch"} {
		if !strings.Contains(table, want) {
			t.Errorf("distill table lacks %q:\n%s", want, table)
		}
	}

	rep = readJSON(t, mustShrink(t, "distill", "--teacher", a, filepath.Join(dir, "s4"), "--student-hidden", "6", "--data", data, "--val", "200",
		"--steps", "5", "--batch", "50", "--hidden-loss", "mse", "--json", "--quiet"))
	if rep["hidden_loss"] != "mse" || rep["hidden_weight"] != 1.0 || rep["train"].(map[string]any)["steps"] != 5.0 {
		t.Errorf("distill --hidden-loss mse --json: %v", rep)
	}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"distill", "--teacher", a, filepath.Join(dir, "s3"), "--data", data}, "--student-hidden is required"},
		{[]string{"distill", "--teacher", a, filepath.Join(dir, "s3"), "--student-hidden", "6", "--data", data, "--hidden-loss", "kl"}, `--hidden-loss "kl"`},
		{[]string{"distill", "--teacher", a, filepath.Join(dir, "s3"), "--student-hidden", "6", "--text", data}, "--text applies to a llama teacher"},
		{[]string{"distill", "--teacher", a, filepath.Join(dir, "s3"), "--student-hidden", "6", "--student-from-teacher", "every-2nd-layer"}, "--student-from-teacher applies to a llama teacher"},
	} {
		if _, errOut, code := shrink(t, c.args...); code != 2 || !strings.Contains(errOut, c.msg) {
			t.Errorf("shrink %s: exit %d, %q; want exit 2 naming %q", strings.Join(c.args, " "), code, errOut, c.msg)
		}
	}

	rep = readJSON(t, mustShrink(t, "eval", s, "--dataset", "fashion-mnist", "--data", data, "--ref", a, "--json"))
	if rep["schema_version"] != 1.0 || rep["test_examples"] != 300.0 || len(rep["per_class_accuracy"].([]any)) != 10 ||
		rep["ref_accuracy"] != te["test_accuracy"] || rep["accuracy"] != st["test_accuracy"] || !(rep["examples_per_s"].(float64) > 0) {
		t.Errorf("eval --dataset --json: %v", rep)
	}
	agree, change := rep["ref_agreement"].(float64), rep["accuracy_change_points"].(float64)
	if !(agree > 0 && agree <= 1) || change != 100*(rep["accuracy"].(float64)-rep["ref_accuracy"].(float64)) {
		t.Errorf("agreement %g, change %g", agree, change)
	}
	n := 0.0
	for _, row := range rep["confusion"].([]any) {
		for _, v := range row.([]any) {
			n += v.(float64)
		}
	}
	if n != 300 {
		t.Errorf("the confusion matrix counts %g examples", n)
	}
	table = mustShrink(t, "eval", a, "--dataset", "fashion-mnist", "--data", data, "--ref", a)
	for _, want := range []string{"accuracy", "agreement with ref", "100.00%", "+0.00 points", "9 Ankle boot", "true \\ predicted"} {
		if !strings.Contains(table, want) {
			t.Errorf("eval table lacks %q:\n%s", want, table)
		}
	}
}

// TestTrainFashionMNIST trains a small MLP on 4,000 real Fashion-MNIST
// training images and scores it on 2,000 test images.
func TestTrainFashionMNIST(t *testing.T) {
	src := shareddata.FashionMNIST(t)
	tr, err := idx.LoadFashionMNIST(src, idx.Train)
	if err != nil {
		t.Fatal(err)
	}
	te, err := idx.LoadFashionMNIST(src, idx.Test)
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	writeIDX(t, filepath.Join(data, "train-images-idx3-ubyte.gz"), []int{5000, 28, 28}, tr.Pixels[:5000*784])
	writeIDX(t, filepath.Join(data, "train-labels-idx1-ubyte.gz"), []int{5000}, tr.Labels[:5000])
	writeIDX(t, filepath.Join(data, "t10k-images-idx3-ubyte.gz"), []int{2000, 28, 28}, te.Pixels[:2000*784])
	writeIDX(t, filepath.Join(data, "t10k-labels-idx1-ubyte.gz"), []int{2000}, te.Labels[:2000])
	out := filepath.Join(t.TempDir(), "m")
	rep := readJSON(t, mustShrink(t, "train", "--hidden", "64", "--data", data, "--val", "1000", "--epochs", "3", "--lr", "3e-3", "--json", out))
	t.Logf("test accuracy %.4f, %.0f training examples/s", rep["test_accuracy"], rep["examples_per_s"])
	if acc := rep["test_accuracy"].(float64); acc < 0.75 {
		t.Errorf("test accuracy %g after 3 epochs on 4,000 images", acc)
	}
}

func TestTrainErrors(t *testing.T) {
	data := fakeFashion(t, 100, 20)
	dir := t.TempDir()
	empty := t.TempDir()
	out := filepath.Join(dir, "out")
	gguf := filepath.Join(dir, "tiny.gguf")
	mustShrink(t, "synth", gguf, "--preset", "stories260k")
	d := []string{"--data", data}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"train", out, "--arch", "cnn"}, "--arch \"cnn\""},
		{[]string{"train", out, "--hidden", "0"}, "--hidden 0"},
		{[]string{"train", out, "--epochs", "0"}, "--epochs 0"},
		{[]string{"train", out, "--batch", "0"}, "--batch 0"},
		{[]string{"train", out, "--lr", "-1"}, "--lr -1"},
		{[]string{"train", out, "--warmup", "1"}, "--warmup 1"},
		{[]string{"train", out, "--activation", "tanh"}, "--activation \"tanh\""},
		{[]string{"train", out, "--threads", "-1"}, "--threads -1"},
		{[]string{"train", filepath.Join(dir, "no", "out")}, "does not exist"},
		{[]string{"train", out, "--data", filepath.Join(dir, "nope")}, "not a folder"},
		{[]string{"train", out, "--data", empty}, "apt-get install dataset-fashion-mnist"},
		{append([]string{"train", out, "--val", "100"}, d...), "--val 100 leaves none"},
		{append([]string{"train", out, "--batch", "1000", "--val", "10"}, d...), "--batch 1000 is more than the 90"},
		{[]string{"distill", out, "--student-hidden", "8"}, "--teacher is required"},
		{[]string{"distill", out, "--teacher", gguf}, "--text is required with a llama teacher"},
		{[]string{"distill", out, "--teacher", gguf, "--student-hidden", "8", "--alpha", "2"}, "--alpha 2"},
		{[]string{"distill", out, "--teacher", gguf, "--student-hidden", "8", "--temperature", "0"}, "--temperature 0"},
		{append([]string{"distill", out, "--teacher", gguf, "--student-hidden", "8"}, d...), "--data applies to an MLP teacher"},
		{[]string{"distill", out, "--teacher", filepath.Join(dir, "none"), "--student-hidden", "8"}, "none"},
		{[]string{"eval", gguf, "--dataset", "mnist"}, "--dataset \"mnist\""},
		{[]string{"eval", gguf, "--data", data}, "add --dataset fashion-mnist"},
		{[]string{"eval", gguf, "--dataset", "fashion-mnist", "--text", gguf}, "--text and --dataset"},
		{append([]string{"eval", gguf, "--dataset", "fashion-mnist"}, d...), "scores an mlp classifier"},
		{[]string{"eval", gguf, "--dataset", "fashion-mnist", "--data", empty}, "apt-get install dataset-fashion-mnist"},
	} {
		_, errOut, code := shrink(t, c.args...)
		if code != 2 || !strings.Contains(errOut, c.msg) {
			t.Errorf("shrink %s: exit %d, %q; want exit 2 naming %q", strings.Join(c.args, " "), code, errOut, c.msg)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a failed command left %s", out)
	}
}

// lmText writes a small corpus of prose and Go-like lines for train --arch llama.
func lmText(t *testing.T, dir string, lines int, seed uint64) string {
	t.Helper()
	words := strings.Fields("the model reads each token and guesses the next one from what came before it while the loss falls step by step")
	rng := rand.New(rand.NewPCG(seed, 3))
	var b strings.Builder
	for i := range lines {
		if i%4 == 3 {
			b.WriteString("\tif err != nil {\n\t\treturn err\n\t}\n")
			continue
		}
		for j := range 3 + rng.IntN(8) {
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[rng.IntN(len(words))])
		}
		b.WriteString(".\n")
	}
	path := filepath.Join(dir, fmt.Sprintf("text%d.txt", seed))
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTrainLlama trains a tiny language model from text: the held-out
// perplexity falls, one seed writes the same bytes twice, the file runs, and
// a second model reuses the first one's tokenizer.
func TestTrainLlama(t *testing.T) {
	dir := t.TempDir()
	text := lmText(t, dir, 1500, 1)
	a, b := filepath.Join(dir, "a.gguf"), filepath.Join(dir, "b.gguf")
	args := []string{"train", "--arch", "llama", "--text", text, "--vocab", "300", "--dim", "16", "--layers", "1", "--heads", "2",
		"--kv-heads", "1", "--hidden", "32", "--ctx", "32", "--steps", "40", "--batch", "4", "--threads", "2", "--seed", "3", "--quiet"}
	rep := readJSON(t, mustShrink(t, append(args, a, "--json")...))
	t.Logf("held-out perplexity %.1f -> %.1f, %.0f tokens/s", rep["heldout_perplexity_before"], rep["heldout_perplexity_after"], rep["tokens_per_s"])
	params := 300*16*2 + 16 + (16 + 16*(16+8+8) + 16*16 + 16 + 2*32*16 + 16*32)
	if rep["vocab"] != 300.0 || rep["parameters"] != float64(params) || rep["steps"] != 40.0 || rep["tokens"] != float64(40*4*32) ||
		rep["heldout"] != "last 10% of text" || rep["tokenizer"] != "trained" || !(rep["train_tokens"].(float64) > 1000) ||
		!(rep["heldout_perplexity_after"].(float64) < 0.5*rep["heldout_perplexity_before"].(float64)) || !(rep["tokens_per_s"].(float64) > 0) {
		t.Errorf("train --arch llama --json: %v", rep)
	}
	table := mustShrink(t, append(args, b)...)
	for _, want := range []string{"held-out perplexity", "dim 16, 1 layers, 2 heads, 1 kv heads, hidden 32, vocab 300, context 32", "tokens/s, 2 threads"} {
		if !strings.Contains(table, want) {
			t.Errorf("train table lacks %q:\n%s", want, table)
		}
	}
	x, _ := os.ReadFile(a)
	y, _ := os.ReadFile(b)
	if len(x) == 0 || !bytes.Equal(x, y) {
		t.Error("two runs with the same seed and threads write different files")
	}
	if out := mustShrink(t, "run", a, "-p", "the model", "-n", "12", "--threads", "1"); len(out) == 0 {
		t.Error("run printed nothing")
	}
	if _, errOut, code := shrink(t, append(args, a)...); code != 2 || !strings.Contains(errOut, "exists") {
		t.Errorf("train over an existing model: exit %d, %s", code, errOut)
	}

	held := lmText(t, dir, 200, 2)
	c := filepath.Join(dir, "c.gguf")
	rep = readJSON(t, mustShrink(t, "train", "--arch", "llama", "--text", text, "--heldout", held, "--tokenizer", a, "--dim", "16",
		"--layers", "1", "--heads", "2", "--kv-heads", "2", "--hidden", "32", "--ctx", "16", "--steps", "5", "--batch", "2", "--tied", "--quiet", "--json", c))
	if rep["tokenizer"] != a || rep["heldout"] != held || rep["vocab"] != 300.0 || rep["tied"] != true || rep["context"] != 16.0 {
		t.Errorf("train --tokenizer --heldout --json: %v", rep)
	}
}

func TestTrainLlamaErrors(t *testing.T) {
	dir := t.TempDir()
	text := lmText(t, dir, 100, 1)
	out := filepath.Join(dir, "out.gguf")
	l := []string{"train", out, "--arch", "llama", "--text", text}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"train", out, "--arch", "llama"}, "--text is required"},
		{append(l, "--epochs", "3"), "--epochs applies to --arch mlp"},
		{append(l, "--data", dir), "--data applies to --arch mlp"},
		{[]string{"train", out, "--text", text}, "--text applies to --arch llama"},
		{[]string{"train", out, "--vocab", "300"}, "--vocab applies to --arch llama"},
		{append(l, "--vocab", "100"), "--vocab 100"},
		{append(l, "--tokenizer", out, "--vocab", "300"), "--vocab and --tokenizer"},
		{append(l, "--hidden", "32,32"), "one FFN width"},
		{append(l, "--kv-heads", "3"), "not a multiple of 3 kv heads"},
		{append(l, "--dim", "30"), "not a multiple of 4 heads"},
		{append(l, "--steps", "0"), "--steps 0"},
		{append(l, "--ctx", "1"), "--ctx 1"},
		{append(l, "--lr", "2"), "--lr 2"},
		{append(l, "--text", filepath.Join(dir, "none.txt")), "none.txt"},
		{append(l, "--ctx", "4096"), "fewer than a window"},
		{[]string{"train", filepath.Join(dir, "no", "out.gguf"), "--arch", "llama", "--text", text}, "does not exist"},
	} {
		_, errOut, code := shrink(t, c.args...)
		if code != 2 || !strings.Contains(errOut, c.msg) {
			t.Errorf("shrink %s: exit %d, %q; want exit 2 naming %q", strings.Join(c.args, " "), code, errOut, c.msg)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a failed command left %s", out)
	}
}
