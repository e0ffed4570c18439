//go:build amd64 && !purego

package kernels

import (
	"sync"
	"time"
	"unsafe"

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

// matVec4AVX512 does matVecGeneric for 4 times groups rows:
// out[r] = dot(w[r*cols:][:cols], x[:cols]).
//
//go:noescape
func matVec4AVX512(out, w, x *float32, groups, cols int)

// matVec8AVX512 and matVec4AVX2 do the same for 8 or 4 times groups rows
// taken as eight or four lanes of groups rows each, lane rows apart, a row
// from each lane at a time: as many long sequential streams from memory,
// where groups of neighbouring rows would make as many short ones.
//
//go:noescape
func matVec8AVX512(out, w, x *float32, groups, cols, lane int)

//go:noescape
func matVec4AVX2(out, w, x *float32, groups, cols, lane int)

// matVec8UAVX512 is matVec8AVX512 for rows that start m floats past a
// 64-byte boundary (0 < m < 16, cols a multiple of 16), given idx =
// &lineIndex[m]: it reads every cache line once, aligned.
//
//go:noescape
func matVec8UAVX512(out, w, x *float32, groups, cols, lane int, idx *int32)

// lineIndex[m:m+16] are the VPERMT2PS indices that take 16 floats starting
// m floats into one 64-byte line from it and the next.
var lineIndex = [32]int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
	16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31}

// mmPanelAVX512 is the AVX-512 matMul micro-kernel: for tiles tiles of 8
// tokens x rows ldx floats apart and a panel of 48 weight rows packed column
// by column (wp[j*48+r] is row r, column j), it sets the first nr <= 48 sums
// of each token, out[t*ldo+r] = sum over j < k of x[t*ldx+j]*wp[j*48+r], as
// one FMA chain in order of j that starts from out[t*ldo+r] when acc != 0.
// Tiles i < pfTiles also prefetch into L2 the 16*(k&^3) bytes at byte offset
// i*pfStride from pf (a line per 4 columns), which may run past pf's slice:
// prefetches never fault.
//
//go:noescape
func mmPanelAVX512(x *float32, ldx, tiles int, wp *float32, k int, out *float32, ldo, acc, nr int, pf *float32, pfStride, pfTiles int)

// mmTokensAVX512 is the AVX-512 micro-kernel for few tokens: for groups
// groups of 12 weight rows (rows ldw floats apart) and a panel of 32 tokens
// stored column by column (xp[j*32+t] is token t, column j), it sets the sums
// of each weight row R, ot[R*ldt+t] = sum over j < k of xp[j*32+t]*w[R*ldw+j],
// as one FMA chain in order of j from 0: the bits of mmPanelAVX512.
//
//go:noescape
func mmTokensAVX512(xp *float32, w *float32, ldw, groups, k int, ot *float32, ldt int)

// mmTokens16AVX512 is mmTokensAVX512 for a panel of 16 tokens (xp[j*16+t])
// and groups of 24 weight rows.
//
//go:noescape
func mmTokens16AVX512(xp *float32, w *float32, ldw, groups, k int, ot *float32, ldt int)

// transpose16AVX512 transposes 16 rows of w into columns of dst:
// dst[j*ldd+r] = w[r*ldw+j] for r < 16 and j < 16*chunks.
//
//go:noescape
func transpose16AVX512(dst *float32, ldd int, w *float32, ldw int, chunks int)

// mmRowsAVX2 is the AVX2 matMul micro-kernel: for tiles tiles of 3 tokens x
// rows ldx floats apart and the 4 weight rows in wp, it stores (acc == 0) or
// adds (acc != 0) the k-long dot products into out, whose rows are ldo floats
// apart: out[t*ldo+r] (+)= dot(x[t*ldx:][:k], wp[r][:k]).
//
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

// expVecAVX512 and expVecAVX2 do expVecGeneric, softmaxAVX512 and softmaxAVX2
// softmaxGeneric, and swiGLUAVX512 and swiGLUAVX2 swiGLUGeneric (len(up) ==
// len(gate)), all to the bit: they run expGeneric's operations lane by lane.
//
//go:noescape
func expVecAVX512(x []float32)

//go:noescape
func expVecAVX2(x []float32)

//go:noescape
func softmaxAVX512(x []float32, d float32)

//go:noescape
func softmaxAVX2(x []float32, d float32)

