package llama2c

import (
	"encoding/binary"
	"io"
	"math"
)

// MetaRopePatch is the metadata key under which Load keeps the entries of the
// file's RoPE tables that differ from the tables Save computes, so that a
// loaded checkpoint saves back byte for byte. PyTorch's float32 cos and sin
// (which wrote llama2.c's tables) are not correctly rounded, while Save rounds
// exact values. The value is a []uint32 of (index, float32 bits) pairs, the
// index counting through freq_cis_real and then freq_cis_imag.
const MetaRopePatch = "llama2c.rope_patch"

// ropePatchTol is how far a patched entry may lie from the computed value.
// Rounding differences are a few 1e-8; the bound also admits angles that
// differ in the last bit of a frequency, and still rejects tables computed
// for another head size, context length or theta.
const ropePatchTol = 1e-3

// rope computes the entries of llama2.c's freq_cis_real and freq_cis_imag
// tables, each [seq_len, head_size/2], as export.py's precompute_freqs_cis
// does in float32: freqs[i] = 1 / theta^(2i/head_size), angle = t * freqs[i],
// then cos and sin. Each float32 operation is rounded to float32 as PyTorch
// does; pow, cos and sin are computed in float64 and rounded once.
type rope struct {
	freqs []float32
}

func newRope(headSize int) rope {
	freqs := make([]float32, headSize/2)
	for i := range freqs {
		e := float32(2*i) / float32(headSize)
		p := float32(math.Pow(RopeTheta, float64(e)))
		freqs[i] = 1 / p
	}
	return rope{freqs}
}

// at returns the entries of both tables at position pos, pair i.
func (r rope) at(pos, i int) (re, im float32) {
	x := float64(float32(pos) * r.freqs[i])
	return float32(math.Cos(x)), float32(math.Sin(x))
}

// ropePatch compares a file's RoPE tables (raw little-endian bytes) with the
// computed ones and returns the differing entries that lie within
// ropePatchTol, as MetaRopePatch pairs.
func ropePatch(headSize, seqLen int, fileRe, fileIm []byte) []uint32 {
	r, half := newRope(headSize), headSize/2
	n := seqLen * half
	var patch []uint32
	for table, file := range [2][]byte{fileRe, fileIm} {
		for pos := 0; pos < seqLen; pos++ {
			for i := 0; i < half; i++ {
				k := pos*half + i
				want, im := r.at(pos, i)
				if table == 1 {
					want = im
				}
				bits := binary.LittleEndian.Uint32(file[4*k:])
				if bits != math.Float32bits(want) && closeTo(math.Float32frombits(bits), want) {
					patch = append(patch, uint32(table*n+k), bits)
				}
			}
		}
	}
	return patch
}

// writeRope writes the two tables, with the entries of patch (a MetaRopePatch
// value) that still fit: entries out of range, or too far from the computed
// value because the model changed since it was loaded, are ignored, and so is
// a value that is not a []uint32 of pairs.
func writeRope(w io.Writer, headSize, seqLen int, patch any) error {
	r, half := newRope(headSize), headSize/2
	n := seqLen * half
	fix := map[int]float32{}
	if p, ok := patch.([]uint32); ok && len(p)%2 == 0 {
		for j := 0; j < len(p); j += 2 {
			if uint64(p[j]) < 2*uint64(n) {
				fix[int(p[j])] = math.Float32frombits(p[j+1])
			}
		}
	}
	row := make([]byte, 0, 4*half)
	for table := 0; table < 2; table++ {
		for pos := 0; pos < seqLen; pos++ {
			row = row[:0]
			for i := 0; i < half; i++ {
				v, im := r.at(pos, i)
				if table == 1 {
					v = im
				}
				if f, ok := fix[table*n+pos*half+i]; ok && closeTo(f, v) {
					v = f
				}
				row = binary.LittleEndian.AppendUint32(row, math.Float32bits(v))
			}
			if _, err := w.Write(row); err != nil {
				return err
			}
		}
	}
	return nil
}

func closeTo(a, b float32) bool {
	return math.Abs(float64(a)-float64(b)) <= ropePatchTol
}
