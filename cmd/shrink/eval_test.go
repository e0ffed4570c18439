package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/internal/shareddata"
)

func TestEvalStories260K(t *testing.T) {
	bin := shareddata.Path(t, shareddata.Stories260KBin)
	text := shareddata.Path(t, shareddata.TinyStoriesVal)
	out := mustShrink(t, "eval", bin, "--text", text, "--ctx", "128", "--max-tokens", "4096", "--json")
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	num := func(k string) float64 {
		v, ok := rep[k].(float64)
		if !ok {
			t.Errorf("key %q missing or not a number in\n%s", k, out)
		}
		return v
	}
	if num("schema_version") != 1 || num("ctx") != 128 || num("chunks") != 32 || num("scored_tokens") != 32*63 || num("text_tokens") != 4096 {
		t.Errorf("unexpected settings or counts:\n%s", out)
	}
	ppl, se, nll := num("perplexity"), num("perplexity_stderr"), num("nll")
	if !(ppl > 3 && ppl < 7) || !(se > 0 && se < 0.5) || math.Abs(math.Log(ppl)-nll) > 1e-9 {
		t.Errorf("PPL %g ± %g, NLL %g", ppl, se, nll)
	}
	if _, ok := rep["kl_mean"]; ok {
		t.Errorf("kl_mean without --ref:\n%s", out)
	}

	// Against itself: the same PPL, no divergence, full agreement.
	out = mustShrink(t, "eval", bin, "--text", text, "--ctx", "64", "--max-tokens", "1024", "--ref", bin, "--json")
	rep = nil
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if num("kl_mean") != 0 || num("kl_p99") != 0 || num("top1_agreement") != 1 || num("ref_perplexity") != num("perplexity") {
		t.Errorf("against itself:\n%s", out)
	}

	table := mustShrink(t, "eval", bin, "--text", text, "--ctx", "64", "--stride", "32", "--max-tokens", "512", "--ref", bin)
	for _, want := range []string{"stories260K.bin", "perplexity", "±", "15 windows of 64 tokens, stride 32", "scored tokens", "511",
		"top-1 agreement", "100.00%", "mean KL"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

// TestEvalSynthetic needs no shared data: a random model, a short text.
func TestEvalSynthetic(t *testing.T) {
	dir := t.TempDir()
	gguf, text, missing := filepath.Join(dir, "tiny.gguf"), filepath.Join(dir, "text.txt"), filepath.Join(dir, "nope.txt")
	mustShrink(t, "synth", gguf, "--preset", "stories260k")
	if err := os.WriteFile(text, []byte(strings.Repeat("The cat sat on the mat. ", 20)), 0o644); err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	out := mustShrink(t, "eval", gguf, "--text", text, "--ctx", "32", "--json", "--threads", "1")
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"schema_version", "perplexity", "perplexity_stderr", "nll", "scored_tokens", "ctx", "chunks"} {
		if _, ok := rep[k].(float64); !ok {
			t.Errorf("key %q missing in\n%s", k, out)
		}
	}
	if rep["threads"] != 1.0 || rep["ctx"] != 32.0 || rep["kv_cache"] != "f32" {
		t.Errorf("settings not reported:\n%s", out)
	}
	// A half-precision KV cache moves the perplexity, but only a little.
	var rep16 map[string]any
	if err := json.Unmarshal([]byte(mustShrink(t, "eval", gguf, "--text", text, "--ctx", "32", "--json", "--kv-cache", "f16")), &rep16); err != nil {
		t.Fatal(err)
	}
	p32, _ := rep["perplexity"].(float64)
	p16, _ := rep16["perplexity"].(float64)
	if rep16["kv_cache"] != "f16" || !(math.Abs(p16/p32-1) < 1e-3) {
		t.Errorf("--kv-cache f16: kv_cache %v, perplexity %v against %v with f32", rep16["kv_cache"], p16, p32)
	}
	if load, _ := rep["load_seconds"].(float64); !(load > 0 && load < 60) {
		t.Errorf("load_seconds %v", rep["load_seconds"])
	}
	if rss, _ := rep["peak_rss_bytes"].(float64); runtime.GOOS == "linux" && !(rss > 1<<20) {
		t.Errorf("peak_rss_bytes %v", rep["peak_rss_bytes"])
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"eval", gguf, "--text", missing}, missing},
		{[]string{"eval", gguf}, "--text is required"},
		{[]string{"eval", filepath.Join(dir, "none.gguf"), "--text", text}, "none.gguf"},
		{[]string{"eval", gguf, "--text", text, "--ref", filepath.Join(dir, "noref.gguf")}, "noref.gguf"},
		{[]string{"eval", gguf, "--text", text, "--ctx", "1024"}, "longer than the model's 512"},
		{[]string{"eval", gguf, "--text", text, "--ctx", "3"}, "too short"},
		{[]string{"eval", gguf, "--text", text, "--ctx", "128", "--max-tokens", "100"}, "shorter than one chunk of 128"},
		{[]string{"eval", gguf, "--text", text, "--stride", "32", "--ctx", "32"}, "stride 32"},
		{[]string{"eval", gguf, "--text", text, "--max-tokens", "-1"}, "must not be negative"},
	} {
		_, errOut, code := shrink(t, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("shrink %s: exit %d, %q; want exit 2 naming %q", strings.Join(c.args, " "), code, errOut, c.want)
		}
	}
}
