package hidden

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/shrinkml/shrink/internal/gradcheck"
)

// refLoss is Loss in float64: y [n][d] against h.
func refLoss(loss string, y, h []float64, n, d int) float64 {
	var total float64
	for t := range n {
		yr, hr := y[t*d:(t+1)*d], h[t*d:(t+1)*d]
		if loss == MSE {
			var s float64
			for i := range yr {
				s += (yr[i] - hr[i]) * (yr[i] - hr[i])
			}
			total += s / float64(d)
			continue
		}
		yy, hh := gradcheck.Dot64(yr, yr), gradcheck.Dot64(hr, hr)
		total += 1 - gradcheck.Dot64(yr, hr)/math.Max(math.Sqrt(yy)*math.Sqrt(hh), 1e-8)
	}
	return total
}

// refProject is x [n][in] times pᵀ, p [out][in].
func refProject(x, p []float64, n, in, out int) []float64 {
	y := make([]float64, n*out)
	for t := range n {
		for o := range out {
			y[t*out+o] = gradcheck.Dot64(x[t*in:(t+1)*in], p[o*in:(o+1)*in])
		}
	}
	return y
}

func TestGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, loss := range []string{MSE, Cosine} {
		for _, sz := range [][3]int{{1, 1, 1}, {3, 5, 5}, {4, 6, 9}, {5, 12, 7}} {
			n, in, out := sz[0], sz[1], sz[2]
			scale := 0.7
			h := gradcheck.RandSlice(rng, n*out, 1)
			if loss == Cosine && out == 1 {
				continue // the cosine of two numbers is ±1: nothing to check
			}
			m, err := New(loss, 1.5, nil, nil, []int{in}, []int{out}, 1)
			if err != nil {
				t.Fatal(err)
			}
			inputs := [][]float64{gradcheck.RandSlice(rng, n*in, 1)}
			if in != out {
				inputs = append(inputs, gradcheck.RandSlice(rng, in*out, 0.5))
			}
			gradcheck.Check(t, gradcheck.Case{
				Name:   fmt.Sprintf("%s %dx%d->%d", loss, n, in, out),
				Inputs: inputs,
				Ref: func(v [][]float64) float64 {
					y := v[0]
					if in != out {
						y = refProject(v[0], v[1], n, in, out)
					}
					return scale * 1.5 * refLoss(loss, y, h, n, out)
				},
				Grad: func(v [][]float32) (float64, [][]float32) {
					if in != out {
						copy(m.Params, v[1])
						m.Refresh()
					}
					s := m.NewScratch(n)
					f := m.Apply(s, 0, v[0], gradcheck.F32(h), n, scale)
					grads := [][]float32{s.Dx[0]}
					if in != out {
						grads = append(grads, s.Grad)
					}
					return scale * f, grads
				},
			})
		}
	}
}

func TestDefaultMap(t *testing.T) {
	for _, c := range []struct {
		students, teachers int
		want               []int
	}{
		{2, 4, []int{1, 3}},
		{3, 12, []int{3, 7, 11}},
		{4, 4, []int{0, 1, 2, 3}},
		{3, 2, []int{0, 0, 1}}, // round(2/3)-1 = 0, round(4/3)-1 = 0, round(2)-1 = 1
		{4, 1, []int{0, 0, 0, 0}},
		{1, 6, []int{5}},
	} {
		if got := DefaultMap(c.students, c.teachers); !slices.Equal(got, c.want) {
			t.Errorf("DefaultMap(%d, %d) = %v, want %v", c.students, c.teachers, got, c.want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	in, out := []int{4, 4}, []int{8, 8, 8}
	for _, c := range []struct {
		loss            string
		weight          float64
		layers, mapping []int
		msg             string
	}{
		{"l1", 1, nil, nil, "loss \"l1\""},
		{MSE, 0, nil, nil, "weight 0"},
		{MSE, math.NaN(), nil, nil, "weight NaN"},
		{MSE, 1, []int{2}, nil, "student layer 2 of 2"},
		{MSE, 1, []int{0}, []int{3}, "teacher layer 3 of 3"},
		{MSE, 1, []int{0, 0}, nil, "matched twice"},
		{MSE, 1, []int{0, 1}, []int{0}, "1 teacher layers for 2"},
	} {
		if _, err := New(c.loss, c.weight, c.layers, c.mapping, in, out, 1); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("New(%q, %g, %v, %v): %v; want %q", c.loss, c.weight, c.layers, c.mapping, err, c.msg)
		}
	}
	m, err := New(Cosine, 0.5, nil, nil, in, out, 1)
	if err != nil || len(m.Params) != 2*4*8 || m.String() != "cosine × 0.5: 0(4)->1(8) 1(4)->2(8)" {
		t.Errorf("New: %v, %d parameters, %q", err, len(m.Params), m)
	}
}
