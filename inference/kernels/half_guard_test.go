//go:build linux

package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// TestMatVecF16Guard runs MatVecF16 and MatVecTF16 on matrices of halves
// that end at (or start right after) an inaccessible page: the kernels'
// wide and masked loads must stay inside the rows.
func TestMatVecF16Guard(t *testing.T) {
	eachVariant(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(45, 46))
		for _, rows := range []int{1, 8, 9} {
			for _, cols := range []int{1, 15, 16, 17, 24, 31, 33, 64, 65} {
				for _, atEnd := range []bool{true, false} {
					t.Run(fmt.Sprintf("%dx%d/end=%v", rows, cols, atEnd), func(t *testing.T) {
						src := randomHalves(rng, rows*cols)
						mem := guarded(t, 2*len(src), atEnd)
						w := unsafe.Slice((*uint16)(unsafe.Pointer(&mem[0])), len(src))
						copy(w, src)
						f := make([]float32, len(w))
						F16ToF32(f, w)
						x := poisoned(rng, max(rows, cols))
						got, want := make([]float32, rows), make([]float32, rows)
						MatVecF16(got, w, x, cols, make([]float32, len(w)))
						MatVec(want, f, x, cols)
						for r := range got {
							if !sameBits(got[r], want[r]) {
								t.Fatalf("row %d = %g, want %g", r, got[r], want[r])
							}
						}
						gotT, wantT := make([]float32, cols), make([]float32, cols)
						MatVecTF16(gotT, w, x[:rows], cols, make([]float32, len(w)))
						MatVecT(wantT, f, x[:rows], cols)
						for j := range gotT {
							if !sameBits(gotT[j], wantT[j]) {
								t.Fatalf("out[%d] = %g, want %g", j, gotT[j], wantT[j])
							}
						}
					})
				}
			}
		}
	})
}
