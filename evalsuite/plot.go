package evalsuite

import (
	"cmp"
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// PlotFormat is the image format WritePlot writes for a file name: "svg" or
// "png", from its extension.
func PlotFormat(path string) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".svg", ".png":
		return ext[1:], nil
	}
	return "", fmt.Errorf("%s: plot files are .svg or .png", path)
}

// The figure's size; PNG is drawn at plotDPI.
const (
	plotWidth  = 11 * vg.Inch
	plotHeight = 4.6 * vg.Inch
	plotDPI    = 150
)

var (
	variantColor = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	baseColor    = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	frontColor   = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
)

// WritePlot draws r as two panels side by side, quality (perplexity, or
// accuracy when every variant has one) against size in MB and against decode
// tokens/s, and writes it in format "svg" or "png". The base is a red square,
// the other variants blue dots, each labelled with its name, and the Pareto
// front (the variants no other is both smaller, or faster, and better than)
// is a green line; a key below says so. The same report always gives the
// same bytes.
func WritePlot(w io.Writer, r *Report, format string) error {
	if len(r.Variants) == 0 {
		return fmt.Errorf("plot: the report has no variants")
	}
	var c interface {
		vg.CanvasSizer
		io.WriterTo
	}
	switch format {
	case "svg":
		c = vgsvg.New(plotWidth, plotHeight)
	case "png":
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(plotWidth, plotHeight), vgimg.UseDPI(plotDPI),
			vgimg.UseBackgroundColor(color.White))}
	default:
		return fmt.Errorf("plot format %q: want svg or png", format)
	}

	acc := true
	for _, v := range r.Variants {
		acc = acc && v.Accuracy != nil
	}
	what, qualityAxis, higherBetter := "perplexity", "perplexity (lower is better)", false
	quality := func(v *Variant) float64 { return v.Perplexity }
	if acc {
		what, qualityAxis, higherBetter = "accuracy", "accuracy % (higher is better)", true
		quality = func(v *Variant) float64 { return 100 * *v.Accuracy }
	}
	size := func(v *Variant) float64 { return float64(v.SizeBytes) / 1e6 }
	speed, speedAxis := func(v *Variant) float64 { return v.DecodeTokensPerS }, "decode tokens/s (higher is faster)"
	caption := fmt.Sprintf("%s on %s (ctx %d, %s scored tokens), %s",
		filepath.Base(r.Base), filepath.Base(r.Text), r.Ctx, commas(int64(r.ScoredTokens)), threadCount(r.Threads))
	sizeAxis := "size as GGUF (MB)"
	if r.Dataset != "" {
		sizeAxis = "size on disk (MB)"
		speed, speedAxis = func(v *Variant) float64 { return v.ExamplesPerS }, "examples/s (higher is faster)"
		caption = fmt.Sprintf("%s on the %s test set (%s examples), %s",
			filepath.Base(r.Base), r.Dataset, commas(int64(r.TestExamples)), threadCount(r.Threads))
	}

	left, err := panel(r, size, quality, false, higherBetter)
	if err != nil {
		return err
	}
	left.Title.Text = what + " vs size"
	left.X.Label.Text = sizeAxis
	left.Y.Label.Text = qualityAxis
	right, err := panel(r, speed, quality, true, higherBetter)
	if err != nil {
		return err
	}
	right.Title.Text = what + " vs speed"
	right.X.Label.Text = speedAxis
	right.Y.Label.Text = qualityAxis

	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	key := dc
	key.Max.Y = key.Min.Y + keyHeight
	dc.Min.Y += keyHeight
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Inch / 3, PadTop: vg.Points(8), PadBottom: vg.Points(4),
		PadLeft: vg.Points(8), PadRight: vg.Points(14)}
	canvases := plot.Align([][]*plot.Plot{{left, right}}, tiles, dc)
	left.Draw(canvases[0][0])
	right.Draw(canvases[0][1])
	drawKey(key, caption)
	_, err = c.WriteTo(w)
	return err
}

const keyHeight = vg.Length(22)

