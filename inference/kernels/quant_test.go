package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/x448/float16"
)

var qFormats = []QFormat{Q8_0, Q4_0, Q4_1}

// randomBlocks returns rows rows of nb random blocks of format f, with fp16
// scales of either sign between 2^-12 and 2^-4 (and minimums as large), and
// every weight value equally likely.
func randomBlocks(rng *rand.Rand, f QFormat, rows, nb int) []byte {
	bb := f.BlockBytes()
	w := make([]byte, rows*nb*bb)
	for i := range w {
		w[i] = byte(rng.Uint32())
	}
	scale := func() uint16 {
		v := float32(math.Ldexp(1+rng.Float64(), -4-rng.IntN(9)))
		if rng.IntN(2) == 0 {
			v = -v
		}
		return float16.Fromfloat32(v).Bits()
	}
	for b := 0; b < rows*nb; b++ {
		putF16(w[b*bb:], scale())
		if f == Q4_1 {
			putF16(w[b*bb+2:], scale())
		}
	}
	return w
}

func putF16(b []byte, h uint16) { b[0], b[1] = byte(h), byte(h>>8) }

func abs64(v int64) int64 { return max(v, -v) }

// randomActs returns n rows of cols floats in [-1, 1), with some blocks
// scaled far up or down and one all zero, quantized.
func randomActs(rng *rand.Rand, n, cols int) (*Q8Acts, []float32) {
	x := make([]float32, n*cols)
	for i := range x {
		x[i] = rng.Float32()*2 - 1
	}
	for b := 0; b < len(x)/QBlock; b++ {
		blk := x[b*QBlock : (b+1)*QBlock]
		switch b % 7 {
		case 3:
			Scale(blk, 1e4)
		case 5:
			Scale(blk, 1e-4)
		case 6:
			if b%14 == 6 {
				clear(blk)
			}
		}
	}
	a := new(Q8Acts)
	a.Quantize(x, n, cols)
	return a, x
}

// qDot64 is the exact product of weight row r with input row t in float64:
// each block's integer sum times the two scales, plus Q4_1's minimum term;
// and mag, the sum of the magnitudes of every scaled product, which bounds
// the rounding of any summation order.
func qDot64(f QFormat, w []byte, r int, x *Q8Acts, t int) (sum, mag float64) {
	bb := f.BlockBytes()
	for b := 0; b < x.nb; b++ {
		blk := w[(r*x.nb+b)*bb:][:bb]
		q := x.q[t*x.cols+b*QBlock:][:QBlock]
		dx := float64(x.d[t*x.stride+b])
		// The kernels may sum u = w+off (unsigned) times q and subtract
		// off*Σq, so the magnitudes of both forms bound their rounding.
		off := map[QFormat]int64{Q8_0: 128, Q4_0: 8, Q4_1: 0}[f]
		var s, sx, sa int64
		for i := 0; i < QBlock; i++ {
			var wi int64
			switch f {
			case Q8_0:
				wi = int64(int8(blk[2+i]))
			case Q4_0:
				wi = int64(blk[2+i%16]>>(4*(i/16))&15) - 8
			case Q4_1:
				wi = int64(blk[4+i%16] >> (4 * (i / 16)) & 15)
			}
			s += wi * int64(q[i])
			sa += abs64(wi*int64(q[i])) + abs64((wi+off)*int64(q[i]))
			sx += int64(q[i])
		}
		scale := float64(f16(blk)) * dx
		sum += float64(s) * scale
		mag += float64(sa+off*abs64(sx)) * math.Abs(scale)
		if f == Q4_1 {
			m := float64(f16(blk[2:])) * dx * float64(sx)
			sum += m
			mag += math.Abs(m)
		}
	}
	return sum, mag
}

// qNear allows float32 rounding of each scale and of a sum of up to a few
// hundred terms in any order.
func qNear(got float32, want, mag float64) bool {
	return math.Abs(float64(got)-want) <= 1e-5*mag+1e-30
}

