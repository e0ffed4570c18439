// Package hidden matches a student's hidden states to a teacher's, the
// hint losses of FitNets (Romero et al., 2015) and of TinyBERT-style layer
// distillation, for distill/train and distill/lm: pairs of layers, the loss
// of each pair (mean squared error or one minus the cosine similarity, per
// position), and a learned linear projection of the student's state where the
// widths differ. The projections train with the student and are discarded
// after. Every gradient is checked against central differences in
// hidden_test.go.
package hidden

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/shrinkml/shrink/inference/kernels"
)

// The losses a pair may use.
const (
	MSE    = "mse"    // mean over the width of (P·s - t)², per position
	Cosine = "cosine" // 1 - cos(P·s, t), per position
)

// Pair is one student layer matched to one teacher layer.
type Pair struct {
	Student, Teacher int // layer indices, from 0
	In, Out          int // the student's and the teacher's widths
	off              int // the projection's offset in Matcher.Params; -1 when In == Out
}

// Matcher holds the pairs and their projections.
type Matcher struct {
	Loss   string
	Weight float64
	Pairs  []Pair
	// Params holds each projecting pair's [Out][In] matrix, concatenated;
	// pt their transposes.
	Params []float32
	pt     []float32
}

// DefaultMap matches student layer i of students to teacher layer
// round((i+1)·teachers/students) - 1: the last layers match, and the others
// spread evenly.
func DefaultMap(students, teachers int) []int {
	m := make([]int, students)
	for i := range m {
		m[i] = max(0, int(math.Round(float64((i+1)*teachers)/float64(students)))-1)
	}
	return m
}

// New checks a hidden-state loss and returns its matcher: loss is MSE or
// Cosine, weight > 0, layers the student layers matched (nil: every one)
// and mapping their teacher layers (nil: DefaultMap's). in and out are the
// widths of the student's and the teacher's layers. Projections start
// uniform within ±1/√In, from seed.
func New(loss string, weight float64, layers, mapping, in, out []int, seed uint64) (*Matcher, error) {
	switch {
	case loss != MSE && loss != Cosine:
		return nil, fmt.Errorf("hidden-state loss %q; want %s or %s", loss, MSE, Cosine)
	case !(weight > 0) || math.IsInf(weight, 0):
		return nil, fmt.Errorf("hidden-state loss weight %g; want a positive number", weight)
	case len(in) == 0 || len(out) == 0:
		return nil, fmt.Errorf("hidden-state loss: the student has %d hidden layers and the teacher %d; both need one", len(in), len(out))
	}
	if layers == nil {
		layers = make([]int, len(in))
		for i := range layers {
			layers[i] = i
		}
	}
	def := DefaultMap(len(in), len(out))
	if mapping == nil {
		mapping = make([]int, len(layers))
		for i, l := range layers {
			if l >= 0 && l < len(in) {
				mapping[i] = def[l]
			}
		}
	}
	if len(mapping) != len(layers) {
		return nil, fmt.Errorf("hidden-state loss: %d teacher layers for %d student layers", len(mapping), len(layers))
	}
	m := &Matcher{Loss: loss, Weight: weight}
	seen := map[int]bool{}
	total := 0
	for i, l := range layers {
		t := mapping[i]
		switch {
		case l < 0 || l >= len(in):
			return nil, fmt.Errorf("hidden-state loss: student layer %d of %d", l, len(in))
		case t < 0 || t >= len(out):
			return nil, fmt.Errorf("hidden-state loss: teacher layer %d of %d", t, len(out))
		case seen[l]:
			return nil, fmt.Errorf("hidden-state loss: student layer %d is matched twice", l)
		}
		seen[l] = true
		p := Pair{Student: l, Teacher: t, In: in[l], Out: out[t], off: -1}
		if p.In != p.Out {
			p.off = total
			total += p.In * p.Out
			if total > 1<<28 {
				return nil, fmt.Errorf("hidden-state loss: projections of more than %d parameters", 1<<28)
			}
		}
		m.Pairs = append(m.Pairs, p)
	}
	m.Params, m.pt = make([]float32, total), make([]float32, total)
	rng := rand.New(rand.NewPCG(seed, 0x68696464656e))
	for _, p := range m.Pairs {
		if p.off < 0 {
			continue
		}
		bound := 1 / math.Sqrt(float64(p.In))
		for i := range p.In * p.Out {
			m.Params[p.off+i] = float32(bound * (2*rng.Float64() - 1))
		}
	}
	m.Refresh()
	return m, nil
}

