package inference

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/shrinkml/shrink/format/gguf"
	"github.com/shrinkml/shrink/format/hf"
	"github.com/shrinkml/shrink/internal/shareddata"
	"github.com/shrinkml/shrink/model"
)

// TestStories260KFormatsAgree runs stories260K read from the llama2.c file,
// from llama.cpp's F32 GGUF and from a Hugging Face folder written from the
// .bin (q/k rows in the rotate-half layout), and wants identical logits.
func TestStories260KFormatsAgree(t *testing.T) {
	bin := loadStories(t)
	g, err := gguf.Load(shareddata.Path(t, "gguf/stories260K-F32.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	dir := filepath.Join(t.TempDir(), "hf")
	if err := hf.Save(dir, bin, hf.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	h, err := hf.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.Config.RopeLayout != model.RopeHalf {
		t.Fatalf("the HF folder is in layout %v, want rotate-half", h.Config.RopeLayout)
	}
	f := readStoriesFixture(t)
	logits := func(m *model.Model) []float32 {
		l := newTestLlama(t, m, 2)
		out := make([]float32, len(f.Tokens)*m.Config.VocabSize)
		if err := l.Forward(l.NewState(0), f.Tokens, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := logits(bin)
	for name, m := range map[string]*model.Model{"gguf": g, "hf": h} {
		got := logits(m)
		diffs, worst := 0, 0.0
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				diffs++
				worst = max(worst, math.Abs(float64(got[i]-want[i])))
			}
		}
		if diffs > 0 {
			t.Errorf("%s: %d of %d logits differ from the .bin's (worst by %g)", name, diffs, len(want), worst)
		}
	}
}
