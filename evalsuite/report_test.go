package evalsuite

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

// sampleReport is a comparison of three stories260K variants, with figures
// of the size a real run gives.
func sampleReport() *Report {
	r := &Report{
		SchemaVersion: ReportSchemaVersion, Base: "models/stories260K.bin", Text: "text/tinystories_val_first.txt",
		TextTokens: 100000, Ctx: 128, ScoredTokens: 49203, DecodeTokens: 32, Threads: 2,
		Variants: []Variant{
			{Name: "base", Recipe: "f32", Base: true, SizeBytes: 1056032, Params: 260032, BitsPerWeight: 32,
				Perplexity: 4.2305, PerplexityStderr: 0.0348, Top1Agreement: 1, DecodeTokensPerS: 28912, LatencyP50Ms: 0.0339, LatencyP95Ms: 0.0412, LoadSeconds: 0.004},
			{Name: "q8_0", Recipe: "q8_0", SizeBytes: 345440, Params: 260032, BitsPerWeight: 10.15,
				Perplexity: 4.2352, PerplexityStderr: 0.0349, KLMean: 0.000721, KLP99: 0.00431, Top1Agreement: 0.985,
				DecodeTokensPerS: 22098, LatencyP50Ms: 0.0446, LatencyP95Ms: 0.0531, LoadSeconds: 0.003},
			{Name: "q4_0", Recipe: "q4_0", SizeBytes: 259680, Params: 260032, BitsPerWeight: 7.51,
				Perplexity: 4.4691, PerplexityStderr: 0.0372, KLMean: 0.07647, KLP99: 0.5763, Top1Agreement: 0.861,
				DecodeTokensPerS: 22346, LatencyP50Ms: 0.0441, LatencyP95Ms: 0.0507, LoadSeconds: 0.003},
		},
	}
	r.Relate()
	return r
}

func ExampleReport_WriteMarkdown() {
	sampleReport().WriteMarkdown(os.Stdout)
	// Output:
	// base stories260K.bin; tinystories_val_first.txt: 100,000 tokens, ctx 128, 49,203 scored; decode 32 tokens; 2 threads
	//
	// | variant | size MB | smaller | bits/w | PPL | PPL change | KL mean | KL p99 | top-1 | decode tok/s | speedup | p95 ms/tok |
	// |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
	// | base | 1.06 | 1.0x | 32.00 | 4.23 ±0.03 | — | — | — | — | 28,912 | 1.00x | 0.041 |
	// | q8_0 | 0.35 | 3.1x | 10.15 | 4.24 ±0.03 | +0.11% | 0.00072 | 0.0043 | 98.50% | 22,098 | 0.76x | 0.053 |
	// | q4_0 | 0.26 | 4.1x | 7.51 | 4.47 ±0.04 | +5.64% | 0.07647 | 0.5763 | 86.10% | 22,346 | 0.77x | 0.051 |
}

func TestRelate(t *testing.T) {
	r := sampleReport()
	b, q := r.Variants[0], r.Variants[2]
	if b.XSmaller != 1 || b.Speedup != 1 || b.PerplexityChangePct != 0 {
		t.Errorf("base relative to itself: %+v", b)
	}
	if !near(q.XSmaller, 1056032.0/259680, 1e-12) || !near(q.Speedup, 22346.0/28912, 1e-12) ||
		!near(q.PerplexityChangePct, 100*(4.4691/4.2305-1), 1e-12) {
		t.Errorf("q4_0 relative to the base: %+v", q)
	}
	if r.BaseVariant() != &r.Variants[0] {
		t.Errorf("BaseVariant is not the base")
	}

	// Accuracy changes in points; a zero base gives zeros, never NaN.
	acc := func(x float64) *float64 { return &x }
	r = &Report{Variants: []Variant{{Name: "a", Base: true, Accuracy: acc(0.9)}, {Name: "b", Accuracy: acc(0.875)}}}
	r.Relate()
	if got := *r.Variants[1].AccuracyChangePoints; !near(got, -2.5, 1e-12) {
		t.Errorf("accuracy change %g points, want -2.5", got)
	}
	if v := r.Variants[1]; v.XSmaller != 0 || v.Speedup != 0 || v.PerplexityChangePct != 0 {
		t.Errorf("ratios to zero: %+v", v)
	}
	if _, err := json.Marshal(r); err != nil {
		t.Error(err)
	}
	(&Report{}).Relate() // no base: nothing to do
}

