package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// sizes are the lengths every kernel is tested at: around the 8- and 16-float
// vector widths, the unrolled loop lengths, and a realistic width plus a tail.
var sizes = []int{0, 1, 3, 7, 15, 16, 17, 31, 33, 63, 64, 65, 100, 127, 129, 768 + 5}

// eachVariant runs f once per kernel variant this CPU and build support,
// with impl set to that variant.
func eachVariant(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	saved := impl
	defer func() { impl = saved }()
	for _, v := range variants() {
		impl = v
		t.Run(implNames[v], f)
	}
}

// poisoned returns n random floats in [-1, 1) followed by NaNs in the same
// backing array, starting one float into it so the data is misaligned: a kernel
// that reads past the end of its slice returns NaN.
func poisoned(rng *rand.Rand, n int) []float32 {
	buf := make([]float32, n+40)
	for i := range buf {
		buf[i] = float32(math.NaN())
	}
	s := buf[1 : 1+n]
	for i := range s {
		s[i] = rng.Float32()*2 - 1
	}
	return s
}

// dot64 returns the float64 dot product and the sum of |a[i]*b[i]|, the scale
// of the float32 rounding error of any summation order.
func dot64(a, b []float32) (sum, mag float64) {
	for i := range a {
		p := float64(a[i]) * float64(b[i])
		sum += p
		mag += math.Abs(p)
	}
	return sum, mag
}

// near reports whether got is within 1e-5*mag (plus a denormal-sized slack)
// of want: float32 sums of a few thousand terms in any order stay well inside.
func near(got float32, want, mag float64) bool {
	return math.Abs(float64(got)-want) <= 1e-5*mag+1e-30
}

func TestDot(t *testing.T) {
	eachVariant(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for _, n := range sizes {
			a, b := poisoned(rng, n), poisoned(rng, n+3)
			got := Dot(a, b)
			want, mag := dot64(a, b)
			if !near(got, want, mag) {
				t.Errorf("n=%d: Dot = %g, want %g (float64)", n, got, want)
			}
			if g := dotGeneric(a, b); !near(got, float64(g), mag) {
				t.Errorf("n=%d: Dot = %g, generic %g", n, got, g)
			}
		}
	})
}

func TestMatVec(t *testing.T) {
	eachVariant(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		for _, rows := range sizes {
			for _, cols := range sizes {
				w, x := poisoned(rng, rows*cols), poisoned(rng, cols)
				out := poisoned(rng, rows)
				MatVec(out, w, x, cols)
				for r := range out {
					want, mag := dot64(w[r*cols:(r+1)*cols], x)
					if !near(out[r], want, mag) {
						t.Fatalf("%dx%d: out[%d] = %g, want %g", rows, cols, r, out[r], want)
					}
				}
				if tail := out[:rows+5][rows:]; !math.IsNaN(float64(tail[0])) {
					t.Fatalf("%dx%d: wrote past out", rows, cols)
				}
			}
		}
	})
}

// TestMatVecT checks Wᵀ·x against float64 sums, that nothing past out's
// cols floats is written, and that rows of w past len(x) are never read (they
// are NaN).
func TestMatVecT(t *testing.T) {
	eachVariant(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(31, 32))
		for _, rows := range sizes {
			for _, cols := range sizes {
				w, x := poisoned(rng, rows*cols), poisoned(rng, rows)
				w = w[:rows*cols+min(cols, 3)] // a NaN row start past the end
				out := poisoned(rng, cols)
				MatVecT(out, w, x, cols)
				col := make([]float32, rows)
				for j := 0; j < cols; j++ {
					for r := range col {
						col[r] = w[r*cols+j]
					}
					want, mag := dot64(col, x)
					if !near(out[j], want, mag) {
						t.Fatalf("%dx%d: out[%d] = %g, want %g", rows, cols, j, out[j], want)
					}
				}
				if tail := out[:cols+5][cols:]; !math.IsNaN(float64(tail[0])) {
					t.Fatalf("%dx%d: wrote past out", rows, cols)
				}
			}
		}
	})
}

