package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/evalsuite"
)

// TestCompareClassifiers compares a small MLP with pruned variants and a
// model file on a fake data set, and refuses what classifiers cannot take.
func TestCompareClassifiers(t *testing.T) {
	data := fakeFashion(t, 1200, 300)
	dir := t.TempDir()
	teacher, other := filepath.Join(dir, "teacher"), filepath.Join(dir, "other")
	train := []string{"train", "--hidden", "32", "--data", data, "--val", "200", "--epochs", "2", "--batch", "50", "--lr", "1e-2", "--threads", "2", "--quiet"}
	mustShrink(t, append(train, teacher, "--seed", "3")...)
	mustShrink(t, append(train, other, "--seed", "4")...)

	args := []string{"compare", teacher, "--dataset", "fashion-mnist", "--data", data, "--threads", "1", "--quiet",
		"--recipe", "prune:magnitude:0.5,prune:magnitude:2:4", "--models", other}
	var rep evalsuite.Report
	if err := json.Unmarshal([]byte(mustShrink(t, append(args, "--json")...)), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Dataset != "fashion-mnist" || rep.TestExamples != 300 || rep.Text != "" || !rep.Classifiers() || len(rep.Variants) != 4 {
		t.Fatalf("report: %+v", rep)
	}
	for i, v := range rep.Variants {
		if v.Name != []string{"base", "prune:magnitude:0.5", "prune:magnitude:2:4", "other"}[i] || v.Accuracy == nil ||
			!(v.ExamplesPerS > 0) || !(v.Speedup > 0) || v.SizeBytes <= 0 || v.Params != 784*32+32+32*10+10 || v.Perplexity != 0 {
			t.Errorf("variant %d: %+v", i, v)
		}
	}
	b, half := rep.Variants[0], rep.Variants[1]
	if *b.Accuracy < 0.9 || b.Top1Agreement != 1 || b.AccuracyChangePoints == nil || *b.AccuracyChangePoints != 0 || b.Speedup != 1 {
		t.Errorf("base: %+v", b)
	}
	if d := 100 * (*half.Accuracy - *b.Accuracy); *half.AccuracyChangePoints != d || !(half.Top1Agreement > 0.5 && half.Top1Agreement <= 1) {
		t.Errorf("pruned: %+v", half)
	}

	table := mustShrink(t, args...)
	for _, want := range []string{"base teacher; fashion-mnist test set: 300 examples; 1 thread", "accuracy", "agreement", "examples/s", "prune:magnitude:2:4", "other"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "PPL") {
		t.Errorf("a classifier table with perplexity:\n%s", table)
	}

	lm := filepath.Join(dir, "lm.gguf")
	mustShrink(t, "synth", lm, "--preset", "stories260k")
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--recipe", "prune:wanda:0.5"}, `recipe "prune:wanda:0.5": gptq, awq, wanda and sparsegpt calibrate a language model on text`},
		{[]string{"--recipe", "q4_0:gptq"}, `recipe "q4_0:gptq": gptq, awq, wanda and sparsegpt calibrate a language model on text`},
		{[]string{"--models", lm}, `compare --dataset needs an mlp classifier, not "llama"`},
		{[]string{"--recipe", "q8_0", "--text", "x.txt"}, "--text and --dataset: give one"},
		{[]string{"--recipe", "q8_0", "--data", filepath.Join(dir, "nowhere")}, "nowhere: not a folder"},
	} {
		args := append([]string{"compare", teacher, "--dataset", "fashion-mnist", "--data", data, "--quiet"}, c.args...)
		if out, errOut, code := shrink(t, args...); code != 2 || out != "" || !strings.Contains(errOut, c.msg) {
			t.Errorf("%v: exit %d, stdout %q, stderr %s; want exit 2 and %q", c.args, code, out, errOut, c.msg)
		}
	}
	for args, msg := range map[string]string{
		"compare " + lm + " --dataset fashion-mnist --data " + data + " --recipe q8_0": `compare --dataset scores an mlp classifier, not "llama"`,
		"compare " + teacher + " --dataset mnist --recipe q8_0":                        `--dataset "mnist": want fashion-mnist`,
	} {
		if out, errOut, code := shrink(t, strings.Fields(args)...); code != 2 || out != "" || !strings.Contains(errOut, msg) {
			t.Errorf("%s: exit %d, stdout %q, stderr %s; want exit 2 and %q", args, code, out, errOut, msg)
		}
	}
}