// TestReportJSON checks the schema's keys and that the JSON reads back the same.
func TestReportJSON(t *testing.T) {
	r := sampleReport()
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, r) {
		t.Errorf("JSON round trip differs:\n%+v\n%+v", back, *r)
	}
	var raw map[string]any
	json.Unmarshal(buf.Bytes(), &raw)
	for _, k := range []string{"schema_version", "base", "text", "text_tokens", "ctx", "scored_tokens", "decode_tokens", "threads", "variants"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("no top-level key %q", k)
		}
	}
	v := raw["variants"].([]any)[1].(map[string]any)
	for _, k := range []string{"name", "recipe", "base", "size_bytes", "params", "bits_per_weight", "x_smaller", "perplexity",
		"perplexity_stderr", "perplexity_change_pct", "kl_mean", "kl_p99", "top1_agreement", "decode_tokens_per_s", "speedup"} {
		if _, ok := v[k]; !ok {
			t.Errorf("no variant key %q", k)
		}
	}
	for _, k := range []string{"accuracy", "accuracy_change_points", "model"} {
		if _, ok := v[k]; ok {
			t.Errorf("a language model's variant has %q", k)
		}
	}
	if !strings.Contains(buf.String(), "\n  \"variants\": [\n    {\n") {
		t.Errorf("not indented:\n%s", buf.String())
	}
}

func TestReportCSV(t *testing.T) {
	r := sampleReport()
	acc := 0.5
	r.Variants[2].Accuracy = &acc
	var buf bytes.Buffer
	if err := WriteReport(&buf, r, "csv"); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || !reflect.DeepEqual(rows[0], csvHeader) {
		t.Fatalf("CSV rows: %q", rows)
	}
	col := func(name string) int {
		for i, h := range rows[0] {
			if h == name {
				return i
			}
		}
		t.Fatalf("no column %q", name)
		return -1
	}
	if rows[1][col("base")] != "true" || rows[2][col("base")] != "false" || rows[2][col("kl_mean")] != "0.000721" ||
		rows[3][col("size_bytes")] != "259680" || rows[3][col("accuracy")] != "0.5" || rows[2][col("accuracy")] != "" {
		t.Errorf("CSV cells: %q", rows)
	}
}

func TestReportTable(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteReport(&buf, sampleReport(), "table"); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1+3+3+1 { // summary, top border, header, rule, 3 rows, bottom border
		t.Errorf("%d lines:\n%s", len(lines), out)
	}
	for _, want := range []string{"│ base ", "4.23 ±0.03", "+5.64%", "4.1x", "0.77x", "28,912", "86.10%"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// Numbers are right-aligned: each column ends at the same place.
	rows := lines[4:7]
	for _, cell := range []string{"32.00 │", "10.15 │", " 7.51 │"} {
		found := false
		for _, r := range rows {
			found = found || strings.Contains(r, cell)
		}
		if !found {
			t.Errorf("bits/w not right-aligned (%q):\n%s", cell, out)
		}
	}
	if strings.Contains(lines[0], "KV cache") {
		t.Errorf("the f32 cache is the default, not worth a mention: %s", lines[0])
	}
	r := sampleReport()
	r.KVCache = "f16"
	if s := r.Summary(); !strings.HasSuffix(s, "; 2 threads; KV cache f16") {
		t.Errorf("summary with a half-precision cache: %s", s)
	}
	if err := WriteReport(&buf, sampleReport(), "yaml"); err == nil || !strings.Contains(err.Error(), "table, markdown, json, csv") {
		t.Errorf("unknown format: %v", err)
	}
}

// TestReportAccuracyColumns shows classifier columns only when there are
// accuracies, and escapes pipes in markdown cells.
func TestReportAccuracyColumns(t *testing.T) {
	r := sampleReport()
	a, b := 0.91, 0.885
	r.Variants[0].Accuracy, r.Variants[1].Accuracy = &a, &b
	r.Variants[1].Name = "a|b"
	r.Relate()
	var buf bytes.Buffer
	if err := r.WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"| accuracy | acc change |", "| 91.00% | — |", "| 88.50% | -2.50 pt |", `| a\|b |`} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	buf.Reset()
	sampleReport().WriteMarkdown(&buf)
	if strings.Contains(buf.String(), "accuracy") {
		t.Errorf("accuracy columns without accuracies:\n%s", buf.String())
	}
}

func TestDecimals(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		want int
	}{
		{nil, 4}, {[]float64{0}, 4}, {[]float64{0.5}, 3}, {[]float64{0.0123, 0.5}, 3},
		{[]float64{0.00012, 0.3}, 5}, {[]float64{1e-9}, 6},
	} {
		if got := klDecimals(c.xs); got != c.want {
			t.Errorf("klDecimals(%v) = %d, want %d", c.xs, got, c.want)
		}
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", -1234567: "-1,234,567"} {
		if got := commas(n); got != want {
			t.Errorf("commas(%d) = %q, want %q", n, got, want)
		}
	}
}
