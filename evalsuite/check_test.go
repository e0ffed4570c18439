package evalsuite

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// evalJSON is a shrink eval --json report (with --ref when kl is not nil).
func evalJSON(model string, ppl float64, kl *float64) []byte {
	m := map[string]any{"schema_version": 1, "model": model, "text": "t.txt", "ctx": 128, "scored_tokens": 100,
		"perplexity": ppl, "perplexity_stderr": 0.01, "threads": 2, "seconds": 1.5}
	if kl != nil {
		m["ref_model"], m["kl_mean"], m["kl_p99"], m["top1_agreement"] = "ref.gguf", *kl, 3**kl, 0.9
	}
	b, _ := json.Marshal(m)
	return b
}

func compareJSON(r *Report) []byte {
	var buf bytes.Buffer
	r.WriteJSON(&buf)
	return buf.Bytes()
}

func mustParse(t *testing.T, file string, data []byte) *Document {
	t.Helper()
	d, err := ParseDocument(file, data)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func f64(x float64) *float64 { return &x }

// TestCheckLimits applies each limit to a comparison against a baseline
// comparison of the same variants: q4_0 has perplexity 4.4691 now and 4.4
// then, 259,680 bytes, 22,346 tok/s now and 22,000 then, KL 0.07647.
func TestCheckLimits(t *testing.T) {
	now := mustParse(t, "now.json", compareJSON(sampleReport()))
	then := sampleReport()
	then.Variants[1].Perplexity = 4.2352 // q8_0 unchanged
	then.Variants[2].Perplexity = 4.4
	then.Variants[2].DecodeTokensPerS = 22000
	old := mustParse(t, "then.json", compareJSON(then))

	for _, c := range []struct {
		name   string
		limits Limits
		check  string
		ok     []bool // q8_0, q4_0
		value  float64
	}{
		{"ppl holds", Limits{MaxPerplexityIncreasePct: f64(2)}, "max_perplexity_increase_pct", []bool{true, true}, 100 * (4.4691/4.4 - 1)},
		{"ppl regressed", Limits{MaxPerplexityIncreasePct: f64(1)}, "max_perplexity_increase_pct", []bool{true, false}, 100 * (4.4691/4.4 - 1)},
		{"ppl zero", Limits{MaxPerplexityIncreasePct: f64(0)}, "max_perplexity_increase_pct", []bool{true, false}, 100 * (4.4691/4.4 - 1)},
		{"size holds", Limits{MaxSizeMB: f64(0.35)}, "max_size_mb", []bool{true, true}, 0.25968},
		{"size regressed", Limits{MaxSizeMB: f64(0.3)}, "max_size_mb", []bool{false, true}, 0.25968},
		{"speedup holds", Limits{MinSpeedup: f64(1.0)}, "min_speedup", []bool{true, true}, 22346.0 / 22000},
		{"speedup regressed", Limits{MinSpeedup: f64(1.05)}, "min_speedup", []bool{false, false}, 22346.0 / 22000},
		{"kl holds", Limits{MaxKL: f64(0.1)}, "max_kl", []bool{true, true}, 0.07647},
		{"kl regressed", Limits{MaxKL: f64(0.01)}, "max_kl", []bool{true, false}, 0.07647},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs, err := Check(now, old, c.limits, Selection{})
			if err != nil {
				t.Fatal(err)
			}
			if len(fs) != 2 || fs[0].Variant != "q8_0" || fs[1].Variant != "q4_0" {
				t.Fatalf("findings %+v; want q8_0 and q4_0, not the base", fs)
			}
			for i, f := range fs {
				if f.Check != c.check || f.OK != c.ok[i] {
					t.Errorf("%s: %s ok=%v, want %s ok=%v (%+v)", f.Variant, f.Check, f.OK, c.check, c.ok[i], f)
				}
			}
			if f := fs[1]; !near(f.Value, c.value, 1e-12) || f.Baseline == nil {
				t.Errorf("q4_0 value %g, want %g; baseline %v", f.Value, c.value, f.Baseline)
			}
			if Failed(fs) != countFalse(c.ok) {
				t.Errorf("Failed = %d", Failed(fs))
			}
		})
	}

	// Every limit at once, one variant, against the baseline's base.
	all := Limits{MaxPerplexityIncreasePct: f64(10), MaxSizeMB: f64(1), MinSpeedup: f64(0.5), MaxKL: f64(0.1)}
	fs, err := Check(now, old, all, Selection{Variant: "q4_0", BaselineVariant: "base"})
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 4 || Failed(fs) != 0 || *fs[0].Baseline != 4.2305 || !near(fs[0].Value, 100*(4.4691/4.2305-1), 1e-12) {
		t.Errorf("q4_0 against the base: %+v", fs)
	}
}