// Styles of the figure.
var (
	baseGlyph    = draw.GlyphStyle{Color: baseColor, Radius: vg.Points(4.5), Shape: draw.BoxGlyph{}}
	variantGlyph = draw.GlyphStyle{Color: variantColor, Radius: vg.Points(3.5), Shape: draw.CircleGlyph{}}
	frontLine    = draw.LineStyle{Color: frontColor, Width: vg.Points(1.5)}
	leaderLine   = draw.LineStyle{Color: color.Gray{Y: 0x90}, Width: vg.Points(0.5)}
)

// sans is the figure's font at a size.
func sans(size vg.Length) font.Font {
	return font.Font{Typeface: "Liberation", Variant: "Sans", Size: size}
}

func textStyle(size vg.Length) text.Style {
	return text.Style{Color: color.Black, Font: sans(size), Handler: plot.DefaultTextHandler,
		XAlign: draw.XLeft, YAlign: draw.YBottom}
}

// drawKey writes the legend in one line under the panels, then a caption.
func drawKey(c draw.Canvas, caption string) {
	sty := textStyle(9)
	x, y := c.Min.X+vg.Points(12), c.Min.Y+(c.Max.Y-c.Min.Y)/2
	item := func(mark func(at vg.Point), label string) {
		mark(vg.Point{X: x + 8, Y: y})
		c.FillText(sty, vg.Point{X: x + 20, Y: y - sty.Height(label)/2}, label)
		x += 20 + sty.Width(label) + 18
	}
	item(func(at vg.Point) { c.DrawGlyph(baseGlyph, at) }, "base")
	item(func(at vg.Point) { c.DrawGlyph(variantGlyph, at) }, "variant")
	item(func(at vg.Point) { c.StrokeLine2(frontLine, at.X-9, at.Y, at.X+9, at.Y) },
		"Pareto front: no other variant is both smaller (or faster) and better")
	grey := sty
	grey.Color = color.Gray{Y: 0x50}
	c.FillText(grey, vg.Point{X: x + 6, Y: y - sty.Height(caption)/2}, caption)
}

// panel plots quality y against x for every variant, with the Pareto front
// over x (larger is better when xHigher) and y (likewise yHigher).
func panel(r *Report, x, y func(*Variant) float64, xHigher, yHigher bool) (*plot.Plot, error) {
	p := plot.New()
	p.BackgroundColor = nil // WritePlot paints the whole figure white
	p.Title.TextStyle.Font = sans(13)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = sans(11)
		a.Tick.Label.Font = sans(10)
		a.Tick.Marker = preciseTicks{}
	}
	p.Add(plotter.NewGrid())

	var pts, basePts plotter.XYs
	var labels []string
	var all plotter.XYs
	for i := range r.Variants {
		v := &r.Variants[i]
		pt := plotter.XY{X: x(v), Y: y(v)}
		all = append(all, pt)
		labels = append(labels, v.Name)
		if v.Base {
			basePts = append(basePts, pt)
		} else {
			pts = append(pts, pt)
		}
	}

	front := paretoFront(all, xHigher, yHigher)
	if len(front) > 1 {
		l, err := plotter.NewLine(front)
		if err != nil {
			return nil, err
		}
		l.LineStyle = frontLine
		p.Add(l)
	}
	// Labels before points, so that their backing never hides a point.
	p.Add(newPointLabels(all, labels, textStyle(9)))
	for _, set := range []struct {
		xys plotter.XYs
		sty draw.GlyphStyle
	}{{pts, variantGlyph}, {basePts, baseGlyph}} {
		if len(set.xys) == 0 {
			continue
		}
		s, err := plotter.NewScatter(set.xys)
		if err != nil {
			return nil, err
		}
		s.GlyphStyle = set.sty
		p.Add(s)
	}

	// Room around the points for their labels.
	pad := func(lo, hi float64) (float64, float64) {
		d := hi - lo
		if d == 0 {
			d = max(1e-3, 0.1*math.Abs(hi))
		}
		return lo - 0.1*d, hi + 0.1*d
	}
	xs, ys := minMax(all, func(p plotter.XY) float64 { return p.X }), minMax(all, func(p plotter.XY) float64 { return p.Y })
	p.X.Min, p.X.Max = pad(xs[0], xs[1])
	p.Y.Min, p.Y.Max = pad(ys[0], ys[1])
	if p.X.Min < 0 && xs[0] >= 0 {
		p.X.Min = 0
	}
	return p, nil
}

