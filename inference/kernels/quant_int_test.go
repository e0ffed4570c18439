package kernels

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/x448/float16"
)

var intFormats = []QFormat{I8Ch, I4G32, I4G64, I4G128, I4G32Asym, I4G64Asym, I4G128Asym}

// randomIntRows returns rows rows of cols random weights of the int format
// f: fp16 scales of either sign between 2^-12 and 2^-4, every code equally
// likely, zero points anywhere in 0..15 (and, when wild, anywhere in 0..255).
func randomIntRows(rng *rand.Rand, f QFormat, rows, cols int, wild bool) []byte {
	rb := f.RowBytes(cols)
	w := make([]byte, rows*rb)
	for i := range w {
		w[i] = byte(rng.Uint32())
	}
	scale := func(b []byte) {
		v := float32(math.Ldexp(1+rng.Float64(), -4-rng.IntN(9)))
		if rng.IntN(2) == 0 {
			v = -v
		}
		putF16(b, float16.Fromfloat32(v).Bits())
	}
	for r := 0; r < rows; r++ {
		row := w[r*rb : (r+1)*rb]
		if f == I8Ch {
			scale(row)
			continue
		}
		g, hdr := f.Group(), 2
		if f.asym() {
			hdr = 3
		}
		gb := hdr + g/2
		for b := 0; b < cols/g; b++ {
			scale(row[b*gb:])
			if f.asym() && !wild {
				row[b*gb+2] &= 15
			}
		}
	}
	return w
}

// intDot64 is the exact product of row r of an int-format matrix with input
// row t in float64, decoded from the layouts' definitions, and the sum of the
// magnitudes of its terms (both the signed and the unsigned-minus-offset forms
// a kernel may use), which bounds the rounding of any summation order.
func intDot64(f QFormat, w []byte, r int, x *Q8Acts, t int) (sum, mag float64) {
	rb := f.RowBytes(x.cols)
	row := w[r*rb : (r+1)*rb]
	weight := func(i int) (wi, off int64, s float64) {
		if f == I8Ch {
			return int64(int8(row[2+i])), 128, float64(f16(row))
		}
		g, hdr := f.Group(), 2
		if f.asym() {
			hdr = 3
		}
		blk := row[(i/g)*(hdr+g/2):]
		z := int64(8)
		if f.asym() {
			z = int64(blk[2])
		}
		j := i % g
		u := int64(blk[hdr+16*(j/32)+j%16]>>(4*(j%32/16))) & 15
		return u - z, z, float64(f16(blk))
	}
	for b := 0; b < x.nb; b++ {
		dx := float64(x.d[t*x.stride+b])
		for i := 0; i < QBlock; i++ {
			wi, off, s := weight(b*QBlock + i)
			q := int64(x.q[t*x.cols+b*QBlock+i])
			sum += float64(wi*q) * s * dx
			mag += float64(abs64(wi*q)+abs64((wi+off)*q)+abs64(off*q)) * math.Abs(s*dx)
		}
	}
	return sum, mag
}

// qMatMulIntRef is qMatMulGeneric in the order the kernels in use promise:
// qDotIntSeq's where qIntSeq says so, else qDotInt's.
func qMatMulIntRef(f QFormat, out []float32, ldo int, w []byte, rows int, x *Q8Acts) {
	if !qIntSeq(f, x.nb) {
		qMatMulGeneric(f, out, ldo, w, rows, x)
		return
	}
	rb := f.RowBytes(x.cols)
	for t := 0; t < x.n; t++ {
		q, d, c := x.q[t*x.cols:(t+1)*x.cols], x.d[t*x.stride:(t+1)*x.stride], x.c[t*x.stride:(t+1)*x.stride]
		for r := 0; r < rows; r++ {
			out[t*ldo+r] = qDotIntSeq(f, w[r*rb:(r+1)*rb], q, d, c, x.nb)
		}
	}
}

