//go:build amd64 && !purego

package kernels

import (
	"time"

	"golang.org/x/sys/cpu"
)

// best is the fastest variant this CPU supports; impl starts there.
var best = func() int {
	switch {
	case cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL:
		return implAVX512
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return implAVX2
	}
	return implGeneric
}()

func init() { impl = best }

// variants lists the kernel variants this CPU and build can run.
func variants() []int {
	v := []int{implGeneric}
	for i := implAVX2; i <= best; i++ {
		v = append(v, i)
	}
	return v
}

// The assembly in kernels_amd64.s. Each routine computes what the generic
// loop named in its comment computes, summing in a different order; the .s
// file states each contract in full. Callers guarantee the lengths.

// dotAVX512 and dotAVX2 return dotGeneric(a, b); len(b) >= len(a).
//
//go:noescape
func dotAVX512(a, b []float32) float32

//go:noescape
func dotAVX2(a, b []float32) float32

// matVec4AVX512, matVec8AVX512 and matVec4AVX2 do matVecGeneric for 4 or 8
// times groups rows: out[r] = dot(w[r*cols:][:cols], x[:cols]).
//
//go:noescape
func matVec4AVX512(out, w, x *float32, groups, cols int)

//go:noescape
func matVec8AVX512(out, w, x *float32, groups, cols int)

//go:noescape
func matVec4AVX2(out, w, x *float32, groups, cols int)

// mmRowsAVX512 and mmRowsAVX2 are the matMul micro-kernels: for tiles tiles of
// 4 (3) tokens x rows ldx floats apart and the 6 (4) weight rows in wp, they
// store (acc == 0) or add (acc != 0) the k-long dot products into out, whose
// rows are ldo floats apart: out[t*ldo+r] (+)= dot(x[t*ldx:][:k], wp[r][:k]).
// mmRowsAVX512 also prefetches k floats at byte offset pf from each wp[r]
// into L2 when pf != 0.
//
//go:noescape
func mmRowsAVX512(x *float32, ldx, tiles int, wp *[6]*float32, k int, out *float32, ldo, acc, pf int)

//go:noescape
func mmRowsAVX2(x *float32, ldx, tiles int, wp *[4]*float32, k int, out *float32, ldo, acc int)

// axpyAVX512 and axpyAVX2 do axpyGeneric with one FMA per element.
//
//go:noescape
func axpyAVX512(a float32, x, y []float32)

//go:noescape
func axpyAVX2(a float32, x, y []float32)

// streamReadAVX512 and streamReadAVX2 return streamReadGeneric(buf), reading
// buf as eight streams at once.
//
//go:noescape
func streamReadAVX512(buf []float32) float32

//go:noescape
func streamReadAVX2(buf []float32) float32

// fmaPeakAVX512 and fmaPeakAVX2 run n iterations of 16 (12) independent vector
// FMAs and nothing else: 512 (192) flops per iteration, at the FMA issue rate.
// Tests and benchmarks use them to measure the peak.
//
//go:noescape
func fmaPeakAVX512(n int, v *[32]float32)

func fmaPeakAVX2(n int)

func dot(a, b []float32) float32 {
	switch impl {
	case implAVX512:
		return dotAVX512(a, b)
	case implAVX2:
		return dotAVX2(a, b)
	}
	return dotGeneric(a, b)
}

func axpy(a float32, x, y []float32) {
	switch impl {
	case implAVX512:
		axpyAVX512(a, x, y)
	case implAVX2:
		axpyAVX2(a, x, y)
	default:
		axpyGeneric(a, x, y)
	}
}

func streamRead(buf []float32) float32 {
	switch impl {
	case implAVX512:
		return streamReadAVX512(buf)
	case implAVX2:
		return streamReadAVX2(buf)
	}
	return streamReadGeneric(buf)
}

// matVec runs the eight-row (AVX-512) or four-row (AVX2) assembly kernel over
// whole groups of rows and dot over the rest. len(w) == len(out)*cols and
// len(x) == cols.
func matVec(out, w, x []float32, cols int) {
	if impl == implGeneric {
		matVecGeneric(out, w, x, cols)
		return
	}
	if cols == 0 {
		clear(out)
		return
	}
	r := 0
	if impl == implAVX512 {
		if g := len(out) / 8; g > 0 {
			matVec8AVX512(&out[0], &w[0], &x[0], g, cols)
			r = 8 * g
		}
		if len(out)-r >= 4 {
			matVec4AVX512(&out[r], &w[r*cols], &x[0], 1, cols)
			r += 4
		}
	} else if g := len(out) / 4; g > 0 {
		matVec4AVX2(&out[0], &w[0], &x[0], g, cols)
		r = 4 * g
	}
	for ; r < len(out); r++ {
		out[r] = dot(w[r*cols:(r+1)*cols], x)
	}
}

// kcMax bounds the K block of matMul: a tile's weight rows (6 x kcMax floats)
// and x rows (4 x kcMax) then fit together in a 48 KiB L1 cache.
const kcMax = 1024

// kBlock returns the K block size for cols columns: the fewest blocks of at
// most kcMax, made equal and rounded up to a multiple of 16.
func kBlock(cols int) int {
	nb := (cols + kcMax - 1) / kcMax
	return ((cols+nb-1)/nb + 15) &^ 15
}