// TestMatVecSplit checks that every row of MatVec is bit-identical to Dot on
// that row, so results do not depend on how a caller splits the rows.
func TestMatVecSplit(t *testing.T) {
	eachVariant(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(21, 22))
		const rows = 29 // groups of 8 and 4 and single rows
		for _, cols := range sizes {
			w, x := poisoned(rng, rows*cols), poisoned(rng, cols)
			out := make([]float32, rows)
			MatVec(out, w, x, cols)
			for _, split := range []int{0, 1, 5, 13} {
				part := make([]float32, rows)
				MatVec(part[:split], w[:split*cols], x, cols)
				MatVec(part[split:], w[split*cols:], x, cols)
				for r := range out {
					if d := Dot(w[r*cols:(r+1)*cols], x); out[r] != d || part[r] != d {
						t.Fatalf("cols=%d split=%d row %d: MatVec %g, split MatVec %g, Dot %g", cols, split, r, out[r], part[r], d)
					}
				}
			}
		}
	})
}

// TestMatVecAlignments runs MatVec on rows that start 0 to 15 floats past a
// cache line (the AVX-512 kernel assembles such rows from aligned loads):
// every row must equal Dot on it to the bit, and a float64 sum to rounding.
func TestMatVecAlignments(t *testing.T) {
	eachVariant(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(61, 62))
		for _, cols := range []int{16, 32, 48, 64, 768} {
			for _, rows := range []int{8, 9, 13, 16, 24} {
				buf := make([]float32, rows*cols+32)
				a := int(-uintptr(unsafe.Pointer(&buf[0])) & 63 / 4) // buf[a] starts a cache line
				for m := range 16 {
					w := buf[a+m : a+m+rows*cols]
					for i := range w {
						w[i] = float32(rng.NormFloat64())
					}
					x := poisoned(rng, cols)
					out := poisoned(rng, rows)
					MatVec(out, w, x, cols)
					for r := range out {
						row := w[r*cols : (r+1)*cols]
						want, mag := dot64(row, x)
						if d := Dot(row, x); out[r] != d || !near(out[r], want, mag) {
							t.Fatalf("cols=%d rows=%d m=%d: row %d = %g, Dot %g, want %g", cols, rows, m, r, out[r], d, want)
						}
					}
				}
			}
		}
	})
}

func TestMatMul(t *testing.T) {
	type shape struct{ n, rows, cols, ldo int }
	var shapes []shape
	for _, s := range sizes {
		for _, o := range []int{1, 7, 17} {
			shapes = append(shapes, shape{s, o, o + 2, o}, shape{o, s, o + 1, s + 3}, shape{o + 4, o, s, o})
		}
	}
	shapes = append(shapes,
		shape{129, 65, 773, 70},   // every edge at once
		shape{9, 13, 2100, 13},    // three K blocks with a masked tail
		shape{5, 6, 1024 + 16, 6}, // two K blocks of 528
		shape{128, 31, 768, 31},
	)
	eachVariant(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		for _, s := range shapes {
			x, w := poisoned(rng, s.n*s.cols), poisoned(rng, s.rows*s.cols)
			size := 0
			if s.n > 0 {
				size = (s.n-1)*s.ldo + s.rows
			}
			out := poisoned(rng, size)
			for i := range out {
				out[i] = -7 // sentinel for the gaps between rows of out
			}
			MatMul(out, s.ldo, x, w, s.n, s.rows, s.cols)
			if v := out[:size+1][size]; v == v {
				t.Fatalf("%+v: wrote past out", s)
			}
			for i, v := range out {
				t0, r := i/s.ldo, i%s.ldo
				if r >= s.rows || t0 >= s.n {
					if v != -7 {
						t.Fatalf("%+v: out[%d] = %g, was not to be written", s, i, v)
					}
					continue
				}
				want, mag := dot64(x[t0*s.cols:(t0+1)*s.cols], w[r*s.cols:(r+1)*s.cols])
				if !near(v, want, mag) {
					t.Fatalf("%+v: out[%d*ldo+%d] = %g, want %g", s, t0, r, v, want)
				}
			}
		}
	})
}

