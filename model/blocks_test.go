package model

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// The reference decoders below are written element by element from ggml's
// block definitions (ggml-common.h) and the packing done by its quantizers
// (quantize_row_q4_K_ref, quantize_row_q6_K_ref in ggml-quants.c), not from
// the loops in blocks.go.

// refScaleMinQ4K returns the 6-bit scale and min of sub-block j (0..7): the
// low 6 bits of bytes j and j+4 for j < 4; for j >= 4 the low/high nibble of
// byte j+4 plus the top two bits of bytes j-4 and j.
func refScaleMinQ4K(s []byte, j int) (sc, m int) {
	if j < 4 {
		return int(s[j] & 63), int(s[j+4] & 63)
	}
	lo := s[j+4]
	return int(lo&15) | int(s[j-4]>>6)<<4, int(lo>>4) | int(s[j]>>6)<<4
}

// refQ4K decodes element i (0..255) of a Q4_K block.
func refQ4K(blk []byte, i int) float32 {
	d := F16ToF32(binary.LittleEndian.Uint16(blk[0:]))
	dmin := F16ToF32(binary.LittleEndian.Uint16(blk[2:]))
	j := i / 32 // sub-block of 32 weights
	sc, m := refScaleMinQ4K(blk[4:16], j)
	// Sub-blocks 2c and 2c+1 share the 32 bytes qs[32c:32c+32], low nibbles first.
	q := int(blk[16+32*(i/64)+i%32]>>(4*(j%2))) & 15
	return float32(d*float32(sc)*float32(q)) - float32(dmin*float32(m))
}

// refQ6K decodes element i (0..255) of a Q6_K block: ql[128], qh[64], scales[16], d.
func refQ6K(blk []byte, i int) float32 {
	half, r := i/128, i%128
	k, l := r/32, r%32 // quarter of the half, position in it
	low := int(blk[64*half+l+32*(k%2)]>>(4*(k/2))) & 15
	high := int(blk[128+32*half+l]>>(2*k)) & 3
	q := low | high<<4 - 32
	sc := int8(blk[192+i/16])
	d := F16ToF32(binary.LittleEndian.Uint16(blk[208:]))
	return d * float32(sc) * float32(q)
}

// packQ4K builds a Q4_K block the way quantize_row_q4_K_ref packs it.
func packQ4K(d, dmin uint16, sc, mn [8]uint8, L [256]uint8) []byte {
	blk := make([]byte, 144)
	binary.LittleEndian.PutUint16(blk[0:], d)
	binary.LittleEndian.PutUint16(blk[2:], dmin)
	s := blk[4:16]
	for j := 0; j < 8; j++ {
		if j < 4 {
			s[j] = sc[j]
			s[j+4] = mn[j]
		} else {
			s[j+4] = sc[j]&0xF | (mn[j]&0xF)<<4
			s[j-4] |= (sc[j] >> 4) << 6
			s[j] |= (mn[j] >> 4) << 6
		}
	}
	q := blk[16:]
	for j := 0; j < 256; j += 64 {
		for l := 0; l < 32; l++ {
			q[l] = L[j+l] | L[j+l+32]<<4
		}
		q = q[32:]
	}
	return blk
}

// packQ6K builds a Q6_K block the way quantize_row_q6_K_ref packs it; L holds
// the codes 0..63 (value + 32).
func packQ6K(d uint16, scales [16]int8, L [256]uint8) []byte {
	blk := make([]byte, 210)
	ql, qh := blk[0:128], blk[128:192]
	for j := 0; j < 256; j += 128 {
		for l := 0; l < 32; l++ {
			q1, q2, q3, q4 := L[j+l]&0xF, L[j+l+32]&0xF, L[j+l+64]&0xF, L[j+l+96]&0xF
			ql[l] = q1 | q3<<4
			ql[l+32] = q2 | q4<<4
			qh[l] = L[j+l]>>4 | (L[j+l+32]>>4)<<2 | (L[j+l+64]>>4)<<4 | (L[j+l+96]>>4)<<6
		}
		ql = ql[64:]
		qh = qh[32:]
	}
	for i, s := range scales {
		blk[192+i] = byte(s)
	}
	binary.LittleEndian.PutUint16(blk[208:], d)
	return blk
}