func TestF16ToF32(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		got, want := f16ToF32(uint16(h)), float16.Frombits(uint16(h)).Float32()
		if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
			t.Fatalf("f16ToF32(%#04x) = %g, want %g", h, got, want)
		}
	}
}

func TestQuantize(t *testing.T) {
	tests := []struct {
		name string
		x    func(i int) float32
	}{
		{"zeros", func(int) float32 { return 0 }},
		{"ramp", func(i int) float32 { return float32(i%32) - 15.5 }},
		{"extreme", func(i int) float32 { return float32(1-2*(i&1)) * 3e38 }},
		{"tiny", func(i int) float32 { return float32(i%5) * 1e-40 }},
		{"one spike", func(i int) float32 {
			if i%32 == 7 {
				return -2
			}
			return 1e-3
		}},
		{"halves", func(i int) float32 { return (float32(i%32) + 0.5) * (127.0 / 31.5) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const n, cols = 3, 96
			x := make([]float32, n*cols)
			for i := range x {
				x[i] = tc.x(i)
			}
			var a Q8Acts
			a.Quantize(make([]float32, 5*4128), 5, 4128) // a larger earlier use must not leak
			a.Quantize(x, n, cols)
			if a.Rows() != n || a.Cols() != cols || a.stride != 8 {
				t.Fatalf("Rows %d Cols %d stride %d", a.Rows(), a.Cols(), a.stride)
			}
			for tt := 0; tt < n; tt++ {
				for b := 0; b < a.stride; b++ {
					d, c := a.d[tt*a.stride+b], a.c[tt*a.stride+b]
					if b >= a.nb {
						if d != 0 || c != 0 {
							t.Fatalf("row %d padding %d: d %g c %g, want zeros", tt, b, d, c)
						}
						continue
					}
					var amax float64
					var sum int32
					for i := 0; i < QBlock; i++ {
						v := x[tt*cols+b*QBlock+i]
						q := a.q[tt*cols+b*QBlock+i]
						amax = math.Max(amax, math.Abs(float64(v)))
						sum += int32(q)
						if q < -127 {
							t.Fatalf("q = %d", q)
						}
						if e := math.Abs(float64(q)*float64(d) - float64(v)); e > 0.5001*float64(d) {
							t.Fatalf("row %d block %d: %g quantized to %d*%g", tt, b, v, q, d)
						}
					}
					if want := float32(amax) / 127; d != want {
						t.Fatalf("row %d block %d: d = %g, want %g", tt, b, d, want)
					}
					if c != d*float32(sum) {
						t.Fatalf("row %d block %d: c %g, sum %d", tt, b, c, sum)
					}
				}
			}
		})
	}
}

