package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/internal/shareddata"
)

// shrink runs the command line as a user would and returns stdout, stderr and
// the exit status main would give.
func shrink(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		errOut.WriteString("shrink: " + err.Error() + "\n")
		return out.String(), errOut.String(), exitCode(err)
	}
	return out.String(), errOut.String(), 0
}

// mustShrink runs the command line and fails the test unless it succeeds.
func mustShrink(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := shrink(t, args...)
	if code != 0 {
		t.Fatalf("shrink %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func TestInspectReal(t *testing.T) {
	bin := shareddata.Path(t, shareddata.Stories260KBin)
	cases := []struct {
		path   string
		params int64
	}{
		{bin, 260032},
		{shareddata.Path(t, "gguf/stories260K-F32.gguf"), 260032},
		// The padded copies have 20 more FFN rows per matrix: 5 layers x 3 x 20 x 64.
		{shareddata.Path(t, "gguf/stories260K-pad192-F32.gguf"), 279232},
		{shareddata.Path(t, "gguf/stories260K-pad192-Q8_0-pure.gguf"), 279232},
		{shareddata.Path(t, "gguf/stories260K-pad192-Q4_0-pure.gguf"), 279232},
		{shareddata.Path(t, "gguf/stories260K-pad192-Q4_1-pure.gguf"), 279232},
		// llama-quantize's default mix stores the head as a separate Q8_0 matrix.
		{shareddata.Path(t, "gguf/stories260K-pad192-Q4_0.gguf"), 279232 + 512*64},
	}
	for _, c := range cases {
		var rep inspectReport
		if err := json.Unmarshal([]byte(mustShrink(t, "inspect", c.path, "--json")), &rep); err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(c.path)
		if rep.Architecture != "llama" || rep.Parameters != c.params || rep.FileBytes != st.Size() || len(rep.Tensors) == 0 {
			t.Errorf("%s: %s, %d parameters, %d bytes; want llama, %d, %d", c.path, rep.Architecture, rep.Parameters, rep.FileBytes, c.params, st.Size())
		}
	}
	out := mustShrink(t, "inspect", bin)
	for _, want := range []string{"architecture   llama", "parameters     260,032", "model.layers.4.mlp.down_proj.weight", "F32"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
}

func TestConvertRoundTrip(t *testing.T) {
	bin := shareddata.Path(t, shareddata.Stories260KBin)
	dir := t.TempDir()
	hf, g := filepath.Join(dir, "hf"), filepath.Join(dir, "s.gguf")
	mustShrink(t, "convert", bin, hf)
	mustShrink(t, "convert", hf, g)
	out := mustShrink(t, "convert", g, filepath.Join(dir, "half"), "--dtype", "f16", "--json")
	var rep convertReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.DestKind != "safetensors" || rep.Parameters != 260032 {
		t.Errorf("convert --json: %v %+v", err, rep)
	}
	var ins inspectReport
	if err := json.Unmarshal([]byte(mustShrink(t, "inspect", filepath.Join(dir, "half"), "--json")), &ins); err != nil {
		t.Fatal(err)
	}
	for _, d := range ins.DTypes {
		if d.DType != "F16" {
			t.Errorf("--dtype f16 left %d %s tensors", d.Tensors, d.DType)
		}
	}

	// The GGUF runs and tells the same story as the .bin.
	a := mustShrink(t, "run", bin, "-n", "40", "--quiet")
	b := mustShrink(t, "run", g, "-n", "40", "--quiet")
	if a != b || !strings.HasPrefix(a, "Once upon a time") {
		t.Errorf("the converted model generates\n%q\nthe original\n%q", b, a)
	}

	// llama2.c to llama2.c: the weights and the tokenizer beside them are
	// the original's bytes.
	back := filepath.Join(dir, "l2c", "back.bin")
	os.Mkdir(filepath.Dir(back), 0o755)
	mustShrink(t, "convert", bin, back)
	for _, p := range [][2]string{{back, bin}, {filepath.Join(filepath.Dir(back), "tok512.bin"), shareddata.Path(t, shareddata.Tok512Bin)}} {
		x, _ := os.ReadFile(p[0])
		y, _ := os.ReadFile(p[1])
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Errorf("%s is not %s's bytes", p[0], p[1])
		}
	}
	if c := mustShrink(t, "run", back, "-n", "40", "--quiet"); c != a {
		t.Errorf("the llama2.c copy generates\n%q", c)
	}
	// From the Hugging Face folder, in a folder of its own: it runs the same.
	fromHF := filepath.Join(dir, "l2c-hf", "m.bin")
	os.Mkdir(filepath.Dir(fromHF), 0o755)
	mustShrink(t, "convert", hf, fromHF)
	if c := mustShrink(t, "run", fromHF, "-n", "40", "--quiet"); c != a {
		t.Errorf("the llama2.c file from the folder generates\n%q", c)
	}
}

func TestRunGreedyStory(t *testing.T) {
	bin := shareddata.Path(t, shareddata.Stories260KBin)
	want, err := os.ReadFile(filepath.Join("..", "..", "inference", "testdata", "stories260K_greedy.txt"))
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := shrink(t, "run", bin)
	if code != 0 {
		t.Fatal(errOut)
	}
	if strings.TrimRight(out, "\n") != strings.TrimRight(string(want), "\n") {
		t.Errorf("greedy story differs from llama2.c's:\n%s", out)
	}
	if !strings.Contains(errOut, "prefill: 1 tokens") || !strings.Contains(errOut, "tok/s") {
		t.Errorf("no speed line on stderr: %q", errOut)
	}
	// Rounding the KV cache to half does not change this story's argmaxes.
	if f16 := mustShrink(t, "run", bin, "--kv-cache", "f16", "-q"); f16 != out {
		t.Errorf("greedy story with --kv-cache f16 differs:\n%s", f16)
	}

	// Sampling is seeded: the same seed gives the same text, another seed another.
	s1 := mustShrink(t, "run", bin, "--temp", "0.9", "--top-p", "0.9", "--seed", "5", "-n", "60", "--quiet")
	s2 := mustShrink(t, "run", bin, "--temp", "0.9", "--top-p", "0.9", "--seed", "5", "-n", "60", "--quiet")
	s3 := mustShrink(t, "run", bin, "--temp", "0.9", "--top-p", "0.9", "--seed", "6", "-n", "60", "--quiet")
	if s1 != s2 || s1 == s3 {
		t.Errorf("seeded sampling: %q, %q, %q", s1, s2, s3)
	}
	var rep runReport
	if err := json.Unmarshal([]byte(mustShrink(t, "run", bin, "--prompt", "Once upon a time", "-n", "20", "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.GeneratedTokens != 20 || rep.PromptTokens < 2 || rep.Text == "" || rep.DecodeTokensPerS <= 0 {
		t.Errorf("run --json: %+v", rep)
	}
}

func TestSynthAndBench(t *testing.T) {
	dir := t.TempDir()
	g := filepath.Join(dir, "tiny.gguf")
	args := []string{"synth", g, "--dim", "64", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--ffn", "96", "--vocab", "300", "--ctx", "128", "--tied", "--seed", "3"}
	mustShrink(t, args...)
	first, _ := os.ReadFile(g)
	mustShrink(t, append(args, "--force")...)
	again, _ := os.ReadFile(g)
	if !bytes.Equal(first, again) {
		t.Errorf("synth is not deterministic")
	}
	var ins inspectReport
	if err := json.Unmarshal([]byte(mustShrink(t, "inspect", g, "--json")), &ins); err != nil {
		t.Fatal(err)
	}
	c := ins.Config
	if c.HiddenSize != 64 || c.Layers != 2 || c.Heads != 4 || c.KVHeads != 2 || c.IntermediateSize != 96 || c.VocabSize != 300 || c.ContextLength != 128 || !c.TiedEmbeddings {
		t.Errorf("synth shape: %+v", c)
	}

	out := mustShrink(t, "bench", g, "--threads", "1,2", "--prompt-tokens", "16", "--gen-tokens", "8", "--repeats", "2", "--json")
	var runs []map[string]any
	if err := json.Unmarshal([]byte(out), &runs); err != nil || len(runs) != 2 {
		t.Fatalf("bench --json with two thread counts: %v\n%s", err, out)
	}
	for i, r := range runs {
		for _, k := range []string{"prefill_tokens_per_s", "decode_tokens_per_s", "bytes_per_token", "bandwidth_bytes_per_s", "bandwidth_fraction", "kv_bytes_per_token"} {
			if v, ok := r[k].(float64); !ok || v <= 0 {
				t.Errorf("run %d: %s = %v", i, k, r[k])
			}
		}
		if r["threads"] != float64(i+1) {
			t.Errorf("run %d: threads %v", i, r["threads"])
		}
	}
	for i, r := range runs {
		if r["kv_cache"] != "f32" {
			t.Errorf("run %d: kv_cache %v, want the default f32", i, r["kv_cache"])
		}
	}
	table := mustShrink(t, "bench", g, "--threads", "1", "--prompt-tokens", "16", "--gen-tokens", "8", "--repeats", "1", "--kv-cache", "f16")
	if !strings.Contains(table, "decode tok/s") || !strings.Contains(table, "of bandwidth") || !strings.Contains(table, "of f16 KV cache") {
		t.Errorf("bench --kv-cache f16 table:\n%s", table)
	}
}

// TestPresetShape checks llama-134m's size without writing it.
func TestPresetShape(t *testing.T) {
	_, errOut, code := shrink(t, "synth", filepath.Join(t.TempDir(), "x.gguf"), "--preset", "llama-134m", "--layers", "1000000")
	if code != 2 || !strings.Contains(errOut, "synth builds at most") {
		t.Errorf("an absurd shape: exit %d, %s", code, errOut)
	}
}

// TestBadInput checks that unusable input gives exit status 2 and a message
// that names the file, and that inputs are never overwritten.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tiny := filepath.Join(dir, "tiny.gguf")
	mustShrink(t, "synth", tiny, "--preset", "stories260k")
	good, _ := os.ReadFile(tiny)
	truncated := write("truncated.gguf", good[:len(good)/2])
	lying := write("lying.gguf", append([]byte("GGUF\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10"), make([]byte, 16)...))
	junk := write("junk.txt", []byte("hello"))
	badST := write("bad.safetensors", []byte("\xff\xff\xff\xff\xff\xff\xff\x7f{}"))
	cases := []struct {
		name string
		args []string
		file string
		msg  string
	}{
		{"missing", []string{"inspect", filepath.Join(dir, "nope.gguf")}, "nope.gguf", "no such file"},
		{"truncated", []string{"inspect", truncated}, truncated, ""},
		{"lying count", []string{"inspect", lying}, lying, ""},
		{"unknown format", []string{"inspect", junk}, junk, "not a GGUF file"},
		{"bare safetensors", []string{"inspect", badST}, badST, ""},
		{"same path", []string{"convert", tiny, tiny, "--force"}, tiny, "refusing to overwrite an input"},
		{"exists", []string{"convert", tiny, truncated}, truncated, "exists"},
		{"bad dtype", []string{"convert", tiny, filepath.Join(dir, "o.gguf"), "--dtype", "q3"}, "", "--dtype"},
		{"bad to", []string{"convert", tiny, filepath.Join(dir, "o.gguf"), "--to", "onnx"}, "", "--to"},
		{"no tokenizer", []string{"run", truncated}, truncated, ""},
		{"bad temp", []string{"run", tiny, "--temp", "-1"}, "", "temperature"},
		{"bad preset", []string{"synth", filepath.Join(dir, "s.gguf"), "--preset", "gpt5"}, "", "--preset"},
		{"synth needs shape", []string{"synth", filepath.Join(dir, "s.gguf"), "--dim", "64"}, "", "required"},
		{"bench threads", []string{"bench", tiny, "--threads", "0"}, "", "--threads"},
		{"bad kv cache", []string{"bench", tiny, "--kv-cache", "q8_0"}, "", `unknown KV cache type "q8_0"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, errOut, code := shrink(t, c.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2 (%s)", code, errOut)
			}
			if c.file != "" && !strings.Contains(errOut, c.file) {
				t.Errorf("message does not name %s: %s", c.file, errOut)
			}
			if !strings.Contains(errOut, c.msg) {
				t.Errorf("message lacks %q: %s", c.msg, errOut)
			}
		})
	}
	if after, _ := os.ReadFile(tiny); !bytes.Equal(after, good) {
		t.Errorf("an input was modified")
	}
}

// TestCPUProfile runs a command under --cpuprofile and wants a profile that
// pprof can read (gzipped protobuf), and a clear error for a bad path.
func TestCPUProfile(t *testing.T) {
	dir := t.TempDir()
	model, prof := filepath.Join(dir, "m.gguf"), filepath.Join(dir, "cpu.pprof")
	mustShrink(t, "synth", model, "--preset", "stories260k", "-q")
	mustShrink(t, "--cpuprofile", prof, "bench", model, "--prompt-tokens", "8", "--gen-tokens", "8", "--repeats", "1", "-q")
	pprof.StopCPUProfile() // main's job
	b, err := os.ReadFile(prof)
	if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("profile %s: %d bytes, err %v; want a gzipped protobuf", prof, len(b), err)
	}
	if _, errOut, code := shrink(t, "--cpuprofile", filepath.Join(dir, "none", "p"), "inspect", model); code != 2 || !strings.Contains(errOut, "--cpuprofile") {
		t.Errorf("bad --cpuprofile path: exit %d, %q", code, errOut)
	}
}
