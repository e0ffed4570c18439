package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/internal/shareddata"
)

// writeReports writes JSON reports for check into a temporary folder.
func writeReports(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const (
	checkBaseline = `{"schema_version": 1, "model": "f32.gguf", "perplexity": 5.00, "scored_tokens": 100}`
	checkQ8       = `{"schema_version": 1, "model": "q8.gguf", "perplexity": 5.02, "kl_mean": 0.001, "scored_tokens": 100}`
	checkQ4       = `{"schema_version": 1, "model": "q4.gguf", "perplexity": 5.60, "kl_mean": 0.09, "scored_tokens": 100}`
	checkCompare  = `{"schema_version": 1, "variants": [
		{"name": "base", "base": true, "perplexity": 5.0, "size_bytes": 1000000, "decode_tokens_per_s": 100, "kl_mean": 0},
		{"name": "q8_0", "perplexity": 5.02, "size_bytes": 350000, "decode_tokens_per_s": 120, "kl_mean": 0.001},
		{"name": "q4_0", "perplexity": 5.6, "size_bytes": 260000, "decode_tokens_per_s": 90, "kl_mean": 0.09}]}`
)

// TestCheckExitStatus runs check as CI would, for every limit, and checks
// the exit status: 0 when every limit holds, 1 on a regression, 2 on
// unusable input.
func TestCheckExitStatus(t *testing.T) {
	dir := writeReports(t, map[string]string{
		"f32.json": checkBaseline, "q8.json": checkQ8, "q4.json": checkQ4, "cmp.json": checkCompare,
		"v2.json":     `{"schema_version": 2, "perplexity": 5}`,
		"bench.json":  `{"decode_tokens_per_s": 5}`,
		"bad.json":    `{"schema_version": 1, "perplexity": `,
		"string.json": `{"schema_version": 1, "perplexity": "5"}`,
	})
	p := func(name string) string { return filepath.Join(dir, name) }
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string // in stderr, or in stdout when code is 0 or 1
	}{
		// Perplexity, on eval reports.
		{"ppl holds", []string{p("q8.json"), "--baseline", p("f32.json"), "--max-ppl-increase", "1%"}, 0, "+0.40%"},
		{"ppl regressed", []string{p("q4.json"), "--baseline", p("f32.json"), "--max-ppl-increase", "1%"}, 1, "REGRESSED"},
		{"ppl without %", []string{p("q4.json"), "--baseline", p("f32.json"), "--max-ppl-increase", "12"}, 0, "≤ +12.00%"},
		{"ppl on the limit", []string{p("q4.json"), "--baseline", p("f32.json"), "--max-ppl-increase", "12%"}, 0, "+12.00%"},
		// KL, on eval reports made with --ref.
		{"kl holds", []string{p("q8.json"), "--baseline", p("f32.json"), "--max-kl", "0.01"}, 0, "0.001000"},
		{"kl regressed", []string{p("q4.json"), "--baseline", p("f32.json"), "--max-kl", "0.05"}, 1, "REGRESSED"},
		// Size, speed and everything at once, on a comparison held against its own base.
		{"size holds", []string{p("cmp.json"), "--baseline", p("cmp.json"), "--baseline-variant", "base", "--max-size", "0.4"}, 0, "350.00 kB"},
		{"size regressed", []string{p("cmp.json"), "--baseline", p("cmp.json"), "--baseline-variant", "base", "--max-size", "0.3"}, 1, "≤ 0.300 MB"},
		{"speedup holds", []string{p("cmp.json"), "--baseline", p("cmp.json"), "--baseline-variant", "base", "--variant", "q8_0", "--min-speedup", "1.1"}, 0, "1.20x"},
		{"speedup regressed", []string{p("cmp.json"), "--baseline", p("cmp.json"), "--baseline-variant", "base", "--min-speedup", "1.0"}, 1, "0.90x"},
		{"all limits", []string{p("cmp.json"), "--baseline", p("cmp.json"), "--baseline-variant", "base", "--max-ppl-increase", "15%",
			"--max-size", "1", "--min-speedup", "0.5", "--max-kl", "0.1"}, 0, "decode speedup"},
		// A comparison against itself, variant by variant: nothing changed.
		{"same variants", []string{p("cmp.json"), "--baseline", p("cmp.json"), "--max-ppl-increase", "0", "--min-speedup", "1"}, 0, "+0.00%"},

		// Unusable input.
		{"no baseline", []string{p("q8.json"), "--max-kl", "1"}, 2, "--baseline is required"},
		{"no limits", []string{p("q8.json"), "--baseline", p("f32.json")}, 2, "no limits given"},
		{"bad percent", []string{p("q8.json"), "--baseline", p("f32.json"), "--max-ppl-increase", "one"}, 2, `--max-ppl-increase: "one": want a percentage`},
		{"negative", []string{p("q8.json"), "--baseline", p("f32.json"), "--max-kl", "-1"}, 2, "--max-kl -1: must not be negative"},
		{"missing file", []string{p("nope.json"), "--baseline", p("f32.json"), "--max-kl", "1"}, 2, "nope.json: no such file"},
		{"missing baseline", []string{p("q8.json"), "--baseline", p("gone.json"), "--max-kl", "1"}, 2, "gone.json"},
		{"bad JSON", []string{p("bad.json"), "--baseline", p("f32.json"), "--max-kl", "1"}, 2, "bad.json: not a JSON object"},
		{"wrong schema", []string{p("v2.json"), "--baseline", p("f32.json"), "--max-kl", "1"}, 2, "v2.json: schema_version 2 is not one this shrink reads"},
		{"no schema", []string{p("q8.json"), "--baseline", p("bench.json"), "--max-kl", "1"}, 2, "bench.json: no schema_version"},
		{"not a number", []string{p("string.json"), "--baseline", p("f32.json"), "--max-kl", "1"}, 2, `string.json: "perplexity" is "5", not a number`},
		{"missing metric", []string{p("q8.json"), "--baseline", p("f32.json"), "--max-size", "1"}, 2, `q8.json: has no "size_bytes", which the max_size_mb limit needs`},
		{"missing baseline metric", []string{p("cmp.json"), "--baseline", p("f32.json"), "--min-speedup", "1"}, 2, `f32.json: has no "decode_tokens_per_s"`},
		{"eval without --ref", []string{p("f32.json"), "--baseline", p("f32.json"), "--max-kl", "1"}, 2, `f32.json: has no "kl_mean"`},
		{"no accuracy", []string{p("cmp.json"), "--baseline", p("cmp.json"), "--max-accuracy-drop", "1"}, 2, `variant "q8_0" has no "accuracy"`},
		{"unknown variant", []string{p("cmp.json"), "--baseline", p("cmp.json"), "--variant", "q2_k", "--max-kl", "1"}, 2, `no variant "q2_k"`},
		{"unmatched baseline", []string{p("cmp.json"), "--baseline", p("cmp.json"), "--baseline-variant", "f16", "--max-kl", "1"}, 2, `no variant "f16" to compare with`},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := shrink(t, append([]string{"check"}, c.args...)...)
			if code != c.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr: %s", code, c.code, out, errOut)
			}
			where := errOut
			if c.code < 2 {
				where = out
			}
			if !strings.Contains(where, c.msg) {
				t.Errorf("output lacks %q\nstdout:\n%s\nstderr: %s", c.msg, out, errOut)
			}
			if c.code == 2 && out != "" {
				t.Errorf("unusable input printed a table:\n%s", out)
			}
			if c.code == 1 && !strings.Contains(errOut, "did not hold against") {
				t.Errorf("a regression without a message: %s", errOut)
			}
		})
	}
}