// TestQMatMulInt compares the kernels of the int formats with the exact
// products and, bit for bit, with the generic loops, on odd row counts and
// sizes.
func TestQMatMulInt(t *testing.T) {
	eachVariant(t, func(t *testing.T) {
		for _, f := range intFormats {
			rng := rand.New(rand.NewPCG(uint64(f), 7))
			// Eight rows go to the eight-row kernels at once, four to AVX2's four-row ones.
			for _, rows := range []int{1, 3, 4, 7, 8, 13, 17, 33} {
				for _, groups := range []int{1, 3, 4, 12, 33} { // 4 and 12: whole chunks of four blocks
					cols := groups * max(QBlock, f.Group())
					for _, n := range []int{1, 2, 5, 67} {
						if n > 5 && rows*cols > 1<<14 {
							continue
						}
						t.Run(fmt.Sprintf("%v/%dx%d/n=%d", f, rows, cols, n), func(t *testing.T) {
							w := randomIntRows(rng, f, rows, cols, rows == 7)
							x, _ := randomActs(rng, n, cols)
							ldo := rows + 3
							out := make([]float32, n*ldo)
							for i := range out {
								out[i] = float32(math.NaN())
							}
							QMatMul(f, out, ldo, w, rows, x)
							gen := make([]float32, n*ldo)
							qMatMulIntRef(f, gen, ldo, w, rows, x)
							for tt := 0; tt < n; tt++ {
								for r := 0; r < ldo; r++ {
									got := out[tt*ldo+r]
									if r >= rows {
										if !math.IsNaN(float64(got)) {
											t.Fatalf("wrote out[%d] past row %d", tt*ldo+r, rows)
										}
										continue
									}
									want, mag := intDot64(f, w, r, x, tt)
									if !qNear(got, want, mag) || !qNear(gen[tt*ldo+r], want, mag) {
										t.Fatalf("token %d row %d: got %g, generic %g, want %g (mag %g)", tt, r, got, gen[tt*ldo+r], want, mag)
									}
									// The assembly keeps qDotInt's float steps, so its bits.
									if math.Float32bits(got) != math.Float32bits(gen[tt*ldo+r]) {
										t.Fatalf("token %d row %d: got %g, generic %g", tt, r, got, gen[tt*ldo+r])
									}
								}
							}
						})
					}
				}
			}
		}
	})
}

// TestQMatMulIntSplit requires the same bits however rows and input rows are
// split among calls.
func TestQMatMulIntSplit(t *testing.T) {
	eachVariant(t, func(t *testing.T) {
		for _, f := range intFormats {
			rng := rand.New(rand.NewPCG(uint64(f), 8))
			const rows, n = 29, 6
			cols := 3 * max(QBlock, f.Group())
			if f.Group() < 128 {
				cols = 4 * 128 // whole chunks of four blocks, for the lane kernels
			}
			w := randomIntRows(rng, f, rows, cols, false)
			x, xf := randomActs(rng, n, cols)
			all := make([]float32, n*rows)
			QMatMul(f, all, rows, w, rows, x)
			rb := f.RowBytes(cols)
			for _, split := range []int{1, 5, 13, 28} {
				part := make([]float32, n*rows)
				QMatMul(f, part, rows, w[:split*rb], split, x)
				QMatMul(f, part[split:], rows, w[split*rb:], rows-split, x)
				for i := range all {
					if math.Float32bits(all[i]) != math.Float32bits(part[i]) {
						t.Fatalf("%v split %d: out[%d] %g, split %g", f, split, i, all[i], part[i])
					}
				}
			}
			checkTokensAlone(t, f, w, rows, xf, cols, all)
		}
	})
}

// TestQMatMulIntExtremes runs the largest integer products: int8 codes of
// -128 and 127 and nibbles of 0 and 15 against inputs of ±127, with zero
// points of 0 and 15, requiring the exact product and the generic loop's bits.
func TestQMatMulIntExtremes(t *testing.T) {
	const n, rows = 2, 13 // eight rows for the VNNI kernel, four and one for AVX2's
	eachVariant(t, func(t *testing.T) {
		for _, f := range intFormats {
			cols := 33 * max(QBlock, f.Group())
			for _, code := range []byte{0x00, 0xff, 0x80, 0x7f} {
				w := make([]byte, rows*f.RowBytes(cols))
				for i := range w {
					w[i] = code
				}
				// Scales of 1 (0x3c00) and zero points of 0 or 15.
				rb := f.RowBytes(cols)
				for r := 0; r < rows; r++ {
					row := w[r*rb : (r+1)*rb]
					if f == I8Ch {
						putF16(row, 0x3c00)
						continue
					}
					gb := f.RowBytes(f.Group())
					for b := 0; b < cols/f.Group(); b++ {
						putF16(row[b*gb:], 0x3c00)
						if f.asym() {
							row[b*gb+2] = byte(15 * (r % 2))
						}
					}
				}
				x := make([]float32, n*cols)
				for i := range x {
					x[i] = float32(1 - 2*(i/cols))
				}
				var a Q8Acts
				a.Quantize(x, n, cols)
				out := make([]float32, n*rows)
				gen := make([]float32, n*rows)
				QMatMul(f, out, rows, w, rows, &a)
				qMatMulIntRef(f, gen, rows, w, rows, &a)
				for tt := 0; tt < n; tt++ {
					for r := 0; r < rows; r++ {
						got := out[tt*rows+r]
						want, mag := intDot64(f, w, r, &a, tt)
						if !qNear(got, want, mag) || math.Float32bits(got) != math.Float32bits(gen[tt*rows+r]) {
							t.Fatalf("%v code %#x token %d row %d: got %g, generic %g, want %g", f, code, tt, r, got, gen[tt*rows+r], want)
						}
					}
				}
			}
		}
	})
}

