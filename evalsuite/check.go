package evalsuite

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// Limits are the regressions a check tolerates; a nil limit is not checked.
type Limits struct {
	// MaxPerplexityIncreasePct bounds 100·(perplexity / baseline's - 1).
	MaxPerplexityIncreasePct *float64
	// MaxAccuracyDropPoints bounds 100·(baseline's accuracy - accuracy).
	MaxAccuracyDropPoints *float64
	// MaxSizeMB bounds size_bytes / 1e6.
	MaxSizeMB *float64
	// MinSpeedup bounds decode_tokens_per_s / baseline's from below.
	MinSpeedup *float64
	// MaxKL bounds kl_mean, the mean KL divergence from the model's reference.
	MaxKL *float64
}

// Empty reports whether no limit is set.
func (l Limits) Empty() bool {
	return l.MaxPerplexityIncreasePct == nil && l.MaxAccuracyDropPoints == nil && l.MaxSizeMB == nil &&
		l.MinSpeedup == nil && l.MaxKL == nil
}

// Measured is one model's metrics as a report states them, by JSON key.
type Measured struct {
	Name    string             // the variant's name, or the model path of an eval report
	Base    bool               // the base of a comparison report
	Metrics map[string]float64 // only the keys the report has, with numbers
}

// Document is a report that can be checked or checked against: the output of
// `shrink eval --json` (one model) or a comparison report (its variants).
type Document struct {
	File       string // for messages
	Comparison bool
	Models     []Measured
}

// ParseDocument reads an eval report or a comparison report of a schema
// version this package knows. file names it in errors.
func ParseDocument(file string, data []byte) (*Document, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("%s: not a JSON object: %w", file, err)
	}
	raw, ok := top["schema_version"]
	if !ok {
		return nil, fmt.Errorf("%s: no schema_version: not a report of shrink eval --json or shrink compare --format json", file)
	}
	var version int
	if err := json.Unmarshal(raw, &version); err != nil {
		return nil, fmt.Errorf("%s: schema_version %s is not an integer", file, raw)
	}
	if version != ReportSchemaVersion {
		return nil, fmt.Errorf("%s: schema_version %d is not one this shrink reads (it reads %d)", file, version, ReportSchemaVersion)
	}
	doc := &Document{File: file}
	vraw, ok := top["variants"]
	if !ok {
		m, err := metrics(file, "", data)
		if err != nil {
			return nil, err
		}
		var name string
		if s, ok := top["model"]; ok {
			json.Unmarshal(s, &name)
		}
		doc.Models = []Measured{{Name: name, Metrics: m}}
		return doc, nil
	}
	doc.Comparison = true
	var vs []json.RawMessage
	if err := json.Unmarshal(vraw, &vs); err != nil {
		return nil, fmt.Errorf("%s: variants is not an array: %w", file, err)
	}
	seen := map[string]bool{}
	for i, v := range vs {
		var head struct {
			Name *string `json:"name"`
			Base bool    `json:"base"`
		}
		if err := json.Unmarshal(v, &head); err != nil || head.Name == nil {
			return nil, fmt.Errorf("%s: variants[%d] has no name", file, i)
		}
		if seen[*head.Name] {
			return nil, fmt.Errorf("%s: two variants are named %q", file, *head.Name)
		}
		seen[*head.Name] = true
		m, err := metrics(file, fmt.Sprintf("variants[%d] (%q): ", i, *head.Name), v)
		if err != nil {
			return nil, err
		}
		doc.Models = append(doc.Models, Measured{Name: *head.Name, Base: head.Base, Metrics: m})
	}
	if len(doc.Models) == 0 {
		return nil, fmt.Errorf("%s: the comparison has no variants", file)
	}
	return doc, nil
}

// metrics returns the numeric keys of a JSON object; a key holding anything
// but a number or null is an error.
func metrics(file, where string, data []byte) (map[string]float64, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("%s: %snot a JSON object: %w", file, where, err)
	}
	out := map[string]float64{}
	for _, key := range metricKeys {
		raw, ok := obj[key]
		if !ok || bytes.Equal(raw, []byte("null")) {
			continue
		}
		var x float64
		if err := json.Unmarshal(raw, &x); err != nil {
			return nil, fmt.Errorf("%s: %s%q is %s, not a number", file, where, key, raw)
		}
		out[key] = x
	}
	return out, nil
}

// metricKeys are the keys a check may need.
var metricKeys = []string{"perplexity", "accuracy", "size_bytes", "decode_tokens_per_s", "kl_mean"}

// Selection picks the models of the two documents to check against each
// other.
type Selection struct {
	// Variant, when set, checks only the report's variant of that name;
	// otherwise every variant of a comparison but its base is checked.
	Variant string
	// BaselineVariant, when set, is the baseline comparison's variant that
	// every checked model is held against; otherwise each is held against
	// the baseline's variant of the same name.
	BaselineVariant string
}

// Finding is one limit applied to one model: the metric in the baseline and
// now, the quantity the limit bounds (Value) and whether it held.
type Finding struct {
	Variant  string   `json:"variant"`
	Check    string   `json:"check"`  // max_perplexity_increase_pct, max_accuracy_drop_points, max_size_mb, min_speedup, max_kl
	Metric   string   `json:"metric"` // the report key it reads
	Baseline *float64 `json:"baseline"`
	Current  float64  `json:"current"`
	Value    float64  `json:"value"`
	Limit    float64  `json:"limit"`
	OK       bool     `json:"ok"`
}