func countFalse(bs []bool) int {
	n := 0
	for _, b := range bs {
		if !b {
			n++
		}
	}
	return n
}

func TestCheckAccuracy(t *testing.T) {
	r := sampleReport()
	acc := []float64{0.9, 0.897, 0.88}
	for i := range r.Variants {
		r.Variants[i].Accuracy = &acc[i]
	}
	r.Relate()
	d := mustParse(t, "acc.json", compareJSON(r))
	for _, c := range []struct {
		drop float64
		ok   []bool
	}{{0.5, []bool{true, false}}, {2.0, []bool{true, true}}, {0.25, []bool{false, false}}} {
		fs, err := Check(d, d, Limits{MaxAccuracyDropPoints: f64(c.drop)}, Selection{BaselineVariant: "base"})
		if err != nil {
			t.Fatal(err)
		}
		if fs[0].OK != c.ok[0] || fs[1].OK != c.ok[1] || !near(fs[1].Value, 2, 1e-9) || fs[1].Check != "max_accuracy_drop_points" {
			t.Errorf("drop %g: %+v", c.drop, fs)
		}
	}
}

// TestCheckEvalReports holds eval reports against each other: a q4_0 model
// against an f32 baseline.
func TestCheckEvalReports(t *testing.T) {
	f32 := mustParse(t, "f32.json", evalJSON("f32.gguf", 4.97, nil))
	q4 := mustParse(t, "q4.json", evalJSON("q4.gguf", 5.25, f64(0.08)))
	fs, err := Check(q4, f32, Limits{MaxPerplexityIncreasePct: f64(1), MaxKL: f64(0.1)}, Selection{})
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 2 || fs[0].OK || !fs[1].OK || fs[0].Variant != "q4.gguf" || fs[1].Baseline != nil {
		t.Errorf("q4 against f32: %+v", fs)
	}
	// A comparison checked against an eval report: every variant against it.
	cmp := mustParse(t, "cmp.json", compareJSON(sampleReport()))
	fs, err = Check(cmp, f32, Limits{MaxPerplexityIncreasePct: f64(0)}, Selection{})
	if err != nil || len(fs) != 2 || !fs[0].OK || !fs[1].OK || *fs[0].Baseline != 4.97 {
		t.Errorf("comparison against an eval report: %v %+v", err, fs)
	}
}