//go:noescape
func swiGLUAVX512(gate, up []float32)

//go:noescape
func swiGLUAVX2(gate, up []float32)

// ropePairsAVX512 does ropeGeneric with pairs, to the bit, for headDim a
// multiple of 16; addAVX512 does addGeneric (len(src) >= len(dst)).
//
//go:noescape
func ropePairsAVX512(x []float32, headDim int, cos, sin []float32)

//go:noescape
func addAVX512(dst, src []float32)

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

// matVecTAVX512 and matVecTAVX2 do matVecTGeneric for rows rows of w (the
// length of x): column blocks of 64 (32 with AVX2) floats, then of 16 (8),
// then a masked tail, each summed over the rows in order with one FMA per row.
//
//go:noescape
func matVecTAVX512(out, w, x *float32, rows, cols int)

//go:noescape
func matVecTAVX2(out, w, x *float32, rows, cols int)

func matVecT(out, w, x []float32, cols int) {
	switch {
	case len(x) == 0:
		clear(out)
	case impl == implAVX512:
		matVecTAVX512(&out[0], &w[0], &x[0], len(x), cols)
	case impl == implAVX2:
		matVecTAVX2(&out[0], &w[0], &x[0], len(x), cols)
	default:
		matVecTGeneric(out, w, x, cols)
	}
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

func expVec(x []float32) {
	switch impl {
	case implAVX512:
		expVecAVX512(x)
	case implAVX2:
		expVecAVX2(x)
	default:
		expVecGeneric(x)
	}
}

func softmax(x []float32, d float32) {
	switch impl {
	case implAVX512:
		softmaxAVX512(x, d)
	case implAVX2:
		softmaxAVX2(x, d)
	default:
		softmaxGeneric(x, d)
	}
}

func swiGLU(gate, up []float32) {
	switch impl {
	case implAVX512:
		swiGLUAVX512(gate, up)
	case implAVX2:
		swiGLUAVX2(gate, up)
	default:
		swiGLUGeneric(gate, up)
	}
}

func rope(x []float32, headDim int, cos, sin []float32, pairs bool) {
	if impl == implAVX512 && pairs && headDim > 0 && headDim%16 == 0 && len(x)%headDim == 0 &&
		len(cos) >= headDim/2 && len(sin) >= headDim/2 {
		ropePairsAVX512(x, headDim, cos, sin)
		return
	}
	ropeGeneric(x, headDim, cos, sin, pairs)
}

func add(dst, src []float32) {
	if impl == implAVX512 {
		addAVX512(dst, src[:len(dst)])
		return
	}
	addGeneric(dst, src)
}

// transpose runs whole groups of 16 rows by 16 columns in assembly and the
// edges in Go.
func transpose(dst []float32, ldd int, src []float32, lds, rows, cols int) {
	if impl != implAVX512 || cols < 16 {
		transposeGeneric(dst, ldd, src, lds, rows, cols)
		return
	}
	c16 := cols &^ 15
	i := 0
	for ; i+16 <= rows; i += 16 {
		transpose16AVX512(&dst[i], ldd, &src[i*lds], lds, c16/16)
		for r := i; r < i+16; r++ {
			for j, v := range src[r*lds+c16 : r*lds+cols] {
				dst[(c16+j)*ldd+r] = v
			}
		}
	}
	if i < rows { // src may end before a whole stride past its last row
		transposeGeneric(dst[i:], ldd, src[i*lds:], lds, rows-i, cols)
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

// matVec runs the eight-lane (AVX-512) or four-lane (AVX2) assembly kernel
// over the first 8g or 4g rows, in lanes of g consecutive rows, and dot over
// the rest: the same bits for every row whichever way a caller splits them.
// Reading a 256 MB matrix from memory in 64-row calls, as decode does,
// lanes ran 1.02-1.09x as fast as eight neighbouring rows at a time
// (BenchmarkMatVecDRAM). With AVX-512, rows of whole
// vectors that start off a cache line (as in a GGUF file aligned to 32
// bytes) are read a line at a time by matVec8UAVX512. len(w) == len(out)*cols and
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
			if m := uintptr(unsafe.Pointer(&w[0])) & 63; m != 0 && m&3 == 0 && cols&15 == 0 {
				matVec8UAVX512(&out[0], &w[0], &x[0], g, cols, g, &lineIndex[m/4])
			} else {
				matVec8AVX512(&out[0], &w[0], &x[0], g, cols, g)
			}
			r = 8 * g
		}
		if len(out)-r >= 4 {
			matVec4AVX512(&out[r], &w[r*cols], &x[0], 1, cols)
			r += 4
		}
	} else if g := len(out) / 4; g > 0 {
		matVec4AVX2(&out[0], &w[0], &x[0], g, cols, g)
		r = 4 * g
	}
	for ; r < len(out); r++ {
		out[r] = dot(w[r*cols:(r+1)*cols], x)
	}
}

