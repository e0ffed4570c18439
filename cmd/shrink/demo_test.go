package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/evalsuite"
)

// TestDemo runs the demo on its embedded models and checks what a newcomer
// would check: every variant is there, and the figures tell the expected
// story (8-bit is nearly lossless, GPTQ beats round-to-nearest, gradual
// pruning beats one-shot pruning at 90%).
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo trains and compares for half a minute")
	}
	out := filepath.Join(t.TempDir(), "demo")
	var rep demoReport
	if err := json.Unmarshal([]byte(mustShrink(t, "demo", "--out", out, "--threads", "2", "--json", "--quiet")), &rep); err != nil {
		t.Fatal(err)
	}
	lm, cl := rep.LanguageModel, rep.Classifier
	if lm == nil || cl == nil || len(lm.Variants) != 1+len(demoLMRecipes) || len(cl.Variants) != 1+len(demoClassRecipes)+3 {
		t.Fatalf("report: %+v", rep)
	}
	byName := func(vs []evalsuite.Variant, name string) evalsuite.Variant {
		for _, v := range vs {
			if v.Name == name {
				return v
			}
		}
		t.Fatalf("no variant %q", name)
		return evalsuite.Variant{}
	}
	base, q8, q4, gptq := lm.Variants[0], byName(lm.Variants, "q8_0"), byName(lm.Variants, "q4_0"), byName(lm.Variants, "q4_0:gptq")
	if !(base.Perplexity > 1) || !(q8.PerplexityChangePct < 1) || !(gptq.KLMean < q4.KLMean) || !(q4.XSmaller > 3) {
		t.Errorf("language model: base PPL %g, q8_0 %+.2f%%, KL q4_0 %g gptq %g, q4_0 %.1fx smaller",
			base.Perplexity, q8.PerplexityChangePct, q4.KLMean, gptq.KLMean, q4.XSmaller)
	}
	acc := func(name string) float64 { return *byName(cl.Variants, name).Accuracy }
	if acc("base") < 0.88 || acc("q8_0") < acc("base")-0.01 || acc("gradual:0.9") < acc("prune:magnitude:0.9")+0.2 {
		t.Errorf("classifier: base %.4f, q8_0 %.4f, gradual:0.9 %.4f, prune:magnitude:0.9 %.4f",
			acc("base"), acc("q8_0"), acc("gradual:0.9"), acc("prune:magnitude:0.9"))
	}
	for _, f := range rep.Files {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 || filepath.Dir(f) != out {
			t.Errorf("file %s: %v", f, err)
		}
	}
	if len(rep.Files) != 5 {
		t.Errorf("files: %v", rep.Files)
	}

}

// TestDemoOwnModel runs the language-model part on a given model and text,
// into the folder of an earlier run, and refuses what it cannot do.
func TestDemoOwnModel(t *testing.T) {
	dir, mdl, short := synthCompareInputs(t)
	words, _ := os.ReadFile(short)
	text := filepath.Join(dir, "long.txt")
	if err := os.WriteFile(text, []byte(strings.Repeat(string(words), 2)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	args := []string{"demo", "--out", out, "--quiet", "--threads", "1", "--model", mdl, "--text", text, "--calib", text}
	for range 2 { // the second run replaces the first one's files
		table := mustShrink(t, args...)
		if !strings.Contains(table, "base tiny.gguf; long.txt") || !strings.Contains(table, "q4_0:gptq") || strings.Contains(table, "Classifier") {
			t.Errorf("table:\n%s", table)
		}
	}
	var rep demoReport
	if err := json.Unmarshal([]byte(mustShrink(t, append(args, "--json")...)), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Classifier != nil || len(rep.LanguageModel.Variants) != 1+len(demoLMRecipes) || len(rep.Files) != 3 {
		t.Errorf("report: %+v", rep)
	}

	other := filepath.Join(dir, "other")
	os.Mkdir(other, 0o755)
	os.WriteFile(filepath.Join(other, "notes.txt"), []byte("mine"), 0o644)
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--model", mdl}, "--model and --text go together"},
		{[]string{"--calib", text}, "--calib goes with --model and --text"},
		{[]string{"--out", other}, "holds other files than an earlier demo's"},
		{[]string{"--threads", "-1"}, "must not be negative"},
		{[]string{"--model", mdl, "--text", text}, "give --calib FILE"},
		{[]string{"--model", filepath.Join(dir, "nope.gguf"), "--text", text}, "nope.gguf"},
	} {
		args := append([]string{"demo", "--quiet", "--out", filepath.Join(dir, "bad")}, c.args...)
		if out, errOut, code := shrink(t, args...); code != 2 || out != "" || !strings.Contains(errOut, c.msg) {
			t.Errorf("%v: exit %d, stdout %q, stderr %s; want exit 2 and %q", c.args, code, out, errOut, c.msg)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(other, "notes.txt")); string(data) != "mine" {
		t.Error("demo touched a folder that is not its own")
	}
}
