package kernels

import "math"

// The loops in this file are the reference semantics of every kernel: the
// assembly must agree with them up to float32 reassociation, and they run
// wherever there is no assembly (non-amd64, the purego tag, old CPUs). They
// are always compiled so that tests on amd64 can compare against them.
//
// Each loop reslices its operands to the length it iterates over (b = b[:len(a)])
// so that the compiler proves the indices in range and drops the bounds checks
// from the loop bodies (go build -gcflags=-d=ssa/check_bce shows what is
// left: one check per pair in RoPE's pairs layout). Products are converted
// with float32(...) before they are added so that no platform fuses them into
// an FMA: the generic results are identical everywhere.

func dotGeneric(a, b []float32) float32 {
	b = b[:len(a)]
	var s float32
	for i, v := range a {
		s += float32(v * b[i])
	}
	return s
}

func matVecGeneric(out, w, x []float32, cols int) {
	x = x[:cols]
	for r := range out {
		out[r] = dotGeneric(w[r*cols:(r+1)*cols], x)
	}
}

func matMulGeneric(out []float32, ldo int, x, w []float32, n, rows, cols int) {
	for t := 0; t < n; t++ {
		xt := x[t*cols : (t+1)*cols]
		o := out[t*ldo : t*ldo+rows]
		for r := range o {
			o[r] = dotGeneric(xt, w[r*cols:(r+1)*cols])
		}
	}
}

func transposeGeneric(dst []float32, ldd int, src []float32, lds, rows, cols int) {
	for i := 0; i < rows; i++ {
		for j, v := range src[i*lds : i*lds+cols] {
			dst[j*ldd+i] = v
		}
	}
}

func matVecTGeneric(out, w, x []float32, cols int) {
	out = out[:cols]
	clear(out)
	for r, a := range x {
		axpyGeneric(a, w[r*cols:(r+1)*cols], out)
	}
}

func axpyGeneric(a float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += float32(a * v)
	}
}

func scaleGeneric(x []float32, a float32) {
	for i := range x {
		x[i] *= a
	}
}

func addGeneric(dst, src []float32) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] += src[i]
	}
}

func rmsNormGeneric(out, x, weight []float32, eps float32) {
	out = out[:len(x)]
	weight = weight[:len(x)]
	var ss float32
	for _, v := range x {
		ss += float32(v * v)
	}
	ss /= float32(len(x))
	ss += eps
	ss = 1 / float32(math.Sqrt(float64(ss)))
	for i, v := range x {
		out[i] = weight[i] * (ss * v)
	}
}

// expf's constants: the clamp (beyond it the result is 0 or +Inf), ln 2 split
// in two so that n*ln2Hi is exact (Cody and Waite), and Cephes' expf
// polynomial for (e^r - 1 - r)/r² on |r| <= ln(2)/2.
const (
	expHi  = 89
	expLo  = -104
	log2e  = 1.44269504088896341
	ln2Hi  = 0.693359375
	ln2Lo  = -2.12194440e-4
	expP0  = 1.9875691500e-4
	expP1  = 1.3981999507e-3
	expP2  = 8.3334519073e-3
	expP3  = 4.1665795894e-2
	expP4  = 1.6666665459e-1
	expP5  = 5.0000001201e-1
	expOne = 1
)

// expGeneric is e^x in float32 arithmetic, the algorithm the assembly runs
// lane by lane, with the same operations in the same order (no FMA), so the
// two agree to the bit. Over every float32 it is within 1 ulp of the exact
// value (faithfully rounded; 99% of results are the correctly rounded ones):
// x = n·ln2 + r with n an integer and |r| <= ln(2)/2, e^r by a polynomial,
// and the result scaled by 2^n in two exact steps, so that underflow to
// subnormals rounds once. It returns +Inf above 88.72, 0 below -103.97 and
// NaN for NaN.
func expGeneric(x float32) float32 {
	if x > expHi {
		x = expHi
	}
	if x < expLo {
		x = expLo
	}
	n := float32(math.RoundToEven(float64(x * log2e)))
	r := float32(x-float32(n*ln2Hi)) - float32(n*ln2Lo)
	z := r * r
	y := float32(expP0*r) + expP1
	y = float32(y*r) + expP2
	y = float32(y*r) + expP3
	y = float32(y*r) + expP4
	y = float32(y*r) + expP5
	y = float32(float32(y*z)+r) + expOne
	// 2^n = 2^n1 · 2^n2 with both factors normal for every n in [-150, 128];
	// y·2^n1 is exact, so the product rounds once. For NaN, n converts to
	// garbage but y is NaN.
	ni := int32(n)
	n1 := ni >> 1
	s1 := math.Float32frombits(uint32(n1+127) << 23)
	s2 := math.Float32frombits(uint32(ni-n1+127) << 23)
	return float32(y*s1) * s2
}