// TestCheckTableAndJSON shows what a failed check prints: every limit, held
// or not, as a table or as JSON, with exit status 1 either way.
func TestCheckTableAndJSON(t *testing.T) {
	dir := writeReports(t, map[string]string{"cmp.json": checkCompare})
	cmp := filepath.Join(dir, "cmp.json")
	args := []string{"check", cmp, "--baseline", cmp, "--baseline-variant", "base", "--max-ppl-increase", "1%", "--max-kl", "0.05"}
	out, errOut, code := shrink(t, args...)
	if code != 1 || strings.TrimSpace(errOut) != "shrink: "+cmp+": 2 of 4 limits did not hold against "+cmp {
		t.Errorf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4+4 {
		t.Fatalf("table:\n%s", out)
	}
	for i, want := range [][]string{
		{"model", "check", "baseline", "current", "value", "limit", "result"},
		{"q8_0", "perplexity increase", "5.0000", "5.0200", "+0.40%", "≤ +1.00%", "ok"},
		{"q8_0", "mean KL", "0.000000", "0.001000", "0.001000", "≤ 0.050000", "ok"},
		{"q4_0", "perplexity increase", "5.0000", "5.6000", "+12.00%", "≤ +1.00%", "REGRESSED"},
		{"q4_0", "mean KL", "0.000000", "0.090000", "0.090000", "≤ 0.050000", "REGRESSED"},
	} {
		line := lines[[]int{1, 3, 4, 5, 6}[i]]
		var cells []string
		for _, c := range strings.Split(line, "│") {
			if c = strings.TrimSpace(c); c != "" {
				cells = append(cells, c)
			}
		}
		if strings.Join(cells, "|") != strings.Join(want, "|") {
			t.Errorf("row %d: %q, want %q", i, cells, want)
		}
	}

	out, _, code = shrink(t, append(args, "--json")...)
	var rep checkReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 {
		t.Fatalf("exit %d, %v:\n%s", code, err, out)
	}
	if rep.SchemaVersion != 1 || rep.OK || rep.Failed != 2 || len(rep.Findings) != 4 || rep.Report != cmp {
		t.Errorf("--json: %+v", rep)
	}
	f := rep.Findings[2]
	if f.Variant != "q4_0" || f.Check != "max_perplexity_increase_pct" || f.Metric != "perplexity" || *f.Baseline != 5 ||
		f.Current != 5.6 || f.Limit != 1 || f.OK {
		t.Errorf("finding: %+v", f)
	}
}

// TestCheckRealModels is the CI use: eval a 4-bit model and the f32 model it
// came from, and check the 4-bit one against a tight perplexity limit.
func TestCheckRealModels(t *testing.T) {
	bin := shareddata.Path(t, shareddata.Stories260KBin)
	text := shareddata.Path(t, shareddata.TinyStoriesVal)
	dir := t.TempDir()
	q4 := filepath.Join(dir, "q4_0.gguf")
	mustShrink(t, "quantize", bin, q4, "--scheme", "q4_0", "--pure", "--quiet")
	eval := func(name string, args ...string) string {
		p := filepath.Join(dir, name)
		out := mustShrink(t, append([]string{"eval", "--text", text, "--ctx", "128", "--max-tokens", "6400", "--threads", "1", "--json", "--quiet"}, args...)...)
		if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := eval("f32.json", bin)
	now := eval("q4.json", q4, "--ref", bin)

	out, errOut, code := shrink(t, "check", now, "--baseline", base, "--max-ppl-increase", "1%", "--max-kl", "1")
	if code != 1 || !strings.Contains(errOut, "1 of 2 limits did not hold") {
		t.Errorf("q4_0 pure against f32: exit %d, %s\n%s", code, errOut, out)
	}
	if !strings.Contains(out, "q4_0.gguf") || !strings.Contains(out, "REGRESSED") || !strings.Contains(out, "≤ +1.00%") {
		t.Errorf("table:\n%s", out)
	}
	mustShrink(t, "check", now, "--baseline", base, "--max-ppl-increase", "50%")
}