// matMul computes Y = X·Wᵀ: with AVX-512 by outer products, on packed panels
// of weights (matMulPanels) or, for a few tokens, of tokens (matMulTokens);
// with AVX2 by register-blocked dot products (matMulDots).
func matMul(out []float32, ldo int, x, w []float32, n, rows, cols int) {
	switch {
	case impl == implGeneric:
		matMulGeneric(out, ldo, x, w, n, rows, cols)
	case cols == 0:
		for t := 0; t < n; t++ {
			clear(out[t*ldo : t*ldo+rows])
		}
	case impl == implAVX512 && n <= tokensMax:
		matMulTokens(out, ldo, x, w, n, rows, cols)
	case impl == implAVX512:
		matMulPanels(out, ldo, x, w, n, rows, cols)
	case n%3 == 0:
		matMulDots(out, ldo, x, w, n, rows, cols, nil)
	default:
		// Declared here, not in matMulDots, so that only calls with a token
		// remainder pay for zeroing it. It does not escape: no allocation.
		var xrest [3 * kcMax]float32
		matMulDots(out, ldo, x, w, n, rows, cols, xrest[:])
	}
}

// The AVX-512 tile is panelTokens tokens by panelRows weight rows. A panel's
// rows are packed panelSpan columns at a time (up to 192 KiB, in L2), and
// the micro-kernel runs over K blocks of panelK columns (24 KiB, in L1 once
// the first tile has read them) while every tile of tokens streams past.
const (
	panelTokens = 8
	panelRows   = 48
	panelK      = 128
	panelSpan   = 1024
)

// panelBuf is matMulPanels' scratch, too big for the stack: the packed panel
// and the edge tile's tokens and sums.
type panelBuf struct {
	panel [panelSpan * panelRows]float32
	xrest [panelTokens * panelSpan]float32
	orest [panelTokens * panelRows]float32
}

var panelBufs = sync.Pool{New: func() any { return new(panelBuf) }}

// matMulPanels is matMul for AVX-512 and cols > 0. For each span of columns
// and each panel of 48 weight rows it packs the panel (reading each row
// sequentially), then for each K block runs the micro-kernel over all tokens,
// continuing each sum's FMA chain from the previous block. Meanwhile the
// kernel prefetches the next panel's rows, which would otherwise stall the
// packing on memory. A last panel of fewer rows is masked; the last n%8
// tokens run from a copy and write through a small buffer.
func matMulPanels(out []float32, ldo int, x, w []float32, n, rows, cols int) {
	buf := panelBufs.Get().(*panelBuf)
	defer panelBufs.Put(buf)
	full := n / panelTokens
	rest := n - full*panelTokens
	t0 := full * panelTokens
	for s0 := 0; s0 < cols; s0 += panelSpan {
		span := min(panelSpan, cols-s0)
		xrest := buf.xrest[:]
		for i := 0; i < rest; i++ {
			copy(xrest[i*span:(i+1)*span], x[(t0+i)*cols+s0:])
		}
		for r0 := 0; r0 < rows; r0 += panelRows {
			nr := min(panelRows, rows-r0)
			packPanel(buf.panel[:], w[r0*cols+s0:], cols, nr, span)
			// The panel packed next: the following rows, else the next span's
			// first; after the last, the rows that follow w in memory, which
			// the next call (on the next block of the same matrix) is likely
			// to start with.
			nextR, nextS := r0+panelRows, s0
			if nextR >= rows {
				nextR, nextS = 0, s0+panelSpan
			}
			var pf prefetch
			switch {
			case nextS < cols:
				pf = prefetch{w: w, cols: cols, r0: nextR, s0: nextS,
					rows: min(panelRows, rows-nextR), span: min(panelSpan, cols-nextS)}
			case cap(w) >= (rows+panelRows)*cols:
				pf = prefetch{w: w[:cap(w)], cols: cols, r0: rows, s0: 0,
					rows: panelRows, span: min(panelSpan, cols)}
			}
			for k0, kb := 0, 0; k0 < span; k0, kb = k0+panelK, kb+1 {
				kc := min(panelK, span-k0)
				acc := 0
				if s0+k0 > 0 {
					acc = 1
				}
				wp := &buf.panel[k0*panelRows]
				if full > 0 {
					p, stride, tiles := pf.plan(kb*full, full, kc)
					mmPanelAVX512(&x[s0+k0], cols, full, wp, kc, &out[r0], ldo, acc, nr, p, stride, tiles)
				}
				if rest > 0 {
					o := buf.orest[:]
					for i := 0; i < rest; i++ {
						copy(o[i*panelRows:][:nr], out[(t0+i)*ldo+r0:][:nr])
					}
					mmPanelAVX512(&xrest[k0], span, 1, wp, kc, &o[0], panelRows, acc, nr, nil, 0, 0)
					for i := 0; i < rest; i++ {
						copy(out[(t0+i)*ldo+r0:][:nr], o[i*panelRows:][:nr])
					}
				}
			}
		}
	}
}