// TestQMatMulIntScales runs the kernels on the fp16 scales at the ends of
// the range (zero of either sign, the smallest and largest subnormals, the
// largest finite values, one) and zero points of 0, 8, 15 and 255, on 8
// rows and on leftovers (11 rows), against 1-3 input rows whose blocks
// include zeros and tiny and huge values: the same bits as the generic loop,
// near the exact product.
func TestQMatMulIntScales(t *testing.T) {
	scales := []uint16{0x0000, 0x8000, 0x0001, 0x83ff, 0x0400, 0x7bff, 0xfbff, 0x3c00}
	zeros := []byte{0, 8, 15, 255}
	eachVariant(t, func(t *testing.T) {
		for _, f := range intFormats {
			rng := rand.New(rand.NewPCG(uint64(f), 10))
			cols := 5 * max(QBlock, f.Group())
			if f.Group() == 64 || f == I4G32Asym {
				cols = 5 * 128 // whole chunks of four blocks, for the lane kernels
			}
			for _, rows := range []int{8, 11} {
				for n := 1; n <= 3; n++ {
					w := randomIntRows(rng, f, rows, cols, true)
					rb, gb := f.RowBytes(cols), f.RowBytes(cols)
					if f != I8Ch {
						gb = f.RowBytes(f.Group())
					}
					i := 0
					for r := 0; r < rows; r++ {
						for g := r * rb; g < (r+1)*rb; g += gb {
							putF16(w[g:], scales[i%len(scales)])
							if f.asym() {
								w[g+2] = zeros[i/len(scales)%len(zeros)]
							}
							i++
						}
					}
					x, _ := randomActs(rng, n, cols)
					out := make([]float32, n*rows)
					gen := make([]float32, n*rows)
					QMatMul(f, out, rows, w, rows, x)
					qMatMulIntRef(f, gen, rows, w, rows, x)
					for k := range out {
						want, mag := intDot64(f, w, k%rows, x, k/rows)
						if math.Float32bits(out[k]) != math.Float32bits(gen[k]) || !qNear(out[k], want, mag) {
							t.Fatalf("%v %d rows n=%d: out[%d] = %g, generic %g, want %g", f, rows, n, k, out[k], gen[k], want)
						}
					}
				}
			}
		}
	})
}

func TestQFormatRowBytes(t *testing.T) {
	for _, tc := range []struct {
		f    QFormat
		cols int
		want int
	}{
		{Q8_0, 64, 68}, {Q4_0, 32, 18}, {Q4_1, 96, 60},
		{I8Ch, 64, 66}, {I4G32, 64, 36}, {I4G64, 128, 68}, {I4G128, 256, 132},
		{I4G32Asym, 32, 19}, {I4G64Asym, 64, 35}, {I4G128Asym, 384, 201},
	} {
		if got := tc.f.RowBytes(tc.cols); got != tc.want {
			t.Errorf("%v.RowBytes(%d) = %d, want %d", tc.f, tc.cols, got, tc.want)
		}
	}
}

