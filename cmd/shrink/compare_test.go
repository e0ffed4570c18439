package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/evalsuite"
	"github.com/shrinkml/shrink/internal/shareddata"
	"github.com/shrinkml/shrink/model"
)

func TestParseRecipe(t *testing.T) {
	for _, c := range []struct {
		in    string
		text  string
		steps []recipeStep
	}{
		{"f32", "f32", []recipeStep{{kind: stepAsIs, text: "f32"}}},
		{"Q4_0", "q4_0", []recipeStep{{kind: stepQuant, text: "q4_0", scheme: "q4_0", method: "rtn"}}},
		{" q8_0:rtn ", "q8_0:rtn", []recipeStep{{kind: stepQuant, text: "q8_0:rtn", scheme: "q8_0", method: "rtn"}}},
		{"int4:gptq", "int4:gptq", []recipeStep{{kind: stepQuant, text: "int4:gptq", scheme: "int4", method: "gptq"}}},
		{"prune:wanda:0.5", "prune:wanda:0.5", []recipeStep{{kind: stepPrune, text: "prune:wanda:0.5", method: "wanda", sparsity: 0.5}}},
		{"prune:2:4", "prune:2:4", []recipeStep{{kind: stepPrune, text: "prune:2:4", method: "wanda", n: 2, m: 4}}},
		{"prune:SparseGPT:1:4", "prune:sparsegpt:1:4", []recipeStep{{kind: stepPrune, text: "prune:sparsegpt:1:4", method: "sparsegpt", n: 1, m: 4}}},
		{"prune:2:4+q8_0", "prune:2:4+q8_0", []recipeStep{
			{kind: stepPrune, text: "prune:2:4", method: "wanda", n: 2, m: 4},
			{kind: stepQuant, text: "q8_0", scheme: "q8_0", method: "rtn"}}},
		{"prune:magnitude:0.25+q4_0:gptq", "prune:magnitude:0.25+q4_0:gptq", []recipeStep{
			{kind: stepPrune, text: "prune:magnitude:0.25", method: "magnitude", sparsity: 0.25},
			{kind: stepQuant, text: "q4_0:gptq", scheme: "q4_0", method: "gptq"}}},
	} {
		r, err := parseRecipe(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if r.text != c.text || fmt.Sprint(r.steps) != fmt.Sprint(c.steps) {
			t.Errorf("%q: %q %+v, want %q %+v", c.in, r.text, r.steps, c.text, c.steps)
		}
	}
	for in, want := range map[string]string{
		"":                    "is empty",
		"q3_k":                `unknown step "q3_k": want f32, a scheme (q8_0, q4_0, q4_1, int8, int4)`,
		"q4_0:hqq":            `unknown quantization method "hqq": want rtn, gptq, awq`,
		"q4_0:rtn:x":          "want SCHEME or SCHEME:METHOD",
		"prune:wanda":         "want prune:METHOD:SPARSITY (prune:wanda:0.5) or prune:[METHOD:]N:M (prune:2:4)",
		"prune:wanda:2:4:8":   "want prune:METHOD:SPARSITY",
		"prune:foo:2:4":       `unknown pruning method "foo"`,
		"prune:wanda:2:x":     "N:M wants whole numbers",
		"prune:foo:0.5":       `unknown pruning method "foo": want magnitude, wanda, sparsegpt, or N:M`,
		"prune:wanda:1.5":     `sparsity "1.5": want the fraction of weights to remove, between 0 and 1`,
		"prune:wanda:0":       "between 0 and 1",
		"prune:4:2":           "N:M wants whole numbers with 0 < N < M",
		"prune:2:x":           "N:M wants whole numbers",
		"prune:0:4":           "0 < N < M",
		"q8_0+":               "an empty step",
		"+q8_0":               "an empty step",
		"f32+q8_0":            "f32 is the base as it is and stands alone",
		"q8_0+q4_0":           "quantizes twice",
		"q8_0+prune:2:4":      "prune before quantizing, as in prune:2:4+q8_0",
		"prune:2:4+prune:1:4": "prunes twice",
	} {
		_, err := parseRecipe(in)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), fmt.Sprintf("recipe %q", in)) {
			t.Errorf("%q: got %v, want an error naming the recipe and containing %q", in, err, want)
		}
	}
}

