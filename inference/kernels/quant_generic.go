package kernels

import "math"

// The reference loops of the integer kernels: the assembly computes every
// integer block sum exactly as these do and agrees with them up to float32
// reassociation of the scaled sums. As in kernels_generic.go, products are
// rounded with float32(...) before they are added, so that no platform
// fuses them into an FMA.

// quantizeRow quantizes one row of x (len(x) a multiple of 32) into q, with
// scales d, block sums s and d*(block sum) in c; the entries of d, c and s
// past the last block are 0.
func quantizeRow(q []int8, d, c []float32, s []int32, x []float32) {
	nb := len(x) / QBlock
	q = q[:nb*QBlock]
	for b := 0; b < nb; b++ {
		xs := x[b*QBlock : b*QBlock+QBlock]
		qs := q[b*QBlock : b*QBlock+QBlock]
		var amax float32
		for _, v := range xs {
			amax = max(amax, abs32(v))
		}
		scale := amax / 127
		var sum int32
		for i, v := range xs {
			var r int32
			if scale != 0 {
				r = int32(math.RoundToEven(float64(v / scale)))
			}
			r = max(-127, min(127, r))
			qs[i] = int8(r)
			sum += r
		}
		d[b], c[b], s[b] = scale, float32(scale*float32(sum)), sum
	}
	clear(d[nb:])
	clear(c[nb:])
	clear(s[nb:])
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// f16 decodes the little-endian fp16 at b[0:2].
func f16(b []byte) float32 {
	return f16ToF32(uint16(b[0]) | uint16(b[1])<<8)
}

// f16ToF32 converts an IEEE half-precision value exactly.
func f16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf, NaN
		return math.Float32frombits(sign | 0xff<<23 | man<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+112)<<23 | man<<13)
	case man == 0:
		return math.Float32frombits(sign)
	}
	v := float32(man) * (1.0 / (1 << 24)) // subnormal: man * 2^-24, exact in float32
	if sign != 0 {
		v = -v
	}
	return v
}

// qDotGeneric returns the product of one row w of format f (nb blocks) with
// one quantized input row: Σ_b float32(sum_b) * (d_w*d_x) (+ m_w*(d_x*Σq) for
// Q4_1), summed block by block.
func qDotGeneric(f QFormat, w []byte, q []int8, d []float32, c []float32, nb int) float32 {
	bb := f.BlockBytes()
	w = w[:nb*bb]
	q = q[:nb*QBlock]
	d, c = d[:nb], c[:nb]
	var sum float32
	for b := range d {
		blk := w[b*bb : (b+1)*bb]
		xs := q[b*QBlock : b*QBlock+QBlock]
		var s int32
		switch f {
		case Q8_0:
			ws := blk[2:34]
			for i, v := range xs {
				s += int32(int8(ws[i])) * int32(v)
			}
		case Q4_0:
			ws := blk[2:18]
			for i, v := range ws {
				s += (int32(v&0xf)-8)*int32(xs[i]) + (int32(v>>4)-8)*int32(xs[i+16])
			}
		case Q4_1:
			ws := blk[4:20]
			for i, v := range ws {
				s += int32(v&0xf)*int32(xs[i]) + int32(v>>4)*int32(xs[i+16])
			}
		}
		sum += float32(float32(s) * float32(f16(blk)*d[b]))
		if f == Q4_1 {
			sum += float32(f16(blk[2:]) * c[b])
		}
	}
	return sum
}

// qDotInt is the product of one row w of an int format with one quantized
// input row: in qDotQ40Lanes's order for I4G32 (whose layout is Q4_0's),
// qDotI4Lanes's for I4G128 and I4G128Asym, and qDotIntSeq's for the others.
func qDotInt(f QFormat, w []byte, q []int8, d []float32, c []float32, nb int) float32 {
	switch {
	case f == I4G32:
		return qDotQ40Lanes(w, q, d, nb)
	case f.lanes(nb):
		return qDotI4Lanes(f, w, q, d, nb)
	}
	return qDotIntSeq(f, w, q, d, c, nb)
}