// FuzzQMatMulInt runs the int formats' kernels on fuzzed formats, shapes and
// weight bytes (scales, zero points and codes alike) in every variant: each
// must give the generic loop's bits and stay near the exact product.
func FuzzQMatMulInt(f *testing.F) {
	f.Add(uint8(0), uint8(5), uint8(2), uint8(1), []byte{1, 2, 3})
	f.Add(uint8(6), uint8(9), uint8(1), uint8(3), []byte{0x3c, 0xff, 0x80, 0x0f})
	f.Add(uint8(2), uint8(4), uint8(3), uint8(2), []byte{})
	// Eight rows and more: the VNNI kernel, then leftovers.
	f.Add(uint8(0), uint8(7), uint8(3), uint8(0), []byte{0x00, 0x80, 0x7f})
	f.Add(uint8(3), uint8(10), uint8(1), uint8(2), []byte{0x01, 0x00, 0xff, 0x88})
	f.Add(uint8(5), uint8(8), uint8(2), uint8(3), []byte{0xff, 0x3b, 0x0f, 0xf0, 0x77})
	f.Fuzz(func(t *testing.T, fb, rowsb, groupsb, nb uint8, data []byte) {
		fm := intFormats[int(fb)%len(intFormats)]
		rows, n := 1+int(rowsb%13), 1+int(nb%4)
		cols := (1 + int(groupsb%4)) * max(QBlock, fm.Group())
		w := make([]byte, rows*fm.RowBytes(cols))
		for i := range w {
			w[i] = byte(i*37 + 11)
			if len(data) > 0 {
				w[i] ^= data[i%len(data)]
			}
		}
		// Finite scales keep the comparison meaningful; any other byte goes.
		gb := fm.RowBytes(cols) // a row's scale, or a group's
		if fm != I8Ch {
			gb = fm.RowBytes(fm.Group())
		}
		for g := 0; g < len(w); g += gb {
			w[g+1] &= 0x3f
		}
		x, _ := randomActs(rand.New(rand.NewPCG(uint64(len(data)), 9)), n, cols)
		saved := impl
		defer func() { impl = saved }()
		for _, v := range variants() {
			impl = v
			gen := make([]float32, n*rows)
			qMatMulIntRef(fm, gen, rows, w, rows, x)
			out := make([]float32, n*rows)
			QMatMul(fm, out, rows, w, rows, x)
			for i := range out {
				if math.Float32bits(out[i]) != math.Float32bits(gen[i]) {
					t.Fatalf("%v %dx%d n=%d variant %d: out[%d] = %g, generic %g", fm, rows, cols, n, v, i, out[i], gen[i])
				}
				want, mag := intDot64(fm, w, i%rows, x, i/rows)
				if !qNear(out[i], want, mag) {
					t.Fatalf("%v: out[%d] = %g, want %g", fm, i, out[i], want)
				}
			}
		}
	})
}

// TestFMA32 checks fma32 against a*b+c computed exactly and rounded once,
// on random operands of every magnitude and on ties.
func TestFMA32(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	f := func() float32 {
		v := math.Float32frombits(rng.Uint32())
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return 1
		}
		return v
	}
	near := func() float32 { return float32(math.Ldexp(rng.Float64()*2-1, rng.IntN(40)-20)) }
	for i := 0; i < 200000; i++ {
		a, b, c := f(), f(), f()
		if i%2 == 1 {
			a, b, c = near(), near(), near()
		}
		if i%5 == 0 { // a tie-prone product: few significant bits
			a, b = float32(rng.IntN(1<<12)), float32(math.Ldexp(float64(rng.IntN(1<<12)), rng.IntN(60)-30))
		}
		if i < 4 { // a float32 tie broken only below float64's precision, of either sign
			e := float32(math.Ldexp(1, -23))
			a, b, c = (1+e)*e/2, 1-e, 1+e
			if i%2 == 1 {
				a, c = -a, -c
			}
			if i >= 2 {
				b = 1 + e
			}
		}
		x := new(big.Float).SetPrec(2000).SetFloat64(float64(a))
		x.Mul(x, new(big.Float).SetFloat64(float64(b)))
		x.Add(x, new(big.Float).SetFloat64(float64(c)))
		want, _ := x.Float32()
		if got := fma32(a, b, c); got != want && !(got == 0 && want == 0) {
			t.Fatalf("fma32(%g, %g, %g) = %g, want %g", a, b, c, got, want)
		}
	}
}

// TestQMatMulIntNoAllocs checks that QMatMul does not allocate for the int
// formats (the lane kernels' inputs once made, and leftover rows included).
func TestQMatMulIntNoAllocs(t *testing.T) {
	const n, rows, cols = 5, 13, 512
	eachVariant(t, func(t *testing.T) {
		for _, f := range intFormats {
			rng := rand.New(rand.NewPCG(uint64(f), 12))
			w := randomIntRows(rng, f, rows, cols, false)
			x, _ := randomActs(rng, n, cols)
			out := make([]float32, n*rows)
			if a := testing.AllocsPerRun(10, func() { QMatMul(f, out, rows, w, rows, x) }); a != 0 {
				t.Errorf("%v: %v allocations per call", f, a)
			}
		}
	})
}