// TestBuildVariant builds every kind of step and names what the library lacks.
func TestBuildVariant(t *testing.T) {
	base, err := model.Synthesize(model.Presets["stories260k"], 1)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	windows := make([][]int, 4)
	for i := range windows {
		windows[i] = make([]int, 64)
		for j := range windows[i] {
			windows[i][j] = r.IntN(base.Config.VocabSize)
		}
	}
	calls := 0
	b := variantBuild{threads: 2, calib: func() ([][]int, error) { calls++; return windows, nil }}
	noCalib := variantBuild{threads: 2, calib: func() ([][]int, error) { return nil, fmt.Errorf("no calibration here") }}
	const q = "model.layers.0.self_attn.q_proj.weight"
	values := func(m *model.Model) []float32 {
		t.Helper()
		v, err := m.Tensor(q).Float32()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		recipe string
		dtype  model.DType
		calib  bool
		check  func(v []float32) string
	}{
		{"f32", model.F32, false, nil},
		{"q8_0", model.Q8_0, false, nil},
		{"q4_0:rtn", model.Q4_0, false, nil},
		{"q4_1", model.Q4_1, false, nil},
		{"q4_0:gptq", model.Q4_0, true, nil},
		{"q4_0:awq", model.Q4_0, true, nil},
		{"int8", model.Int8Ch, false, nil},
		{"int4:gptq", model.Int4G64, true, nil}, // rows of 64 take groups of 64
		{"prune:magnitude:0.5", model.F32, false, wantZeros(0.5)},
		{"prune:wanda:0.5", model.F32, true, wantZeros(0.5)},
		{"prune:sparsegpt:0.25", model.F32, true, wantZeros(0.25)},
		{"prune:2:4", model.F32, true, nOfM(2, 4)},
		{"prune:2:4+q8_0", model.Q8_0, true, nOfM(2, 4)},
		{"prune:magnitude:1:4+q4_0", model.Q4_0, false, nOfM(3, 4)},
	} {
		rc, err := parseRecipe(c.recipe)
		if err != nil {
			t.Fatal(err)
		}
		build := noCalib
		if c.calib {
			build = b
		}
		before := calls
		m, err := buildVariant(base, rc, build)
		if err != nil {
			t.Errorf("%s: %v", c.recipe, err)
			continue
		}
		if (c.recipe == "f32") != (m == base) {
			t.Errorf("%s: the base as it is: %v", c.recipe, m == base)
		}
		if got := m.Tensor(q).DType; got != c.dtype {
			t.Errorf("%s: q_proj is %s, want %s", c.recipe, got, c.dtype)
		}
		if c.calib && calls == before {
			t.Errorf("%s: did not calibrate", c.recipe)
		}
		if c.check != nil {
			if msg := c.check(values(m)); msg != "" {
				t.Errorf("%s: q_proj %s", c.recipe, msg)
			}
		}
	}
	// GPTQ is fitted to the calibration inputs, so it differs from RTN.
	rtn, _ := buildVariant(base, recipe{steps: []recipeStep{{kind: stepQuant, scheme: "q4_0", method: "rtn"}}}, b)
	gptq, _ := buildVariant(base, recipe{steps: []recipeStep{{kind: stepQuant, scheme: "q4_0", method: "gptq"}}}, b)
	if bytes.Equal(rtn.Tensor(q).Data, gptq.Tensor(q).Data) {
		t.Error("q4_0:gptq wrote the same q_proj as q4_0:rtn")
	}
	for s, want := range map[string]string{
		"int4:gptq":              `recipe "int4:gptq": no calibration here`,
		"prune:2:4+q4_0:gptq":    `recipe "prune:2:4+q4_0:gptq": GPTQ after pruning would refill the pruned weights; quantize a pruned model with rtn`,
		"prune:wanda:0.5+q8_0":   `recipe "prune:wanda:0.5+q8_0": no calibration here`,
		"prune:sparsegpt:2:4":    `recipe "prune:sparsegpt:2:4": no calibration here`,
		"q4_1:gptq":              `recipe "q4_1:gptq": no calibration here`,
		"prune:magnitude:0.9999": "",
	} {
		rc, err := parseRecipe(s)
		if err != nil {
			t.Fatal(err)
		}
		build := noCalib
		if s == "prune:2:4+q4_0:gptq" {
			build = b
		}
		_, err = buildVariant(base, rc, build)
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", s, err)
			}
		} else if err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %q", s, err, want)
		}
	}
}