// TestMatMulSplit checks that MatMul gives the same bits when the caller
// splits the rows or the tokens, as the engine does across cores.
func TestMatMulSplit(t *testing.T) {
	eachVariant(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(23, 24))
		const n, rows = 11, 29
		for _, cols := range []int{1, 17, 100, 1040, 2100} {
			x, w := poisoned(rng, n*cols), poisoned(rng, rows*cols)
			whole := make([]float32, n*rows)
			MatMul(whole, rows, x, w, n, rows, cols)
			for _, split := range []int{1, 5, 7} {
				part := make([]float32, n*rows)
				MatMul(part, rows, x, w[:split*cols], n, split, cols)
				MatMul(part[split:], rows, x, w[split*cols:], n, rows-split, cols)
				byTok := make([]float32, n*rows)
				MatMul(byTok, rows, x[:split*cols], w, split, rows, cols)
				MatMul(byTok[split*rows:], rows, x[split*cols:], w, n-split, rows, cols)
				for i := range whole {
					if part[i] != whole[i] || byTok[i] != whole[i] {
						t.Fatalf("cols=%d split=%d: out[%d] = %g whole, %g split by rows, %g by tokens",
							cols, split, i, whole[i], part[i], byTok[i])
					}
				}
			}
		}
	})
}

func TestTranspose(t *testing.T) {
	eachVariant(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(33, 34))
		for _, s := range []struct{ rows, cols, lds, ldd int }{
			{1, 1, 1, 1}, {16, 16, 16, 16}, {17, 33, 40, 19}, {128, 768, 768, 2048}, {5, 100, 101, 9}, {48, 15, 15, 50},
			// Whole 16-row tiles and rows farther apart than their length:
			// the last row ends before a full stride does.
			{16, 16, 24, 16}, {32, 20, 48, 40},
		} {
			src := poisoned(rng, (s.rows-1)*s.lds+s.cols)
			size := (s.cols-1)*s.ldd + s.rows
			dst := poisoned(rng, size)
			for i := range dst {
				dst[i] = -7
			}
			Transpose(dst, s.ldd, src, s.lds, s.rows, s.cols)
			if v := dst[:size+1][size]; v == v {
				t.Fatalf("%+v: wrote past dst", s)
			}
			for k, v := range dst {
				j, i := k/s.ldd, k%s.ldd
				want := float32(-7)
				if i < s.rows {
					want = src[i*s.lds+j]
				}
				if !sameBits(v, want) {
					t.Fatalf("%+v: dst[%d*ldd+%d] = %g, want %g", s, j, i, v, want)
				}
			}
		}
	})
}

// TestMatMulTokenSplits checks that splitting many tokens into runs of a few
// gives the same bits: with AVX-512 the two take different kernels (packed
// weights, packed tokens) that must sum alike.
func TestMatMulTokenSplits(t *testing.T) {
	eachVariant(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(25, 26))
		for _, s := range []struct{ n, rows, cols, part int }{
			{72, 50, 130, 8}, {128, 197, 768, 32}, {100, 13, 2100, 20}, {65, 48, 17, 1}, {40, 30, 64, 16},
		} {
			x, w := poisoned(rng, s.n*s.cols), poisoned(rng, s.rows*s.cols)
			whole := make([]float32, s.n*s.rows)
			MatMul(whole, s.rows, x, w, s.n, s.rows, s.cols)
			split := make([]float32, s.n*s.rows)
			for t0 := 0; t0 < s.n; t0 += s.part {
				m := min(s.part, s.n-t0)
				MatMul(split[t0*s.rows:], s.rows, x[t0*s.cols:], w, m, s.rows, s.cols)
			}
			for i := range whole {
				if !sameBits(whole[i], split[i]) {
					t.Fatalf("%+v: out[%d] = %g whole, %g in runs of %d tokens", s, i, whole[i], split[i], s.part)
				}
			}
		}
	})
}

func TestAxpy(t *testing.T) {
	eachVariant(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 8))
		for _, n := range sizes {
			x := poisoned(rng, n)
			y := poisoned(rng, n+5)[:n]
			y0 := append([]float32(nil), y[:n+5]...)
			const a = 0.75
			Axpy(a, x, y)
			for i, v := range y[:n+5] {
				if i >= n {
					if v != y0[i] {
						t.Fatalf("n=%d: y[%d] changed past len(x)", n, i)
					}
					continue
				}
				want := float64(y0[i]) + a*float64(x[i])
				if !near(v, want, math.Abs(float64(y0[i]))+a*math.Abs(float64(x[i]))) {
					t.Fatalf("n=%d: y[%d] = %g, want %g", n, i, v, want)
				}
			}
		}
	})
}

