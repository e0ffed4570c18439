package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/internal/shareddata"
)

// TestQuantizeAWQ runs --method awq and awq+gptq on stories260K: the summary
// names the exponents, the JSON report lists one per layer group, the bytes do
// not depend on --threads, and the file runs.
func TestQuantizeAWQ(t *testing.T) {
	src := shareddata.Path(t, "gguf/stories260K-pad192-F32.gguf")
	text := shareddata.Path(t, "text/tinystories/tinystories_val_first.txt")
	dir := t.TempDir()
	for _, method := range []string{"awq", "awq+gptq"} {
		var outs [][]byte
		for i, threads := range []string{"1", "2"} {
			out := filepath.Join(dir, method+threads+".gguf")
			args := []string{"quantize", src, out, "--scheme", "q4_0", "--method", method, "--calib", text,
				"--calib-tokens", "1024", "--calib-ctx", "128", "--threads", threads, "--quiet"}
			if i == 0 {
				stdout := mustShrink(t, args...)
				for _, want := range []string{"q4_0 (" + method + ")", "1,024 tokens", "awq scales", "mean alpha qkv"} {
					if !strings.Contains(stdout, want) {
						t.Errorf("%s: summary lacks %q:\n%s", method, want, stdout)
					}
				}
			} else {
				var rep quantizeReport
				if err := json.Unmarshal([]byte(mustShrink(t, append(args, "--json")...)), &rep); err != nil {
					t.Fatal(err)
				}
				// stories260K has grouped query heads, so o is not scaled: qkv,
				// gate_up and down in each of its 5 layers.
				if string(rep.Method) != method || rep.CalibrationTokens != 1024 || len(rep.AWQ) != 15 || rep.Quantized != 37 {
					t.Errorf("%s: report: %+v", method, rep.Report)
				}
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			outs = append(outs, b)
		}
		if !bytes.Equal(outs[0], outs[1]) {
			t.Errorf("%s output depends on --threads", method)
		}
	}
	if out := mustShrink(t, "eval", filepath.Join(dir, "awq1.gguf"), "--text", text, "--max-tokens", "512", "--ctx", "128", "--quiet"); !strings.Contains(out, "perplexity") {
		t.Errorf("eval: %s", out)
	}
}