func expVecGeneric(x []float32) {
	for i, v := range x {
		x[i] = expGeneric(v)
	}
}

// softmaxLanes is the number of partial sums of Softmax's denominator: element
// i adds into sum i%16, as in the lanes of an AVX-512 register.
const softmaxLanes = 16

func softmaxGeneric(x []float32, d float32) {
	if len(x) == 0 {
		return
	}
	for i := range x {
		x[i] /= d
	}
	m := x[0]
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	var s [softmaxLanes]float32
	for i, v := range x {
		e := expGeneric(v - m)
		x[i] = e
		s[i%softmaxLanes] += e
	}
	// Halve the lanes until one is left: lane i adds lane i+8, then i+4, ...
	for h := softmaxLanes / 2; h > 0; h /= 2 {
		for i := 0; i < h; i++ {
			s[i] += s[i+h]
		}
	}
	sum := s[0]
	for i := range x {
		x[i] /= sum
	}
}

func swiGLUGeneric(gate, up []float32) {
	up = up[:len(gate)]
	for i, v := range gate {
		gate[i] = float32(v*(1/(1+expGeneric(-v)))) * up[i]
	}
}

func ropeGeneric(x []float32, headDim int, cos, sin []float32, pairs bool) {
	if headDim <= 0 || headDim%2 != 0 || len(x)%headDim != 0 {
		panic("kernels: RoPE: headDim must be a positive even divisor of len(x)")
	}
	half := headDim / 2
	cos, sin = cos[:half], sin[:half]
	for h := 0; h+headDim <= len(x); h += headDim {
		head := x[h : h+headDim]
		if pairs {
			for i := range cos {
				p := head[2*i : 2*i+2 : 2*i+2] // one check here instead of four below
				x0, x1 := p[0], p[1]
				p[0] = float32(x0*cos[i]) - float32(x1*sin[i])
				p[1] = float32(x0*sin[i]) + float32(x1*cos[i])
			}
		} else {
			lo, hi := head[:half], head[half:]
			hi = hi[:len(lo)]
			for i := range cos {
				x0, x1 := lo[i], hi[i]
				lo[i] = float32(x0*cos[i]) - float32(x1*sin[i])
				hi[i] = float32(x0*sin[i]) + float32(x1*cos[i])
			}
		}
	}
}

func maxIndexGeneric(x []float32) int {
	if len(x) == 0 {
		return -1
	}
	best := 0
	for best < len(x) && x[best] != x[best] { // skip leading NaNs
		best++
	}
	if best == len(x) {
		return 0
	}
	m, start := x[best], best
	for i, v := range x[start:] {
		if v > m {
			m, best = v, start+i
		}
	}
	return best
}

func streamReadGeneric(buf []float32) float32 {
	var s float32
	for _, v := range buf {
		s += v
	}
	return s
}

func ropeHalfToPairsGeneric(x []float32, headDim int, cos, sin []float32) {
	if headDim <= 0 || headDim%2 != 0 || len(x)%headDim != 0 {
		panic("kernels: RoPEHalfToPairs: headDim must be a positive even divisor of len(x)")
	}
	half := headDim / 2
	cos, sin = cos[:half], sin[:half]
	var stack [256]float32
	out := stack[:0]
	if headDim > len(stack) {
		out = make([]float32, headDim)
	}
	out = out[:headDim]
	for h := 0; h+headDim <= len(x); h += headDim {
		head := x[h : h+headDim]
		lo, hi := head[:half], head[half:]
		hi = hi[:len(lo)]
		for i := range cos {
			x0, x1 := lo[i], hi[i]
			p := out[2*i : 2*i+2 : 2*i+2]
			p[0] = float32(x0*cos[i]) - float32(x1*sin[i])
			p[1] = float32(x0*sin[i]) + float32(x1*cos[i])
		}
		copy(head, out)
	}
}
