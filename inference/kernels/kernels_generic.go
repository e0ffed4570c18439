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

// exp32 is expf: math.Exp rounded to float32.
func exp32(v float32) float32 { return float32(math.Exp(float64(v))) }

func softmaxGeneric(x []float32) {
	if len(x) == 0 {
		return
	}
	m := x[0]
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	var sum float32
	for i, v := range x {
		e := exp32(v - m)
		x[i] = e
		sum += e
	}
	for i := range x {
		x[i] /= sum
	}
}

func swiGLUGeneric(gate, up []float32) {
	up = up[:len(gate)]
	for i, v := range gate {
		gate[i] = v * (1 / (1 + exp32(-v))) * up[i]
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
				p[0] = x0*cos[i] - x1*sin[i]
				p[1] = x0*sin[i] + x1*cos[i]
			}
		} else {
			lo, hi := head[:half], head[half:]
			hi = hi[:len(lo)]
			for i := range cos {
				x0, x1 := lo[i], hi[i]
				lo[i] = x0*cos[i] - x1*sin[i]
				hi[i] = x0*sin[i] + x1*cos[i]
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
			p[0] = x0*cos[i] - x1*sin[i]
			p[1] = x0*sin[i] + x1*cos[i]
		}
		copy(head, out)
	}
}