// qDotQ40Lanes is the product of a row of Q4_0 blocks (I4G32) with one
// quantized input row in the sixteen float32 lanes A of the Q4_0 VNNI
// kernel (quant_amd64.s), eight blocks at a time: lane j+8h takes the
// sixteen products of bytes 4h..4h+3 and 8+4h..8+4h+3 of the chunk's block
// j (both nibbles) as an exact integer I = Σ (u-8)*q (|I| <= 16*8*127), then
// A[l] = fma(float32(I), float32(s*d_x), A[l]), chunk after chunk; and the
// lanes are reduced by v[j] = A[j]+A[j+8], ((v0+v1)+(v2+v3)) +
// ((v4+v5)+(v6+v7)).
func qDotQ40Lanes(w []byte, q []int8, d []float32, nb int) float32 {
	w = w[:nb*18]
	q = q[:nb*QBlock]
	d = d[:nb]
	var a [16]float32
	for b := range d {
		blk, xs := w[b*18:(b+1)*18], q[b*QBlock:b*QBlock+QBlock]
		sd := float32(f16(blk) * d[b])
		for h := 0; h < 2; h++ {
			var is int32
			for _, g := range [2]int{h, 2 + h} {
				for j := 4 * g; j < 4*g+4; j++ {
					v := blk[2+j]
					is += (int32(v&0xf)-8)*int32(xs[j]) + (int32(v>>4)-8)*int32(xs[j+16])
				}
			}
			l := b%8 + 8*h
			a[l] = fma32(float32(is), sd, a[l])
		}
	}
	var v [8]float32
	for l := range v {
		v[l] = a[l] + a[l+8]
	}
	return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]))
}

// qDotQ80Lanes is the product of a row of Q8_0 blocks with one quantized
// input row in the sixteen float32 lanes A of the Q8_0 VNNI kernel
// (quant_amd64.s), four blocks (a quad) at a time: lane l = 4j+k takes the
// eight products of weights 4j..4j+3 and 16+4j..16+4j+3 of the quad's
// block k as an exact integer I, then A[l] = fma(float32(I), float32(d_w*
// d_x), A[l]), quad after quad, a last quad of fewer than four blocks as a
// whole one whose missing blocks add fma(0, 0, A[l]); and the lanes are
// reduced by v[l] = A[l]+A[l+8], ((v0+v1)+(v2+v3)) + ((v4+v5)+(v6+v7)).
// With VNNI, QMatMul gives its bits for Q8_0 when x has q80QuadMin or more
// rows (TestQ80Lanes); qDotGeneric sums the same products block by block.
func qDotQ80Lanes(w []byte, q []int8, d []float32, nb int) float32 {
	w = w[:nb*34]
	q = q[:nb*QBlock]
	d = d[:nb]
	var a [16]float32
	for c := 0; c < nb; c += 4 {
		for l := range a {
			b := c + l%4
			var is int32
			var sd float32
			if b < nb {
				blk, xs := w[b*34:(b+1)*34], q[b*QBlock:b*QBlock+QBlock]
				for _, i := range [2]int{4 * (l / 4), 16 + 4*(l/4)} {
					for j := i; j < i+4; j++ {
						is += int32(int8(blk[2+j])) * int32(xs[j])
					}
				}
				sd = float32(f16(blk) * d[b])
			}
			a[l] = fma32(float32(is), sd, a[l])
		}
	}
	var v [8]float32
	for l := range v {
		v[l] = a[l] + a[l+8]
	}
	return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]))
}

// qDotIntSeq is qDotGeneric for the int formats: the same sums, with one
// scale per row (I8Ch) or per group, and an asymmetric group's m = −z*s
// (exact in float32) in place of Q4_1's minimum, block by block in order.
// The AVX2 kernels give its bits for every int format.
func qDotIntSeq(f QFormat, w []byte, q []int8, d []float32, c []float32, nb int) float32 {
	q = q[:nb*QBlock]
	d, c = d[:nb], c[:nb]
	var sum float32
	if f == I8Ch {
		s := f16(w)
		ws := w[2 : 2+nb*QBlock]
		for b := range d {
			xs, bs := q[b*QBlock:b*QBlock+QBlock], ws[b*QBlock:b*QBlock+QBlock]
			var is int32
			for i, v := range xs {
				is += int32(int8(bs[i])) * int32(v)
			}
			sum += float32(float32(is) * float32(s*d[b]))
		}
		return sum
	}
	per, hdr, asym := f.Group()/QBlock, 2, f.asym()
	if asym {
		hdr = 3
	}
	gb := hdr + per*16
	w = w[:nb/per*gb]
	for g := 0; g < nb/per; g++ {
		blk := w[g*gb : (g+1)*gb]
		s := f16(blk)
		z := 8
		if asym {
			z = int(blk[2])
		}
		m := float32(-float32(z) * s)
		codes := blk[hdr:]
		for k := 0; k < per; k++ {
			b := g*per + k
			xs, ws := q[b*QBlock:b*QBlock+QBlock], codes[16*k:16*k+16]
			var is int32
			if asym {
				for i, v := range ws {
					is += int32(v&0xf)*int32(xs[i]) + int32(v>>4)*int32(xs[i+16])
				}
				sum += float32(float32(is) * float32(s*d[b]))
				sum += float32(m * c[b])
			} else {
				for i, v := range ws {
					is += (int32(v&0xf)-8)*int32(xs[i]) + (int32(v>>4)-8)*int32(xs[i+16])
				}
				sum += float32(float32(is) * float32(s*d[b]))
			}
		}
	}
	return sum
}