// TestQuantizeVariants requires every variant's Quantize to give the generic
// loop's bits: the same float32 operations in the same rounding.
func TestQuantizeVariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	const n, cols = 7, 4128
	x := make([]float32, n*cols)
	for i := range x {
		switch i / QBlock % 5 {
		case 0: // integers and halves times a power of two: ties after the division
			x[i] = float32(rng.IntN(255)-127) * 0.5 * 0.25
		case 1:
			x[i] = 0
		case 2:
			x[i] = (rng.Float32()*2 - 1) * 1e-39 // subnormal
		default:
			x[i] = float32(rng.NormFloat64()) * float32(math.Ldexp(1, rng.IntN(40)-20))
		}
	}
	var want Q8Acts
	want.n, want.cols, want.nb, want.stride = n, cols, cols/QBlock, (cols/QBlock+7)&^7
	want.q, want.d, want.c = make([]int8, n*cols), make([]float32, n*want.stride), make([]float32, n*want.stride)
	want.s = make([]int32, n*want.stride)
	for tt := 0; tt < n; tt++ {
		quantizeRow(want.q[tt*cols:(tt+1)*cols], want.d[tt*want.stride:(tt+1)*want.stride],
			want.c[tt*want.stride:(tt+1)*want.stride], want.s[tt*want.stride:(tt+1)*want.stride], x[tt*cols:(tt+1)*cols])
		for b := 0; b < want.stride; b++ {
			var sum int32
			for i := b * QBlock; i < min(cols, (b+1)*QBlock); i++ {
				sum += int32(want.q[tt*cols+i])
			}
			if want.s[tt*want.stride+b] != sum {
				t.Fatalf("token %d block %d: s %d, Σq %d", tt, b, want.s[tt*want.stride+b], sum)
			}
		}
	}
	eachVariant(t, func(t *testing.T) {
		var a Q8Acts
		a.Quantize(x, n, cols)
		for i := range want.q {
			if a.q[i] != want.q[i] {
				t.Fatalf("q[%d] = %d, want %d (x %g, d %g)", i, a.q[i], want.q[i], x[i], want.d[i/cols*want.stride+i%cols/QBlock])
			}
		}
		for i := range want.d {
			if math.Float32bits(a.d[i]) != math.Float32bits(want.d[i]) || math.Float32bits(a.c[i]) != math.Float32bits(want.c[i]) ||
				a.s[i] != want.s[i] {
				t.Fatalf("block %d: d %g c %g s %d, want %g %g %d", i, a.d[i], a.c[i], a.s[i], want.d[i], want.c[i], want.s[i])
			}
		}
	})
}

// qShapes are [rows, cols]: odd row counts (groups of four and leftovers),
// one block, three blocks, and more blocks than one kernel call takes.
// qShapes cover every remainder of the block count mod 8 (the assembly's
// chunks) and mod 4 (its quads), alone and after whole chunks.
var qShapes = [][2]int{{1, 32}, {3, 96}, {5, 32}, {7, 4128}, {13, 96}, {8, 64}, {33, 160}, {4, 8192 + 32},
	{6, 128}, {5, 192}, {9, 224}, {3, 384}, {2, 416}, {7, 480}, {5, 736}, {3, 864}}

func TestQMatMul(t *testing.T) {
	eachVariant(t, func(t *testing.T) {
		for _, f := range qFormats {
			rng := rand.New(rand.NewPCG(uint64(f), 5))
			for _, s := range qShapes {
				rows, cols := s[0], s[1]
				for _, n := range []int{1, 2, 5, 67} { // 67: more than the assembly takes at once for leftover rows
					if n > 5 && rows*cols > 1<<14 {
						continue
					}
					t.Run(fmt.Sprintf("%v/%dx%d/n=%d", f, rows, cols, n), func(t *testing.T) {
						w := randomBlocks(rng, f, rows, cols/QBlock)
						x, _ := randomActs(rng, n, cols)
						ldo := rows + 3
						out := make([]float32, n*ldo)
						for i := range out {
							out[i] = float32(math.NaN())
						}
						QMatMul(f, out, ldo, w, rows, x)
						gen := make([]float32, n*ldo)
						qMatMulGeneric(f, gen, ldo, w, rows, x)
						for tt := 0; tt < n; tt++ {
							for r := 0; r < ldo; r++ {
								got := out[tt*ldo+r]
								if r >= rows {
									if !math.IsNaN(float64(got)) {
										t.Fatalf("wrote out[%d] past row %d", tt*ldo+r, rows)
									}
									continue
								}
								want, mag := qDot64(f, w, r, x, tt)
								if !qNear(got, want, mag) || !qNear(gen[tt*ldo+r], want, mag) {
									t.Fatalf("token %d row %d: got %g, generic %g, want %g (mag %g)", tt, r, got, gen[tt*ldo+r], want, mag)
								}
							}
						}
					})
				}
			}
		}
	})
}

