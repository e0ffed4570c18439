package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/format"
	"github.com/shrinkml/shrink/format/gguf"
	"github.com/shrinkml/shrink/internal/shareddata"
	"github.com/shrinkml/shrink/model"
	"github.com/shrinkml/shrink/quantize"
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
		{[]string{bin, out, "--scheme", "int3"}, `--scheme "int3": want q8_0, q4_0, q4_1, int8 or int4`},
		{[]string{bin, out, "--scheme", "int4"}, `out.gguf: GGUF has no int4 type (per-channel int8, group int4): use --scheme q8_0 or q4_0 for GGUF, or write a Hugging Face folder`},
		{[]string{bin, out, "--scheme", "q4_0", "--type", "up=int8"}, "GGUF has no int8 type"},
		{[]string{bin, out + "-hf", "--scheme", "int4", "--group", "48"}, "--group 48: want 32, 64 or 128"},
		{[]string{bin, out + "-hf", "--scheme", "int4", "--sym", "--asym"}, "--sym and --asym exclude each other"},
		{[]string{bin, out + "-hf", "--scheme", "q4_0", "--asym"}, "--group, --sym and --asym apply to int4 only"},
		{[]string{bin, out + "-hf", "--scheme", "int8", "--group", "32"}, "--group, --sym and --asym apply to int4 only"},
		{[]string{bin, out, "--scheme", "f16"}, `--scheme "f16"`},
		{[]string{bin, out, "--scheme", "q4_0", "--method", "hqq"}, `unknown method "hqq"`},
		{[]string{bin, out, "--scheme", "q4_0", "--method", "awq"}, "--method awq needs --calib FILE"},
		{[]string{bin, out, "--scheme", "q4_0", "--method", "awq", "--calib", short, "--act-order"}, "--act-order applies to --method gptq and awq+gptq only"},
		{[]string{bin, out, "--scheme", "q4_0", "--method", "gptq"}, "--method gptq needs --calib FILE"},
		{[]string{bin, out, "--scheme", "q4_0", "--act-order"}, "apply to --method gptq, awq and awq+gptq only"},
		{[]string{bin, out, "--scheme", "q4_0", "--method", "gptq", "--calib", short}, "calibration text has"},
		{[]string{bin, out, "--scheme", "q4_0", "--method", "gptq", "--calib", filepath.Join(dir, "none.txt")}, "none.txt"},
		{[]string{bin, out, "--scheme", "q4_0", "--method", "gptq", "--calib", short, "--calib-ctx", "9999"}, "--calib-ctx 9999"},
		{[]string{bin, out, "--scheme", "q4_0", "--type", "down_proj"}, "want REGEX=SCHEME"},
		{[]string{bin, out, "--scheme", "q4_0", "--type", "(=q8_0"}, "--type: rule"},
		{[]string{bin, out, "--scheme", "q4_0", "--keep", "("}, `--keep "("`},
		{[]string{bin, out, "--scheme", "q4_0", "--threads", "-2"}, "--threads -2"},
		{[]string{bin, filepath.Join(dir, "bare.safetensors"), "--scheme", "q4_0"}, `holds mlp classifiers only, not "llama"`},
		{[]string{bin, filepath.Join(dir, "bare.safetensors"), "--scheme", "q4_0", "--to", "safetensors"}, `holds mlp classifiers only`},
		{[]string{bin, out, "--scheme", "q4_0", "--to", "onnx"}, `--to "onnx"`},
		{[]string{bin, exists, "--scheme", "q4_0"}, "exists.gguf: destination exists"},
		{[]string{filepath.Join(dir, "missing.bin"), out, "--scheme", "q4_0"}, "missing.bin"},
	} {
		_, stderr, code := shrink(t, append([]string{"quantize"}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("quantize %s: exit %d, %q; want 2 and %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
	for _, p := range []string{out, filepath.Join(dir, "bare.safetensors")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("a failed run wrote %s", p)
		}
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

// loadModel loads a checkpoint, closed when the test ends.
func loadModel(t *testing.T, path string, opts format.LoadOptions) *model.Model {
	t.Helper()
	m, _, err := format.Load(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// sameModelTensors fails unless got has want's tensors, byte for byte.
func sameModelTensors(t *testing.T, what string, got, want *model.Model) {
	t.Helper()
	if len(got.Tensors) != len(want.Tensors) {
		t.Fatalf("%s: %d tensors, want %d", what, len(got.Tensors), len(want.Tensors))
	}
	for _, w := range want.Tensors {
		g := got.Tensor(w.Name)
		if g == nil || g.DType != w.DType || !reflect.DeepEqual(g.Shape, w.Shape) || !bytes.Equal(g.Data, w.Data) {
			t.Errorf("%s: tensor %s differs (want %s %v)", what, w.Name, w.DType, w.Shape)
		}
	}
}

// mlpFolder writes a synthetic Fashion-MNIST-shaped classifier as a folder.
func mlpFolder(t *testing.T, activation string) string {
	t.Helper()
	m, err := model.Synthesize(model.Config{Arch: "mlp", MLP: &model.MLPConfig{Sizes: []int{784, 64, 10}, Activation: activation}}, 4)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "mlp-"+activation)
	if err := format.Save("", dir, m, format.SaveOptions{To: format.HF}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestQuantizeMLPSafetensors quantizes a classifier into a folder and a bare
// state dict: the first layer's 784 inputs fit no block and fall back to F16
// with a warning, both outputs hold the library's exact blocks and the gelu
// activation, and eval scores them alike.
func TestQuantizeMLPSafetensors(t *testing.T) {
	src := mlpFolder(t, "gelu")
	data := fakeFashion(t, 10, 200)
	dir := t.TempDir()
	folder, bare := filepath.Join(dir, "q8"), filepath.Join(dir, "q8.safetensors")

	stdout, stderr, code := shrink(t, "quantize", src, folder, "--scheme", "q8_0", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep quantizeReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	if rep.DestKind != string(format.HF) || rep.Quantized != 1 || rep.Fallback != 1 || rep.Kept != 2 {
		t.Errorf("report: dest %s, %d quantized, %d fallen back, %d kept", rep.DestKind, rep.Quantized, rep.Fallback, rep.Kept)
	}
	if !strings.Contains(stderr, "warning: layers.0.weight: rows of 784 weights") {
		t.Errorf("no fallback warning for the first layer in:\n%s", stderr)
	}
	table := mustShrink(t, "quantize", src, bare, "--scheme", "q8_0", "--quiet")
	if !strings.Contains(table, "q8.safetensors (safetensors-file,") {
		t.Errorf("table:\n%s", table)
	}

	want, _, err := quantize.Quantize(loadModel(t, src, format.LoadOptions{}), quantize.Options{Scheme: quantize.Q8_0})
	if err != nil {
		t.Fatal(err)
	}
	fromFolder := loadModel(t, folder, format.LoadOptions{})
	fromBare := loadModel(t, bare, format.LoadOptions{Arch: "mlp"})
	sameModelTensors(t, "folder", fromFolder, want)
	sameModelTensors(t, "state dict", fromBare, want)
	if !reflect.DeepEqual(fromBare.Config, want.Config) || !reflect.DeepEqual(fromFolder.Config, want.Config) {
		t.Errorf("config: folder %+v, state dict %+v, want %+v", fromFolder.Config.MLP, fromBare.Config.MLP, want.Config.MLP)
	}
	if d := fromFolder.Tensor("layers.1.weight").DType; d != model.Q8_0 {
		t.Errorf("layers.1.weight is %s, want Q8_0", d)
	}
	if d := fromFolder.Tensor("layers.0.weight").DType; d != model.F16 {
		t.Errorf("layers.0.weight is %s, want F16", d)
	}

	var scores []map[string]any
	for _, args := range [][]string{{folder}, {bare, "--arch", "mlp"}} {
		out := mustShrink(t, append([]string{"eval", "--dataset", "fashion-mnist", "--data", data, "--json", "--quiet"}, args...)...)
		var r map[string]any
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		scores = append(scores, r)
	}
	acc := func(r map[string]any) any { return r["accuracy"] }
	if acc(scores[0]) == nil || acc(scores[0]) != acc(scores[1]) {
		t.Errorf("eval accuracy: folder %v, state dict %v", acc(scores[0]), acc(scores[1]))
	}
}

// TestQuantizeLlamaSafetensors writes stories260K quantized as a Hugging
// Face folder: its blocks are the GGUF output's, rows in rotate-half order,
// and the folder evaluates.
func TestQuantizeLlamaSafetensors(t *testing.T) {
	src := shareddata.Path(t, "gguf/stories260K-pad192-F32.gguf")
	text := shareddata.Path(t, "text/tinystories/tinystories_val_first.txt")
	dir := t.TempDir()
	ggufOut := filepath.Join(dir, "q.gguf")
	mustShrink(t, "quantize", src, ggufOut, "--scheme", "q4_1", "--quiet")
	want, err := loadModel(t, ggufOut, format.LoadOptions{}).WithRopeLayout(model.RopeHalf)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"q"}, {"q2.safetensors", "--to", "hf"}} {
		out := filepath.Join(dir, args[0])
		mustShrink(t, append([]string{"quantize", src, out, "--scheme", "q4_1", "--quiet"}, args[1:]...)...)
		if st, err := os.Stat(filepath.Join(out, "config.json")); err != nil || st.IsDir() {
			t.Fatalf("%s is not a Hugging Face folder: %v", out, err)
		}
		got := loadModel(t, out, format.LoadOptions{})
		sameModelTensors(t, args[0], got, want)
	}
	if out := mustShrink(t, "eval", filepath.Join(dir, "q"), "--text", text, "--max-tokens", "256", "--ctx", "128", "--quiet"); !strings.Contains(out, "perplexity") {
		t.Errorf("eval: %s", out)
	}
}

// TestQuantizeMLPErrors refuses outputs that cannot hold a classifier
// before quantizing, and leaves nothing behind.
func TestQuantizeMLPErrors(t *testing.T) {
	relu := mlpFolder(t, "relu")
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		out  string
		want string
	}{
		{[]string{relu}, "m.gguf", `GGUF output holds llama-family models, not "mlp"`},
		{[]string{relu, "--to", "gguf"}, "m", `GGUF output holds llama-family models, not "mlp"`},
	} {
		out := filepath.Join(dir, c.out)
		args := append([]string{"quantize", c.args[0], out, "--scheme", "q4_0"}, c.args[1:]...)
		_, stderr, code := shrink(t, args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, %q; want 2 and %q", strings.Join(args, " "), code, stderr, c.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("a failed run wrote %s", out)
		}
	}
}

// TestQuantizeInt writes stories260K-pad192 (widths 64 and 192) in the int
// schemes to Hugging Face folders in compressed-tensors' layouts: the report
// names the groups, each matrix gets the largest group that fits its rows,
// and the folder loads back with the same INT tensors and runs.
func TestQuantizeInt(t *testing.T) {
	src := shareddata.Path(t, "gguf/stories260K-pad192-F32.gguf")
	for _, c := range []struct {
		name  string
		args  []string
		want  map[string]int // dtype -> tensors
		bits  float64
		group int
	}{
		{"int8", []string{"--scheme", "int8"}, map[string]int{"INT8_CH": 37}, 0, 0},
		{"int4 g128", []string{"--scheme", "int4"}, map[string]int{"INT4_G64": 36, "INT8_CH": 1}, 0, 128},
		{"int4 g32 asym", []string{"--scheme", "int4", "--group", "32", "--asym", "--pure"}, map[string]int{"INT4_G32_ASYM": 37}, 4 + 24.0/32, 32},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			stdout, stderr, code := shrink(t, append([]string{"quantize", src, out, "--json", "--quiet"}, c.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var rep quantizeReport
			if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Group != c.group || rep.Asym != strings.Contains(c.name, "asym") || rep.Fallback != 0 {
				t.Errorf("report: group %d asym %v fallback %d", rep.Group, rep.Asym, rep.Fallback)
			}
			// Matrix weights only: the norms (704 F32 weights) stay.
			if matrixBits := 8 * float64(rep.BytesAfter-704*4) / float64(rep.Parameters-704); c.bits > 0 && matrixBits != c.bits {
				t.Errorf("%g bits per matrix weight, want %g", matrixBits, c.bits)
			}
			if c.group == 128 && !strings.Contains(stderr, "INT4_G128 does not fit; stored as INT4_G64") {
				t.Errorf("no group fallback warning in:\n%s", stderr)
			}
			cfg, err := os.ReadFile(filepath.Join(out, "config.json"))
			if err != nil || !strings.Contains(string(cfg), `"quant_method": "compressed-tensors"`) {
				t.Errorf("config.json: %v\n%s", err, cfg)
			}
			m, _, err := format.Load(out, format.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			counts := map[string]int{}
			for _, tn := range m.Tensors {
				if tn.DType != model.F32 {
					counts[tn.DType.String()]++
				}
			}
			if !reflect.DeepEqual(counts, c.want) {
				t.Errorf("dtypes %v, want %v", counts, c.want)
			}
			mustShrink(t, "run", out, "--prompt", "Once upon a time", "-n", "8")
		})
	}
}