// TestQ4KOneScale sets a single sub-block's 6-bit scale and min (values with
// both high bits in use, to exercise the split packing of sub-blocks 4..7) and
// checks the exact decoded values.
func TestQ4KOneScale(t *testing.T) {
	var L [256]uint8
	for i := range L {
		L[i] = uint8((i*7 + 3) % 16)
	}
	const d, dmin = 0x3C00, 0x3800 // 1.0 and 0.5
	for j := 0; j < 8; j++ {
		var sc, mn [8]uint8
		sc[j], mn[j] = 45, 27 // 0b101101, 0b011011
		blk := packQ4K(d, dmin, sc, mn, L)
		got := make([]float32, 256)
		if err := Dequantize(got, Q4_K, blk); err != nil {
			t.Fatal(err)
		}
		for i, v := range got {
			want := float32(0)
			if i/32 == j {
				want = 45*float32(L[i]) - 13.5
			}
			if v != want {
				t.Fatalf("sub-block %d set, element %d: got %g, want %g", j, i, v, want)
			}
		}
	}
}

// TestQ6KOneScale sets a single signed 8-bit scale of a 16-weight group.
func TestQ6KOneScale(t *testing.T) {
	var L [256]uint8
	for i := range L {
		L[i] = uint8((i*11 + 5) % 64)
	}
	const d = 0x3400 // 0.25
	for g := 0; g < 16; g++ {
		var scales [16]int8
		scales[g] = -7
		got := make([]float32, 256)
		if err := Dequantize(got, Q6_K, packQ6K(d, scales, L)); err != nil {
			t.Fatal(err)
		}
		for i, v := range got {
			want := float32(0)
			if i/16 == g {
				want = 0.25 * -7 * float32(int(L[i])-32)
			}
			if v != want {
				t.Fatalf("group %d set, element %d: got %g, want %g", g, i, v, want)
			}
		}
	}
}

// randomHalf returns the bits of a finite half in roughly [-scale, scale].
func randomHalf(rng *rand.Rand, scale float64) uint16 {
	return F32ToF16(float32((rng.Float64()*2 - 1) * scale))
}

// TestKQuantsRandom compares random blocks with the element-wise references bit for bit.
func TestKQuantsRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 200; trial++ {
		blocks := 1 + trial%3
		q4 := make([]byte, 144*blocks)
		q6 := make([]byte, 210*blocks)
		for i := range q4 {
			q4[i] = byte(rng.Uint32())
		}
		for i := range q6 {
			q6[i] = byte(rng.Uint32())
		}
		for b := 0; b < blocks; b++ {
			binary.LittleEndian.PutUint16(q4[144*b:], randomHalf(rng, 0.01))
			binary.LittleEndian.PutUint16(q4[144*b+2:], randomHalf(rng, 0.01))
			binary.LittleEndian.PutUint16(q6[210*b+208:], randomHalf(rng, 0.01))
		}
		got4 := make([]float32, 256*blocks)
		got6 := make([]float32, 256*blocks)
		if err := Dequantize(got4, Q4_K, q4); err != nil {
			t.Fatal(err)
		}
		if err := Dequantize(got6, Q6_K, q6); err != nil {
			t.Fatal(err)
		}
		for i := range got4 {
			b, e := i/256, i%256
			if w := refQ4K(q4[144*b:144*b+144], e); math.Float32bits(got4[i]) != math.Float32bits(w) {
				t.Fatalf("Q4_K trial %d element %d: got %g, want %g", trial, i, got4[i], w)
			}
			if w := refQ6K(q6[210*b:210*b+210], e); math.Float32bits(got6[i]) != math.Float32bits(w) {
				t.Fatalf("Q6_K trial %d element %d: got %g, want %g", trial, i, got6[i], w)
			}
		}
	}
}

// TestSmallBlocksKnownValues decodes hand-built Q8_0, Q4_0 and Q4_1 blocks.
func TestSmallBlocksKnownValues(t *testing.T) {
	q8 := make([]byte, 34)
	binary.LittleEndian.PutUint16(q8, 0x3800) // 0.5
	for i := 0; i < 32; i++ {
		q8[2+i] = byte(int8(i - 16))
	}
	q40 := make([]byte, 18)
	binary.LittleEndian.PutUint16(q40, 0xC000) // -2
	q41 := make([]byte, 20)
	binary.LittleEndian.PutUint16(q41, 0x3C00)     // 1
	binary.LittleEndian.PutUint16(q41[2:], 0xBC00) // -1
	for j := 0; j < 16; j++ {
		q40[2+j] = byte(j) | byte(15-j)<<4
		q41[4+j] = byte(j) | byte(15-j)<<4
	}
	for _, tc := range []struct {
		d    DType
		blk  []byte
		want func(i int) float32
	}{
		{Q8_0, q8, func(i int) float32 { return 0.5 * float32(i-16) }},
		// Element j is the low nibble of byte j, element j+16 its high nibble.
		{Q4_0, q40, func(i int) float32 {
			if i < 16 {
				return -2 * float32(i-8)
			}
			return -2 * float32(15-(i-16)-8)
		}},
		{Q4_1, q41, func(i int) float32 {
			if i < 16 {
				return float32(i) - 1
			}
			return float32(15-(i-16)) - 1
		}},
	} {
		got := make([]float32, 32)
		if err := Dequantize(got, tc.d, tc.blk); err != nil {
			t.Fatal(err)
		}
		for i, v := range got {
			if v != tc.want(i) {
				t.Errorf("%s element %d: got %g, want %g", tc.d, i, v, tc.want(i))
			}
		}
	}
}

