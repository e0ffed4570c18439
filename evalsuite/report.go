package evalsuite

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// ReportSchemaVersion is the schema_version of the comparison report that
// Report marshals to. Keys are only ever added within a version; a key that is
// renamed, removed or changes meaning bumps it.
const ReportSchemaVersion = 1

// Report compares variants of one base model, each measured on the same
// tokens of the same text. Its JSON form (schema_version 1) is the comparison
// report that `shrink compare --format json` prints and `shrink check` reads:
//
//	{
//	  "schema_version": 1,
//	  "base": "stories260K.bin",        // the base model's path
//	  "text": "tinystories_val_first.txt",
//	  "text_tokens": 100000,            // tokens scored from, BOS included
//	  "ctx": 128,
//	  "scored_tokens": 49203,
//	  "decode_tokens": 32,              // tokens per timed decode run
//	  "threads": 2,
//	  "kv_cache": "f16",                // only when not the exact f32 cache
//	  "variants": [ {Variant}, ... ]    // the base first
//	}
//
// Relative figures (x_smaller, perplexity_change_pct, speedup, and KL and
// top-1 agreement, which compare next-token distributions) are against the
// variant with "base": true, which holds 1, 0, 1, 0 and 1 for them.
type Report struct {
	SchemaVersion int    `json:"schema_version"`
	Base          string `json:"base"`
	Text          string `json:"text"`
	TextTokens    int    `json:"text_tokens"`
	Ctx           int    `json:"ctx"`
	ScoredTokens  int    `json:"scored_tokens"`
	DecodeTokens  int    `json:"decode_tokens"`
	Threads       int    `json:"threads"`
	// KVCache is the engines' key/value cache type when it is not f32.
	KVCache string `json:"kv_cache,omitempty"`
	// Dataset and TestExamples replace the text's keys in a comparison of
	// classifiers, which are scored on a data set's test examples.
	Dataset      string    `json:"dataset,omitempty"`
	TestExamples int       `json:"test_examples,omitempty"`
	Variants     []Variant `json:"variants"`
}

// Variant is one row of a comparison: a model built from the base by a recipe,
// the base itself, or a model file given as it is.
type Variant struct {
	Name   string `json:"name"`   // unique within the report, e.g. "q4_0" or "base"
	Recipe string `json:"recipe"` // how it was built from the base; "" for a model file
	Model  string `json:"model,omitempty"`
	Base   bool   `json:"base"` // the variant the relative figures are against

	SizeBytes     int64   `json:"size_bytes"` // as a GGUF file
	Params        int64   `json:"params"`
	BitsPerWeight float64 `json:"bits_per_weight"` // tensor data bits over params
	XSmaller      float64 `json:"x_smaller"`       // base size_bytes / size_bytes

	Perplexity          float64 `json:"perplexity"`
	PerplexityStderr    float64 `json:"perplexity_stderr"`
	PerplexityChangePct float64 `json:"perplexity_change_pct"` // 100·(ppl/base ppl - 1)
	KLMean              float64 `json:"kl_mean"`               // KL(base || variant), nats per token
	KLP99               float64 `json:"kl_p99"`
	Top1Agreement       float64 `json:"top1_agreement"` // fraction 0..1

	// Classifier metrics, present only for classifiers: accuracy as a
	// fraction 0..1, its change from the base in percentage points.
	Accuracy             *float64 `json:"accuracy,omitempty"`
	AccuracyChangePoints *float64 `json:"accuracy_change_points,omitempty"`

	DecodeTokensPerS float64 `json:"decode_tokens_per_s"` // median of the timed runs
	Speedup          float64 `json:"speedup"`             // decode_tokens_per_s / base's
	// Percentiles of one decoded token's time over every timed token, and
	// the seconds from opening the model file to an engine ready to run.
	LatencyP50Ms float64 `json:"latency_p50_ms"`
	LatencyP95Ms float64 `json:"latency_p95_ms"`
	LoadSeconds  float64 `json:"load_seconds"`
	// ExamplesPerS is a classifier's prediction rate, which its speedup
	// compares instead of decode tokens/s.
	ExamplesPerS float64 `json:"examples_per_s,omitempty"`
}

// Classifiers reports whether the report compares classifiers: every
// variant has an accuracy.
func (r *Report) Classifiers() bool {
	for _, v := range r.Variants {
		if v.Accuracy == nil {
			return false
		}
	}
	return len(r.Variants) > 0
}