// TestCheckErrors covers the unusable inputs: each names the file, and the
// key where one is missing.
func TestCheckErrors(t *testing.T) {
	cmp := mustParse(t, "cmp.json", compareJSON(sampleReport()))
	f32 := mustParse(t, "f32.json", evalJSON("f32.gguf", 4.97, nil))
	only := sampleReport()
	only.Variants = only.Variants[:1]
	baseOnly := mustParse(t, "base-only.json", compareJSON(only))
	zero := mustParse(t, "zero.json", evalJSON("z.gguf", 0, nil))
	ppl := Limits{MaxPerplexityIncreasePct: f64(1)}
	for _, c := range []struct {
		name         string
		report, base *Document
		limits       Limits
		sel          Selection
		want         string
	}{
		{"no limits", cmp, cmp, Limits{}, Selection{}, "no limits"},
		{"eval has no size", f32, f32, Limits{MaxSizeMB: f64(1)}, Selection{}, `f32.json: has no "size_bytes", which the max_size_mb limit needs`},
		{"eval has no speed", f32, f32, Limits{MinSpeedup: f64(1)}, Selection{}, `f32.json: has no "decode_tokens_per_s"`},
		{"baseline has no speed", cmp, f32, Limits{MinSpeedup: f64(1)}, Selection{}, `f32.json: has no "decode_tokens_per_s", which the min_speedup limit needs`},
		{"eval without --ref has no KL", f32, f32, Limits{MaxKL: f64(1)}, Selection{}, `f32.json: has no "kl_mean"`},
		{"no accuracy", cmp, cmp, Limits{MaxAccuracyDropPoints: f64(1)}, Selection{}, `cmp.json: variant "q8_0" has no "accuracy"`},
		{"unknown variant", cmp, cmp, ppl, Selection{Variant: "q2_k"}, `cmp.json: no variant "q2_k" (it has "base", "q8_0", "q4_0")`},
		{"unknown baseline variant", cmp, cmp, ppl, Selection{BaselineVariant: "f16"}, `cmp.json: no variant "f16" to compare with`},
		{"variant of an eval report", f32, cmp, ppl, Selection{Variant: "q4_0"}, "f32.json: an eval report has no variants"},
		{"baseline variant of an eval report", cmp, f32, ppl, Selection{BaselineVariant: "base"}, "f32.json: an eval report has no variants"},
		{"only a base", baseOnly, cmp, ppl, Selection{}, "base-only.json: the comparison has no variant but its base"},
		{"zero baseline perplexity", cmp, zero, ppl, Selection{}, `zero.json: "perplexity" is 0`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Check(c.report, c.base, c.limits, c.sel)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestParseDocument(t *testing.T) {
	d := mustParse(t, "cmp.json", compareJSON(sampleReport()))
	if !d.Comparison || len(d.Models) != 3 || !d.Models[0].Base || d.Models[2].Name != "q4_0" ||
		d.Models[2].Metrics["size_bytes"] != 259680 || d.Models[2].Metrics["kl_mean"] != 0.07647 {
		t.Errorf("comparison: %+v", d)
	}
	if _, ok := d.Models[0].Metrics["accuracy"]; ok {
		t.Errorf("a metric the report lacks was read")
	}
	e := mustParse(t, "e.json", evalJSON("m.gguf", 5, nil))
	if e.Comparison || len(e.Models) != 1 || e.Models[0].Name != "m.gguf" || e.Models[0].Metrics["perplexity"] != 5 {
		t.Errorf("eval: %+v", e)
	}
	for _, c := range []struct{ name, data, want string }{
		{"not JSON", "perplexity: 5", "x.json: not a JSON object"},
		{"an array", "[1, 2]", "x.json: not a JSON object"},
		{"no version", `{"perplexity": 5}`, "x.json: no schema_version"},
		{"bench output", `{"decode_tokens_per_s": 5, "threads": 2}`, "x.json: no schema_version"},
		{"future version", `{"schema_version": 2, "perplexity": 5}`, "x.json: schema_version 2 is not one this shrink reads (it reads 1)"},
		{"string version", `{"schema_version": "1"}`, `x.json: schema_version "1" is not an integer`},
		{"string metric", `{"schema_version": 1, "perplexity": "low"}`, `x.json: "perplexity" is "low", not a number`},
		{"variants not array", `{"schema_version": 1, "variants": {}}`, "x.json: variants is not an array"},
		{"no variants", `{"schema_version": 1, "variants": []}`, "x.json: the comparison has no variants"},
		{"nameless", `{"schema_version": 1, "variants": [{"perplexity": 5}]}`, "x.json: variants[0] has no name"},
		{"twins", `{"schema_version": 1, "variants": [{"name": "a"}, {"name": "a"}]}`, `x.json: two variants are named "a"`},
		{"bad variant metric", `{"schema_version": 1, "variants": [{"name": "a", "kl_mean": [1]}]}`, `x.json: variants[0] ("a"): "kl_mean" is [1], not a number`},
	} {
		if _, err := ParseDocument("x.json", []byte(c.data)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
	// null is a missing key, not an error.
	n := mustParse(t, "n.json", []byte(`{"schema_version": 1, "perplexity": 5, "kl_mean": null}`))
	if _, ok := n.Models[0].Metrics["kl_mean"]; ok {
		t.Errorf("null read as a number")
	}
}