// TestQMatMulSplit requires every output to have the same bits however the
// rows are split among calls (at groups of four and elsewhere, in two
// parts or three), for one input row (decode) and for several, up to more
// than a leftover row's chunk in the assembly; and, where the kernel of one
// input row is that of several (not the Q8_0 quad VNNI kernel), whether an
// input row comes alone or in a batch.
func TestQMatMulSplit(t *testing.T) {
	eachVariant(t, func(t *testing.T) {
		for _, f := range qFormats {
			rng := rand.New(rand.NewPCG(uint64(f), 6))
			const rows = 29
			for _, n := range []int{1, 2, 6, 25, 67} { // 67: more than the assembly takes at once for leftover rows
				for _, cols := range []int{32, 96, 4128} {
					nb := cols / QBlock
					w := randomBlocks(rng, f, rows, nb)
					x, xf := randomActs(rng, n, cols)
					all := make([]float32, n*rows)
					QMatMul(f, all, rows, w, rows, x)
					rb := nb * f.BlockBytes()
					for _, split := range [][]int{{1}, {4}, {5}, {8}, {13}, {16}, {28}, {4, 20}, {3, 10}, {8, 27}} {
						part := make([]float32, n*rows)
						for i, r0 := range split {
							r1 := rows
							if i+1 < len(split) {
								r1 = split[i+1]
							}
							if i == 0 {
								QMatMul(f, part, rows, w[:r0*rb], r0, x)
							}
							QMatMul(f, part[r0:], rows, w[r0*rb:r1*rb], r1-r0, x)
						}
						for i := range all {
							if math.Float32bits(all[i]) != math.Float32bits(part[i]) {
								t.Fatalf("%v n %d cols %d split %v: out[%d] %g, split %g", f, n, cols, split, i, all[i], part[i])
							}
						}
					}
					if qQuad(f, n) == qQuad(f, 1) {
						checkTokensAlone(t, f, w, rows, xf, cols, all)
					}
				}
			}
		}
	})
}

// TestQMatMulExtremes runs the largest integer products every format allows:
// Q8_0 weights of -128 and 127 against inputs of ±127, and nibbles of 15
// (and 0) in Q4 blocks, where a saturating or overflowing kernel would fail.
func TestQMatMulExtremes(t *testing.T) {
	const cols, n = 4128, 2
	nb := cols / QBlock
	type fill func(f QFormat, blk []byte, row, b int)
	weights := []struct {
		name string
		fill fill
	}{
		{"min", func(f QFormat, blk []byte, _, _ int) {
			for i := range blk {
				blk[i] = 0
			}
			if f == Q8_0 {
				for i := 2; i < 34; i++ {
					blk[i] = 0x80 // -128
				}
			}
		}},
		{"max", func(f QFormat, blk []byte, _, _ int) {
			for i := range blk {
				blk[i] = 0xff
			}
			if f == Q8_0 {
				for i := 2; i < 34; i++ {
					blk[i] = 127
				}
			}
		}},
		{"alternating", func(f QFormat, blk []byte, row, b int) {
			for i := range blk {
				blk[i] = []byte{0x0f, 0xf0, 0x80, 0x7f}[(i+row+b)%4]
			}
		}},
	}
	inputs := []struct {
		name string
		q    func(i int) int8
	}{
		{"+127", func(int) int8 { return 127 }},
		{"-127", func(int) int8 { return -127 }},
		{"±127", func(i int) int8 { return int8(127 - 254*(i/3%2)) }},
	}
	eachVariant(t, func(t *testing.T) {
		for _, f := range qFormats {
			for _, wc := range weights {
				for _, in := range inputs {
					const rows = 5
					bb := f.BlockBytes()
					w := make([]byte, rows*nb*bb)
					for r := 0; r < rows; r++ {
						for b := 0; b < nb; b++ {
							blk := w[(r*nb+b)*bb:][:bb]
							wc.fill(f, blk, r, b)
							putF16(blk, float16.Fromfloat32(float32(r+1)/64).Bits())
							if f == Q4_1 {
								putF16(blk[2:], float16.Fromfloat32(-float32(b%3)).Bits())
							}
						}
					}
					x := new(Q8Acts)
					x.Quantize(make([]float32, n*cols), n, cols)
					for i := range x.q {
						x.q[i] = in.q(i)
					}
					for tt := 0; tt < n; tt++ {
						for b := 0; b < nb; b++ {
							var s int32
							for _, v := range x.q[tt*cols+b*QBlock:][:QBlock] {
								s += int32(v)
							}
							x.d[tt*x.stride+b] = float32(tt+1) / 128
							x.c[tt*x.stride+b] = x.d[tt*x.stride+b] * float32(s)
						}
					}
					arrangeActs(x) // Quantize's copy of q and d follows them
					out := make([]float32, n*rows)
					QMatMul(f, out, rows, w, rows, x)
					for tt := 0; tt < n; tt++ {
						for r := 0; r < rows; r++ {
							got := out[tt*rows+r]
							want, mag := qDot64(f, w, r, x, tt)
							if math.IsNaN(float64(got)) || math.IsInf(float64(got), 0) || !qNear(got, want, mag) {
								t.Fatalf("%v %s weights, %s inputs: token %d row %d = %g, want %g", f, wc.name, in.name, tt, r, got, want)
							}
						}
					}
				}
			}
		}
	})
}