// qDotI4Lanes is the product of a row of an int4 format (nb blocks, a
// multiple of 4) with one quantized input row in the sixteen float32 lanes
// A of the VNNI lane kernels (quant_int_amd64.s), one chunk of four blocks
// (128 weights) at a time: lane 4k+i takes the eight products of bytes
// 4i..4i+3 of the chunk's block k (both nibbles) as an exact integer I,
// unsigned codes u times inputs, its first lane (i = 0) less z times the
// block's Σq (z = 8 when symmetric; s and z are those of the block's
// group), so that the four lanes of a block sum to Σ (u-z)*q. Then
// A[l] = fma(float32(I), float32(s*d_x), A[l]), chunk after chunk, rounded
// once as an FMA rounds; and the lanes are reduced by the tree
// v[l] = A[l]+A[l+8], w[l] = v[l]+v[l+4], (w0+w2) + (w1+w3).
// |I| <= 8*15*127 + 255*32*127 < 2^31, so the integers are exact.
func qDotI4Lanes(f QFormat, w []byte, q []int8, d []float32, nb int) float32 {
	per, hdr := f.Group()/QBlock, 2
	if f.asym() {
		hdr = 3
	}
	gb := hdr + 16*per
	w = w[:nb/per*gb]
	q = q[:nb*QBlock]
	d = d[:nb]
	var a [16]float32
	for c := 0; c < nb/4; c++ {
		for k := 0; k < 4; k++ {
			b := 4*c + k
			blk := w[b/per*gb : (b/per+1)*gb]
			s := f16(blk)
			z := int32(8)
			if f.asym() {
				z = int32(blk[2])
			}
			xs, ws := q[b*QBlock:b*QBlock+QBlock], blk[hdr+16*(b%per):][:16]
			sd := float32(s * d[b])
			var sx int32
			for _, v := range xs {
				sx += int32(v)
			}
			for i := 0; i < 4; i++ {
				var is int32
				for j := 4 * i; j < 4*i+4; j++ {
					is += int32(ws[j]&0xf)*int32(xs[j]) + int32(ws[j]>>4)*int32(xs[j+16])
				}
				if i == 0 {
					is -= z * sx
				}
				a[4*k+i] = fma32(float32(is), sd, a[4*k+i])
			}
		}
	}
	var v [8]float32
	for l := range v {
		v[l] = a[l] + a[l+8]
	}
	w0, w1, w2, w3 := v[0]+v[4], v[1]+v[5], v[2]+v[6], v[3]+v[7]
	return (w0 + w2) + (w1 + w3)
}

// fma32 is a*b+c rounded once to float32, as an FMA instruction computes
// it: the product is exact in float64, the sum is rounded to float64 by
// rounding to odd (a TwoSum gives its error), and 53 bits are enough for
// that to round to float32 as the exact sum would.
func fma32(a, b, c float32) float32 {
	p := float64(float64(a) * float64(b))
	s := p + float64(c)
	if s == 0 || math.IsInf(s, 0) || math.IsNaN(s) {
		return float32(s)
	}
	bv := s - p
	e := (p - (s - bv)) + (float64(c) - bv)
	if bits := math.Float64bits(s); e != 0 && bits&1 == 0 {
		if (e > 0) == (s > 0) {
			bits++
		} else {
			bits--
		}
		s = math.Float64frombits(bits)
	}
	return float32(s)
}

func qMatMulGeneric(f QFormat, out []float32, ldo int, w []byte, rows int, x *Q8Acts) {
	rb := f.RowBytes(x.cols)
	dot := qDotGeneric
	if f.intFormat() {
		dot = qDotInt
	}
	for t := 0; t < x.n; t++ {
		q := x.q[t*x.cols : (t+1)*x.cols]
		d := x.d[t*x.stride : (t+1)*x.stride]
		c := x.c[t*x.stride : (t+1)*x.stride]
		o := out[t*ldo : t*ldo+rows]
		for r := range o {
			o[r] = dot(f, w[r*rb:(r+1)*rb], q, d, c, x.nb)
		}
	}
}