// Failed counts the findings whose limit did not hold.
func Failed(fs []Finding) int {
	n := 0
	for _, f := range fs {
		if !f.OK {
			n++
		}
	}
	return n
}

// limitSpec describes one limit: the metric it reads, whether it needs the
// baseline's value, how the bounded value follows from the two, and which
// way it must lie.
type limitSpec struct {
	check, metric string
	limit         *float64
	needsBaseline bool
	value         func(cur, base float64) float64
	atLeast       bool
}

func (l Limits) specs() []limitSpec {
	return []limitSpec{
		{"max_perplexity_increase_pct", "perplexity", l.MaxPerplexityIncreasePct, true,
			func(cur, base float64) float64 { return 100 * (cur/base - 1) }, false},
		{"max_accuracy_drop_points", "accuracy", l.MaxAccuracyDropPoints, true,
			func(cur, base float64) float64 { return 100 * (base - cur) }, false},
		{"max_size_mb", "size_bytes", l.MaxSizeMB, false,
			func(cur, _ float64) float64 { return cur / 1e6 }, false},
		{"min_speedup", "decode_tokens_per_s", l.MinSpeedup, true,
			func(cur, base float64) float64 { return cur / base }, true},
		{"max_kl", "kl_mean", l.MaxKL, false,
			func(cur, _ float64) float64 { return cur }, false},
	}
}

// Check holds each selected model of report against its baseline model under
// every set limit. The error is for unusable input: no limit, a variant that
// is not there, or a metric a limit needs that a report lacks (naming the
// file and key); regressions are findings that are not OK.
func Check(report, baseline *Document, limits Limits, sel Selection) ([]Finding, error) {
	if limits.Empty() {
		return nil, fmt.Errorf("no limits to check")
	}
	var subjects []Measured
	for _, m := range report.Models {
		if sel.Variant != "" && m.Name != sel.Variant || sel.Variant == "" && m.Base {
			continue
		}
		subjects = append(subjects, m)
	}
	if len(subjects) == 0 {
		if sel.Variant != "" {
			if !report.Comparison {
				return nil, fmt.Errorf("%s: an eval report has no variants to pick %q from", report.File, sel.Variant)
			}
			return nil, fmt.Errorf("%s: no variant %q (it has %s)", report.File, sel.Variant, names(report))
		}
		return nil, fmt.Errorf("%s: the comparison has no variant but its base", report.File)
	}
	if sel.BaselineVariant != "" && !baseline.Comparison {
		return nil, fmt.Errorf("%s: an eval report has no variants to pick %q from", baseline.File, sel.BaselineVariant)
	}

	var out []Finding
	for _, m := range subjects {
		ref, err := baselineFor(baseline, m.Name, sel.BaselineVariant)
		if err != nil {
			return nil, err
		}
		for _, s := range limits.specs() {
			if s.limit == nil {
				continue
			}
			cur, ok := m.Metrics[s.metric]
			if !ok {
				return nil, fmt.Errorf("%s: %shas no %q, which the %s limit needs", report.File, which(report, m), s.metric, s.check)
			}
			f := Finding{Variant: m.Name, Check: s.check, Metric: s.metric, Current: cur, Limit: *s.limit}
			if b, ok := ref.Metrics[s.metric]; ok {
				f.Baseline = &b
			} else if s.needsBaseline {
				return nil, fmt.Errorf("%s: %shas no %q, which the %s limit needs", baseline.File, which(baseline, *ref), s.metric, s.check)
			}
			var base float64
			if f.Baseline != nil {
				base = *f.Baseline
			}
			if s.needsBaseline && s.metric != "accuracy" && !(base > 0) {
				return nil, fmt.Errorf("%s: %s%q is %g; a ratio to it means nothing", baseline.File, which(baseline, *ref), s.metric, base)
			}
			f.Value = s.value(cur, base)
			// A value on the limit holds, whatever the last bit of its arithmetic.
			slack := 1e-9 * math.Max(1, math.Abs(f.Limit))
			if s.atLeast {
				f.OK = f.Value >= f.Limit-slack
			} else {
				f.OK = f.Value <= f.Limit+slack
			}
			if math.IsNaN(f.Value) {
				f.OK = false
			}
			out = append(out, f)
		}
	}
	return out, nil
}

// baselineFor finds the baseline model to hold the model named name against.
func baselineFor(b *Document, name, want string) (*Measured, error) {
	if !b.Comparison {
		return &b.Models[0], nil
	}
	if want == "" {
		want = name
	}
	for i := range b.Models {
		if b.Models[i].Name == want {
			return &b.Models[i], nil
		}
	}
	return nil, fmt.Errorf("%s: no variant %q to compare with (it has %s; pick one with the baseline variant option)", b.File, want, names(b))
}

// which names a model of a comparison in messages; "" for an eval report.
func which(d *Document, m Measured) string {
	if !d.Comparison {
		return ""
	}
	return fmt.Sprintf("variant %q ", m.Name)
}

func names(d *Document) string {
	var s []string
	for _, m := range d.Models {
		s = append(s, fmt.Sprintf("%q", m.Name))
	}
	return strings.Join(s, ", ")
}