// BaseVariant returns the variant marked as the base, or nil.
func (r *Report) BaseVariant() *Variant {
	for i := range r.Variants {
		if r.Variants[i].Base {
			return &r.Variants[i]
		}
	}
	return nil
}

// Relate fills in the figures of every variant that are relative to the base
// (x_smaller, perplexity_change_pct, speedup, accuracy_change_points) from
// their absolute ones.
func (r *Report) Relate() {
	b := r.BaseVariant()
	if b == nil {
		return
	}
	for i := range r.Variants {
		v := &r.Variants[i]
		v.XSmaller = ratio(float64(b.SizeBytes), float64(v.SizeBytes))
		v.Speedup = ratio(v.DecodeTokensPerS, b.DecodeTokensPerS)
		if b.DecodeTokensPerS == 0 {
			v.Speedup = ratio(v.ExamplesPerS, b.ExamplesPerS)
		}
		if b.Perplexity > 0 {
			v.PerplexityChangePct = 100 * (v.Perplexity/b.Perplexity - 1)
		}
		if v.Accuracy != nil && b.Accuracy != nil {
			d := 100 * (*v.Accuracy - *b.Accuracy)
			v.AccuracyChangePoints = &d
		}
	}
}

// ratio is a/b, or 0 when b is not positive, so that JSON never sees a NaN.
func ratio(a, b float64) float64 {
	if !(b > 0) {
		return 0
	}
	return a / b
}

// Formats are the names WriteReport takes.
var Formats = []string{"table", "markdown", "json", "csv"}

// WriteReport renders r in one of Formats.
func WriteReport(w io.Writer, r *Report, format string) error {
	switch format {
	case "table":
		return r.WriteTable(w)
	case "markdown", "md":
		return r.WriteMarkdown(w)
	case "json":
		return r.WriteJSON(w)
	case "csv":
		return r.WriteCSV(w)
	}
	return fmt.Errorf("format %q: want %s", format, strings.Join(Formats, ", "))
}

// WriteJSON writes r as indented JSON and a newline.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// csvHeader names the CSV columns: the JSON keys of a variant.
var csvHeader = []string{
	"name", "recipe", "model", "base", "size_bytes", "params", "bits_per_weight", "x_smaller",
	"perplexity", "perplexity_stderr", "perplexity_change_pct", "kl_mean", "kl_p99", "top1_agreement",
	"accuracy", "accuracy_change_points", "decode_tokens_per_s", "speedup",
	"latency_p50_ms", "latency_p95_ms", "load_seconds", "examples_per_s",
}

// WriteCSV writes one row per variant under a header row of JSON keys, with
// numbers at full precision; accuracy cells are empty for language models.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	g := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	opt := func(x *float64) string {
		if x == nil {
			return ""
		}
		return g(*x)
	}
	for _, v := range r.Variants {
		row := []string{
			v.Name, v.Recipe, v.Model, strconv.FormatBool(v.Base),
			strconv.FormatInt(v.SizeBytes, 10), strconv.FormatInt(v.Params, 10), g(v.BitsPerWeight), g(v.XSmaller),
			g(v.Perplexity), g(v.PerplexityStderr), g(v.PerplexityChangePct), g(v.KLMean), g(v.KLP99), g(v.Top1Agreement),
			opt(v.Accuracy), opt(v.AccuracyChangePoints), g(v.DecodeTokensPerS), g(v.Speedup),
			g(v.LatencyP50Ms), g(v.LatencyP95Ms), g(v.LoadSeconds), g(v.ExamplesPerS),
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// Summary is one line saying what the report measured.
func (r *Report) Summary() string {
	if r.Dataset != "" {
		return fmt.Sprintf("base %s; %s test set: %s examples; %s",
			filepath.Base(r.Base), r.Dataset, commas(int64(r.TestExamples)), threadCount(r.Threads))
	}
	kv := ""
	if r.KVCache != "" {
		kv = "; KV cache " + r.KVCache
	}
	return fmt.Sprintf("base %s; %s: %s tokens, ctx %d, %s scored; decode %d tokens; %s%s",
		filepath.Base(r.Base), filepath.Base(r.Text), commas(int64(r.TextTokens)), r.Ctx,
		commas(int64(r.ScoredTokens)), r.DecodeTokens, threadCount(r.Threads), kv)
}

func threadCount(n int) string {
	if n == 1 {
		return "1 thread"
	}
	return fmt.Sprintf("%d threads", n)
}

// WriteTable writes the summary line and a bordered table for a terminal.
func (r *Report) WriteTable(w io.Writer) error {
	headers, rows, right := r.cells()
	if _, err := fmt.Fprintln(w, r.Summary()); err != nil {
		return err
	}
	align := make([]tw.Align, len(headers))
	for i := range align {
		align[i] = tw.AlignLeft
		if right[i] {
			align[i] = tw.AlignRight
		}
	}
	t := tablewriter.NewTable(w,
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithHeaderAlignment(tw.AlignCenter),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: align}),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
	)
	h := make([]any, len(headers))
	for i, s := range headers {
		h[i] = s
	}
	t.Header(h...)
	for _, row := range rows {
		cells := make([]any, len(row))
		for i, s := range row {
			cells[i] = s
		}
		if err := t.Append(cells...); err != nil {
			return err
		}
	}
	return t.Render()
}