func TestQMatMulPanics(t *testing.T) {
	x := new(Q8Acts)
	x.Quantize(make([]float32, 64), 1, 64)
	w := make([]byte, 3*2*34)
	for name, f := range map[string]func(){
		"short w":   func() { QMatMul(Q8_0, make([]float32, 4), 4, w, 4, x) },
		"short out": func() { QMatMul(Q8_0, make([]float32, 2), 3, w, 3, x) },
		"ldo":       func() { QMatMul(Q8_0, make([]float32, 9), 2, w, 3, x) },
		"cols":      func() { x.Quantize(make([]float32, 40), 1, 40) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// ExampleQMatMul multiplies a two-row Q8_0 matrix by a vector: the vector is
// quantized once, then each block is an integer dot product.
func ExampleQMatMul() {
	// Row 0: every weight 1 (q = 2, d = 0.5); row 1: the weights 0, 1, ..., 31 (q = i, d = 1).
	w := make([]byte, 2*34)
	putF16(w, float16.Fromfloat32(0.5).Bits())
	putF16(w[34:], float16.Fromfloat32(1).Bits())
	for i := 0; i < 32; i++ {
		w[2+i], w[36+i] = 2, byte(i)
	}
	x := make([]float32, 32)
	for i := range x {
		x[i] = 0.25
	}
	var a Q8Acts
	a.Quantize(x, 1, 32)
	out := make([]float32, 2)
	QMatMul(Q8_0, out, 2, w, 2, &a)
	fmt.Printf("%.3f %.3f\n", out[0], out[1])
	// Output: 8.000 124.000
}

// checkTokensAlone requires each of the input rows xf (of cols floats),
// quantized and multiplied by the rows of w on its own, to give the bits it
// got in the batch whose products are all ([input row][rows]).
func checkTokensAlone(t *testing.T, f QFormat, w []byte, rows int, xf []float32, cols int, all []float32) {
	t.Helper()
	var one Q8Acts
	vec := make([]float32, rows)
	for tt := 0; tt < len(xf)/cols; tt++ {
		one.Quantize(xf[tt*cols:(tt+1)*cols], 1, cols)
		QMatMul(f, vec, rows, w, rows, &one)
		for r := range vec {
			if math.Float32bits(vec[r]) != math.Float32bits(all[tt*rows+r]) {
				t.Fatalf("%v cols %d: token %d row %d alone %g, in a batch %g", f, cols, tt, r, vec[r], all[tt*rows+r])
			}
		}
	}
}