// matMul computes Y = X·Wᵀ with a register-blocked kernel that keeps mt
// tokens by nr weight rows of dot products in registers (4x6 for AVX-512, 3x4
// for AVX2). For each K block and each group of nr weight rows, the rows stay
// in L1 while every tile of mt tokens streams past (x for one K block, n*kc
// floats, stays in L2); the kernel loops over the tiles itself, adds each
// block's sums into out, and prefetches the next group's rows into L2.
// Edges: the last n%mt tokens run from a zero-padded copy, and the last
// rows%nr rows repeat the last row; both write through a small buffer from
// which only the real results are copied out.
func matMul(out []float32, ldo int, x, w []float32, n, rows, cols int) {
	if impl == implGeneric {
		matMulGeneric(out, ldo, x, w, n, rows, cols)
		return
	}
	if cols == 0 {
		for t := 0; t < n; t++ {
			clear(out[t*ldo : t*ldo+rows])
		}
		return
	}
	if n%tileTokens() == 0 {
		matMulTiled(out, ldo, x, w, n, rows, cols, nil)
		return
	}
	// Declared here, not in matMulTiled, so that only calls with a token
	// remainder pay for zeroing it. It does not escape: no allocation.
	var xrest [4 * kcMax]float32
	matMulTiled(out, ldo, x, w, n, rows, cols, xrest[:])
}

// tileTokens and tileRows give the kernel tile shape of impl.
func tileTokens() int {
	if impl == implAVX512 {
		return 4
	}
	return 3
}

func tileRows() int {
	if impl == implAVX512 {
		return 6
	}
	return 4
}

// mmRows calls the tile kernel of impl (mmRowsAVX512 or mmRowsAVX2, which
// does not prefetch); wp holds tileRows() pointers.
func mmRows(x *float32, ldx, tiles int, wp *[6]*float32, k int, out *float32, ldo, acc, pf int) {
	if impl == implAVX512 {
		mmRowsAVX512(x, ldx, tiles, wp, k, out, ldo, acc, pf)
	} else {
		mmRowsAVX2(x, ldx, tiles, (*[4]*float32)(wp[:4]), k, out, ldo, acc)
	}
}

// matMulTiled is matMul for cols > 0; xrest has room for 4*kcMax floats
// whenever n is not a multiple of the tile's token count.
func matMulTiled(out []float32, ldo int, x, w []float32, n, rows, cols int, xrest []float32) {
	mt, nr := tileTokens(), tileRows()
	kc := kBlock(cols)
	full := n / mt // whole token tiles
	rest := n - full*mt
	var wp [6]*float32
	var sums [4 * 6]float32 // [mt][nr] results of an edge tile
	for k0 := 0; k0 < cols; k0 += kc {
		kk := min(kc, cols-k0)
		acc := 0
		if k0 > 0 {
			acc = 1
		}
		if rest > 0 {
			clear(xrest[:mt*kk])
			for i := 0; i < rest; i++ {
				t := full*mt + i
				copy(xrest[i*kk:(i+1)*kk], x[t*cols+k0:t*cols+k0+kk])
			}
		}
		for r0 := 0; r0 < rows; r0 += nr {
			nrow := min(nr, rows-r0)
			for j := range nr {
				wp[j] = &w[min(r0+j, rows-1)*cols+k0]
			}
			pf := 0 // byte offset to the next group's rows, if it is whole
			if r0+2*nr <= rows {
				pf = 4 * nr * cols
			}
			if nrow == nr && full > 0 {
				mmRows(&x[k0], cols, full, &wp, kk, &out[r0], ldo, acc, pf)
			} else {
				for t0 := 0; t0 < full*mt; t0 += mt {
					mmRows(&x[t0*cols+k0], cols, 1, &wp, kk, &sums[0], nr, 0, 0)
					addTile(out, ldo, t0, r0, mt, nrow, nr, sums[:], acc)
				}
			}
			if rest > 0 {
				mmRows(&xrest[0], kk, 1, &wp, kk, &sums[0], nr, 0, 0)
				addTile(out, ldo, full*mt, r0, rest, nrow, nr, sums[:], acc)
			}
		}
	}
}

// addTile stores (acc == 0) or adds sums[t*nr+r] into out[(t0+t)*ldo+r0+r]
// for t < ntok, r < nrow.
func addTile(out []float32, ldo, t0, r0, ntok, nrow, nr int, sums []float32, acc int) {
	for t := 0; t < ntok; t++ {
		o := out[(t0+t)*ldo+r0:][:nrow]
		s := sums[t*nr:][:nrow]
		if acc == 0 {
			copy(o, s)
			continue
		}
		for r := range o {
			o[r] += s[r]
		}
	}
}

// peakOperands seeds the FMA peak loop with non-zero operands.
var peakOperands = func() (v [32]float32) {
	for i := range v {
		v[i] = float32(i)*0.001 + 0.5
	}
	return v
}()

func peakFLOPS() float64 {
	const iters = 1 << 15
	best := 0.0
	for range 5 {
		start := time.Now()
		var flops float64
		for range 100 {
			switch impl {
			case implAVX512:
				fmaPeakAVX512(iters, &peakOperands)
				flops += iters * 16 * 16 * 2
			case implAVX2:
				fmaPeakAVX2(iters)
				flops += iters * 12 * 8 * 2
			default:
				return 0
			}
		}
		best = max(best, flops/time.Since(start).Seconds())
	}
	return best
}
