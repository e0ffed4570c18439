//go:build linux

package kernels

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"unsafe"
)

// guarded returns a slice of n bytes whose first byte follows an
// inaccessible page (atEnd false) or whose last byte precedes one (atEnd
// true), so that a kernel reading outside it faults.
func guarded(t *testing.T, n int, atEnd bool) []byte {
	t.Helper()
	page := syscall.Getpagesize()
	span := (n + page - 1) / page * page
	mem, err := syscall.Mmap(-1, 0, span+2*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Skip("mmap:", err)
	}
	t.Cleanup(func() { syscall.Munmap(mem) })
	if err := syscall.Mprotect(mem[:page], syscall.PROT_NONE); err != nil {
		t.Skip("mprotect:", err)
	}
	if err := syscall.Mprotect(mem[page+span:], syscall.PROT_NONE); err != nil {
		t.Skip("mprotect:", err)
	}
	if atEnd {
		return mem[page+span-n : page+span : page+span]
	}
	return mem[page : page+n : page+n]
}

// TestQMatMulGuard runs every variant on weights that end at (or start
// right after) an inaccessible page, for every block count up to 17 and
// rows around the groups of four: the kernels' wide loads must stay inside
// the weights.
func TestQMatMulGuard(t *testing.T) {
	eachVariant(t, func(t *testing.T) {
		for _, f := range qFormats {
			rng := rand.New(rand.NewPCG(uint64(f), 9))
			for nb := 1; nb <= 17; nb++ {
				for _, rows := range []int{1, 4, 5} {
					for _, atEnd := range []bool{true, false} {
						t.Run(fmt.Sprintf("%v/nb=%d/rows=%d/end=%v", f, nb, rows, atEnd), func(t *testing.T) {
							src := randomBlocks(rng, f, rows, nb)
							w := guarded(t, len(src), atEnd)
							copy(w, src)
							x, _ := randomActs(rng, 2, nb*QBlock)
							got := make([]float32, 2*rows)
							want := make([]float32, 2*rows)
							QMatMul(f, got, rows, w, rows, x)
							qMatMulGeneric(f, want, rows, w, rows, x)
							for i := range got {
								_, r := i/rows, i%rows
								want64, mag := qDot64(f, w, r, x, i/rows)
								if !qNear(got[i], want64, mag) {
									t.Fatalf("out[%d] = %g, generic %g, want %g", i, got[i], want[i], want64)
								}
							}
						})
					}
				}
			}
		}
	})
}

// TestMatVecGuard runs MatVec on rows that start or end a few floats from
// an inaccessible page, so that the kernels for rows off a cache-line
// boundary, which load whole lines, must keep to the lines of the rows.
func TestMatVecGuard(t *testing.T) {
	eachVariant(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(51, 52))
		for _, cols := range []int{16, 48, 768} {
			for _, rows := range []int{8, 13} {
				for _, d := range []int{1, 8, 15} {
					for _, atEnd := range []bool{true, false} {
						n := rows * cols
						mem := guarded(t, 4*(n+d), atEnd)
						all := unsafe.Slice((*float32)(unsafe.Pointer(&mem[0])), n+d)
						w := all[d:] // d floats after the page before
						if atEnd {
							w = all[:n] // d floats before the page after
						}
						for i := range w {
							w[i] = float32(rng.NormFloat64())
						}
						x := make([]float32, cols)
						for i := range x {
							x[i] = float32(rng.NormFloat64())
						}
						out := make([]float32, rows)
						MatVec(out, w, x, cols)
						for r := range out {
							if want := Dot(w[r*cols:(r+1)*cols], x); out[r] != want {
								t.Fatalf("cols=%d rows=%d d=%d end=%v: row %d = %g, Dot %g", cols, rows, d, atEnd, r, out[r], want)
							}
						}
					}
				}
			}
		}
	})
}

// TestQMatMulIntGuard is TestQMatMulGuard for the int formats, on row
// counts that reach every kernel and leftover path.
func TestQMatMulIntGuard(t *testing.T) {
	eachVariant(t, func(t *testing.T) {
		for _, f := range intFormats {
			rng := rand.New(rand.NewPCG(uint64(f), 11))
			for _, groups := range []int{1, 3, 4} {
				cols := groups * max(QBlock, f.Group())
				for _, rows := range []int{1, 4, 5, 8, 9, 13} {
					for _, atEnd := range []bool{true, false} {
						src := randomIntRows(rng, f, rows, cols, false)
						w := guarded(t, len(src), atEnd)
						copy(w, src)
						x, _ := randomActs(rng, 2, cols)
						got := make([]float32, 2*rows)
						want := make([]float32, 2*rows)
						QMatMul(f, got, rows, w, rows, x)
						qMatMulIntRef(f, want, rows, w, rows, x)
						for i := range got {
							if got[i] != want[i] {
								t.Fatalf("%v %d rows of %d, end %v: out[%d] = %g, want %g", f, rows, cols, atEnd, i, got[i], want[i])
							}
						}
					}
				}
			}
		}
	})
}