// prefetch describes the weights of the panel packed next, rows [r0, r0+rows)
// and columns [s0, s0+span) of w, which the micro-kernel calls of the current
// panel pull into L2 piece by piece; rows == 0 means none.
type prefetch struct {
	w                        []float32
	cols, r0, s0, rows, span int
}

// plan returns the mmPanelAVX512 prefetch arguments for a call whose tiles
// are pieces slot..slot+tiles-1 of the work. A tile fetches 16*kc bytes of
// one row; piece p is row p%rows, the (p/rows)-th such stretch of it. A call
// stops at the last row rather than wrap around.
func (f *prefetch) plan(slot, tiles, kc int) (pf *float32, stride, n int) {
	step := 4 * (kc &^ 3) // floats one tile fetches
	if f.rows == 0 || step == 0 {
		return nil, 0, 0
	}
	row, piece := slot%f.rows, slot/f.rows
	if piece*step >= f.span {
		return nil, 0, 0
	}
	return &f.w[(f.r0+row)*f.cols+f.s0+piece*step], 4 * f.cols, min(tiles, f.rows-row)
}

// Few tokens do not repay packing the weights, which costs as much as
// multiplying them by about 7 tokens: up to tokensMax tokens, matMul packs the
// tokens instead, in panels of 32 (of 16 for up to 16 tokens), and streams
// the weights as they are. Beyond 32 tokens the padding of a second panel
// costs more than packing the weights.
const (
	tokensMax = 32
	// tokensBlock is how many weight rows one pass covers, a multiple of
	// both kernels' groups: their sums stay in cache until they are
	// transposed into out.
	tokensBlock = 192
)

// tokensBuf is matMulTokens' scratch: the packed tokens, the sums of a block
// of rows, a copy of the last, partial group of weight rows, and the last,
// partial group of tokens padded with zeros.
type tokensBuf struct {
	xp, sums, wtail, stage []float32
}

var tokensBufs = sync.Pool{New: func() any { return new(tokensBuf) }}

