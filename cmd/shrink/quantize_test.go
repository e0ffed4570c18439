package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/format/gguf"
	"github.com/shrinkml/shrink/internal/shareddata"
)

// ggufTensors reads a GGUF file's raw tensors.
func ggufTensors(t *testing.T, path string) *gguf.File {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Read(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return f
}

// TestQuantizePureMatchesLlamaQuantize runs the command as a user would and
// compares every tensor of the output with llama-quantize --pure's file.
func TestQuantizePureMatchesLlamaQuantize(t *testing.T) {
	src := shareddata.Path(t, "gguf/stories260K-pad192-F32.gguf")
	ref := shareddata.Path(t, "gguf/stories260K-pad192-Q4_0-pure.gguf")
	out := filepath.Join(t.TempDir(), "out.gguf")
	stdout := mustShrink(t, "quantize", src, out, "--scheme", "q4_0", "--pure", "--quiet")
	for _, want := range []string{"tensors quantized", "37 (37 Q4_0)", "bits per weight", "32.00 -> 4.", "worst relative RMSE"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	got, want := ggufTensors(t, out), ggufTensors(t, ref)
	if len(got.Tensors) != len(want.Tensors) {
		t.Fatalf("%d tensors, want %d", len(got.Tensors), len(want.Tensors))
	}
	for _, w := range want.Tensors {
		g := got.Tensor(w.Name)
		if g == nil || g.Type != w.Type || !bytes.Equal(g.Data, w.Data) {
			t.Errorf("tensor %s differs from llama-quantize's", w.Name)
		}
	}
}

// TestQuantizeFallback quantizes stories260K itself, whose FFN width 172 fits
// no 32-weight block: the five down projections fall back to F16, each named
// in a warning, and the output loads.
func TestQuantizeFallback(t *testing.T) {
	bin := shareddata.Path(t, shareddata.Stories260KBin)
	out := filepath.Join(t.TempDir(), "out.gguf")
	stdout, stderr, code := shrink(t, "quantize", bin, out, "--scheme", "q4_0", "--json", "--threads", "3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep quantizeReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	if rep.Fallback != 5 || rep.Quantized != 31 || rep.Kept != 11 || rep.Threads != 3 || rep.DestKind != "gguf" {
		t.Errorf("report: %+v", rep)
	}
	st, _ := os.Stat(out)
	if rep.FileBytes != st.Size() || rep.BytesAfter >= rep.BytesBefore/3 || rep.WorstRelRMSE <= 0 || rep.MeanRelRMSE > rep.WorstRelRMSE {
		t.Errorf("file %d (on disk %d), %d -> %d bytes, worst %g, mean %g", rep.FileBytes, st.Size(), rep.BytesBefore, rep.BytesAfter, rep.WorstRelRMSE, rep.MeanRelRMSE)
	}
	for l := range 5 {
		if !strings.Contains(stderr, "warning: model.layers."+string(rune('0'+l))+".mlp.down_proj.weight: rows of 172 weights") {
			t.Errorf("no fallback warning for layer %d in:\n%s", l, stderr)
		}
	}
	var ins inspectReport
	if err := json.Unmarshal([]byte(mustShrink(t, "inspect", out, "--json")), &ins); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, d := range ins.DTypes {
		counts[d.DType] = d.Tensors
	}
	// The tied embedding is the output head too, so it gets Q8_0.
	if counts["Q4_0"] != 30 || counts["Q8_0"] != 1 || counts["F16"] != 5 || counts["F32"] != 11 {
		t.Errorf("dtypes in the output: %v", counts)
	}
}

func TestQuantizeErrors(t *testing.T) {
	bin := shareddata.Path(t, shareddata.Stories260KBin)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.gguf")
	exists := filepath.Join(dir, "exists.gguf")
	if err := os.WriteFile(exists, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short.txt")
	if err := os.WriteFile(short, []byte("Once upon a time there was a cat."), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{bin, out}, "--scheme is required"},
		{[]string{bin, out, "--scheme", "int4"}, `--scheme "int4": want q8_0, q4_0 or q4_1`},
		{[]string{bin, out, "--scheme", "f16"}, `--scheme "f16"`},
		{[]string{bin, out, "--scheme", "q4_0", "--method", "awq"}, `unknown method "awq"`},
		{[]string{bin, out, "--scheme", "q4_0", "--method", "gptq"}, "--method gptq needs --calib FILE"},
		{[]string{bin, out, "--scheme", "q4_0", "--act-order"}, "apply to --method gptq only"},
		{[]string{bin, out, "--scheme", "q4_0", "--method", "gptq", "--calib", short}, "calibration text has"},
		{[]string{bin, out, "--scheme", "q4_0", "--method", "gptq", "--calib", filepath.Join(dir, "none.txt")}, "none.txt"},
		{[]string{bin, out, "--scheme", "q4_0", "--method", "gptq", "--calib", short, "--calib-ctx", "9999"}, "--calib-ctx 9999"},
		{[]string{bin, out, "--scheme", "q4_0", "--type", "down_proj"}, "want REGEX=SCHEME"},
		{[]string{bin, out, "--scheme", "q4_0", "--type", "(=q8_0"}, "--type: rule"},
		{[]string{bin, out, "--scheme", "q4_0", "--keep", "("}, `--keep "("`},
		{[]string{bin, out, "--scheme", "q4_0", "--threads", "-2"}, "--threads -2"},
		{[]string{bin, filepath.Join(dir, "hf"), "--scheme", "q4_0"}, "written as GGUF"},
		{[]string{bin, out, "--scheme", "q4_0", "--to", "safetensors"}, "written as GGUF"},
		{[]string{bin, exists, "--scheme", "q4_0"}, "exists.gguf: destination exists"},
		{[]string{filepath.Join(dir, "missing.bin"), out, "--scheme", "q4_0"}, "missing.bin"},
	} {
		_, stderr, code := shrink(t, append([]string{"quantize"}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("quantize %s: exit %d, %q; want 2 and %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed run wrote its output")
	}
	if b, _ := os.ReadFile(exists); string(b) != "x" {
		t.Error("an existing file was replaced without --force")
	}
}

// TestQuantizeGPTQ runs GPTQ on stories260K (FFN padded to 192, so every
// matrix fits Q4_0): the same flags give the same bytes on any thread count,
// and the report says how it calibrated.
func TestQuantizeGPTQ(t *testing.T) {
	src := shareddata.Path(t, "gguf/stories260K-pad192-F32.gguf")
	text := shareddata.Path(t, "text/tinystories/tinystories_val_first.txt")
	dir := t.TempDir()
	var outs [][]byte
	for i, threads := range []string{"1", "2"} {
		out := filepath.Join(dir, "out"+threads+".gguf")
		args := []string{"quantize", src, out, "--scheme", "q4_1", "--method", "gptq", "--calib", text,
			"--calib-tokens", "1024", "--calib-ctx", "128", "--act-order", "--threads", threads, "--quiet"}
		if i == 0 {
			stdout := mustShrink(t, args...)
			for _, want := range []string{"q4_1 (gptq)", "1,024 tokens, act order", "dampening", "0.01 of the mean"} {
				if !strings.Contains(stdout, want) {
					t.Errorf("summary lacks %q:\n%s", want, stdout)
				}
			}
		} else {
			var rep quantizeReport
			if err := json.Unmarshal([]byte(mustShrink(t, append(args, "--json")...)), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Method != "gptq" || rep.CalibrationTokens != 1024 || !rep.ActOrder || rep.MaxDamp != 0.01 || rep.Quantized != 37 {
				t.Errorf("report: %+v", rep.Report)
			}
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, b)
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Error("GPTQ output depends on --threads")
	}
	// The file runs.
	if out := mustShrink(t, "eval", filepath.Join(dir, "out1.gguf"), "--text", text, "--max-tokens", "512", "--ctx", "128", "--quiet"); !strings.Contains(out, "perplexity") {
		t.Errorf("eval: %s", out)
	}
}