// WriteMarkdown writes the summary line and a GitHub pipe table with the
// numeric columns right-aligned.
func (r *Report) WriteMarkdown(w io.Writer) error {
	headers, rows, right := r.cells()
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", mdEscape(r.Summary()))
	line := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			b.WriteString(" " + mdEscape(c) + " |")
		}
		b.WriteString("\n")
	}
	line(headers)
	sep := make([]string, len(headers))
	for i := range sep {
		sep[i] = "---"
		if right[i] {
			sep[i] = "---:"
		}
	}
	b.WriteString("|" + strings.Join(sep, "|") + "|\n")
	for _, row := range rows {
		line(row)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdEscape keeps a cell's pipes from splitting it.
func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// cells formats the report for people: each numeric column with one number
// of decimals, chosen from its values, so that the column lines up. Figures
// relative to the base are blank ("—") on the base's row.
func (r *Report) cells() (headers []string, rows [][]string, right []bool) {
	var anyAcc bool
	var maxSize, maxSpeed, maxLatency, seBase float64
	var kls, p99s []float64
	for _, v := range r.Variants {
		anyAcc = anyAcc || v.Accuracy != nil
		maxSize = math.Max(maxSize, float64(v.SizeBytes))
		maxSpeed = math.Max(maxSpeed, v.DecodeTokensPerS)
		maxLatency = math.Max(maxLatency, v.LatencyP95Ms)
		if v.Base {
			seBase = v.PerplexityStderr
		} else {
			kls, p99s = append(kls, v.KLMean), append(p99s, v.KLP99)
		}
	}
	unit, div := sizeUnit(maxSize)
	sizeDec := 2
	if maxSize/div >= 100 {
		sizeDec = 0
	} else if maxSize/div >= 10 {
		sizeDec = 1
	}
	pplDec := 2
	if seBase > 0 {
		pplDec = min(6, max(2, int(-math.Floor(math.Log10(seBase)))))
	}
	klDec, p99Dec := klDecimals(kls), klDecimals(p99s)
	speed := func(x float64) string {
		if maxSpeed >= 1000 {
			return commas(int64(math.Round(x)))
		}
		return strconv.FormatFloat(x, 'f', 1, 64)
	}

	latency := func(ms float64) string {
		if maxLatency >= 10 {
			return strconv.FormatFloat(ms, 'f', 1, 64)
		}
		return strconv.FormatFloat(ms, 'f', 3, 64)
	}

	dash := func(v *Variant, s string) string {
		if v.Base {
			return "—"
		}
		return s
	}
	cols := []col{
		{"variant", false, func(v *Variant) string {
			if v.Base && v.Name != "base" {
				return v.Name + " (base)"
			}
			return v.Name
		}},
		{"size " + unit, true, func(v *Variant) string {
			return strconv.FormatFloat(float64(v.SizeBytes)/div, 'f', sizeDec, 64)
		}},
		{"smaller", true, func(v *Variant) string { return fmt.Sprintf("%.1fx", v.XSmaller) }},
		{"bits/w", true, func(v *Variant) string { return fmt.Sprintf("%.2f", v.BitsPerWeight) }},
	}
	if r.Classifiers() {
		var maxRate float64
		for _, v := range r.Variants {
			maxRate = math.Max(maxRate, v.ExamplesPerS)
		}
		cols = append(cols,
			col{"accuracy", true, func(v *Variant) string { return fmt.Sprintf("%.2f%%", 100**v.Accuracy) }},
			col{"acc change", true, func(v *Variant) string {
				if v.AccuracyChangePoints == nil {
					return dash(v, "")
				}
				return dash(v, fmt.Sprintf("%+.2f pt", *v.AccuracyChangePoints))
			}},
			col{"agreement", true, func(v *Variant) string { return dash(v, fmt.Sprintf("%.2f%%", 100*v.Top1Agreement)) }},
			col{"examples/s", true, func(v *Variant) string {
				if maxRate >= 1000 {
					return commas(int64(math.Round(v.ExamplesPerS)))
				}
				return strconv.FormatFloat(v.ExamplesPerS, 'f', 1, 64)
			}},
			col{"speedup", true, func(v *Variant) string { return fmt.Sprintf("%.2fx", v.Speedup) }},
		)
		return r.layout(cols)
	}
	cols = append(cols, []col{
		{"PPL", true, func(v *Variant) string {
			return fmt.Sprintf("%.*f ±%.*f", pplDec, v.Perplexity, pplDec, v.PerplexityStderr)
		}},
		{"PPL change", true, func(v *Variant) string { return dash(v, fmt.Sprintf("%+.2f%%", v.PerplexityChangePct)) }},
		{"KL mean", true, func(v *Variant) string { return dash(v, fmt.Sprintf("%.*f", klDec, v.KLMean)) }},
		{"KL p99", true, func(v *Variant) string { return dash(v, fmt.Sprintf("%.*f", p99Dec, v.KLP99)) }},
		{"top-1", true, func(v *Variant) string { return dash(v, fmt.Sprintf("%.2f%%", 100*v.Top1Agreement)) }},
	}...)
	if anyAcc {
		cols = append(cols,
			col{"accuracy", true, func(v *Variant) string {
				if v.Accuracy == nil {
					return ""
				}
				return fmt.Sprintf("%.2f%%", 100**v.Accuracy)
			}},
			col{"acc change", true, func(v *Variant) string {
				if v.AccuracyChangePoints == nil {
					return ""
				}
				return dash(v, fmt.Sprintf("%+.2f pt", *v.AccuracyChangePoints))
			}},
		)
	}
	cols = append(cols,
		col{"decode tok/s", true, func(v *Variant) string { return speed(v.DecodeTokensPerS) }},
		col{"speedup", true, func(v *Variant) string { return fmt.Sprintf("%.2fx", v.Speedup) }},
	)
	if maxLatency > 0 { // reports from before latency was measured have none
		cols = append(cols, col{"p95 ms/tok", true, func(v *Variant) string { return latency(v.LatencyP95Ms) }})
	}
	return r.layout(cols)
}

// col is one column of the people's table.
type col struct {
	head  string
	right bool
	cell  func(v *Variant) string
}

// layout fills the columns in, a row per variant.
func (r *Report) layout(cols []col) (headers []string, rows [][]string, right []bool) {
	for _, c := range cols {
		headers = append(headers, c.head)
		right = append(right, c.right)
	}
	for i := range r.Variants {
		row := make([]string, len(cols))
		for j, c := range cols {
			row[j] = c.cell(&r.Variants[i])
		}
		rows = append(rows, row)
	}
	return headers, rows, right
}

// sizeUnit picks a decimal unit for sizes up to max bytes.
func sizeUnit(max float64) (string, float64) {
	switch {
	case max >= 1e9:
		return "GB", 1e9
	case max >= 1e6:
		return "MB", 1e6
	case max >= 1e3:
		return "kB", 1e3
	}
	return "B", 1
}

// klDecimals shows the smallest positive KL with two significant digits.
func klDecimals(xs []float64) int {
	small := math.Inf(1)
	for _, x := range xs {
		if x > 0 {
			small = math.Min(small, x)
		}
	}
	if math.IsInf(small, 1) {
		return 4
	}
	return min(6, max(3, 1+int(-math.Floor(math.Log10(small)))))
}

// commas formats an integer with thousands separators: 260032 -> "260,032".
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