// resize returns s with length n, reallocated if its capacity is short.
func resize(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// matMulTokens is matMul for AVX-512, cols > 0 and n <= tokensMax. The
// tokens are packed, zero-padded, into panels stored column by column; then
// for each block of weight rows, each group of rows meets each panel over
// all of k in one micro-kernel call, and the block's sums, a row of tokens
// per weight row, are transposed into out. A last group of fewer rows runs
// from a copy that repeats its last row.
func matMulTokens(out []float32, ldo int, x, w []float32, n, rows, cols int) {
	tp, tr, kernel := 32, 12, mmTokensAVX512 // tokens per panel, rows per group
	if n <= 16 {
		tp, tr, kernel = 16, 24, mmTokens16AVX512
	}
	b := tokensBufs.Get().(*tokensBuf)
	defer tokensBufs.Put(b)
	np := (n + tp - 1) / tp
	ldt := np * tp
	b.xp = resize(b.xp, np*cols*tp)
	for p := 0; p < np; p++ {
		dst := b.xp[p*cols*tp : (p+1)*cols*tp]
		for v := 0; v < tp; v += 16 {
			t0 := p*tp + v
			src := x[min(t0, n)*cols:]
			if nt := n - t0; nt < 16 { // the last group: its tokens and zeros
				b.stage = resize(b.stage, 16*cols)
				m := copy(b.stage, x[min(t0, n)*cols:n*cols])
				clear(b.stage[m:])
				src = b.stage
			}
			transpose(dst[v:], tp, src, cols, 16, cols)
		}
	}
	b.sums = resize(b.sums, tokensBlock*ldt)
	for r0 := 0; r0 < rows; r0 += tokensBlock {
		rb := min(tokensBlock, rows-r0)
		groups := rb / tr
		tail := rb - groups*tr
		if tail > 0 {
			b.wtail = resize(b.wtail, tr*cols)
			for r := 0; r < tr; r++ {
				src := r0 + groups*tr + min(r, tail-1)
				copy(b.wtail[r*cols:(r+1)*cols], w[src*cols:])
			}
		}
		for p := 0; p < np; p++ {
			xp := &b.xp[p*cols*tp]
			if groups > 0 {
				_ = w[(r0+groups*tr)*cols-1] // the rows the assembly reads
				kernel(xp, &w[r0*cols], cols, groups, cols, &b.sums[p*tp], ldt)
			}
			if tail > 0 {
				kernel(xp, &b.wtail[0], cols, 1, cols, &b.sums[groups*tr*ldt+p*tp], ldt)
			}
		}
		transpose(out[r0:], ldo, b.sums, ldt, rb, n)
	}
}

// packPanel sets panel[j*panelRows+r] = w[r*ldw+j] for r < nr and j < kc:
// whole groups of 16 rows by 16 columns in assembly, the rest in Go. Lanes of
// rows past nr keep stale values, which only reach sums that are never stored.
func packPanel(panel, w []float32, ldw, nr, kc int) {
	for g := 0; g < nr; g += 16 {
		rs := min(16, nr-g)
		j0 := 0
		if rs == 16 && kc >= 16 {
			_ = w[(g+15)*ldw+kc-1] // the assembly reads rows g..g+15, columns < kc&^15
			transpose16AVX512(&panel[g], panelRows, &w[g*ldw], ldw, kc/16)
			j0 = kc &^ 15
		}
		for r := g; r < g+rs; r++ {
			row := w[r*ldw : r*ldw+kc]
			for j := j0; j < kc; j++ {
				panel[j*panelRows+r] = row[j]
			}
		}
	}
}

// kcMax bounds the K block of matMulDots: a tile's weight rows (4 x kcMax
// floats) and x rows (3 x kcMax) then fit together in the L1 cache.
const kcMax = 1024

// kBlock returns the K block size for cols columns: the fewest blocks of at
// most kcMax, made equal and rounded up to a multiple of 16.
func kBlock(cols int) int {
	nb := (cols + kcMax - 1) / kcMax
	return ((cols+nb-1)/nb + 15) &^ 15
}

// matMulDots is matMul for AVX2 and cols > 0, with a kernel that keeps 3
// tokens by 4 weight rows of dot products in registers. For each K block and
// each group of 4 weight rows, the rows stay in L1 while every tile of 3
// tokens streams past (x for one K block stays in L2); the kernel loops over
// the tiles itself and adds each block's sums into out. Edges: the last n%3
// tokens run from a zero-padded copy (xrest, room for 3*kcMax floats), and
// the last rows%4 rows repeat the last row; both write through a small buffer
// from which only the real results are copied out.
func matMulDots(out []float32, ldo int, x, w []float32, n, rows, cols int, xrest []float32) {
	const mt, nr = 3, 4
	kc := kBlock(cols)
	full := n / mt // whole token tiles
	rest := n - full*mt
	var wp [nr]*float32
	var sums [mt * nr]float32 // [mt][nr] results of an edge tile
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
			if nrow == nr && full > 0 {
				mmRowsAVX2(&x[k0], cols, full, &wp, kk, &out[r0], ldo, acc)
			} else {
				for t0 := 0; t0 < full*mt; t0 += mt {
					mmRowsAVX2(&x[t0*cols+k0], cols, 1, &wp, kk, &sums[0], nr, 0)
					addTile(out, ldo, t0, r0, mt, nrow, nr, sums[:], acc)
				}
			}
			if rest > 0 {
				mmRowsAVX2(&xrest[0], kk, 1, &wp, kk, &sums[0], nr, 0)
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