func TestStreamRead(t *testing.T) {
	eachVariant(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(9, 10))
		for _, n := range append(sizes, 4096+129) {
			buf := poisoned(rng, n)
			var want, mag float64
			for _, v := range buf {
				want += float64(v)
				mag += math.Abs(float64(v))
			}
			if got := StreamRead(buf); !near(got, want, mag) {
				t.Errorf("n=%d: StreamRead = %g, want %g", n, got, want)
			}
		}
	})
}

// TestNonFinite checks that NaN and Inf inputs reach the outputs they feed and
// no others, in every variant.
func TestNonFinite(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	isNaN := func(v float32) bool { return v != v }
	eachVariant(t, func(t *testing.T) {
		for _, n := range []int{1, 17, 100} {
			a, b := make([]float32, n), make([]float32, n)
			for i := range a {
				a[i], b[i] = 1, 1
			}
			a[n-1] = nan
			if got := Dot(a, b); !isNaN(got) {
				t.Errorf("n=%d: Dot with a NaN = %g", n, got)
			}
			a[n-1] = inf
			if got := Dot(a, b); !math.IsInf(float64(got), 1) {
				t.Errorf("n=%d: Dot with +Inf = %g", n, got)
			}
			b[n-1] = 0
			if got := Dot(a, b); !isNaN(got) {
				t.Errorf("n=%d: Dot with Inf*0 = %g", n, got)
			}
		}

		const n, rows, cols = 5, 7, 33
		x, w := make([]float32, n*cols), make([]float32, rows*cols)
		for i := range x {
			x[i] = 0.5
		}
		for i := range w {
			w[i] = 0.25
		}
		x[2*cols+cols-1] = nan // token 2
		w[4*cols+3] = inf      // row 4
		out := make([]float32, n*rows)
		MatMul(out, rows, x, w, n, rows, cols)
		for tk := 0; tk < n; tk++ {
			for r := 0; r < rows; r++ {
				v := out[tk*rows+r]
				switch {
				case tk == 2:
					if !isNaN(v) {
						t.Errorf("MatMul[%d,%d] = %g, want NaN", tk, r, v)
					}
				case r == 4:
					if !math.IsInf(float64(v), 1) {
						t.Errorf("MatMul[%d,%d] = %g, want +Inf", tk, r, v)
					}
				default:
					if v != 0.125*cols {
						t.Errorf("MatMul[%d,%d] = %g, want %g", tk, r, v, 0.125*cols)
					}
				}
			}
		}
		mv := make([]float32, rows)
		MatVec(mv, w, x[2*cols:3*cols], cols)
		for r, v := range mv {
			if !isNaN(v) {
				t.Errorf("MatVec NaN x: out[%d] = %g", r, v)
			}
		}
		MatVec(mv, w, x[:cols], cols)
		for r, v := range mv {
			if (r == 4) != math.IsInf(float64(v), 1) {
				t.Errorf("MatVec Inf row: out[%d] = %g", r, v)
			}
		}
	})
}

func TestScaleAdd(t *testing.T) {
	eachVariant(t, func(t *testing.T) {
		for _, n := range sizes {
			x := make([]float32, n)
			d := poisoned(rand.New(rand.NewPCG(9, 10)), n)
			for i := range x {
				x[i] = float32(i)
				d[i] = 1
			}
			Scale(x, 0.5)
			Add(d, x)
			if v := d[:n+1][n]; v == v {
				t.Fatalf("n=%d: Add wrote past dst", n)
			}
			for i := range x {
				if x[i] != float32(i)/2 || d[i] != 1+float32(i)/2 {
					t.Fatalf("n=%d: i=%d: Scale gave %g, Add gave %g", n, i, x[i], d[i])
				}
			}
		}
	})
}