// wantZeros checks that a share s of the values are zero, to the nearest row.
func wantZeros(s float64) func(v []float32) string {
	return func(v []float32) string {
		zeros := 0
		for _, x := range v {
			if x == 0 {
				zeros++
			}
		}
		if got := float64(zeros) / float64(len(v)); math.Abs(got-s) > 0.01 {
			return fmt.Sprintf("has sparsity %.4f, want %g", got, s)
		}
		return ""
	}
}

// nOfM checks that every group of m consecutive values holds at least n zeros.
func nOfM(n, m int) func(v []float32) string {
	return func(v []float32) string {
		for g := 0; g+m <= len(v); g += m {
			zeros := 0
			for _, x := range v[g : g+m] {
				if x == 0 {
					zeros++
				}
			}
			if zeros < n {
				return fmt.Sprintf("group at %d has %d zeros, want at least %d", g, zeros, n)
			}
		}
		return ""
	}
}

// synthCompareInputs writes a small random model and a text for it.
func synthCompareInputs(t *testing.T) (dir, mdl, text string) {
	t.Helper()
	dir = t.TempDir()
	mdl = filepath.Join(dir, "tiny.gguf")
	mustShrink(t, "synth", mdl, "--dim", "64", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--ffn", "96",
		"--vocab", "300", "--ctx", "128", "--tied", "--seed", "3")
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"the", "cat", "sat", "on", "a", "mat", "and", "looked", "at", "birds", "in", "sky"}
	var b strings.Builder
	for i := 0; i < 800; i++ {
		b.WriteString(words[r.IntN(len(words))] + " ")
	}
	text = filepath.Join(dir, "text.txt")
	if err := os.WriteFile(text, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, mdl, text
}

