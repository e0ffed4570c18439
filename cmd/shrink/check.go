package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shrinkml/shrink/evalsuite"
)

// checkReport is check's --json output.
type checkReport struct {
	SchemaVersion int                 `json:"schema_version"`
	Report        string              `json:"report"`
	Baseline      string              `json:"baseline"`
	OK            bool                `json:"ok"`
	Failed        int                 `json:"failed"`
	Findings      []evalsuite.Finding `json:"findings"`
}

// regression is the error of a check that found one: exit status 1.
func regression(format string, a ...any) error {
	return &exitError{code: 1, err: fmt.Errorf(format, a...)}
}

func newCheckCmd(g *globalFlags) *cobra.Command {
	var (
		baselinePath, pplIncrease string
		sel                       evalsuite.Selection
		limits                    evalsuite.Limits
		accDrop, sizeMB           float64
		minSpeedup, maxKL         float64
	)
	cmd := &cobra.Command{
		Use:   "check REPORT.json --baseline BASELINE.json [limits]",
		Short: "Fail when a report regressed from a baseline beyond set limits (for CI)",
		Long: `check holds the models measured in REPORT.json against those in
BASELINE.json and exits 0 when every limit holds, 1 when one does not (with a
table of every limit, held or not), and 2 on unusable input: an unreadable
file, bad JSON, an unknown schema_version, no limit given, or a metric a limit
needs missing from a report (the message names the file and key).

Both files are either the output of shrink eval --json (one model) or a
comparison report from shrink compare --format json. In a comparison report
every variant but the base is checked, or only --variant NAME; each is held
against the baseline's variant of the same name, or against
--baseline-variant NAME (say, "base" to hold every variant against the base
of the baseline comparison). An eval report as the baseline holds every
checked model against its one model.

Limits (at least one):
  --max-ppl-increase P   perplexity at most P percent above the baseline's
                         ("1%" or "1")
  --max-accuracy-drop D  accuracy at most D percentage points below the
                         baseline's (classifiers)
  --max-size MB          size_bytes at most MB megabytes (10^6 bytes)
  --min-speedup X        decode_tokens_per_s at least X times the baseline's
  --max-kl X             kl_mean (KL from the model's reference) at most X
eval reports have no size or speed; their kl_mean is there with eval --ref.

--json prints {schema_version, report, baseline, ok, failed, findings}, each
finding with variant, check, metric, baseline, current, value (what the limit
bounds), limit and ok; the exit status is the same.`,
		Example: `  shrink eval model-q4_0.gguf --text wiki.test.raw --ref model-f16.gguf --json > now.json
  shrink check now.json --baseline release.json --max-ppl-increase 1% --max-kl 0.05
  shrink compare model.gguf --recipe q8_0,q4_0 --text wiki.test.raw --format json > cmp.json
  shrink check cmp.json --baseline cmp-main.json --max-ppl-increase 0.5% --min-speedup 0.9 --max-size 5
  shrink check cmp.json --baseline cmp.json --baseline-variant base --variant q4_0 --max-ppl-increase 15%`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if baselinePath == "" {
				return fmt.Errorf("--baseline is required: the report to compare with")
			}
			fl := cmd.Flags()
			set := func(name string, v float64) *float64 {
				if !fl.Changed(name) {
					return nil
				}
				return &v
			}
			if fl.Changed("max-ppl-increase") {
				p, err := parsePercent(pplIncrease)
				if err != nil {
					return fmt.Errorf("--max-ppl-increase: %w", err)
				}
				limits.MaxPerplexityIncreasePct = &p
			}
			limits.MaxAccuracyDropPoints = set("max-accuracy-drop", accDrop)
			limits.MaxSizeMB = set("max-size", sizeMB)
			limits.MinSpeedup = set("min-speedup", minSpeedup)
			limits.MaxKL = set("max-kl", maxKL)
			if limits.Empty() {
				return fmt.Errorf("no limits given: set at least one of --max-ppl-increase, --max-accuracy-drop, --max-size, --min-speedup, --max-kl")
			}
			for _, l := range []struct {
				name string
				v    *float64
			}{{"--max-size", limits.MaxSizeMB}, {"--min-speedup", limits.MinSpeedup}, {"--max-kl", limits.MaxKL}} {
				if l.v != nil && !(*l.v >= 0) {
					return fmt.Errorf("%s %g: must not be negative", l.name, *l.v)
				}
			}
			report, err := readDocument(args[0])
			if err != nil {
				return err
			}
			baseline, err := readDocument(baselinePath)
			if err != nil {
				return err
			}
			findings, err := evalsuite.Check(report, baseline, limits, sel)
			if err != nil {
				return err
			}
			failed := evalsuite.Failed(findings)
			if g.json {
				err = writeJSON(cmd.OutOrStdout(), checkReport{SchemaVersion: 1, Report: args[0], Baseline: baselinePath,
					OK: failed == 0, Failed: failed, Findings: findings})
			} else {
				err = writeCheckTable(cmd, findings)
			}
			if err != nil {
				return err
			}
			if failed > 0 {
				return regression("%s: %d of %d limits did not hold against %s", args[0], failed, len(findings), baselinePath)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&baselinePath, "baseline", "", "report to compare with (required)")
	f.StringVar(&pplIncrease, "max-ppl-increase", "", `largest perplexity increase over the baseline, in percent ("1%")`)
	f.Float64Var(&accDrop, "max-accuracy-drop", 0, "largest accuracy drop below the baseline, in percentage points")
	f.Float64Var(&sizeMB, "max-size", 0, "largest size, in MB (10^6 bytes)")
	f.Float64Var(&minSpeedup, "min-speedup", 0, "smallest decode tokens/s as a multiple of the baseline's")
	f.Float64Var(&maxKL, "max-kl", 0, "largest mean KL divergence from the reference (kl_mean)")
	f.StringVar(&sel.Variant, "variant", "", "check only this variant of a comparison report")
	f.StringVar(&sel.BaselineVariant, "baseline-variant", "", "hold every checked model against this variant of a baseline comparison")
	f.BoolVar(&g.json, "json", false, "print the findings as JSON")
	return cmd
}

// readDocument reads a report file for check.
func readDocument(path string) (*evalsuite.Document, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return evalsuite.ParseDocument(path, data)
}

// parsePercent reads "1%", "1" or "0.5 %" as a percentage.
func parsePercent(s string) (float64, error) {
	t := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%"))
	p, err := strconv.ParseFloat(t, 64)
	if err != nil || !(p >= 0) || p > 1e6 {
		return 0, fmt.Errorf("%q: want a percentage such as 1%% or 0.5", s)
	}
	return p, nil
}

// checkLimitText shows each check's limit and value the way people say them.
var checkLimitText = map[string]struct {
	what         string
	limit, value func(float64) string
	metric       func(float64) string
}{
	"max_perplexity_increase_pct": {"perplexity increase",
		func(x float64) string { return fmt.Sprintf("≤ %+.2f%%", x) },
		func(x float64) string { return fmt.Sprintf("%+.2f%%", x) },
		func(x float64) string { return fmt.Sprintf("%.4f", x) }},
	"max_accuracy_drop_points": {"accuracy drop",
		func(x float64) string { return fmt.Sprintf("≤ %.2f pt", x) },
		func(x float64) string { return fmt.Sprintf("%.2f pt", x) },
		func(x float64) string { return fmt.Sprintf("%.2f%%", 100*x) }},
	"max_size_mb": {"size",
		func(x float64) string { return fmt.Sprintf("≤ %.3f MB", x) },
		func(x float64) string { return fmt.Sprintf("%.3f MB", x) },
		func(x float64) string { return humanBytes(int64(x)) }},
	"min_speedup": {"decode speedup",
		func(x float64) string { return fmt.Sprintf("≥ %.2fx", x) },
		func(x float64) string { return fmt.Sprintf("%.2fx", x) },
		func(x float64) string { return fmt.Sprintf("%.1f tok/s", x) }},
	"max_kl": {"mean KL",
		func(x float64) string { return fmt.Sprintf("≤ %.6f", x) },
		func(x float64) string { return fmt.Sprintf("%.6f", x) },
		func(x float64) string { return fmt.Sprintf("%.6f", x) }},
}

func writeCheckTable(cmd *cobra.Command, fs []evalsuite.Finding) error {
	rows := make([][]string, 0, len(fs))
	for _, f := range fs {
		t := checkLimitText[f.Check]
		base := "—"
		if f.Baseline != nil {
			base = t.metric(*f.Baseline)
		}
		result := "ok"
		if !f.OK {
			result = "REGRESSED"
		}
		name := f.Variant
		if strings.ContainsRune(name, os.PathSeparator) {
			name = filepath.Base(name) // an eval report's model path
		}
		rows = append(rows, []string{name, t.what, base, t.metric(f.Current), t.value(f.Value), t.limit(f.Limit), result})
	}
	return writeTable(cmd.OutOrStdout(), []string{"model", "check", "baseline", "current", "value", "limit", "result"}, rows, 2, 3, 4, 5)
}