func TestRMSNorm(t *testing.T) {
	// x = 1..4, weight 1, eps 0: mean square 7.5.
	out := make([]float32, 4)
	RMSNorm(out, []float32{1, 2, 3, 4}, []float32{1, 1, 1, 1}, 0)
	for i, v := range out {
		want := float64(i+1) / math.Sqrt(7.5)
		if math.Abs(float64(v)-want) > 1e-6 {
			t.Errorf("out[%d] = %g, want %g", i, v, want)
		}
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for _, n := range sizes[1:] {
		x, w := poisoned(rng, n), poisoned(rng, n)
		var ss float64
		for _, v := range x {
			ss += float64(v) * float64(v)
		}
		s := 1 / math.Sqrt(ss/float64(n)+1e-5)
		got := append([]float32(nil), x...)
		RMSNorm(got, got, w, 1e-5) // in place
		for i, v := range got {
			want := float64(w[i]) * s * float64(x[i])
			if math.Abs(float64(v)-want) > 1e-5*math.Abs(want)+1e-6 {
				t.Fatalf("n=%d: out[%d] = %g, want %g", n, i, v, want)
			}
		}
	}
}

// sameBits reports whether a and b are the same float32, any NaN matching any NaN.
func sameBits(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

// ulps returns how far got is from the exact value want, in units of the
// float32 spacing at float32(want) (the subnormal spacing below the normals).
func ulps(got float32, want float64) float64 {
	w := float32(want)
	if math.IsInf(float64(w), 0) || want == 0 {
		if float64(got) == float64(w) {
			return 0
		}
		return math.Inf(1)
	}
	u := math.Abs(float64(math.Nextafter32(w, float32(math.Inf(1))) - w))
	return math.Abs(float64(got)-want) / u
}

// expInputs returns float32 inputs for exp: every 1021st bit pattern (all
// signs, exponents and NaN payloads), the ends of the clamp and of the
// subnormal and overflow ranges with their neighbours, and the specials.
func expInputs() []float32 {
	var xs []float32
	for b := uint64(0); b < 1<<32; b += 1021 {
		xs = append(xs, math.Float32frombits(uint32(b)))
	}
	for _, c := range []float32{0, 1, -1, 0.5, 88.72283, 88.7228394, 88.8, 89, 89.1, -87.33654, -87.4,
		-103.27893, -103.972, -103.9721, -104, -104.1, -1e30, 1e30, 1e-30, -1e-30, 1e-45, -1e-45} {
		for _, v := range []float32{c, -c} {
			xs = append(xs, v, math.Nextafter32(v, float32(math.Inf(1))), math.Nextafter32(v, float32(math.Inf(-1))))
		}
	}
	inf := float32(math.Inf(1))
	return append(xs, inf, -inf, float32(math.NaN()), float32(-math.NaN()))
}

// TestExp checks expGeneric against math.Exp (within 1 ulp everywhere, +Inf,
// 0 and NaN where they belong) and every variant against it, to the bit, at
// every vector position and length.
func TestExp(t *testing.T) {
	xs := expInputs()
	worst, worstX := 0.0, float32(0)
	for _, x := range xs {
		got := expGeneric(x)
		if x != x {
			if got == got {
				t.Errorf("exp(NaN) = %g", got)
			}
			continue
		}
		want := math.Exp(float64(x))
		if e := ulps(got, want); e > worst {
			worst, worstX = e, x
		}
	}
	if worst >= 1 {
		t.Errorf("exp(%g) = %g is %.3f ulp from %g", worstX, expGeneric(worstX), worst, math.Exp(float64(worstX)))
	}
	t.Logf("max error %.3f ulp, at %g", worst, worstX)
	eachVariant(t, func(t *testing.T) {
		for _, n := range append(sizes, len(xs)) {
			got := append(poisoned(rand.New(rand.NewPCG(1, uint64(n))), n)[:0], xs[:n]...)
			expVec(got)
			for i, x := range xs[:n] {
				if want := expGeneric(x); !sameBits(got[i], want) {
					t.Fatalf("n=%d: exp(%g) = %g, generic %g", n, x, got[i], want)
				}
			}
		}
	})
}

func TestSoftmax(t *testing.T) {
	eachVariant(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(13, 14))
		for _, n := range sizes {
			for _, d := range []float32{1, 8} {
				x := poisoned(rng, n)
				for i := range x {
					x[i] *= 30 * d
				}
				ref := append([]float32(nil), x...)
				m := math.Inf(-1)
				for _, v := range x {
					m = math.Max(m, float64(v/d))
				}
				var sum float64
				want := make([]float64, n)
				for i, v := range x {
					want[i] = math.Exp(float64(v/d) - m)
					sum += want[i]
				}
				SoftmaxDiv(x, d)
				softmaxGeneric(ref, d)
				for i, v := range x {
					if w := want[i] / sum; math.Abs(float64(v)-w) > 1e-6*w+1e-9 {
						t.Fatalf("n=%d d=%g: x[%d] = %g, want %g", n, d, i, v, w)
					}
					if !sameBits(v, ref[i]) {
						t.Fatalf("n=%d d=%g: x[%d] = %g, generic %g", n, d, i, v, ref[i])
					}
				}
			}
		}
		x := []float32{float32(math.Inf(-1)), 0, float32(math.Inf(-1)), 0}
		Softmax(x)
		if x[0] != 0 || x[1] != 0.5 || x[2] != 0 || x[3] != 0.5 {
			t.Errorf("Softmax with -Inf (masked) entries = %v", x)
		}
		for _, n := range []int{3, 17, 40} {
			x = make([]float32, n)
			x[n/2] = float32(math.NaN())
			Softmax(x)
			for i, v := range x {
				if v == v {
					t.Errorf("n=%d: Softmax with a NaN: x[%d] = %g, want NaN", n, i, v)
				}
			}
		}
	})
}

