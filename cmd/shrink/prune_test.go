package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/internal/shareddata"
)

// TestPruneStories260K prunes the real model with each kind of request and
// checks the report, and that the outputs load and run.
func TestPruneStories260K(t *testing.T) {
	bin := shareddata.Path(t, shareddata.Stories260KBin)
	text := shareddata.Path(t, shareddata.TinyStoriesVal)
	dir := t.TempDir()
	for _, tc := range []struct {
		name     string
		args     []string
		sparsity float64
		ffn      int
		kvHeads  int
		errors   bool // relative output errors reported
	}{
		{"magnitude", []string{"--method", "magnitude", "--sparsity", "0.5"}, 0.5, 172, 4, false},
		{"global", []string{"--method", "magnitude", "--sparsity", "0.6", "--scope", "global", "--calib", text, "--calib-tokens", "512"}, 0.6, 172, 4, true},
		{"sparsegpt 2:4", []string{"--method", "sparsegpt", "--pattern", "2:4", "--calib", text, "--calib-tokens", "1024"}, 0.5, 172, 4, true},
		{"wanda", []string{"--method", "wanda", "--sparsity", "0.3", "--calib", text, "--calib-tokens", "1024", "--seed", "3"}, 0.3, 172, 4, true},
		{"ffn", []string{"--method", "magnitude", "--structured", "ffn", "--sparsity", "0.5"}, 0.5, 86, 4, false},
		{"heads", []string{"--method", "wanda", "--structured", "heads", "--sparsity", "0.5", "--calib", text, "--calib-tokens", "512"}, 0.5, 172, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".gguf")
			args := append([]string{"prune", bin, out, "--json", "-q"}, tc.args...)
			var rep pruneReport
			if err := json.Unmarshal([]byte(mustShrink(t, args...)), &rep); err != nil {
				t.Fatal(err)
			}
			if d := rep.ReachedSparsity - tc.sparsity; d > 0.01 || d < -0.01 {
				t.Errorf("sparsity reached %g, want %g", rep.ReachedSparsity, tc.sparsity)
			}
			if rep.IntermediateSize != tc.ffn || rep.NumKVHeads != tc.kvHeads || len(rep.Matrices) == 0 {
				t.Errorf("shape after: ffn %d, kv heads %d, %d matrices", rep.IntermediateSize, rep.NumKVHeads, len(rep.Matrices))
			}
			for _, mr := range rep.Matrices {
				if (mr.RelOutputError != nil) != tc.errors {
					t.Fatalf("%s: output error %v, want one: %v", mr.Name, mr.RelOutputError, tc.errors)
				}
			}
			if st, err := os.Stat(out); err != nil || st.Size() != rep.FileBytes {
				t.Errorf("output %v, report says %d bytes", err, rep.FileBytes)
			}
			mustShrink(t, "run", out, "-n", "8", "-q")
		})
	}
	// A Hugging Face folder stores the zeros sparsely unless --dense, and
	// either loads back to the same weights.
	sizes := map[string]int64{}
	for _, dense := range []bool{false, true} {
		out := filepath.Join(dir, "hf-sparse")
		args := []string{"prune", bin, out, "--pattern", "2:4", "--json", "-q"}
		if dense {
			out = filepath.Join(dir, "hf-dense")
			args = append(args[:2], append([]string{out}, append(args[3:], "--dense")...)...)
		}
		var rep pruneReport
		if err := json.Unmarshal([]byte(mustShrink(t, args...)), &rep); err != nil {
			t.Fatal(err)
		}
		sizes[out] = rep.FileBytes
		mustShrink(t, "run", out, "-n", "8", "-q")
	}
	if s, d := sizes[filepath.Join(dir, "hf-sparse")], sizes[filepath.Join(dir, "hf-dense")]; !(s < d) {
		t.Errorf("sparse folder %d bytes, dense %d", s, d)
	}
	a := mustShrink(t, "run", filepath.Join(dir, "hf-sparse"), "-n", "16", "-q")
	b := mustShrink(t, "run", filepath.Join(dir, "hf-dense"), "-n", "16", "-q")
	if a != b {
		t.Errorf("sparse and dense folders generate different text:\n%s\n%s", a, b)
	}

	// The text report: a row per layer, then the summary.
	stdout := mustShrink(t, "prune", bin, filepath.Join(dir, "table.gguf"), "--method", "wanda", "--sparsity", "0.5",
		"--calib", text, "--calib-tokens", "512", "-q")
	for _, want := range []string{"layer", "gate", "50.0% 0.", "parameters kept", "tensor data", "mean relative output error"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
}

func TestPruneErrors(t *testing.T) {
	bin := shareddata.Path(t, shareddata.Stories260KBin)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.gguf")
	short := filepath.Join(dir, "short.txt")
	if err := os.WriteFile(short, []byte("Once upon a time, there was a cat."), 0o644); err != nil {
		t.Fatal(err)
	}
	exists := filepath.Join(dir, "exists.gguf")
	if err := os.WriteFile(exists, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{bin, out}, "--sparsity or --pattern is required"},
		{[]string{bin, out, "--sparsity", "1"}, "--sparsity 1: want a fraction in [0, 1)"},
		{[]string{bin, out, "--sparsity", "-0.2"}, "--sparsity -0.2"},
		{[]string{bin, out, "--pattern", "3:2"}, "want 1 <= N <= M"},
		{[]string{bin, out, "--pattern", "0:4"}, "want 1 <= N <= M"},
		{[]string{bin, out, "--pattern", "2/4"}, "want N:M"},
		{[]string{bin, out, "--pattern", "4:8"}, "rows of 172 weights do not split into groups of 8"},
		{[]string{bin, out, "--pattern", "2:4", "--sparsity", "0.5"}, "both given"},
		{[]string{bin, out, "--method", "wanda", "--sparsity", "0.5"}, "needs --calib FILE"},
		{[]string{bin, out, "--method", "sparsegpt", "--pattern", "2:4"}, "needs --calib FILE"},
		{[]string{bin, out, "--method", "wanda", "--sparsity", "0.5", "--calib", short}, "calibration text has"},
		{[]string{bin, out, "--method", "wanda", "--sparsity", "0.5", "--calib", filepath.Join(dir, "none.txt")}, "none.txt"},
		{[]string{bin, out, "--method", "obs", "--sparsity", "0.5"}, `unknown method "obs"`},
		{[]string{bin, out, "--sparsity", "0.5", "--scope", "model"}, `--scope "model"`},
		{[]string{bin, out, "--sparsity", "0.5", "--structured", "rows"}, `unknown structure "rows"`},
		{[]string{bin, out, "--sparsity", "0.5", "--structured", "ffn", "--exclude", "layers.0"}, "do not apply"},
		{[]string{bin, out, "--sparsity", "0.5", "--include", "("}, `--include "("`},
		{[]string{bin, out, "--sparsity", "0.5", "--exclude", "."}, "no tensor is selected"},
		{[]string{bin, out, "--sparsity", "0.5", "--calib-tokens", "0"}, "--calib-tokens 0"},
		{[]string{bin, out, "--sparsity", "0.5", "--threads", "-1"}, "--threads -1"},
		{[]string{bin, exists, "--sparsity", "0.5"}, "destination exists"},
		{[]string{filepath.Join(dir, "missing.bin"), out, "--sparsity", "0.5"}, "missing.bin"},
	} {
		_, stderr, code := shrink(t, append([]string{"prune"}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("prune %s: exit %d, %q; want 2 and %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a failed prune wrote %s", out)
	}
}