// preciseTicks places ticks as plot.DefaultTicks does but labels them with
// as many decimals as their spacing needs (the default can print 4.25 and
// 4.35 as "4.2" and "4.3").
type preciseTicks struct{}

func (preciseTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	var major []float64
	for _, t := range ts {
		if t.Label != "" {
			major = append(major, t.Value)
		}
	}
	dec := 0
	for ; dec < 8; dec++ {
		ok := true
		for _, v := range major {
			s := strconv.FormatFloat(v, 'f', dec, 64)
			back, _ := strconv.ParseFloat(s, 64)
			if math.Abs(back-v) > 1e-9*math.Max(1, math.Abs(v)) {
				ok = false
				break
			}
		}
		if ok {
			break
		}
	}
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'f', dec, 64)
		}
	}
	return ts
}

func minMax(xys plotter.XYs, f func(plotter.XY) float64) [2]float64 {
	lo, hi := f(xys[0]), f(xys[0])
	for _, p := range xys[1:] {
		lo, hi = min(lo, f(p)), max(hi, f(p))
	}
	return [2]float64{lo, hi}
}

// paretoFront returns the points that no other point beats on both X and Y
// (a larger value is better where the flag says so), sorted by X.
func paretoFront(xys plotter.XYs, xHigher, yHigher bool) plotter.XYs {
	sign := func(higher bool) float64 {
		if higher {
			return -1
		}
		return 1
	}
	sx, sy := sign(xHigher), sign(yHigher)
	s := slices.Clone(xys)
	// Best X first, ties broken by best Y; then keep each point that
	// improves on the best Y so far.
	slices.SortStableFunc(s, func(a, b plotter.XY) int {
		return cmp.Or(cmp.Compare(sx*a.X, sx*b.X), cmp.Compare(sy*a.Y, sy*b.Y))
	})
	var front plotter.XYs
	for _, p := range s {
		if len(front) == 0 || sy*p.Y < sy*front[len(front)-1].Y {
			front = append(front, p)
		}
	}
	slices.SortStableFunc(front, func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) })
	return front
}

// pointLabels writes each point's label beside it, at the first of a list of
// places, nearest first, that overlaps no label already written and no other
// point; a label set away from its point gets a thin leader line. Points at
// the same place share one label ("q4_0, q4_0:rtn").
type pointLabels struct {
	xys    plotter.XYs
	labels []string
	style  text.Style
}

func newPointLabels(xys plotter.XYs, labels []string, sty text.Style) *pointLabels {
	l := &pointLabels{style: sty}
	for i, xy := range xys {
		if j := slices.Index(l.xys, xy); j >= 0 {
			l.labels[j] += ", " + labels[i]
			continue
		}
		l.xys = append(l.xys, xy)
		l.labels = append(l.labels, labels[i])
	}
	return l
}

const labelGap = vg.Length(6)

