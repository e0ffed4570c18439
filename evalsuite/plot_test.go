package evalsuite

import (
	"bytes"
	"image/png"
	"math"
	"reflect"
	"strings"
	"testing"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

func TestWritePlotSVGDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	if err := WritePlot(&a, sampleReport(), "svg"); err != nil {
		t.Fatal(err)
	}
	if err := WritePlot(&b, sampleReport(), "svg"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("two SVGs of the same report differ")
	}
	svg := a.String()
	if !strings.HasPrefix(svg, "<?xml") || !strings.Contains(svg, "<svg") {
		t.Fatalf("not an SVG: %.200s", svg)
	}
	for _, want := range []string{">q8_0<", ">q4_0<", ">base<", "perplexity vs size", "perplexity vs speed",
		"size as GGUF (MB)", "decode tokens/s", "Pareto front", "#D62728" /* the base's red */} {
		if !strings.Contains(svg, want) {
			t.Errorf("the SVG lacks %q", want)
		}
	}
}

func TestWritePlotPNG(t *testing.T) {
	r := sampleReport()
	acc := []float64{0.9, 0.89, 0.8}
	for i := range r.Variants {
		r.Variants[i].Accuracy = &acc[i]
	}
	var buf bytes.Buffer
	if err := WritePlot(&buf, r, "png"); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	w, h := float64(plotWidth/vg.Inch)*plotDPI, float64(plotHeight/vg.Inch)*plotDPI
	if b := img.Bounds(); b.Dx() != int(math.Round(w)) || b.Dy() != int(math.Round(h)) {
		t.Errorf("PNG is %v", b)
	}
	var svg bytes.Buffer
	WritePlot(&svg, r, "svg")
	if !strings.Contains(svg.String(), "accuracy vs size") {
		t.Errorf("with accuracies everywhere the plot is not of accuracy")
	}
}

func TestWritePlotErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := WritePlot(&buf, sampleReport(), "pdf"); err == nil || !strings.Contains(err.Error(), "want svg or png") {
		t.Errorf("pdf: %v", err)
	}
	if err := WritePlot(&buf, &Report{}, "svg"); err == nil {
		t.Errorf("no variants: no error")
	}
	// One variant, and points that coincide, still draw.
	r := sampleReport()
	r.Variants = r.Variants[:1]
	if err := WritePlot(&buf, r, "svg"); err != nil {
		t.Errorf("one variant: %v", err)
	}
	r = sampleReport()
	r.Variants[2] = r.Variants[1]
	r.Variants[2].Name = "q8_0 again"
	buf.Reset()
	if err := WritePlot(&buf, r, "svg"); err != nil || !strings.Contains(buf.String(), ">q8_0, q8_0 again<") {
		t.Errorf("coinciding points share a label: %v", err)
	}
	for path, want := range map[string]string{"a.svg": "svg", "b.PNG": "png", "c.pdf": "", "d": ""} {
		got, err := PlotFormat(path)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("PlotFormat(%q) = %q, %v", path, got, err)
		}
	}
}

func TestParetoFront(t *testing.T) {
	pts := plotter.XYs{{X: 4, Y: 1}, {X: 1, Y: 5}, {X: 2, Y: 3}, {X: 3, Y: 3.5}, {X: 2, Y: 2.5}, {X: 5, Y: 1}}
	for _, c := range []struct {
		xHigher, yHigher bool
		want             plotter.XYs
	}{
		// Smaller and lower is better: (3, 3.5) is beaten by (2, 2.5), (2, 3)
		// by (2, 2.5), (5, 1) by (4, 1).
		{false, false, plotter.XYs{{X: 1, Y: 5}, {X: 2, Y: 2.5}, {X: 4, Y: 1}}},
		// Faster (larger X) and lower is better.
		{true, false, plotter.XYs{{X: 5, Y: 1}}},
		// Smaller and higher is better (accuracy).
		{false, true, plotter.XYs{{X: 1, Y: 5}}},
		// Faster and higher is better: (4, 1) is beaten by (5, 1).
		{true, true, plotter.XYs{{X: 1, Y: 5}, {X: 3, Y: 3.5}, {X: 5, Y: 1}}},
	} {
		if got := paretoFront(pts, c.xHigher, c.yHigher); !reflect.DeepEqual(got, c.want) {
			t.Errorf("front(%v, %v) = %v, want %v", c.xHigher, c.yHigher, got, c.want)
		}
	}
}

func TestPreciseTicks(t *testing.T) {
	ticks := preciseTicks{}.Ticks(4.17, 4.55)
	var labels []string
	seen := map[string]bool{}
	for _, tk := range ticks {
		if tk.Label == "" {
			continue
		}
		labels = append(labels, tk.Label)
		if seen[tk.Label] {
			t.Errorf("label %q twice in %v", tk.Label, labels)
		}
		seen[tk.Label] = true
	}
	if len(labels) < 2 {
		t.Fatalf("labels %v", labels)
	}
	for _, tk := range ticks {
		if tk.Label != "" && !strings.HasPrefix(tk.Label, "4.") {
			t.Errorf("tick %g labelled %q", tk.Value, tk.Label)
		}
	}
}
