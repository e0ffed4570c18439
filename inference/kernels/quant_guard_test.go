//go:build linux

package kernels

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
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