// String describes the matcher for a checkpoint's settings.
func (m *Matcher) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s × %g:", m.Loss, m.Weight)
	for _, p := range m.Pairs {
		fmt.Fprintf(&b, " %d(%d)->%d(%d)", p.Student, p.In, p.Teacher, p.Out)
	}
	return b.String()
}

// Refresh recomputes the projections' transposes after Params changed.
func (m *Matcher) Refresh() {
	for _, p := range m.Pairs {
		if p.off >= 0 {
			n := p.In * p.Out
			kernels.Transpose(m.pt[p.off:p.off+n], p.Out, m.Params[p.off:p.off+n], p.In, p.Out, p.In)
		}
	}
}

// Scratch is one goroutine's buffers for rows positions, and the gradient
// of the projections, laid out as Params.
type Scratch struct {
	y, dy, tmp []float32
	Grad       []float32
	// Dx holds, per pair, the gradient with respect to the student's state,
	// [rows][In], to add to the backward pass.
	Dx [][]float32
}

// NewScratch returns buffers for up to rows positions.
func (m *Matcher) NewScratch(rows int) *Scratch {
	widest := 0
	for _, p := range m.Pairs {
		widest = max(widest, p.Out)
	}
	s := &Scratch{y: make([]float32, rows*widest), dy: make([]float32, rows*widest), Grad: make([]float32, len(m.Params))}
	tmp := 0
	for _, p := range m.Pairs {
		s.Dx = append(s.Dx, make([]float32, rows*p.In))
		tmp = max(tmp, (p.In+p.Out)*rows)
	}
	s.tmp = make([]float32, tmp)
	return s
}

// Apply scores pair i on rows positions: x [rows][In] is the student's
// state and t [rows][Out] the teacher's. It returns Weight times the summed
// per-position loss, sets s.Dx[i] to the gradient of scale times that, and
// sets the pair's stretch of s.Grad to the gradient of its projection.
func (m *Matcher) Apply(s *Scratch, i int, x, t []float32, rows int, scale float64) float64 {
	p := m.Pairs[i]
	dx := s.Dx[i][:rows*p.In]
	y, dy := x[:rows*p.In], dx
	if p.off >= 0 {
		y, dy = s.y[:rows*p.Out], s.dy[:rows*p.Out]
		kernels.MatMul(y, p.Out, x, m.Params[p.off:], rows, p.Out, p.In)
	}
	loss := Loss(m.Loss, dy, y, t, rows, p.Out, m.Weight*scale)
	if p.off >= 0 {
		n := p.In * p.Out
		dyt, xt := s.tmp[:p.Out*rows], s.tmp[p.Out*rows:(p.Out+p.In)*rows]
		kernels.Transpose(dyt, rows, dy, p.Out, rows, p.Out)
		kernels.Transpose(xt, rows, x, p.In, rows, p.In)
		kernels.MatMul(s.Grad[p.off:p.off+n], p.In, dyt, xt, p.Out, p.In, rows)
		kernels.MatMul(dx, p.In, dy, m.pt[p.off:p.off+n], rows, p.In, p.Out)
	}
	return m.Weight * loss
}

// Loss returns Σ_t loss(y[t], h[t]) over n rows of width d, for loss MSE
// (the mean over the row of (y - h)²) or Cosine (1 - y·h/(|y||h|), the
// denominator at least 1e-8), computed in float64, and sets dy to its
// gradient with respect to y times scale.
func Loss(loss string, dy, y, h []float32, n, d int, scale float64) float64 {
	var total float64
	for t := range n {
		yr, hr, dr := y[t*d:(t+1)*d], h[t*d:(t+1)*d], dy[t*d:(t+1)*d]
		hr, dr = hr[:len(yr)], dr[:len(yr)]
		if loss == MSE {
			var s float64
			c := 2 * scale / float64(d)
			for i, v := range yr {
				e := float64(v) - float64(hr[i])
				s += e * e
				dr[i] = float32(c * e)
			}
			total += s / float64(d)
			continue
		}
		var yy, hh, yh float64
		for i, v := range yr {
			a, b := float64(v), float64(hr[i])
			yy += a * a
			hh += b * b
			yh += a * b
		}
		ny, nh := math.Sqrt(yy), math.Sqrt(hh)
		den := max(ny*nh, 1e-8)
		cos := yh / den
		total += 1 - cos
		// d(1 - cos)/dy = -(h/den - cos·y/|y|²), the second term only
		// where the denominator is not clamped.
		g := 0.0
		if ny*nh > 1e-8 {
			g = cos / yy
		}
		for i, v := range yr {
			dr[i] = float32(-scale * (float64(hr[i])/den - g*float64(v)))
		}
	}
	return total
}