func TestSwiGLU(t *testing.T) {
	eachVariant(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(15, 16))
		for _, n := range sizes {
			g, u := poisoned(rng, n), poisoned(rng, n)
			for i := range g {
				g[i] *= 20
			}
			g0 := append([]float32(nil), g...)
			ref := append([]float32(nil), g...)
			SwiGLU(g, u)
			swiGLUGeneric(ref, u)
			for i, v := range g {
				x := float64(g0[i])
				want := x / (1 + math.Exp(-x)) * float64(u[i])
				if math.Abs(float64(v)-want) > 1e-6*math.Abs(want)+1e-7 {
					t.Fatalf("n=%d: gate[%d] = %g, want %g", n, i, v, want)
				}
				if !sameBits(v, ref[i]) {
					t.Fatalf("n=%d: gate[%d] = %g, generic %g", n, i, v, ref[i])
				}
			}
		}
		g := []float32{-100, 100, float32(math.Inf(-1)), float32(math.Inf(1)), float32(math.NaN()), 0}
		SwiGLU(g, []float32{1, 1, 1, 1, 1, 1})
		if g[0] != 0 || g[1] != 100 || g[2] == g[2] || !math.IsInf(float64(g[3]), 1) || g[4] == g[4] || g[5] != 0 {
			t.Errorf("SwiGLU(-100, 100, -Inf, +Inf, NaN, 0) = %v, want [-0 100 NaN +Inf NaN 0]", g)
		}
	})
}

func TestRoPE(t *testing.T) {
	eachVariant(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(17, 18))
		for _, hd := range []int{2, 4, 16, 48, 64, 128, 6} {
			const heads = 3
			half := hd / 2
			cos, sin := make([]float32, half), make([]float32, half)
			for i := range cos {
				theta := 7 * math.Pow(10000, -float64(2*i)/float64(hd)) // position 7
				cos[i], sin[i] = float32(math.Cos(theta)), float32(math.Sin(theta))
			}
			x := poisoned(rng, heads*hd)
			for _, pairs := range []bool{true, false} {
				got := append([]float32(nil), x...)
				RoPE(got, hd, cos, sin, pairs)
				ref := append([]float32(nil), x...)
				ropeGeneric(ref, hd, cos, sin, pairs)
				for h := 0; h < heads; h++ {
					for i := 0; i < half; i++ {
						i0, i1 := h*hd+i, h*hd+i+half
						if pairs {
							i0, i1 = h*hd+2*i, h*hd+2*i+1
						}
						// Rotating x0 + i*x1 by theta, in float64.
						z := complex(float64(x[i0]), float64(x[i1])) * complex(float64(cos[i]), float64(sin[i]))
						if math.Abs(float64(got[i0])-real(z)) > 1e-6 || math.Abs(float64(got[i1])-imag(z)) > 1e-6 {
							t.Fatalf("hd=%d pairs=%v head %d pair %d: got (%g, %g), want (%g, %g)",
								hd, pairs, h, i, got[i0], got[i1], real(z), imag(z))
						}
						if !sameBits(got[i0], ref[i0]) || !sameBits(got[i1], ref[i1]) {
							t.Fatalf("hd=%d pairs=%v head %d pair %d: got (%g, %g), generic (%g, %g)",
								hd, pairs, h, i, got[i0], got[i1], ref[i0], ref[i1])
						}
					}
				}
			}
		}
	})
}