// TestCompareSynth runs compare on a random model, in every format.
func TestCompareSynth(t *testing.T) {
	dir, mdl, text := synthCompareInputs(t)
	other := filepath.Join(dir, "other.gguf")
	mustShrink(t, "quantize", mdl, other, "--scheme", "q8_0", "--pure")
	args := []string{"compare", mdl, "--text", text, "--ctx", "32", "--max-tokens", "1000", "--threads", "1",
		"--recipe", "q8_0,q4_0", "--recipe", "f32", "--models", other, "--quiet"}

	plot := filepath.Join(dir, "plot.svg")
	out := mustShrink(t, append(args, "--json", "--plot", plot)...)
	var rep evalsuite.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.SchemaVersion != 1 || rep.Base != mdl || rep.Ctx != 32 || rep.TextTokens != 1000 || rep.ScoredTokens != 31*15 ||
		rep.Threads != 1 || rep.DecodeTokens != decodeTokens || len(rep.Variants) != 4 {
		t.Fatalf("report: %+v", rep)
	}
	names := []string{"base", "q8_0", "q4_0", "other"}
	for i, v := range rep.Variants {
		if v.Name != names[i] || v.Base != (i == 0) || v.SizeBytes <= 0 || v.Params <= 0 || !(v.Perplexity > 1) ||
			!(v.DecodeTokensPerS > 0) || !(v.Speedup > 0) || !(v.XSmaller > 0) {
			t.Errorf("variant %d: %+v", i, v)
		}
	}
	b, q8, q4, o := rep.Variants[0], rep.Variants[1], rep.Variants[2], rep.Variants[3]
	if st, _ := os.Stat(mdl); b.SizeBytes != st.Size() || b.XSmaller != 1 || b.KLMean != 0 || b.Top1Agreement != 1 || b.Recipe != "f32" {
		t.Errorf("base: %+v, file %d bytes", b, st.Size())
	}
	if st, _ := os.Stat(other); o.SizeBytes != st.Size() || o.Model != other || o.Recipe != "" {
		t.Errorf("--models variant: %+v", o)
	}
	if !(q4.SizeBytes < q8.SizeBytes && q8.SizeBytes < b.SizeBytes) || !(q4.KLMean > q8.KLMean && q8.KLMean > 0) ||
		!(q4.BitsPerWeight < q8.BitsPerWeight && q8.BitsPerWeight < 32) {
		t.Errorf("sizes %d %d %d, KL %g %g", b.SizeBytes, q8.SizeBytes, q4.SizeBytes, q8.KLMean, q4.KLMean)
	}
	svg, err := os.ReadFile(plot)
	if err != nil || !bytes.Contains(svg, []byte(">q4_0<")) {
		t.Errorf("plot: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".plot.svg.tmp-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}

	// Calibrated recipes take their windows from the text after the scored
	// tokens, or from --calib, and are deterministic.
	cal := []string{"compare", mdl, "--text", text, "--ctx", "32", "--max-tokens", "1000", "--threads", "1",
		"--recipe", "q4_0:gptq,prune:wanda:0.5,prune:2:4+q8_0", "--calib-tokens", "512", "--calib-ctx", "32", "--json", "--quiet"}
	var r1, r2, r3 evalsuite.Report
	for out, rep := range map[string]*evalsuite.Report{
		mustShrink(t, cal...):                          &r1,
		mustShrink(t, cal...):                          &r2,
		mustShrink(t, append(cal, "--calib", text)...): &r3,
	} {
		if err := json.Unmarshal([]byte(out), rep); err != nil {
			t.Fatal(err)
		}
	}
	for i, v := range r1.Variants {
		if v.Name != []string{"base", "q4_0:gptq", "prune:wanda:0.5", "prune:2:4+q8_0"}[i] || !(v.Perplexity > 1) {
			t.Errorf("calibrated variant %d: %+v", i, v)
		}
		if i > 0 && (v.Perplexity != r2.Variants[i].Perplexity || v.Perplexity == r3.Variants[i].Perplexity) {
			t.Errorf("%s: perplexity %v, again %v, with --calib %v", v.Name, v.Perplexity, r2.Variants[i].Perplexity, r3.Variants[i].Perplexity)
		}
	}

	// The other formats, on fewer variants and tokens.
	small := []string{"compare", mdl, "--text", text, "--ctx", "32", "--max-tokens", "300", "--threads", "1", "--recipe", "q4_0", "--quiet"}
	md := mustShrink(t, append(small, "--format", "markdown")...)
	if !strings.Contains(md, "| variant | size kB |") || !strings.Contains(md, "|---|---:|") || strings.Count(md, "\n| ") != 3 {
		t.Errorf("markdown:\n%s", md)
	}
	rows, err := csv.NewReader(strings.NewReader(mustShrink(t, append(small, "--format", "csv")...))).ReadAll()
	if err != nil || len(rows) != 3 || rows[0][0] != "name" || rows[2][0] != "q4_0" {
		t.Errorf("csv: %v %q", err, rows)
	}
	// The plot is replaced only with --force; PNG by its extension.
	_, errOut, code := shrink(t, append(small, "--plot", plot)...)
	if code != 2 || !strings.Contains(errOut, plot+": destination exists (use --force") {
		t.Errorf("existing plot: exit %d, %s", code, errOut)
	}
	png := filepath.Join(dir, "plot.png")
	table := mustShrink(t, append(small, "--plot", png)...)
	if !strings.Contains(table, "base tiny.gguf; text.txt: 300 tokens, ctx 32") || !strings.Contains(table, "│ q4_0 ") {
		t.Errorf("table:\n%s", table)
	}
	if data, _ := os.ReadFile(png); !bytes.HasPrefix(data, []byte("\x89PNG")) {
		t.Errorf("--plot .png did not write a PNG")
	}
	mustShrink(t, append(small, "--plot", png, "--force")...)
}

// TestCompareBadInput checks that unusable input exits 2 with a message
// saying what is wrong, before any work.
func TestCompareBadInput(t *testing.T) {
	dir, mdl, text := synthCompareInputs(t)
	exists := filepath.Join(dir, "exists.svg")
	os.WriteFile(exists, nil, 0o644)
	short := filepath.Join(dir, "short.txt")
	os.WriteFile(short, []byte("the cat"), 0o644)
	for _, c := range []struct {
		name string
		args []string
		msg  string
	}{
		{"no text", []string{"compare", mdl, "--recipe", "q8_0"}, "--text is required"},
		{"no recipes", []string{"compare", mdl, "--text", text}, "give at least one --recipe or --models"},
		{"bad recipe", []string{"compare", mdl, "--text", text, "--recipe", "q3_k"}, `recipe "q3_k": unknown step`},
		{"twice", []string{"compare", mdl, "--text", text, "--recipe", "q8_0,Q8_0"}, `recipe "Q8_0" is given twice`},
		{"no calibration", []string{"compare", mdl, "--text", text, "--recipe", "prune:2:4+q8_0", "--quiet"},
			`recipe "prune:2:4+q8_0": no calibration text: --calib is not given and every one of the 4790 tokens of --text is scored (--max-tokens 100000)`},
		{"short calibration", []string{"compare", mdl, "--text", text, "--recipe", "q4_0:gptq", "--max-tokens", "200", "--calib-ctx", "32", "--quiet"},
			`recipe "q4_0:gptq": calibrating on the 4590 tokens of ` + text + ` after the 200 scored (--max-tokens): calibration text has 4590 tokens; 512 windows of 32 need at least 15872; give --calib FILE, or lower --max-tokens or --calib-tokens`},
		{"missing calibration", []string{"compare", mdl, "--text", text, "--recipe", "prune:wanda:0.5", "--calib", filepath.Join(dir, "nope-calib.txt"), "--quiet"}, "nope-calib.txt"},
		{"calib tokens", []string{"compare", mdl, "--text", text, "--recipe", "q8_0", "--calib-tokens", "0"}, "--calib-tokens 0 must be positive"},
		{"format", []string{"compare", mdl, "--text", text, "--recipe", "q8_0", "--format", "yaml"}, `--format "yaml": want table, markdown, json, csv`},
		{"json and format", []string{"compare", mdl, "--text", text, "--recipe", "q8_0", "--format", "csv", "--json"}, "--json and --format csv disagree"},
		{"plot kind", []string{"compare", mdl, "--text", text, "--recipe", "q8_0", "--plot", "x.pdf"}, "x.pdf: plot files are .svg or .png"},
		{"plot exists", []string{"compare", mdl, "--text", text, "--recipe", "q8_0", "--plot", exists}, "destination exists"},
		{"missing text", []string{"compare", mdl, "--text", filepath.Join(dir, "nope.txt"), "--recipe", "q8_0"}, "nope.txt"},
		{"missing model", []string{"compare", filepath.Join(dir, "nope.gguf"), "--text", text, "--recipe", "q8_0"}, "nope.gguf"},
		{"missing --models", []string{"compare", mdl, "--text", text, "--models", filepath.Join(dir, "gone.gguf"), "--quiet"}, "gone.gguf"},
		{"short text", []string{"compare", mdl, "--text", short, "--recipe", "q8_0", "--quiet"}, "shorter than one chunk"},
		{"threads", []string{"compare", mdl, "--text", text, "--recipe", "q8_0", "--threads", "-1"}, "must not be negative"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := shrink(t, c.args...)
			if code != 2 || !strings.Contains(errOut, c.msg) {
				t.Errorf("exit %d, want 2 and a message containing %q: %s", code, c.msg, errOut)
			}
			if out != "" {
				t.Errorf("stdout: %s", out)
			}
		})
	}
	if data, _ := os.ReadFile(exists); len(data) != 0 {
		t.Errorf("the existing plot was overwritten")
	}
}