func (l *pointLabels) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	pts := make([]vg.Point, len(l.xys))
	for i, xy := range l.xys {
		pts[i] = vg.Point{X: trX(xy.X), Y: trY(xy.Y)}
	}
	var placed []vg.Rectangle
	for i, label := range l.labels {
		pt := pts[i]
		w, h := l.style.Width(label), l.style.Height(label)
		var cands []vg.Point
		for ring := vg.Length(0); ring < 5; ring++ {
			d := labelGap + ring*(h+2)
			cands = append(cands,
				vg.Point{X: pt.X + d, Y: pt.Y - h/2},     // right
				vg.Point{X: pt.X - w/2, Y: pt.Y + d},     // above
				vg.Point{X: pt.X - w/2, Y: pt.Y - d - h}, // below
				vg.Point{X: pt.X - d - w, Y: pt.Y - h/2}, // left
				vg.Point{X: pt.X + d*0.7, Y: pt.Y + d*0.7},
				vg.Point{X: pt.X + d*0.7, Y: pt.Y - d*0.7 - h},
				vg.Point{X: pt.X - d*0.7 - w, Y: pt.Y + d*0.7},
				vg.Point{X: pt.X - d*0.7 - w, Y: pt.Y - d*0.7 - h},
			)
		}
		best, bestCost := vg.Point{}, math.Inf(1)
		for k, at := range cands {
			// Keep the label inside the panel.
			at.X = max(c.Min.X, min(at.X, c.Max.X-w))
			at.Y = max(c.Min.Y, min(at.Y, c.Max.Y-h))
			box := vg.Rectangle{Min: at, Max: vg.Point{X: at.X + w, Y: at.Y + h}}
			cost := overlap(box, placed) + coveredPoints(box, pts)*w*h
			cost += vg.Length(k) * 1e-3 // nearer places first among equals
			if float64(cost) < bestCost {
				best, bestCost = at, float64(cost)
			}
			if overlap(box, placed) == 0 && coveredPoints(box, pts) == 0 {
				best = at
				break
			}
		}
		box := vg.Rectangle{Min: best, Max: vg.Point{X: best.X + w, Y: best.Y + h}}
		placed = append(placed, box)
		if near := nearestOnBox(box, pt); math.Hypot(float64(near.X-pt.X), float64(near.Y-pt.Y)) > float64(labelGap+h) {
			c.StrokeLine2(leaderLine, pt.X, pt.Y, near.X, near.Y)
		}
		// A pale backing keeps grid and front lines from running through the text.
		c.FillPolygon(labelBacking, []vg.Point{
			{X: box.Min.X - 1, Y: box.Min.Y}, {X: box.Max.X + 1, Y: box.Min.Y},
			{X: box.Max.X + 1, Y: box.Max.Y}, {X: box.Min.X - 1, Y: box.Max.Y},
		})
		c.FillText(l.style, best, label)
	}
}

var labelBacking = color.NRGBA{R: 0xff, G: 0xff, B: 0xff, A: 0xc0}

// overlap is the area r shares with the rectangles rs.
func overlap(r vg.Rectangle, rs []vg.Rectangle) vg.Length {
	var a vg.Length
	for _, o := range rs {
		w := min(r.Max.X, o.Max.X) - max(r.Min.X, o.Min.X)
		h := min(r.Max.Y, o.Max.Y) - max(r.Min.Y, o.Min.Y)
		if w > 0 && h > 0 {
			a += w * h
		}
	}
	return a
}

// coveredPoints counts the points that r covers or touches, its own
// included (a label clamped into the panel may land on it).
func coveredPoints(r vg.Rectangle, pts []vg.Point) vg.Length {
	const slop = 5 // the largest glyph's radius
	var n vg.Length
	for _, p := range pts {
		if p.X > r.Min.X-slop && p.X < r.Max.X+slop && p.Y > r.Min.Y-slop && p.Y < r.Max.Y+slop {
			n++
		}
	}
	return n
}

// nearestOnBox is the point of r nearest to p.
func nearestOnBox(r vg.Rectangle, p vg.Point) vg.Point {
	return vg.Point{X: max(r.Min.X, min(p.X, r.Max.X)), Y: max(r.Min.Y, min(p.Y, r.Max.Y))}
}

// GlyphBoxes reserves a label's height above and below each point; labels
// are moved sideways into the panel where they would stick out.
func (l *pointLabels) GlyphBoxes(p *plot.Plot) []plot.GlyphBox {
	bs := make([]plot.GlyphBox, len(l.labels))
	for i, label := range l.labels {
		h := l.style.Height(label) + labelGap
		bs[i] = plot.GlyphBox{
			X: p.X.Norm(l.xys[i].X), Y: p.Y.Norm(l.xys[i].Y),
			Rectangle: vg.Rectangle{Min: vg.Point{X: -1, Y: -h}, Max: vg.Point{X: 1, Y: h}},
		}
	}
	return bs
}