// TestRoPEHalfToPairs checks that the interleaving rotation gives RoPE's
// rotate-half values bit for bit, moved to the pair positions.
func TestRoPEHalfToPairs(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	for _, hd := range []int{2, 6, 64, 128, 514} {
		const heads = 3
		half := hd / 2
		cos, sin := make([]float32, half), make([]float32, half)
		for i := range cos {
			theta := 11 * math.Pow(10000, -float64(2*i)/float64(hd))
			cos[i], sin[i] = float32(math.Cos(theta)), float32(math.Sin(theta))
		}
		x := poisoned(rng, heads*hd)
		want := append([]float32(nil), x...)
		RoPE(want, hd, cos, sin, false)
		got := append([]float32(nil), x...)
		RoPEHalfToPairs(got, hd, cos, sin)
		for h := 0; h < heads; h++ {
			for i := 0; i < half; i++ {
				for j, src := range []int{h*hd + i, h*hd + half + i} {
					g, w := got[h*hd+2*i+j], want[src]
					if math.Float32bits(g) != math.Float32bits(w) {
						t.Fatalf("hd=%d head %d: element %d is %g, want %g", hd, h, 2*i+j, g, w)
					}
				}
			}
		}
	}
}

func TestRoPEPanics(t *testing.T) {
	for _, hd := range []int{0, -2, 3, 5} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("RoPE with headDim %d on 10 floats did not panic", hd)
				}
			}()
			RoPE(make([]float32, 10), hd, make([]float32, 8), make([]float32, 8), true)
		}()
	}
}

func TestMaxIndex(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, c := range []struct {
		x    []float32
		want int
	}{
		{nil, -1},
		{[]float32{5}, 0},
		{[]float32{1, 3, 2}, 1},
		{[]float32{3, 1, 3}, 0},
		{[]float32{-2, -1, -1}, 1},
		{[]float32{nan, 1, 2}, 2},
		{[]float32{1, nan, 0}, 0},
		{[]float32{nan, nan}, 0},
		{[]float32{0, inf, 1}, 1},
	} {
		if got := MaxIndex(c.x); got != c.want {
			t.Errorf("MaxIndex(%v) = %d, want %d", c.x, got, c.want)
		}
	}
}

// TestNoAllocs checks that no kernel allocates: the engine calls them per token.
func TestNoAllocs(t *testing.T) {
	const n, rows, cols = 5, 13, 100 // a token remainder and a row remainder
	x, w, out := make([]float32, n*cols), make([]float32, rows*cols), make([]float32, n*rows)
	eachVariant(t, func(t *testing.T) {
		for name, f := range map[string]func(){
			"Dot":     func() { sink += Dot(x, w) },
			"MatVec":  func() { MatVec(out[:rows], w, x, cols) },
			"MatMul":  func() { MatMul(out, rows, x, w, n, rows, cols) },
			"Axpy":    func() { Axpy(2, x, w) },
			"Softmax": func() { Softmax(out) },
			"SwiGLU":  func() { SwiGLU(out, x) },
			"RMSNorm": func() { RMSNorm(out, out, w, 1e-5) },
		} {
			if a := testing.AllocsPerRun(10, f); a != 0 {
				t.Errorf("%s: %v allocations per call", name, a)
			}
		}
	})
}

func TestFeatures(t *testing.T) {
	f := Features()
	for _, v := range variants() {
		if implNames[v] == f {
			return
		}
	}
	t.Errorf("Features() = %q, not a supported variant %v", f, variants())
}

func ExampleDot() {
	fmt.Println(Dot([]float32{1, 2, 3}, []float32{4, 5, 6}))
	// Output: 32
}

func ExampleSoftmax() {
	x := []float32{0, 0, float32(math.Log(2))}
	Softmax(x)
	fmt.Printf("%.2f\n", x)
	// Output: [0.25 0.25 0.50]
}