// TestCompareReal compares RTN schemes of stories260K on TinyStories, then
// gates the result with check as a CI job would.
func TestCompareReal(t *testing.T) {
	bin := shareddata.Path(t, shareddata.Stories260KBin)
	text := shareddata.Path(t, shareddata.TinyStoriesVal)
	f32 := shareddata.Path(t, "gguf/stories260K-F32.gguf")
	dir := t.TempDir()
	// One thread: the numbers do not depend on it, and a loaded CI machine
	// slows a multi-threaded run of so small a model down the most.
	out := mustShrink(t, "compare", bin, "--text", text, "--ctx", "128", "--max-tokens", "6400", "--quiet", "--threads", "1",
		"--recipe", "q8_0,q4_0", "--models", f32, "--format", "json")
	cmp := filepath.Join(dir, "cmp.json")
	if err := os.WriteFile(cmp, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	var rep evalsuite.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Variants) != 4 || rep.ScoredTokens != 50*63 {
		t.Fatalf("%d variants, %d scored tokens", len(rep.Variants), rep.ScoredTokens)
	}
	b, q8, q4, g := rep.Variants[0], rep.Variants[1], rep.Variants[2], rep.Variants[3]
	// stories260K's perplexity at ctx 128 is about 5 on TinyStories.
	if !(b.Perplexity > 3.5 && b.Perplexity < 6) || b.Params != 260032 || b.BitsPerWeight != 32 {
		t.Errorf("base: %+v", b)
	}
	// Q8_0 costs almost nothing; 4-bit costs a few percent.
	if !(q8.PerplexityChangePct > -0.5 && q8.PerplexityChangePct < 0.5) || !(q8.Top1Agreement > 0.95) || !(q8.XSmaller > 2.5) {
		t.Errorf("q8_0: %+v", q8)
	}
	if !(q4.PerplexityChangePct > 1 && q4.PerplexityChangePct < 15) || !(q4.KLMean > 5*q8.KLMean) || !(q4.XSmaller > 3.5) {
		t.Errorf("q4_0: %+v", q4)
	}
	// llama.cpp's F32 conversion is the same model: identical numbers.
	if g.Name != "stories260K-F32" || g.Perplexity != b.Perplexity || g.KLMean != 0 || g.Top1Agreement != 1 {
		t.Errorf("the F32 GGUF: %+v", g)
	}

	// The CI gate: every variant against the base, with a tight limit on
	// perplexity and size, regresses (exit 1) for q4_0's perplexity and the
	// F32 file's size only.
	out, errOut, code := shrink(t, "check", cmp, "--baseline", cmp, "--baseline-variant", "base", "--max-ppl-increase", "1%", "--max-size", "0.5")
	if code != 1 || !strings.Contains(errOut, "2 of 6 limits did not hold") {
		t.Errorf("check: exit %d: %s\n%s", code, errOut, out)
	}
	for _, want := range []string{"perplexity increase", "REGRESSED", "│ ok ", "≤ +1.00%", "stories260K-F32", "1.19 MB"} {
		if !strings.Contains(out, want) {
			t.Errorf("check table lacks %q:\n%s", want, out)
		}
	}
	mustShrink(t, "check", cmp, "--baseline", cmp, "--baseline-variant", "base", "--variant", "q8_0", "--max-ppl-increase", "1%")
}