// TestIntLayoutsKnownValues decodes hand-built rows of the INT types,
// element by element from the layouts' definitions.
func TestIntLayoutsKnownValues(t *testing.T) {
	// Two INT8_CH rows of 3: scales 0.5 and -2.
	i8 := []byte{0x00, 0x38, 1, 0xff, 0x80, 0x00, 0xc0, 127, 0, 3}
	// INT4 groups: scale 0.25, codes u(i) = (i*7)%16 stored in Q4_0's order.
	int4 := func(group int, zero int) []byte {
		hdr := 2
		if zero >= 0 {
			hdr = 3
		}
		blk := make([]byte, hdr+group/2)
		binary.LittleEndian.PutUint16(blk, 0x3400) // 0.25
		if zero >= 0 {
			blk[2] = byte(zero)
		}
		for i := 0; i < group; i++ {
			k, j := i/32, i%32
			u := byte(i * 7 % 16)
			if j < 16 {
				blk[hdr+16*k+j] |= u
			} else {
				blk[hdr+16*k+j-16] |= u << 4
			}
		}
		return blk
	}
	tests := []struct {
		d    DType
		n    int
		src  []byte
		want func(i int) float32
	}{
		{Int8Ch, 6, i8, func(i int) float32 {
			return []float32{0.5, -0.5, -64, -254, 0, -6}[i]
		}},
		{Int4G32, 32, int4(32, -1), func(i int) float32 { return 0.25 * float32(i*7%16-8) }},
		{Int4G64, 64, int4(64, -1), func(i int) float32 { return 0.25 * float32(i*7%16-8) }},
		{Int4G128, 128, int4(128, -1), func(i int) float32 { return 0.25 * float32(i*7%16-8) }},
		{Int4G32Asym, 32, int4(32, 3), func(i int) float32 { return 0.25 * float32(i*7%16-3) }},
		{Int4G64Asym, 64, int4(64, 15), func(i int) float32 { return 0.25 * float32(i*7%16-15) }},
		{Int4G128Asym, 128, int4(128, 0), func(i int) float32 { return 0.25 * float32(i*7%16) }},
	}
	for _, tc := range tests {
		got := make([]float32, tc.n)
		if err := Dequantize(got, tc.d, tc.src); err != nil {
			t.Fatalf("%s: %v", tc.d, err)
		}
		for i, v := range got {
			if v != tc.want(i) {
				t.Errorf("%s element %d: got %g, want %g", tc.d, i, v, tc.want(i))
			}
		}
		tn := &Tensor{Name: "w", DType: tc.d, Shape: []int{tc.n}, Data: tc.src}
		if tc.d == Int8Ch {
			tn.Shape = []int{2, 3}
		}
		vals, err := tn.Float32()
		if err != nil || len(vals) != tc.n || vals[1] != tc.want(1) {
			t.Errorf("%s: Float32 = %v, %v", tc.d, vals, err)
		}
	}
}

func TestDequantizeErrors(t *testing.T) {
	tests := []struct {
		d    DType
		dst  int
		src  int
		want string
	}{
		{Q4_K, 255, 144, "do not hold"},
		{Q4_K, 256, 143, "do not hold"},
		{Q8_0, 32, 33, "do not hold"},
		{F32, 2, 7, "do not hold"},
		{Invalid, 1, 1, "cannot decode"},
		{DType(200), 1, 1, "cannot decode"},
		{Int8Ch, 6, 7, "whole rows"},
		{Int8Ch, 6, 5, "whole rows"},
		{Int8Ch, 5, 9, "whole rows"}, // 2 rows of 2.5
		{Int8Ch, 0, 2, "whole rows"},
		{Int8Ch, 4, 4, "whole rows"},
		{Int4G64, 64, 33, "do not hold"},
		{Int4G128Asym, 128, 66, "do not hold"},
	}
	for _, tc := range tests {
		err := Dequantize(make([]float32, tc.dst), tc.d, make([]byte, tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %d/%d: error %v, want %q", tc.d, tc.dst, tc.src, err, tc.want)
		}
	}
}

func BenchmarkDequantize(b *testing.B) {
	const n = 1 << 16
	dst := make([]float32, n)
	for _, d := range []DType{Q8_0, Q4_0, Q4_1, Q4_K, Q6_K, F16} {
		src := make([]byte, n/d.BlockElems()*d.BlockBytes())
		b.Run(d.String(), func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				Dequantize(dst, d, src)
			}
		})
	}
}
