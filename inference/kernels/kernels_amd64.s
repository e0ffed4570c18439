//go:build amd64 && !purego

#include "textflag.h"

// Every routine is a frameless leaf (ABI0: any register but SP and BP may be
// clobbered; R15 is only written after the last global access, as dynamic
// linking requires). Loops index their operands with one byte offset, so an
// iteration costs a single ADDQ/CMPQ/JB, and sum each output in vector
// accumulators; horizontal sums happen once per output, after the loop.
// Tails shorter than a vector use masked loads (K1 with AVX-512, VMASKMOVPS
// with AVX2), which neither read nor fault past the end of a slice.

// ZERO4Z clears four ZMM registers (VPXORD is AVX-512F; VXORPS on ZMM needs DQ).
#define ZERO4Z(a, b, c, d) \
	VPXORD a, a, a; \
	VPXORD b, b, b; \
	VPXORD c, c, c; \
	VPXORD d, d, d

// HSUM4Z reduces the ZMM registers z0..z3 (whose YMM halves are y0..y3) to one
// float each, leaving the four sums in x0. d0..d3 are YMM temporaries that must
// be among Y0-Y15 (VHADDPS has no EVEX form); x0 and x1 are the XMM views of d0
// and d1. Y24-Y27 are clobbered. Every input is summed in the same tree order,
// whatever its position, so results do not depend on where a row lands.
#define HSUM4Z(z0, z1, z2, z3, y0, y1, y2, y3, d0, d1, d2, d3, x0, x1) \
	VEXTRACTF64X4 $1, z0, Y24; \
	VEXTRACTF64X4 $1, z1, Y25; \
	VEXTRACTF64X4 $1, z2, Y26; \
	VEXTRACTF64X4 $1, z3, Y27; \
	VADDPS        Y24, y0, d0; \
	VADDPS        Y25, y1, d1; \
	VADDPS        Y26, y2, d2; \
	VADDPS        Y27, y3, d3; \
	VHADDPS       d1, d0, d0; \
	VHADDPS       d3, d2, d2; \
	VHADDPS       d2, d0, d0; \
	VEXTRACTF128  $1, d0, x1; \
	VADDPS        x1, x0, x0

// LANE4 reduces the ZMM registers a, b, c, d within each 128-bit quarter,
// leaving in a, for quarter q, the partial sums [a b c d] of that quarter:
// ((v0+v2)+(v1+v3)) for every input alike. t0-t2 and b are clobbered.
#define LANE4(a, b, c, d, t0, t1, t2) \
	VUNPCKLPS b, a, t0; \
	VUNPCKHPS b, a, t1; \
	VADDPS    t1, t0, t0; \
	VUNPCKLPS d, c, t1; \
	VUNPCKHPS d, c, t2; \
	VADDPS    t2, t1, t1; \
	VSHUFPS   $0x44, t1, t0, a; \
	VSHUFPS   $0xEE, t1, t0, b; \
	VADDPS    b, a, a

// HSUM4Y is HSUM4Z for four YMM registers y0..y3 (all among Y0-Y15), leaving
// the four sums in x0 (the XMM view of y0); x1 is the XMM view of y1.
#define HSUM4Y(y0, y1, y2, y3, x0, x1) \
	VHADDPS      y1, y0, y0; \
	VHADDPS      y3, y2, y2; \
	VHADDPS      y2, y0, y0; \
	VEXTRACTF128 $1, y0, x1; \
	VADDPS       x1, x0, x0

// HSUMX leaves the sum of the four floats of X0 in its lowest lane; X1 is clobbered.
#define HSUMX \
	VMOVHLPS  X0, X0, X1; \
	VADDPS    X1, X0, X0; \
	VMOVSHDUP X0, X1; \
	VADDSS    X1, X0, X0

// MASK16 sets K1 to the low CX&15 bits, a mask for the last CX&15 floats of
// a row; CX and R15 are clobbered.
#define MASK16 \
	ANDQ  $15, CX; \
	MOVL  $1, R15; \
	SHLL  CX, R15; \
	DECL  R15; \
	KMOVW R15, K1

// DOTSUMZ leaves the sum of Z0 and Z1's floats in X0's lowest lane, by the
// tree of one row of the AVX-512 MatVec kernels; Z1 is clobbered.
#define DOTSUMZ \
	VADDPS        Z1, Z0, Z0; \
	VEXTRACTF64X4 $1, Z0, Y1; \
	VADDPS        Y1, Y0, Y0; \
	VHADDPS       Y0, Y0, Y0; \
	VHADDPS       Y0, Y0, Y0; \
	VEXTRACTF128  $1, Y0, X1; \
	VADDSS        X1, X0, X0

// DOTSUMY is DOTSUMZ for Y0 and Y1, by the tree of the AVX2 kernels.
#define DOTSUMY \
	VADDPS       Y1, Y0, Y0; \
	VHADDPS      Y0, Y0, Y0; \
	VHADDPS      Y0, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X1; \
	VADDSS       X1, X0, X0

// MV4ROWSAVX2 points R9-R11 at the three rows after R8's, R12 bytes apart,
// and clears the four rows' accumulators Y0-Y7 (row r: Y(r) and Y(4+r)).
#define MV4ROWSAVX2 \
	LEAQ   (R8)(R12*1), R9; \
	LEAQ   (R9)(R12*1), R10; \
	LEAQ   (R10)(R12*1), R11; \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y1, Y1, Y1; \
	VXORPS Y2, Y2, Y2; \
	VXORPS Y3, Y3, Y3; \
	VXORPS Y4, Y4, Y4; \
	VXORPS Y5, Y5, Y5; \
	VXORPS Y6, Y6, Y6; \
	VXORPS Y7, Y7, Y7

// SCATTER4(x, p, s, t) stores the four floats of x at p, p+s, p+2s and
// p+3s, with t (which may be p) as a temporary: a lane kernel's results.
#define SCATTER4(x, p, s, t) \
	VMOVSS     x, (p); \
	VEXTRACTPS $1, x, (p)(s*1); \
	LEAQ       (p)(s*2), t; \
	VEXTRACTPS $2, x, (t); \
	VEXTRACTPS $3, x, (t)(s*1)

// NEXTROW(size) moves a lane kernel on to the next row of each lane: DI by
// one float, R8 by a row of cols+32(FP) elements of size bytes; R9 is
// clobbered.
#define NEXTROW(size) \
	ADDQ $4, DI; \
	MOVQ cols+32(FP), R9; \
	LEAQ (R8)(R9*size), R8

// MV4STOREAVX2(size) adds each row's two accumulators, reduces the four
// rows and stores row r's sum at DI + r*R14, then does NEXTROW(size).
#define MV4STOREAVX2(size) \
	VADDPS     Y4, Y0, Y0; \
	VADDPS     Y5, Y1, Y1; \
	VADDPS     Y6, Y2, Y2; \
	VADDPS     Y7, Y3, Y3; \
	HSUM4Y(Y0, Y1, Y2, Y3, X0, X1); \
	SCATTER4(X0, DI, R14, R9); \
	NEXTROW(size)

// ---------------------------------------------------------------- AVX-512

// func dotAVX512(a, b []float32) float32
// Sums exactly as one row of matVec4AVX512/matVec8AVX512 does (even 16-float
// vectors into Z0, odd ones and the masked tail into Z1, the same horizontal
// tree), so that Dot and every row of MatVec agree to the bit.
TEXT ·dotAVX512(SB), NOSPLIT, $0-52
	MOVQ   a_base+0(FP), SI
	MOVQ   a_len+8(FP), CX
	MOVQ   b_base+24(FP), DI
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	XORQ   AX, AX
	MOVQ   CX, DX
	ANDQ   $-32, DX
	SHLQ   $2, DX
	JZ     d512step16

d512loop32:
	VMOVUPS     (SI)(AX*1), Z4
	VMOVUPS     64(SI)(AX*1), Z5
	VFMADD231PS (DI)(AX*1), Z4, Z0
	VFMADD231PS 64(DI)(AX*1), Z5, Z1
	ADDQ        $128, AX
	CMPQ        AX, DX
	JB          d512loop32

d512step16:
	TESTQ       $16, CX
	JZ          d512mask
	VMOVUPS     (SI)(AX*1), Z4
	VFMADD231PS (DI)(AX*1), Z4, Z0
	ADDQ        $64, AX

d512mask:
	TESTQ $15, CX
	JZ    d512reduce
	MASK16
	VMOVUPS.Z   (SI)(AX*1), K1, Z4
	VFMADD231PS (DI)(AX*1), Z4, K1, Z1

d512reduce:
	DOTSUMZ
	VZEROUPPER
	MOVSS         X0, ret+48(FP)
	RET

// func matVec4AVX512(out, w, x *float32, groups, cols int)
// For g < groups and r < 4: out[4g+r] = dot(w[(4g+r)*cols:][:cols], x[:cols]).
// Four rows share every load of x; each row has two accumulators.
TEXT ·matVec4AVX512(SB), NOSPLIT, $0-40
	MOVQ out+0(FP), DI
	MOVQ w+8(FP), R8
	MOVQ x+16(FP), SI
	MOVQ groups+24(FP), BX
	MOVQ cols+32(FP), CX
	MOVQ CX, R12
	SHLQ $2, R12         // row stride in bytes
	MOVQ CX, R13
	ANDQ $-32, R13
	SHLQ $2, R13         // bytes covered by the 32-float loop
	MOVQ CX, R14
	ANDQ $-16, R14
	SHLQ $2, R14         // bytes covered by whole 16-float vectors
	MOVQ CX, DX
	ANDQ $15, DX         // floats left for the masked step
	MASK16

mv512group:
	LEAQ (R8)(R12*1), R9
	LEAQ (R9)(R12*1), R10
	LEAQ (R10)(R12*1), R11
	ZERO4Z(Z0, Z1, Z2, Z3)
	ZERO4Z(Z4, Z5, Z6, Z7)
	XORQ AX, AX
	TESTQ R13, R13
	JZ   mv512step16

mv512loop32:
	VMOVUPS     (SI)(AX*1), Z16
	VMOVUPS     64(SI)(AX*1), Z17
	VFMADD231PS (R8)(AX*1), Z16, Z0
	VFMADD231PS (R9)(AX*1), Z16, Z1
	VFMADD231PS (R10)(AX*1), Z16, Z2
	VFMADD231PS (R11)(AX*1), Z16, Z3
	VFMADD231PS 64(R8)(AX*1), Z17, Z4
	VFMADD231PS 64(R9)(AX*1), Z17, Z5
	VFMADD231PS 64(R10)(AX*1), Z17, Z6
	VFMADD231PS 64(R11)(AX*1), Z17, Z7
	ADDQ        $128, AX
	CMPQ        AX, R13
	JB          mv512loop32

mv512step16:
	CMPQ AX, R14
	JAE  mv512mask
	VMOVUPS     (SI)(AX*1), Z16
	VFMADD231PS (R8)(AX*1), Z16, Z0
	VFMADD231PS (R9)(AX*1), Z16, Z1
	VFMADD231PS (R10)(AX*1), Z16, Z2
	VFMADD231PS (R11)(AX*1), Z16, Z3
	ADDQ        $64, AX

mv512mask:
	TESTQ DX, DX
	JZ    mv512reduce
	VMOVUPS.Z   (SI)(AX*1), K1, Z16
	VFMADD231PS (R8)(AX*1), Z16, K1, Z4
	VFMADD231PS (R9)(AX*1), Z16, K1, Z5
	VFMADD231PS (R10)(AX*1), Z16, K1, Z6
	VFMADD231PS (R11)(AX*1), Z16, K1, Z7

mv512reduce:
	VADDPS Z4, Z0, Z0
	VADDPS Z5, Z1, Z1
	VADDPS Z6, Z2, Z2
	VADDPS Z7, Z3, Z3
	HSUM4Z(Z0, Z1, Z2, Z3, Y0, Y1, Y2, Y3, Y0, Y1, Y2, Y3, X0, X1)
	VMOVUPS X0, (DI)
	ADDQ   $16, DI
	LEAQ   (R11)(R12*1), R8
	DECQ   BX
	JNZ    mv512group
	VZEROUPPER
	RET

// MV8ROWS points R9-R15 at the seven rows after R8's, DX bytes apart, and
// clears the eight rows' accumulators Z0-Z15.
#define MV8ROWS \
	LEAQ (R8)(DX*1), R9; \
	LEAQ (R9)(DX*1), R10; \
	LEAQ (R10)(DX*1), R11; \
	LEAQ (R11)(DX*1), R12; \
	LEAQ (R12)(DX*1), R13; \
	LEAQ (R13)(DX*1), R14; \
	LEAQ (R14)(DX*1), R15; \
	ZERO4Z(Z0, Z1, Z2, Z3); \
	ZERO4Z(Z4, Z5, Z6, Z7); \
	ZERO4Z(Z8, Z9, Z10, Z11); \
	ZERO4Z(Z12, Z13, Z14, Z15)

// MV8STORE adds each row's two accumulators (Z(8+r) into Z(r)), reduces
// the eight rows and stores row r's sum at DI + r*AX, then does
// NEXTROW(size).
#define MV8STORE(size) \
	VADDPS  Z8, Z0, Z0; \
	VADDPS  Z9, Z1, Z1; \
	VADDPS  Z10, Z2, Z2; \
	VADDPS  Z11, Z3, Z3; \
	VADDPS  Z12, Z4, Z4; \
	VADDPS  Z13, Z5, Z5; \
	VADDPS  Z14, Z6, Z6; \
	VADDPS  Z15, Z7, Z7; \
	HSUM4Z(Z0, Z1, Z2, Z3, Y0, Y1, Y2, Y3, Y0, Y1, Y2, Y3, X0, X1); \
	HSUM4Z(Z4, Z5, Z6, Z7, Y4, Y5, Y6, Y7, Y4, Y5, Y6, Y7, X4, X5); \
	SCATTER4(X0, DI, AX, R9); \
	LEAQ    (DI)(AX*4), R9; \
	SCATTER4(X4, R9, AX, R9); \
	NEXTROW(size)

// func matVec8AVX512(out, w, x *float32, groups, cols, lane int)
// For g < groups and r < 8, with i = r*lane + g:
// out[i] = dot(w[i*cols:][:cols], x[:cols]). Eight rows share every load of
// x; they come from eight lanes of consecutive rows, lane rows apart, so
// that the kernel reads eight long sequential streams at once (groups of
// eight neighbouring rows, each row a short stream of its own for the
// hardware prefetcher, streamed a matrix from DRAM 1.09x slower: median of
// five BenchmarkMatVecDRAM rounds). Each row has two accumulators, Z(r) and
// Z(8+r).
TEXT ·matVec8AVX512(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ w+8(FP), R8
	MOVQ x+16(FP), SI
	MOVQ cols+32(FP), CX
	MOVQ lane+40(FP), DX
	IMULQ CX, DX
	SHLQ $2, DX                  // DX: lane stride in bytes
	MOVQ CX, BX
	ANDQ $-16, BX
	SHLQ $2, BX                  // BX: bytes covered by whole 16-float vectors
	MASK16                       // K1: the last cols&15 floats
	MOVQ BX, CX
	ANDQ $-128, CX               // CX: bytes covered by the 32-float loop

mv8group:
	MV8ROWS
	XORQ  AX, AX
	TESTQ CX, CX
	JZ    mv8step16

mv8loop32:
	VMOVUPS     (SI)(AX*1), Z16
	VMOVUPS     64(SI)(AX*1), Z17
	VFMADD231PS (R8)(AX*1), Z16, Z0
	VFMADD231PS (R9)(AX*1), Z16, Z1
	VFMADD231PS (R10)(AX*1), Z16, Z2
	VFMADD231PS (R11)(AX*1), Z16, Z3
	VFMADD231PS (R12)(AX*1), Z16, Z4
	VFMADD231PS (R13)(AX*1), Z16, Z5
	VFMADD231PS (R14)(AX*1), Z16, Z6
	VFMADD231PS (R15)(AX*1), Z16, Z7
	VFMADD231PS 64(R8)(AX*1), Z17, Z8
	VFMADD231PS 64(R9)(AX*1), Z17, Z9
	VFMADD231PS 64(R10)(AX*1), Z17, Z10
	VFMADD231PS 64(R11)(AX*1), Z17, Z11
	VFMADD231PS 64(R12)(AX*1), Z17, Z12
	VFMADD231PS 64(R13)(AX*1), Z17, Z13
	VFMADD231PS 64(R14)(AX*1), Z17, Z14
	VFMADD231PS 64(R15)(AX*1), Z17, Z15
	ADDQ        $128, AX
	CMPQ        AX, CX
	JB          mv8loop32

mv8step16:
	CMPQ        AX, BX
	JAE         mv8mask
	VMOVUPS     (SI)(AX*1), Z16
	VFMADD231PS (R8)(AX*1), Z16, Z0
	VFMADD231PS (R9)(AX*1), Z16, Z1
	VFMADD231PS (R10)(AX*1), Z16, Z2
	VFMADD231PS (R11)(AX*1), Z16, Z3
	VFMADD231PS (R12)(AX*1), Z16, Z4
	VFMADD231PS (R13)(AX*1), Z16, Z5
	VFMADD231PS (R14)(AX*1), Z16, Z6
	VFMADD231PS (R15)(AX*1), Z16, Z7
	ADDQ        $64, AX

mv8mask:
	KORTESTW    K1, K1
	JZ          mv8reduce
	VMOVUPS.Z   (SI)(AX*1), K1, Z16
	VFMADD231PS (R8)(AX*1), Z16, K1, Z8
	VFMADD231PS (R9)(AX*1), Z16, K1, Z9
	VFMADD231PS (R10)(AX*1), Z16, K1, Z10
	VFMADD231PS (R11)(AX*1), Z16, K1, Z11
	VFMADD231PS (R12)(AX*1), Z16, K1, Z12
	VFMADD231PS (R13)(AX*1), Z16, K1, Z13
	VFMADD231PS (R14)(AX*1), Z16, K1, Z14
	VFMADD231PS (R15)(AX*1), Z16, K1, Z15

mv8reduce:
	MOVQ    lane+40(FP), AX
	SHLQ    $2, AX
	MV8STORE(4)
	DECQ    groups+24(FP)
	JNZ     mv8group
	VZEROUPPER
	RET

// func matVec8UAVX512(out, w, x *float32, groups, cols, lane int, idx *int32)
// matVec8AVX512 for rows that start m floats (1 <= m <= 15) past a 64-byte
// boundary, cols a multiple of 16: idx[j] = m+j for j < 16. Each line of a
// row is loaded once, aligned, and each 16 floats of the row are assembled
// from two neighbouring lines (VPERMT2PS), so no load straddles two lines
// (which costs about 10% of F32 decode from memory). The vectors, and so the
// FMAs and the results, are those of matVec8AVX512. Every line read holds at
// least one float of a row, so nothing past the rows is touched beyond
// their own cache lines.
TEXT ·matVec8UAVX512(SB), NOSPLIT, $0-56
	MOVQ      out+0(FP), DI
	MOVQ      w+8(FP), R8
	MOVQ      x+16(FP), SI
	MOVQ      cols+32(FP), CX
	MOVQ      idx+48(FP), AX
	VMOVDQU32 (AX), Z31           // Z31: the permute indices m..m+15
	MOVL      (AX), AX
	SHLQ      $2, AX
	SUBQ      AX, R8               // R8: the aligned line holding row 0's start
	SHLQ      $2, CX
	MOVQ      CX, BX               // BX: bytes of a row, a multiple of 64
	ANDQ      $-128, CX            // CX: bytes covered by the 32-float loop
	MOVQ      lane+40(FP), DX
	IMULQ     BX, DX               // DX: lane stride in bytes

mvu8group:
	MV8ROWS
	VMOVAPS     (R8), Z18
	VMOVAPS     (R9), Z19
	VMOVAPS     (R10), Z20
	VMOVAPS     (R11), Z21
	VMOVAPS     (R12), Z22
	VMOVAPS     (R13), Z23
	VMOVAPS     (R14), Z24
	VMOVAPS     (R15), Z25
	XORQ  AX, AX
	TESTQ CX, CX
	JZ    mvu8step16

mvu8loop32:
	VMOVUPS     (SI)(AX*1), Z16
	VMOVUPS     64(SI)(AX*1), Z17
	VMOVAPS     64(R8)(AX*1), Z28
	VPERMT2PS   Z28, Z31, Z18
	VFMADD231PS Z18, Z16, Z0
	VMOVAPS     128(R8)(AX*1), Z18
	VPERMT2PS   Z18, Z31, Z28
	VFMADD231PS Z28, Z17, Z8
	VMOVAPS     64(R9)(AX*1), Z29
	VPERMT2PS   Z29, Z31, Z19
	VFMADD231PS Z19, Z16, Z1
	VMOVAPS     128(R9)(AX*1), Z19
	VPERMT2PS   Z19, Z31, Z29
	VFMADD231PS Z29, Z17, Z9
	VMOVAPS     64(R10)(AX*1), Z28
	VPERMT2PS   Z28, Z31, Z20
	VFMADD231PS Z20, Z16, Z2
	VMOVAPS     128(R10)(AX*1), Z20
	VPERMT2PS   Z20, Z31, Z28
	VFMADD231PS Z28, Z17, Z10
	VMOVAPS     64(R11)(AX*1), Z29
	VPERMT2PS   Z29, Z31, Z21
	VFMADD231PS Z21, Z16, Z3
	VMOVAPS     128(R11)(AX*1), Z21
	VPERMT2PS   Z21, Z31, Z29
	VFMADD231PS Z29, Z17, Z11
	VMOVAPS     64(R12)(AX*1), Z28
	VPERMT2PS   Z28, Z31, Z22
	VFMADD231PS Z22, Z16, Z4
	VMOVAPS     128(R12)(AX*1), Z22
	VPERMT2PS   Z22, Z31, Z28
	VFMADD231PS Z28, Z17, Z12
	VMOVAPS     64(R13)(AX*1), Z29
	VPERMT2PS   Z29, Z31, Z23
	VFMADD231PS Z23, Z16, Z5
	VMOVAPS     128(R13)(AX*1), Z23
	VPERMT2PS   Z23, Z31, Z29
	VFMADD231PS Z29, Z17, Z13
	VMOVAPS     64(R14)(AX*1), Z28
	VPERMT2PS   Z28, Z31, Z24
	VFMADD231PS Z24, Z16, Z6
	VMOVAPS     128(R14)(AX*1), Z24
	VPERMT2PS   Z24, Z31, Z28
	VFMADD231PS Z28, Z17, Z14
	VMOVAPS     64(R15)(AX*1), Z29
	VPERMT2PS   Z29, Z31, Z25
	VFMADD231PS Z25, Z16, Z7
	VMOVAPS     128(R15)(AX*1), Z25
	VPERMT2PS   Z25, Z31, Z29
	VFMADD231PS Z29, Z17, Z15
	ADDQ        $128, AX
	CMPQ        AX, CX
	JB          mvu8loop32

mvu8step16:
	CMPQ        AX, BX
	JAE         mvu8reduce
	VMOVUPS     (SI)(AX*1), Z16
	VMOVAPS     64(R8)(AX*1), Z28
	VPERMT2PS   Z28, Z31, Z18
	VFMADD231PS Z18, Z16, Z0
	VMOVAPS     64(R9)(AX*1), Z29
	VPERMT2PS   Z29, Z31, Z19
	VFMADD231PS Z19, Z16, Z1
	VMOVAPS     64(R10)(AX*1), Z28
	VPERMT2PS   Z28, Z31, Z20
	VFMADD231PS Z20, Z16, Z2
	VMOVAPS     64(R11)(AX*1), Z29
	VPERMT2PS   Z29, Z31, Z21
	VFMADD231PS Z21, Z16, Z3
	VMOVAPS     64(R12)(AX*1), Z28
	VPERMT2PS   Z28, Z31, Z22
	VFMADD231PS Z22, Z16, Z4
	VMOVAPS     64(R13)(AX*1), Z29
	VPERMT2PS   Z29, Z31, Z23
	VFMADD231PS Z23, Z16, Z5
	VMOVAPS     64(R14)(AX*1), Z28
	VPERMT2PS   Z28, Z31, Z24
	VFMADD231PS Z24, Z16, Z6
	VMOVAPS     64(R15)(AX*1), Z29
	VPERMT2PS   Z29, Z31, Z25
	VFMADD231PS Z25, Z16, Z7

mvu8reduce:
	MOVQ    lane+40(FP), AX
	SHLQ    $2, AX
	MV8STORE(4)
	DECQ    groups+24(FP)
	JNZ     mvu8group
	VZEROUPPER
	RET

// MatMul, AVX-512: Y = X·Wᵀ as outer products. A panel of 48 weight rows is
// first packed column by column (transpose16AVX512: 16x16 transposes), so that
// one k of the panel is three vectors; the micro-kernel then broadcasts x[t][k]
// of 8 tokens and keeps 8x48 sums in 24 accumulators (Z0-Z23: token t, rows
// 16v..16v+15 in Z(3t+v)). Every sum is one FMA chain over k in order, so a
// result does not depend on its tile, its panel or any split of the work.

// MMPSTEP multiplies column k of the panel (at byte wo from DI) by x[t][k]
// (at byte xo from each token's row pointer plus SI) for the 8 tokens.
#define MMPSTEP(wo, xo) \
	VMOVUPS      wo(DI), Z24; \
	VMOVUPS      (wo+64)(DI), Z25; \
	VMOVUPS      (wo+128)(DI), Z26; \
	VBROADCASTSS xo(R8)(SI*1), Z27; \
	VBROADCASTSS xo(R9)(SI*1), Z28; \
	VFMADD231PS  Z24, Z27, Z0; \
	VFMADD231PS  Z25, Z27, Z1; \
	VFMADD231PS  Z26, Z27, Z2; \
	VBROADCASTSS xo(R10)(SI*1), Z29; \
	VFMADD231PS  Z24, Z28, Z3; \
	VFMADD231PS  Z25, Z28, Z4; \
	VFMADD231PS  Z26, Z28, Z5; \
	VBROADCASTSS xo(R11)(SI*1), Z30; \
	VFMADD231PS  Z24, Z29, Z6; \
	VFMADD231PS  Z25, Z29, Z7; \
	VFMADD231PS  Z26, Z29, Z8; \
	VBROADCASTSS xo(R12)(SI*1), Z31; \
	VFMADD231PS  Z24, Z30, Z9; \
	VFMADD231PS  Z25, Z30, Z10; \
	VFMADD231PS  Z26, Z30, Z11; \
	VBROADCASTSS xo(R13)(SI*1), Z27; \
	VFMADD231PS  Z24, Z31, Z12; \
	VFMADD231PS  Z25, Z31, Z13; \
	VFMADD231PS  Z26, Z31, Z14; \
	VBROADCASTSS xo(R14)(SI*1), Z28; \
	VFMADD231PS  Z24, Z27, Z15; \
	VFMADD231PS  Z25, Z27, Z16; \
	VFMADD231PS  Z26, Z27, Z17; \
	VBROADCASTSS xo(BX)(SI*1), Z29; \
	VFMADD231PS  Z24, Z28, Z18; \
	VFMADD231PS  Z25, Z28, Z19; \
	VFMADD231PS  Z26, Z28, Z20; \
	VFMADD231PS  Z24, Z29, Z21; \
	VFMADD231PS  Z25, Z29, Z22; \
	VFMADD231PS  Z26, Z29, Z23

// MMPLOAD loads (zero-masked by K1-K3) the 48 sums of one token from AX into
// a, b, c; MMPSTORE stores them back under the same masks. Both step AX by SI
// (ldo in bytes).
#define MMPLOAD(a, b, c) \
	VMOVUPS.Z (AX), K1, a; \
	VMOVUPS.Z 64(AX), K2, b; \
	VMOVUPS.Z 128(AX), K3, c; \
	ADDQ      SI, AX

#define MMPSTORE(a, b, c) \
	VMOVUPS a, K1, (AX); \
	VMOVUPS b, K2, 64(AX); \
	VMOVUPS c, K3, 128(AX); \
	ADDQ    SI, AX

// func mmPanelAVX512(x *float32, ldx, tiles int, wp *float32, k int, out *float32, ldo, acc, nr int, pf *float32, pfStride, pfTiles int)
// For i < tiles, t < 8, r < nr (nr <= 48), with token T = 8i+t:
// out[T*ldo+r] = fma chain over j < k of x[T*ldx+j] * wp[j*48+r], starting
// from out[T*ldo+r] when acc != 0 and from 0 otherwise. Only the first nr
// sums of a token are read or written. Tiles i < pfTiles also prefetch the
// 16*(k&^3) bytes at pf + i*pfStride bytes into L2, a line per 4 columns.
TEXT ·mmPanelAVX512(SB), NOSPLIT, $0-96
	MOVQ  nr+64(FP), CX
	MOVQ  $1, AX
	SHLQ  CX, AX
	DECQ  AX                     // the low nr bits
	KMOVW AX, K1
	SHRQ  $16, AX
	KMOVW AX, K2
	SHRQ  $16, AX
	KMOVW AX, K3
	SHLQ  $2, ldx+8(FP)          // strides in bytes from here on
	SHLQ  $2, ldo+48(FP)
	MOVQ  x+0(FP), R8
	MOVQ  tiles+16(FP), CX
	TESTQ CX, CX
	JLE   mmpdone

mmptile:
	MOVQ ldx+8(FP), R15
	LEAQ (R8)(R15*1), R9
	LEAQ (R9)(R15*1), R10
	LEAQ (R10)(R15*1), R11
	LEAQ (R11)(R15*1), R12
	LEAQ (R12)(R15*1), R13
	LEAQ (R13)(R15*1), R14
	LEAQ (R14)(R15*1), BX
	CMPQ acc+56(FP), $0
	JEQ  mmpzero
	MOVQ out+40(FP), AX
	MOVQ ldo+48(FP), SI
	MMPLOAD(Z0, Z1, Z2)
	MMPLOAD(Z3, Z4, Z5)
	MMPLOAD(Z6, Z7, Z8)
	MMPLOAD(Z9, Z10, Z11)
	MMPLOAD(Z12, Z13, Z14)
	MMPLOAD(Z15, Z16, Z17)
	MMPLOAD(Z18, Z19, Z20)
	MMPLOAD(Z21, Z22, Z23)
	JMP  mmpk

mmpzero:
	ZERO4Z(Z0, Z1, Z2, Z3)
	ZERO4Z(Z4, Z5, Z6, Z7)
	ZERO4Z(Z8, Z9, Z10, Z11)
	ZERO4Z(Z12, Z13, Z14, Z15)
	ZERO4Z(Z16, Z17, Z18, Z19)
	ZERO4Z(Z20, Z21, Z22, Z23)

mmpk:
	MOVQ wp+24(FP), DI
	XORQ SI, SI
	MOVQ k+32(FP), AX
	ANDQ $-4, AX
	SHLQ $2, AX                  // bytes of x in whole groups of 4 columns
	JZ   mmpktail
	MOVQ tiles+16(FP), DX
	SUBQ CX, DX                  // DX: tile index i
	CMPQ DX, pfTiles+88(FP)
	JAE  mmploop4
	IMULQ pfStride+80(FP), DX
	ADDQ pf+72(FP), DX

mmploop4pf:
	PREFETCHT1 (DX)(SI*4)
	MMPSTEP(0, 0)
	MMPSTEP(192, 4)
	MMPSTEP(384, 8)
	MMPSTEP(576, 12)
	ADDQ       $768, DI
	ADDQ       $16, SI
	CMPQ       SI, AX
	JB         mmploop4pf
	JMP        mmpktail

mmploop4:
	MMPSTEP(0, 0)
	MMPSTEP(192, 4)
	MMPSTEP(384, 8)
	MMPSTEP(576, 12)
	ADDQ $768, DI
	ADDQ $16, SI
	CMPQ SI, AX
	JB   mmploop4

mmpktail:
	MOVQ k+32(FP), AX
	SHLQ $2, AX
	CMPQ SI, AX
	JAE  mmpstore

mmploop1:
	MMPSTEP(0, 0)
	ADDQ $192, DI
	ADDQ $4, SI
	CMPQ SI, AX
	JB   mmploop1

mmpstore:
	MOVQ out+40(FP), AX
	MOVQ ldo+48(FP), SI
	MMPSTORE(Z0, Z1, Z2)
	MMPSTORE(Z3, Z4, Z5)
	MMPSTORE(Z6, Z7, Z8)
	MMPSTORE(Z9, Z10, Z11)
	MMPSTORE(Z12, Z13, Z14)
	MMPSTORE(Z15, Z16, Z17)
	MMPSTORE(Z18, Z19, Z20)
	MMPSTORE(Z21, Z22, Z23)
	MOVQ AX, out+40(FP)          // the next tile's output
	MOVQ ldx+8(FP), R15
	LEAQ (BX)(R15*1), R8         // and its x
	DECQ CX
	JNZ  mmptile

mmpdone:
	VZEROUPPER
	RET

// MatMul for few tokens, AVX-512: the tokens are packed into panels of 32,
// stored column by column, and the micro-kernel broadcasts W[r][k] of 12
// weight rows against two vectors of 16 tokens, keeping 12x32 sums in Z0-Z23
// (row r, tokens 16v..16v+15 in Z(2r+v)) over the whole of k; the sums are
// stored a row of tokens per weight row. The weights stream through once,
// unpacked. As in mmPanelAVX512, every sum is one FMA chain over k in order.

// MMTSTEPn multiplies column k+n of the token panel (at DI) by w[r][k+n] of
// the 12 rows (at R8, R11, R12 plus multiples of R9 = ldw bytes).
#define MMTSTEP0 \
	VMOVUPS      0(DI), Z24; \
	VMOVUPS      64(DI), Z25; \
	VBROADCASTSS (R8), Z26; \
	VFMADD231PS  Z24, Z26, Z0; \
	VFMADD231PS  Z25, Z26, Z1; \
	VBROADCASTSS (R8)(R9*1), Z27; \
	VFMADD231PS  Z24, Z27, Z2; \
	VFMADD231PS  Z25, Z27, Z3; \
	VBROADCASTSS (R8)(R9*2), Z28; \
	VFMADD231PS  Z24, Z28, Z4; \
	VFMADD231PS  Z25, Z28, Z5; \
	VBROADCASTSS (R8)(R10*1), Z29; \
	VFMADD231PS  Z24, Z29, Z6; \
	VFMADD231PS  Z25, Z29, Z7; \
	VBROADCASTSS (R11), Z30; \
	VFMADD231PS  Z24, Z30, Z8; \
	VFMADD231PS  Z25, Z30, Z9; \
	VBROADCASTSS (R11)(R9*1), Z31; \
	VFMADD231PS  Z24, Z31, Z10; \
	VFMADD231PS  Z25, Z31, Z11; \
	VBROADCASTSS (R11)(R9*2), Z26; \
	VFMADD231PS  Z24, Z26, Z12; \
	VFMADD231PS  Z25, Z26, Z13; \
	VBROADCASTSS (R11)(R10*1), Z27; \
	VFMADD231PS  Z24, Z27, Z14; \
	VFMADD231PS  Z25, Z27, Z15; \
	VBROADCASTSS (R12), Z28; \
	VFMADD231PS  Z24, Z28, Z16; \
	VFMADD231PS  Z25, Z28, Z17; \
	VBROADCASTSS (R12)(R9*1), Z29; \
	VFMADD231PS  Z24, Z29, Z18; \
	VFMADD231PS  Z25, Z29, Z19; \
	VBROADCASTSS (R12)(R9*2), Z30; \
	VFMADD231PS  Z24, Z30, Z20; \
	VFMADD231PS  Z25, Z30, Z21; \
	VBROADCASTSS (R12)(R10*1), Z31; \
	VFMADD231PS  Z24, Z31, Z22; \
	VFMADD231PS  Z25, Z31, Z23

#define MMTSTEP1 \
	VMOVUPS      128(DI), Z24; \
	VMOVUPS      192(DI), Z25; \
	VBROADCASTSS 4(R8), Z26; \
	VFMADD231PS  Z24, Z26, Z0; \
	VFMADD231PS  Z25, Z26, Z1; \
	VBROADCASTSS 4(R8)(R9*1), Z27; \
	VFMADD231PS  Z24, Z27, Z2; \
	VFMADD231PS  Z25, Z27, Z3; \
	VBROADCASTSS 4(R8)(R9*2), Z28; \
	VFMADD231PS  Z24, Z28, Z4; \
	VFMADD231PS  Z25, Z28, Z5; \
	VBROADCASTSS 4(R8)(R10*1), Z29; \
	VFMADD231PS  Z24, Z29, Z6; \
	VFMADD231PS  Z25, Z29, Z7; \
	VBROADCASTSS 4(R11), Z30; \
	VFMADD231PS  Z24, Z30, Z8; \
	VFMADD231PS  Z25, Z30, Z9; \
	VBROADCASTSS 4(R11)(R9*1), Z31; \
	VFMADD231PS  Z24, Z31, Z10; \
	VFMADD231PS  Z25, Z31, Z11; \
	VBROADCASTSS 4(R11)(R9*2), Z26; \
	VFMADD231PS  Z24, Z26, Z12; \
	VFMADD231PS  Z25, Z26, Z13; \
	VBROADCASTSS 4(R11)(R10*1), Z27; \
	VFMADD231PS  Z24, Z27, Z14; \
	VFMADD231PS  Z25, Z27, Z15; \
	VBROADCASTSS 4(R12), Z28; \
	VFMADD231PS  Z24, Z28, Z16; \
	VFMADD231PS  Z25, Z28, Z17; \
	VBROADCASTSS 4(R12)(R9*1), Z29; \
	VFMADD231PS  Z24, Z29, Z18; \
	VFMADD231PS  Z25, Z29, Z19; \
	VBROADCASTSS 4(R12)(R9*2), Z30; \
	VFMADD231PS  Z24, Z30, Z20; \
	VFMADD231PS  Z25, Z30, Z21; \
	VBROADCASTSS 4(R12)(R10*1), Z31; \
	VFMADD231PS  Z24, Z31, Z22; \
	VFMADD231PS  Z25, Z31, Z23

#define MMTSTEP2 \
	VMOVUPS      256(DI), Z24; \
	VMOVUPS      320(DI), Z25; \
	VBROADCASTSS 8(R8), Z26; \
	VFMADD231PS  Z24, Z26, Z0; \
	VFMADD231PS  Z25, Z26, Z1; \
	VBROADCASTSS 8(R8)(R9*1), Z27; \
	VFMADD231PS  Z24, Z27, Z2; \
	VFMADD231PS  Z25, Z27, Z3; \
	VBROADCASTSS 8(R8)(R9*2), Z28; \
	VFMADD231PS  Z24, Z28, Z4; \
	VFMADD231PS  Z25, Z28, Z5; \
	VBROADCASTSS 8(R8)(R10*1), Z29; \
	VFMADD231PS  Z24, Z29, Z6; \
	VFMADD231PS  Z25, Z29, Z7; \
	VBROADCASTSS 8(R11), Z30; \
	VFMADD231PS  Z24, Z30, Z8; \
	VFMADD231PS  Z25, Z30, Z9; \
	VBROADCASTSS 8(R11)(R9*1), Z31; \
	VFMADD231PS  Z24, Z31, Z10; \
	VFMADD231PS  Z25, Z31, Z11; \
	VBROADCASTSS 8(R11)(R9*2), Z26; \
	VFMADD231PS  Z24, Z26, Z12; \
	VFMADD231PS  Z25, Z26, Z13; \
	VBROADCASTSS 8(R11)(R10*1), Z27; \
	VFMADD231PS  Z24, Z27, Z14; \
	VFMADD231PS  Z25, Z27, Z15; \
	VBROADCASTSS 8(R12), Z28; \
	VFMADD231PS  Z24, Z28, Z16; \
	VFMADD231PS  Z25, Z28, Z17; \
	VBROADCASTSS 8(R12)(R9*1), Z29; \
	VFMADD231PS  Z24, Z29, Z18; \
	VFMADD231PS  Z25, Z29, Z19; \
	VBROADCASTSS 8(R12)(R9*2), Z30; \
	VFMADD231PS  Z24, Z30, Z20; \
	VFMADD231PS  Z25, Z30, Z21; \
	VBROADCASTSS 8(R12)(R10*1), Z31; \
	VFMADD231PS  Z24, Z31, Z22; \
	VFMADD231PS  Z25, Z31, Z23

#define MMTSTEP3 \
	VMOVUPS      384(DI), Z24; \
	VMOVUPS      448(DI), Z25; \
	VBROADCASTSS 12(R8), Z26; \
	VFMADD231PS  Z24, Z26, Z0; \
	VFMADD231PS  Z25, Z26, Z1; \
	VBROADCASTSS 12(R8)(R9*1), Z27; \
	VFMADD231PS  Z24, Z27, Z2; \
	VFMADD231PS  Z25, Z27, Z3; \
	VBROADCASTSS 12(R8)(R9*2), Z28; \
	VFMADD231PS  Z24, Z28, Z4; \
	VFMADD231PS  Z25, Z28, Z5; \
	VBROADCASTSS 12(R8)(R10*1), Z29; \
	VFMADD231PS  Z24, Z29, Z6; \
	VFMADD231PS  Z25, Z29, Z7; \
	VBROADCASTSS 12(R11), Z30; \
	VFMADD231PS  Z24, Z30, Z8; \
	VFMADD231PS  Z25, Z30, Z9; \
	VBROADCASTSS 12(R11)(R9*1), Z31; \
	VFMADD231PS  Z24, Z31, Z10; \
	VFMADD231PS  Z25, Z31, Z11; \
	VBROADCASTSS 12(R11)(R9*2), Z26; \
	VFMADD231PS  Z24, Z26, Z12; \
	VFMADD231PS  Z25, Z26, Z13; \
	VBROADCASTSS 12(R11)(R10*1), Z27; \
	VFMADD231PS  Z24, Z27, Z14; \
	VFMADD231PS  Z25, Z27, Z15; \
	VBROADCASTSS 12(R12), Z28; \
	VFMADD231PS  Z24, Z28, Z16; \
	VFMADD231PS  Z25, Z28, Z17; \
	VBROADCASTSS 12(R12)(R9*1), Z29; \
	VFMADD231PS  Z24, Z29, Z18; \
	VFMADD231PS  Z25, Z29, Z19; \
	VBROADCASTSS 12(R12)(R9*2), Z30; \
	VFMADD231PS  Z24, Z30, Z20; \
	VFMADD231PS  Z25, Z30, Z21; \
	VBROADCASTSS 12(R12)(R10*1), Z31; \
	VFMADD231PS  Z24, Z31, Z22; \
	VFMADD231PS  Z25, Z31, Z23

// MMTSTORE stores the 32 sums of one weight row from a, b at AX and steps AX
// by BX (ldt in bytes).
#define MMTSTORE(a, b) \
	VMOVUPS a, (AX); \
	VMOVUPS b, 64(AX); \
	ADDQ    BX, AX

// func mmTokensAVX512(xp *float32, w *float32, ldw, groups, k int, ot *float32, ldt int)
// For g < groups, r < 12, t < 32, with weight row R = 12g+r:
// ot[R*ldt+t] = fma chain over j < k of xp[j*32+t] * w[R*ldw+j], from 0.
TEXT ·mmTokensAVX512(SB), NOSPLIT, $0-56
	MOVQ  w+8(FP), R8
	MOVQ  ldw+16(FP), R9
	SHLQ  $2, R9                 // R9: ldw in bytes
	LEAQ  (R9)(R9*2), R10        // R10: 3*ldw
	MOVQ  ot+40(FP), DX
	MOVQ  ldt+48(FP), BX
	SHLQ  $2, BX                 // BX: ldt in bytes
	MOVQ  groups+24(FP), CX
	TESTQ CX, CX
	JLE   mmtdone

mmtgroup:
	MOVQ R8, R13                 // the group's first row
	LEAQ (R8)(R9*4), R11         // rows 4-7
	LEAQ (R11)(R9*4), R12        // rows 8-11
	ZERO4Z(Z0, Z1, Z2, Z3)
	ZERO4Z(Z4, Z5, Z6, Z7)
	ZERO4Z(Z8, Z9, Z10, Z11)
	ZERO4Z(Z12, Z13, Z14, Z15)
	ZERO4Z(Z16, Z17, Z18, Z19)
	ZERO4Z(Z20, Z21, Z22, Z23)
	MOVQ xp+0(FP), DI
	MOVQ k+32(FP), AX
	MOVQ AX, R14
	ANDQ $-4, AX
	SHLQ $7, AX
	ADDQ DI, AX                  // AX: the end of the panel's whole groups of 4 columns
	CMPQ DI, AX
	JAE  mmtktail

mmtloop4:
	MMTSTEP0
	MMTSTEP1
	MMTSTEP2
	MMTSTEP3
	ADDQ $512, DI
	ADDQ $16, R8
	ADDQ $16, R11
	ADDQ $16, R12
	CMPQ DI, AX
	JB   mmtloop4

mmtktail:
	ANDQ $3, R14
	JZ   mmtstore

mmtloop1:
	MMTSTEP0
	ADDQ $128, DI
	ADDQ $4, R8
	ADDQ $4, R11
	ADDQ $4, R12
	DECQ R14
	JNZ  mmtloop1

mmtstore:
	MOVQ DX, AX
	MMTSTORE(Z0, Z1)
	MMTSTORE(Z2, Z3)
	MMTSTORE(Z4, Z5)
	MMTSTORE(Z6, Z7)
	MMTSTORE(Z8, Z9)
	MMTSTORE(Z10, Z11)
	MMTSTORE(Z12, Z13)
	MMTSTORE(Z14, Z15)
	MMTSTORE(Z16, Z17)
	MMTSTORE(Z18, Z19)
	MMTSTORE(Z20, Z21)
	MMTSTORE(Z22, Z23)
	MOVQ AX, DX                  // the next group's sums
	LEAQ (R13)(R9*4), R8
	LEAQ (R8)(R9*8), R8          // and its rows, 12 on
	DECQ CX
	JNZ  mmtgroup

mmtdone:
	VZEROUPPER
	RET

// MMT16STEPn is MMTSTEPn for one vector of 16 tokens (at DI, 64 bytes per
// column) and 24 weight rows (at R8, R11-R15 plus multiples of R9 = ldw).
#define MMT16STEP0 \
	VMOVUPS      0(DI), Z24; \
	VBROADCASTSS (R8), Z25; \
	VFMADD231PS  Z24, Z25, Z0; \
	VBROADCASTSS (R8)(R9*1), Z26; \
	VFMADD231PS  Z24, Z26, Z1; \
	VBROADCASTSS (R8)(R9*2), Z27; \
	VFMADD231PS  Z24, Z27, Z2; \
	VBROADCASTSS (R8)(R10*1), Z28; \
	VFMADD231PS  Z24, Z28, Z3; \
	VBROADCASTSS (R11), Z29; \
	VFMADD231PS  Z24, Z29, Z4; \
	VBROADCASTSS (R11)(R9*1), Z30; \
	VFMADD231PS  Z24, Z30, Z5; \
	VBROADCASTSS (R11)(R9*2), Z31; \
	VFMADD231PS  Z24, Z31, Z6; \
	VBROADCASTSS (R11)(R10*1), Z25; \
	VFMADD231PS  Z24, Z25, Z7; \
	VBROADCASTSS (R12), Z26; \
	VFMADD231PS  Z24, Z26, Z8; \
	VBROADCASTSS (R12)(R9*1), Z27; \
	VFMADD231PS  Z24, Z27, Z9; \
	VBROADCASTSS (R12)(R9*2), Z28; \
	VFMADD231PS  Z24, Z28, Z10; \
	VBROADCASTSS (R12)(R10*1), Z29; \
	VFMADD231PS  Z24, Z29, Z11; \
	VBROADCASTSS (R13), Z30; \
	VFMADD231PS  Z24, Z30, Z12; \
	VBROADCASTSS (R13)(R9*1), Z31; \
	VFMADD231PS  Z24, Z31, Z13; \
	VBROADCASTSS (R13)(R9*2), Z25; \
	VFMADD231PS  Z24, Z25, Z14; \
	VBROADCASTSS (R13)(R10*1), Z26; \
	VFMADD231PS  Z24, Z26, Z15; \
	VBROADCASTSS (R14), Z27; \
	VFMADD231PS  Z24, Z27, Z16; \
	VBROADCASTSS (R14)(R9*1), Z28; \
	VFMADD231PS  Z24, Z28, Z17; \
	VBROADCASTSS (R14)(R9*2), Z29; \
	VFMADD231PS  Z24, Z29, Z18; \
	VBROADCASTSS (R14)(R10*1), Z30; \
	VFMADD231PS  Z24, Z30, Z19; \
	VBROADCASTSS (R15), Z31; \
	VFMADD231PS  Z24, Z31, Z20; \
	VBROADCASTSS (R15)(R9*1), Z25; \
	VFMADD231PS  Z24, Z25, Z21; \
	VBROADCASTSS (R15)(R9*2), Z26; \
	VFMADD231PS  Z24, Z26, Z22; \
	VBROADCASTSS (R15)(R10*1), Z27; \
	VFMADD231PS  Z24, Z27, Z23

#define MMT16STEP1 \
	VMOVUPS      64(DI), Z24; \
	VBROADCASTSS 4(R8), Z25; \
	VFMADD231PS  Z24, Z25, Z0; \
	VBROADCASTSS 4(R8)(R9*1), Z26; \
	VFMADD231PS  Z24, Z26, Z1; \
	VBROADCASTSS 4(R8)(R9*2), Z27; \
	VFMADD231PS  Z24, Z27, Z2; \
	VBROADCASTSS 4(R8)(R10*1), Z28; \
	VFMADD231PS  Z24, Z28, Z3; \
	VBROADCASTSS 4(R11), Z29; \
	VFMADD231PS  Z24, Z29, Z4; \
	VBROADCASTSS 4(R11)(R9*1), Z30; \
	VFMADD231PS  Z24, Z30, Z5; \
	VBROADCASTSS 4(R11)(R9*2), Z31; \
	VFMADD231PS  Z24, Z31, Z6; \
	VBROADCASTSS 4(R11)(R10*1), Z25; \
	VFMADD231PS  Z24, Z25, Z7; \
	VBROADCASTSS 4(R12), Z26; \
	VFMADD231PS  Z24, Z26, Z8; \
	VBROADCASTSS 4(R12)(R9*1), Z27; \
	VFMADD231PS  Z24, Z27, Z9; \
	VBROADCASTSS 4(R12)(R9*2), Z28; \
	VFMADD231PS  Z24, Z28, Z10; \
	VBROADCASTSS 4(R12)(R10*1), Z29; \
	VFMADD231PS  Z24, Z29, Z11; \
	VBROADCASTSS 4(R13), Z30; \
	VFMADD231PS  Z24, Z30, Z12; \
	VBROADCASTSS 4(R13)(R9*1), Z31; \
	VFMADD231PS  Z24, Z31, Z13; \
	VBROADCASTSS 4(R13)(R9*2), Z25; \
	VFMADD231PS  Z24, Z25, Z14; \
	VBROADCASTSS 4(R13)(R10*1), Z26; \
	VFMADD231PS  Z24, Z26, Z15; \
	VBROADCASTSS 4(R14), Z27; \
	VFMADD231PS  Z24, Z27, Z16; \
	VBROADCASTSS 4(R14)(R9*1), Z28; \
	VFMADD231PS  Z24, Z28, Z17; \
	VBROADCASTSS 4(R14)(R9*2), Z29; \
	VFMADD231PS  Z24, Z29, Z18; \
	VBROADCASTSS 4(R14)(R10*1), Z30; \
	VFMADD231PS  Z24, Z30, Z19; \
	VBROADCASTSS 4(R15), Z31; \
	VFMADD231PS  Z24, Z31, Z20; \
	VBROADCASTSS 4(R15)(R9*1), Z25; \
	VFMADD231PS  Z24, Z25, Z21; \
	VBROADCASTSS 4(R15)(R9*2), Z26; \
	VFMADD231PS  Z24, Z26, Z22; \
	VBROADCASTSS 4(R15)(R10*1), Z27; \
	VFMADD231PS  Z24, Z27, Z23

#define MMT16STEP2 \
	VMOVUPS      128(DI), Z24; \
	VBROADCASTSS 8(R8), Z25; \
	VFMADD231PS  Z24, Z25, Z0; \
	VBROADCASTSS 8(R8)(R9*1), Z26; \
	VFMADD231PS  Z24, Z26, Z1; \
	VBROADCASTSS 8(R8)(R9*2), Z27; \
	VFMADD231PS  Z24, Z27, Z2; \
	VBROADCASTSS 8(R8)(R10*1), Z28; \
	VFMADD231PS  Z24, Z28, Z3; \
	VBROADCASTSS 8(R11), Z29; \
	VFMADD231PS  Z24, Z29, Z4; \
	VBROADCASTSS 8(R11)(R9*1), Z30; \
	VFMADD231PS  Z24, Z30, Z5; \
	VBROADCASTSS 8(R11)(R9*2), Z31; \
	VFMADD231PS  Z24, Z31, Z6; \
	VBROADCASTSS 8(R11)(R10*1), Z25; \
	VFMADD231PS  Z24, Z25, Z7; \
	VBROADCASTSS 8(R12), Z26; \
	VFMADD231PS  Z24, Z26, Z8; \
	VBROADCASTSS 8(R12)(R9*1), Z27; \
	VFMADD231PS  Z24, Z27, Z9; \
	VBROADCASTSS 8(R12)(R9*2), Z28; \
	VFMADD231PS  Z24, Z28, Z10; \
	VBROADCASTSS 8(R12)(R10*1), Z29; \
	VFMADD231PS  Z24, Z29, Z11; \
	VBROADCASTSS 8(R13), Z30; \
	VFMADD231PS  Z24, Z30, Z12; \
	VBROADCASTSS 8(R13)(R9*1), Z31; \
	VFMADD231PS  Z24, Z31, Z13; \
	VBROADCASTSS 8(R13)(R9*2), Z25; \
	VFMADD231PS  Z24, Z25, Z14; \
	VBROADCASTSS 8(R13)(R10*1), Z26; \
	VFMADD231PS  Z24, Z26, Z15; \
	VBROADCASTSS 8(R14), Z27; \
	VFMADD231PS  Z24, Z27, Z16; \
	VBROADCASTSS 8(R14)(R9*1), Z28; \
	VFMADD231PS  Z24, Z28, Z17; \
	VBROADCASTSS 8(R14)(R9*2), Z29; \
	VFMADD231PS  Z24, Z29, Z18; \
	VBROADCASTSS 8(R14)(R10*1), Z30; \
	VFMADD231PS  Z24, Z30, Z19; \
	VBROADCASTSS 8(R15), Z31; \
	VFMADD231PS  Z24, Z31, Z20; \
	VBROADCASTSS 8(R15)(R9*1), Z25; \
	VFMADD231PS  Z24, Z25, Z21; \
	VBROADCASTSS 8(R15)(R9*2), Z26; \
	VFMADD231PS  Z24, Z26, Z22; \
	VBROADCASTSS 8(R15)(R10*1), Z27; \
	VFMADD231PS  Z24, Z27, Z23

#define MMT16STEP3 \
	VMOVUPS      192(DI), Z24; \
	VBROADCASTSS 12(R8), Z25; \
	VFMADD231PS  Z24, Z25, Z0; \
	VBROADCASTSS 12(R8)(R9*1), Z26; \
	VFMADD231PS  Z24, Z26, Z1; \
	VBROADCASTSS 12(R8)(R9*2), Z27; \
	VFMADD231PS  Z24, Z27, Z2; \
	VBROADCASTSS 12(R8)(R10*1), Z28; \
	VFMADD231PS  Z24, Z28, Z3; \
	VBROADCASTSS 12(R11), Z29; \
	VFMADD231PS  Z24, Z29, Z4; \
	VBROADCASTSS 12(R11)(R9*1), Z30; \
	VFMADD231PS  Z24, Z30, Z5; \
	VBROADCASTSS 12(R11)(R9*2), Z31; \
	VFMADD231PS  Z24, Z31, Z6; \
	VBROADCASTSS 12(R11)(R10*1), Z25; \
	VFMADD231PS  Z24, Z25, Z7; \
	VBROADCASTSS 12(R12), Z26; \
	VFMADD231PS  Z24, Z26, Z8; \
	VBROADCASTSS 12(R12)(R9*1), Z27; \
	VFMADD231PS  Z24, Z27, Z9; \
	VBROADCASTSS 12(R12)(R9*2), Z28; \
	VFMADD231PS  Z24, Z28, Z10; \
	VBROADCASTSS 12(R12)(R10*1), Z29; \
	VFMADD231PS  Z24, Z29, Z11; \
	VBROADCASTSS 12(R13), Z30; \
	VFMADD231PS  Z24, Z30, Z12; \
	VBROADCASTSS 12(R13)(R9*1), Z31; \
	VFMADD231PS  Z24, Z31, Z13; \
	VBROADCASTSS 12(R13)(R9*2), Z25; \
	VFMADD231PS  Z24, Z25, Z14; \
	VBROADCASTSS 12(R13)(R10*1), Z26; \
	VFMADD231PS  Z24, Z26, Z15; \
	VBROADCASTSS 12(R14), Z27; \
	VFMADD231PS  Z24, Z27, Z16; \
	VBROADCASTSS 12(R14)(R9*1), Z28; \
	VFMADD231PS  Z24, Z28, Z17; \
	VBROADCASTSS 12(R14)(R9*2), Z29; \
	VFMADD231PS  Z24, Z29, Z18; \
	VBROADCASTSS 12(R14)(R10*1), Z30; \
	VFMADD231PS  Z24, Z30, Z19; \
	VBROADCASTSS 12(R15), Z31; \
	VFMADD231PS  Z24, Z31, Z20; \
	VBROADCASTSS 12(R15)(R9*1), Z25; \
	VFMADD231PS  Z24, Z25, Z21; \
	VBROADCASTSS 12(R15)(R9*2), Z26; \
	VFMADD231PS  Z24, Z26, Z22; \
	VBROADCASTSS 12(R15)(R10*1), Z27; \
	VFMADD231PS  Z24, Z27, Z23

// func mmTokens16AVX512(xp *float32, w *float32, ldw, groups, k int, ot *float32, ldt int)
// For g < groups, r < 24, t < 16, with weight row R = 24g+r:
// ot[R*ldt+t] = fma chain over j < k of xp[j*16+t] * w[R*ldw+j], from 0.
// R15 is written after the last global access (there is none).
TEXT ·mmTokens16AVX512(SB), NOSPLIT, $0-56
	MOVQ  w+8(FP), R8
	MOVQ  ldw+16(FP), R9
	SHLQ  $2, R9                 // R9: ldw in bytes
	LEAQ  (R9)(R9*2), R10        // R10: 3*ldw
	MOVQ  ot+40(FP), DX
	MOVQ  ldt+48(FP), BX
	SHLQ  $2, BX                 // BX: ldt in bytes
	MOVQ  groups+24(FP), CX
	TESTQ CX, CX
	JLE   mmt16done

mmt16group:
	MOVQ R8, SI                  // the group's first row
	LEAQ (R8)(R9*4), R11         // rows 4-7
	LEAQ (R11)(R9*4), R12        // rows 8-11
	LEAQ (R12)(R9*4), R13        // rows 12-15
	LEAQ (R13)(R9*4), R14        // rows 16-19
	LEAQ (R14)(R9*4), R15        // rows 20-23
	ZERO4Z(Z0, Z1, Z2, Z3)
	ZERO4Z(Z4, Z5, Z6, Z7)
	ZERO4Z(Z8, Z9, Z10, Z11)
	ZERO4Z(Z12, Z13, Z14, Z15)
	ZERO4Z(Z16, Z17, Z18, Z19)
	ZERO4Z(Z20, Z21, Z22, Z23)
	MOVQ xp+0(FP), DI
	MOVQ k+32(FP), AX
	ANDQ $-4, AX
	SHLQ $6, AX
	ADDQ DI, AX                  // AX: the end of the panel's whole groups of 4 columns
	CMPQ DI, AX
	JAE  mmt16ktail

mmt16loop4:
	MMT16STEP0
	MMT16STEP1
	MMT16STEP2
	MMT16STEP3
	ADDQ $256, DI
	ADDQ $16, R8
	ADDQ $16, R11
	ADDQ $16, R12
	ADDQ $16, R13
	ADDQ $16, R14
	ADDQ $16, R15
	CMPQ DI, AX
	JB   mmt16loop4

mmt16ktail:
	MOVQ k+32(FP), AX
	ANDQ $3, AX
	JZ   mmt16store

mmt16loop1:
	MMT16STEP0
	ADDQ $64, DI
	ADDQ $4, R8
	ADDQ $4, R11
	ADDQ $4, R12
	ADDQ $4, R13
	ADDQ $4, R14
	ADDQ $4, R15
	DECQ AX
	JNZ  mmt16loop1

mmt16store:
	MOVQ DX, AX
	VMOVUPS Z0, (AX)
	ADDQ    BX, AX
	VMOVUPS Z1, (AX)
	ADDQ    BX, AX
	VMOVUPS Z2, (AX)
	ADDQ    BX, AX
	VMOVUPS Z3, (AX)
	ADDQ    BX, AX
	VMOVUPS Z4, (AX)
	ADDQ    BX, AX
	VMOVUPS Z5, (AX)
	ADDQ    BX, AX
	VMOVUPS Z6, (AX)
	ADDQ    BX, AX
	VMOVUPS Z7, (AX)
	ADDQ    BX, AX
	VMOVUPS Z8, (AX)
	ADDQ    BX, AX
	VMOVUPS Z9, (AX)
	ADDQ    BX, AX
	VMOVUPS Z10, (AX)
	ADDQ    BX, AX
	VMOVUPS Z11, (AX)
	ADDQ    BX, AX
	VMOVUPS Z12, (AX)
	ADDQ    BX, AX
	VMOVUPS Z13, (AX)
	ADDQ    BX, AX
	VMOVUPS Z14, (AX)
	ADDQ    BX, AX
	VMOVUPS Z15, (AX)
	ADDQ    BX, AX
	VMOVUPS Z16, (AX)
	ADDQ    BX, AX
	VMOVUPS Z17, (AX)
	ADDQ    BX, AX
	VMOVUPS Z18, (AX)
	ADDQ    BX, AX
	VMOVUPS Z19, (AX)
	ADDQ    BX, AX
	VMOVUPS Z20, (AX)
	ADDQ    BX, AX
	VMOVUPS Z21, (AX)
	ADDQ    BX, AX
	VMOVUPS Z22, (AX)
	ADDQ    BX, AX
	VMOVUPS Z23, (AX)
	ADDQ    BX, AX
	MOVQ AX, DX                  // the next group's sums
	LEAQ (SI)(R9*8), R8
	LEAQ (R8)(R9*8), R8
	LEAQ (R8)(R9*8), R8          // and its rows, 24 on
	DECQ CX
	JNZ  mmt16group

mmt16done:
	VZEROUPPER
	RET

// UNPACK4 transposes the 4x4 blocks in the 128-bit quarters of r0-r3: if
// quarter q of r(i) holds four columns of row i (of some group of four rows),
// afterwards quarter q of r(j) holds column j of the four rows. t0-t3 are
// temporaries.
#define UNPACK4(r0, r1, r2, r3, t0, t1, t2, t3) \
	VUNPCKLPS r1, r0, t0; \
	VUNPCKHPS r1, r0, t1; \
	VUNPCKLPS r3, r2, t2; \
	VUNPCKHPS r3, r2, t3; \
	VUNPCKLPD t2, t0, r0; \
	VUNPCKHPD t2, t0, r1; \
	VUNPCKLPD t3, t1, r2; \
	VUNPCKHPD t3, t1, r3

// func transpose16AVX512(dst *float32, ldd int, w *float32, ldw int, chunks int)
// For r < 16 and j < 16*chunks: dst[j*ldd+r] = w[r*ldw+j]. Sixteen rows of w
// become sixteen-float columns, one 16x16 block at a time. The loads do half
// the work: register 4q+i gets, in its quarter g, columns 4q..4q+3 of row
// i+4g, so that a 4x4 transpose inside each quarter (UNPACK4) completes
// columns 4q..4q+3. The inserts can run on port 0, the shuffles only on 5.
TEXT ·transpose16AVX512(SB), NOSPLIT, $0-40
	MOVQ  dst+0(FP), DI
	MOVQ  ldd+8(FP), DX
	SHLQ  $2, DX                 // DX: ldd in bytes
	LEAQ  (DX)(DX*2), R14        // R14: 3*ldd
	MOVQ  w+16(FP), R8
	MOVQ  ldw+24(FP), R9
	SHLQ  $2, R9                 // R9: ldw in bytes
	LEAQ  (R9)(R9*2), R10        // R10: 3*ldw
	LEAQ  (R8)(R9*4), R11        // rows 4-7
	LEAQ  (R11)(R9*4), R12       // rows 8-11
	LEAQ  (R12)(R9*4), R13       // rows 12-15
	MOVQ  chunks+32(FP), CX
	TESTQ CX, CX
	JLE   ppdone

pploop:
	VMOVUPS      (R8), X0
	VINSERTF32X4 $1, (R11), Z0, Z0
	VINSERTF32X4 $2, (R12), Z0, Z0
	VINSERTF32X4 $3, (R13), Z0, Z0
	VMOVUPS      (R8)(R9*1), X1
	VINSERTF32X4 $1, (R11)(R9*1), Z1, Z1
	VINSERTF32X4 $2, (R12)(R9*1), Z1, Z1
	VINSERTF32X4 $3, (R13)(R9*1), Z1, Z1
	VMOVUPS      (R8)(R9*2), X2
	VINSERTF32X4 $1, (R11)(R9*2), Z2, Z2
	VINSERTF32X4 $2, (R12)(R9*2), Z2, Z2
	VINSERTF32X4 $3, (R13)(R9*2), Z2, Z2
	VMOVUPS      (R8)(R10*1), X3
	VINSERTF32X4 $1, (R11)(R10*1), Z3, Z3
	VINSERTF32X4 $2, (R12)(R10*1), Z3, Z3
	VINSERTF32X4 $3, (R13)(R10*1), Z3, Z3
	VMOVUPS      16(R8), X4
	VINSERTF32X4 $1, 16(R11), Z4, Z4
	VINSERTF32X4 $2, 16(R12), Z4, Z4
	VINSERTF32X4 $3, 16(R13), Z4, Z4
	VMOVUPS      16(R8)(R9*1), X5
	VINSERTF32X4 $1, 16(R11)(R9*1), Z5, Z5
	VINSERTF32X4 $2, 16(R12)(R9*1), Z5, Z5
	VINSERTF32X4 $3, 16(R13)(R9*1), Z5, Z5
	VMOVUPS      16(R8)(R9*2), X6
	VINSERTF32X4 $1, 16(R11)(R9*2), Z6, Z6
	VINSERTF32X4 $2, 16(R12)(R9*2), Z6, Z6
	VINSERTF32X4 $3, 16(R13)(R9*2), Z6, Z6
	VMOVUPS      16(R8)(R10*1), X7
	VINSERTF32X4 $1, 16(R11)(R10*1), Z7, Z7
	VINSERTF32X4 $2, 16(R12)(R10*1), Z7, Z7
	VINSERTF32X4 $3, 16(R13)(R10*1), Z7, Z7
	VMOVUPS      32(R8), X8
	VINSERTF32X4 $1, 32(R11), Z8, Z8
	VINSERTF32X4 $2, 32(R12), Z8, Z8
	VINSERTF32X4 $3, 32(R13), Z8, Z8
	VMOVUPS      32(R8)(R9*1), X9
	VINSERTF32X4 $1, 32(R11)(R9*1), Z9, Z9
	VINSERTF32X4 $2, 32(R12)(R9*1), Z9, Z9
	VINSERTF32X4 $3, 32(R13)(R9*1), Z9, Z9
	VMOVUPS      32(R8)(R9*2), X10
	VINSERTF32X4 $1, 32(R11)(R9*2), Z10, Z10
	VINSERTF32X4 $2, 32(R12)(R9*2), Z10, Z10
	VINSERTF32X4 $3, 32(R13)(R9*2), Z10, Z10
	VMOVUPS      32(R8)(R10*1), X11
	VINSERTF32X4 $1, 32(R11)(R10*1), Z11, Z11
	VINSERTF32X4 $2, 32(R12)(R10*1), Z11, Z11
	VINSERTF32X4 $3, 32(R13)(R10*1), Z11, Z11
	VMOVUPS      48(R8), X12
	VINSERTF32X4 $1, 48(R11), Z12, Z12
	VINSERTF32X4 $2, 48(R12), Z12, Z12
	VINSERTF32X4 $3, 48(R13), Z12, Z12
	VMOVUPS      48(R8)(R9*1), X13
	VINSERTF32X4 $1, 48(R11)(R9*1), Z13, Z13
	VINSERTF32X4 $2, 48(R12)(R9*1), Z13, Z13
	VINSERTF32X4 $3, 48(R13)(R9*1), Z13, Z13
	VMOVUPS      48(R8)(R9*2), X14
	VINSERTF32X4 $1, 48(R11)(R9*2), Z14, Z14
	VINSERTF32X4 $2, 48(R12)(R9*2), Z14, Z14
	VINSERTF32X4 $3, 48(R13)(R9*2), Z14, Z14
	VMOVUPS      48(R8)(R10*1), X15
	VINSERTF32X4 $1, 48(R11)(R10*1), Z15, Z15
	VINSERTF32X4 $2, 48(R12)(R10*1), Z15, Z15
	VINSERTF32X4 $3, 48(R13)(R10*1), Z15, Z15
	UNPACK4(Z0, Z1, Z2, Z3, Z16, Z17, Z18, Z19)
	UNPACK4(Z4, Z5, Z6, Z7, Z20, Z21, Z22, Z23)
	UNPACK4(Z8, Z9, Z10, Z11, Z24, Z25, Z26, Z27)
	UNPACK4(Z12, Z13, Z14, Z15, Z28, Z29, Z30, Z31)
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, (DI)(DX*1)
	VMOVUPS Z2, (DI)(DX*2)
	VMOVUPS Z3, (DI)(R14*1)
	LEAQ    (DI)(DX*4), DI
	VMOVUPS Z4, (DI)
	VMOVUPS Z5, (DI)(DX*1)
	VMOVUPS Z6, (DI)(DX*2)
	VMOVUPS Z7, (DI)(R14*1)
	LEAQ    (DI)(DX*4), DI
	VMOVUPS Z8, (DI)
	VMOVUPS Z9, (DI)(DX*1)
	VMOVUPS Z10, (DI)(DX*2)
	VMOVUPS Z11, (DI)(R14*1)
	LEAQ    (DI)(DX*4), DI
	VMOVUPS Z12, (DI)
	VMOVUPS Z13, (DI)(DX*1)
	VMOVUPS Z14, (DI)(DX*2)
	VMOVUPS Z15, (DI)(R14*1)
	LEAQ    (DI)(DX*4), DI
	ADDQ    $64, R8
	ADDQ    $64, R11
	ADDQ    $64, R12
	ADDQ    $64, R13
	DECQ    CX
	JNZ     pploop

ppdone:
	VZEROUPPER
	RET

// func axpyAVX512(a float32, x, y []float32)
TEXT ·axpyAVX512(SB), NOSPLIT, $0-56
	VBROADCASTSS a+0(FP), Z31
	MOVQ x_base+8(FP), SI
	MOVQ x_len+16(FP), CX
	MOVQ y_base+32(FP), DI
	XORQ AX, AX
	MOVQ CX, DX
	ANDQ $-64, DX
	SHLQ $2, DX
	JZ   ax512tail16

ax512loop64:
	VMOVUPS     (DI)(AX*1), Z0
	VMOVUPS     64(DI)(AX*1), Z1
	VMOVUPS     128(DI)(AX*1), Z2
	VMOVUPS     192(DI)(AX*1), Z3
	VFMADD231PS (SI)(AX*1), Z31, Z0
	VFMADD231PS 64(SI)(AX*1), Z31, Z1
	VFMADD231PS 128(SI)(AX*1), Z31, Z2
	VFMADD231PS 192(SI)(AX*1), Z31, Z3
	VMOVUPS     Z0, (DI)(AX*1)
	VMOVUPS     Z1, 64(DI)(AX*1)
	VMOVUPS     Z2, 128(DI)(AX*1)
	VMOVUPS     Z3, 192(DI)(AX*1)
	ADDQ        $256, AX
	CMPQ        AX, DX
	JB          ax512loop64

ax512tail16:
	MOVQ CX, DX
	ANDQ $-16, DX
	SHLQ $2, DX
	CMPQ AX, DX
	JAE  ax512mask

ax512loop16:
	VMOVUPS     (DI)(AX*1), Z0
	VFMADD231PS (SI)(AX*1), Z31, Z0
	VMOVUPS     Z0, (DI)(AX*1)
	ADDQ        $64, AX
	CMPQ        AX, DX
	JB          ax512loop16

ax512mask:
	TESTQ $15, CX
	JZ    ax512done
	MASK16
	VMOVUPS.Z   (DI)(AX*1), K1, Z0
	VMOVUPS.Z   (SI)(AX*1), K1, Z1
	VFMADD231PS Z1, Z31, Z0
	VMOVUPS     Z0, K1, (DI)(AX*1)

ax512done:
	VZEROUPPER
	RET

// func matVecTAVX512(out, w, x *float32, rows, cols int)
// Each block of columns keeps its sums in registers while the rows pass by:
// one broadcast of x[r] and one FMA per vector and row, rows in order.
TEXT ·matVecTAVX512(SB), NOSPLIT, $0-40
	MOVQ out+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ x+16(FP), DX
	MOVQ rows+24(FP), R8
	MOVQ cols+32(FP), CX
	MOVQ CX, R10
	SHLQ $2, R10                 // R10: row stride in bytes
	MOVQ CX, R11
	ANDQ $-64, R11
	SHLQ $2, R11                 // R11: bytes of whole 64-column blocks
	MOVQ CX, R12
	ANDQ $-16, R12
	SHLQ $2, R12                 // R12: bytes of whole 16-column vectors
	MASK16                       // K1: the last cols&15 columns
	XORQ BX, BX                  // BX: byte offset of the current columns

mvt512block64:
	CMPQ BX, R11
	JAE  mvt512block16
	ZERO4Z(Z0, Z1, Z2, Z3)
	LEAQ (SI)(BX*1), AX
	XORQ R9, R9

mvt512row64:
	VBROADCASTSS (DX)(R9*4), Z8
	VFMADD231PS  (AX), Z8, Z0
	VFMADD231PS  64(AX), Z8, Z1
	VFMADD231PS  128(AX), Z8, Z2
	VFMADD231PS  192(AX), Z8, Z3
	ADDQ         R10, AX
	INCQ         R9
	CMPQ         R9, R8
	JB           mvt512row64
	VMOVUPS      Z0, (DI)(BX*1)
	VMOVUPS      Z1, 64(DI)(BX*1)
	VMOVUPS      Z2, 128(DI)(BX*1)
	VMOVUPS      Z3, 192(DI)(BX*1)
	ADDQ         $256, BX
	JMP          mvt512block64

mvt512block16:
	CMPQ   BX, R12
	JAE    mvt512mask
	VPXORD Z0, Z0, Z0
	LEAQ   (SI)(BX*1), AX
	XORQ   R9, R9

mvt512row16:
	VBROADCASTSS (DX)(R9*4), Z8
	VFMADD231PS  (AX), Z8, Z0
	ADDQ         R10, AX
	INCQ         R9
	CMPQ         R9, R8
	JB           mvt512row16
	VMOVUPS      Z0, (DI)(BX*1)
	ADDQ         $64, BX
	JMP          mvt512block16

mvt512mask:
	KORTESTW K1, K1
	JZ       mvt512done
	VPXORD   Z0, Z0, Z0
	LEAQ     (SI)(BX*1), AX
	XORQ     R9, R9

mvt512rowmask:
	VBROADCASTSS (DX)(R9*4), Z8
	VMOVUPS.Z    (AX), K1, Z9
	VFMADD231PS  Z9, Z8, Z0
	ADDQ         R10, AX
	INCQ         R9
	CMPQ         R9, R8
	JB           mvt512rowmask
	VMOVUPS      Z0, K1, (DI)(BX*1)

mvt512done:
	VZEROUPPER
	RET

// func streamReadAVX512(buf []float32) float32
TEXT ·streamReadAVX512(SB), NOSPLIT, $0-28
	MOVQ buf_base+0(FP), SI
	MOVQ buf_len+8(FP), CX
	ZERO4Z(Z0, Z1, Z2, Z3)
	ZERO4Z(Z4, Z5, Z6, Z7)

	// Read the eight eighths of buf side by side, as MatVec reads eight
	// rows: one stream alone keeps too few cache misses in flight.
	MOVQ CX, DX
	SHRQ $3, DX
	ANDQ $-16, DX
	SHLQ $2, DX                  // DX: bytes per eighth, a multiple of 64
	JZ   sr512rest
	LEAQ (SI)(DX*1), R8
	LEAQ (R8)(DX*1), R9
	LEAQ (R9)(DX*1), R10
	LEAQ (R10)(DX*1), R11
	LEAQ (R11)(DX*1), R12
	LEAQ (R12)(DX*1), R13
	LEAQ (R13)(DX*1), R14
	XORQ AX, AX

sr512eighths:
	VADDPS (SI)(AX*1), Z0, Z0
	VADDPS (R8)(AX*1), Z1, Z1
	VADDPS (R9)(AX*1), Z2, Z2
	VADDPS (R10)(AX*1), Z3, Z3
	VADDPS (R11)(AX*1), Z4, Z4
	VADDPS (R12)(AX*1), Z5, Z5
	VADDPS (R13)(AX*1), Z6, Z6
	VADDPS (R14)(AX*1), Z7, Z7
	ADDQ   $64, AX
	CMPQ   AX, DX
	JB     sr512eighths
	LEAQ   (R14)(DX*1), SI
	SHLQ   $1, DX
	SUBQ   DX, CX                // eight eighths of DX/4 floats each

sr512rest:
	XORQ AX, AX
	MOVQ CX, DX
	ANDQ $-128, DX
	SHLQ $2, DX
	JZ   sr512tail16

sr512loop128:
	VADDPS (SI)(AX*1), Z0, Z0
	VADDPS 64(SI)(AX*1), Z1, Z1
	VADDPS 128(SI)(AX*1), Z2, Z2
	VADDPS 192(SI)(AX*1), Z3, Z3
	VADDPS 256(SI)(AX*1), Z4, Z4
	VADDPS 320(SI)(AX*1), Z5, Z5
	VADDPS 384(SI)(AX*1), Z6, Z6
	VADDPS 448(SI)(AX*1), Z7, Z7
	ADDQ   $512, AX
	CMPQ   AX, DX
	JB     sr512loop128

sr512tail16:
	MOVQ CX, DX
	ANDQ $-16, DX
	SHLQ $2, DX
	CMPQ AX, DX
	JAE  sr512mask

sr512loop16:
	VADDPS (SI)(AX*1), Z0, Z0
	ADDQ   $64, AX
	CMPQ   AX, DX
	JB     sr512loop16

sr512mask:
	TESTQ $15, CX
	JZ    sr512reduce
	MASK16
	VMOVUPS.Z (SI)(AX*1), K1, Z8
	VADDPS    Z8, Z1, Z1

sr512reduce:
	VADDPS        Z4, Z0, Z0
	VADDPS        Z5, Z1, Z1
	VADDPS        Z6, Z2, Z2
	VADDPS        Z7, Z3, Z3
	VADDPS        Z1, Z0, Z0
	VADDPS        Z3, Z2, Z2
	VADDPS        Z2, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	HSUMX
	VZEROUPPER
	MOVSS         X0, ret+24(FP)
	RET

// func fmaPeakAVX512(n int, v *[32]float32)
// Runs n iterations of 16 independent ZMM FMAs (512 flops each): more chains
// than FMA latency times ports, so only the issue rate limits it. The
// accumulators start from v[0:16] and multiply v[16:32] by itself, so the
// units switch real bits as they would on real data.
TEXT ·fmaPeakAVX512(SB), NOSPLIT, $0-16
	MOVQ    n+0(FP), CX
	MOVQ    v+8(FP), AX
	VMOVUPS (AX), Z0
	VMOVUPS 64(AX), Z17
	VMOVUPS Z17, Z16
	VMOVUPS Z0, Z1
	VMOVUPS Z0, Z2
	VMOVUPS Z0, Z3
	VMOVUPS Z0, Z4
	VMOVUPS Z0, Z5
	VMOVUPS Z0, Z6
	VMOVUPS Z0, Z7
	VMOVUPS Z0, Z8
	VMOVUPS Z0, Z9
	VMOVUPS Z0, Z10
	VMOVUPS Z0, Z11
	VMOVUPS Z0, Z12
	VMOVUPS Z0, Z13
	VMOVUPS Z0, Z14
	VMOVUPS Z0, Z15
	TESTQ   CX, CX
	JLE     fp512done

fp512loop:
	VFMADD231PS Z16, Z17, Z0
	VFMADD231PS Z16, Z17, Z1
	VFMADD231PS Z16, Z17, Z2
	VFMADD231PS Z16, Z17, Z3
	VFMADD231PS Z16, Z17, Z4
	VFMADD231PS Z16, Z17, Z5
	VFMADD231PS Z16, Z17, Z6
	VFMADD231PS Z16, Z17, Z7
	VFMADD231PS Z16, Z17, Z8
	VFMADD231PS Z16, Z17, Z9
	VFMADD231PS Z16, Z17, Z10
	VFMADD231PS Z16, Z17, Z11
	VFMADD231PS Z16, Z17, Z12
	VFMADD231PS Z16, Z17, Z13
	VFMADD231PS Z16, Z17, Z14
	VFMADD231PS Z16, Z17, Z15
	DECQ        CX
	JNZ         fp512loop

fp512done:
	VZEROUPPER
	RET

// ---------------------------------------------------------------- AVX2+FMA

// tailMask<>+4*(8-n) holds a VMASKMOVPS mask selecting the first n of 8 floats.
DATA tailMask<>+0(SB)/4, $0xffffffff
DATA tailMask<>+4(SB)/4, $0xffffffff
DATA tailMask<>+8(SB)/4, $0xffffffff
DATA tailMask<>+12(SB)/4, $0xffffffff
DATA tailMask<>+16(SB)/4, $0xffffffff
DATA tailMask<>+20(SB)/4, $0xffffffff
DATA tailMask<>+24(SB)/4, $0xffffffff
DATA tailMask<>+28(SB)/4, $0xffffffff
DATA tailMask<>+32(SB)/4, $0
DATA tailMask<>+36(SB)/4, $0
DATA tailMask<>+40(SB)/4, $0
DATA tailMask<>+44(SB)/4, $0
DATA tailMask<>+48(SB)/4, $0
DATA tailMask<>+52(SB)/4, $0
DATA tailMask<>+56(SB)/4, $0
DATA tailMask<>+60(SB)/4, $0
GLOBL tailMask<>(SB), RODATA|NOPTR, $64

// MASK8 loads into Y15 the mask for the first CX&7 floats; R14 and R15 are
// clobbered.
#define MASK8 \
	LEAQ    tailMask<>+32(SB), R14; \
	MOVQ    CX, R15; \
	ANDQ    $7, R15; \
	NEGQ    R15; \
	VMOVDQU (R14)(R15*4), Y15

// func dotAVX2(a, b []float32) float32
// Sums exactly as one row of matVec4AVX2 does (even 8-float vectors into Y0,
// odd ones and the masked tail into Y1, the same horizontal tree).
TEXT ·dotAVX2(SB), NOSPLIT, $0-52
	MOVQ   a_base+0(FP), SI
	MOVQ   a_len+8(FP), CX
	MOVQ   b_base+24(FP), DI
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	XORQ   AX, AX
	MOVQ   CX, DX
	ANDQ   $-16, DX
	SHLQ   $2, DX
	JZ     d2step8

d2loop16:
	VMOVUPS     (SI)(AX*1), Y4
	VMOVUPS     32(SI)(AX*1), Y5
	VFMADD231PS (DI)(AX*1), Y4, Y0
	VFMADD231PS 32(DI)(AX*1), Y5, Y1
	ADDQ        $64, AX
	CMPQ        AX, DX
	JB          d2loop16

d2step8:
	TESTQ       $8, CX
	JZ          d2mask
	VMOVUPS     (SI)(AX*1), Y4
	VFMADD231PS (DI)(AX*1), Y4, Y0
	ADDQ        $32, AX

d2mask:
	TESTQ $7, CX
	JZ    d2reduce
	MASK8
	VMASKMOVPS  (SI)(AX*1), Y15, Y4
	VMASKMOVPS  (DI)(AX*1), Y15, Y5
	VFMADD231PS Y5, Y4, Y1

d2reduce:
	DOTSUMY
	VZEROUPPER
	MOVSS        X0, ret+48(FP)
	RET

// func matVec4AVX2(out, w, x *float32, groups, cols, lane int)
// For g < groups and r < 4, with i = r*lane + g:
// out[i] = dot(w[i*cols:][:cols], x[:cols]): matVec8AVX512's four lanes.
TEXT ·matVec4AVX2(SB), NOSPLIT, $0-48
	MOVQ  out+0(FP), DI
	MOVQ  w+8(FP), R8
	MOVQ  x+16(FP), SI
	MOVQ  groups+24(FP), BX
	MOVQ  cols+32(FP), CX
	MOVQ  lane+40(FP), R12
	IMULQ CX, R12
	SHLQ  $2, R12                // R12: lane stride in bytes
	MOVQ  CX, R13
	ANDQ  $-16, R13
	SHLQ  $2, R13
	MOVQ  CX, DX
	ANDQ  $-8, DX
	SHLQ  $2, DX
	MASK8
	MOVQ  lane+40(FP), R14
	SHLQ  $2, R14                // R14: output lane stride in bytes

mv2group:
	MV4ROWSAVX2
	XORQ   AX, AX
	TESTQ  R13, R13
	JZ     mv2step8

mv2loop16:
	VMOVUPS     (SI)(AX*1), Y8
	VMOVUPS     32(SI)(AX*1), Y9
	VFMADD231PS (R8)(AX*1), Y8, Y0
	VFMADD231PS (R9)(AX*1), Y8, Y1
	VFMADD231PS (R10)(AX*1), Y8, Y2
	VFMADD231PS (R11)(AX*1), Y8, Y3
	VFMADD231PS 32(R8)(AX*1), Y9, Y4
	VFMADD231PS 32(R9)(AX*1), Y9, Y5
	VFMADD231PS 32(R10)(AX*1), Y9, Y6
	VFMADD231PS 32(R11)(AX*1), Y9, Y7
	ADDQ        $64, AX
	CMPQ        AX, R13
	JB          mv2loop16

mv2step8:
	CMPQ AX, DX
	JAE  mv2mask
	VMOVUPS     (SI)(AX*1), Y8
	VFMADD231PS (R8)(AX*1), Y8, Y0
	VFMADD231PS (R9)(AX*1), Y8, Y1
	VFMADD231PS (R10)(AX*1), Y8, Y2
	VFMADD231PS (R11)(AX*1), Y8, Y3
	ADDQ        $32, AX

mv2mask:
	TESTQ $7, CX
	JZ    mv2reduce
	VMASKMOVPS  (SI)(AX*1), Y15, Y8
	VMASKMOVPS  (R8)(AX*1), Y15, Y9
	VFMADD231PS Y9, Y8, Y4
	VMASKMOVPS  (R9)(AX*1), Y15, Y10
	VFMADD231PS Y10, Y8, Y5
	VMASKMOVPS  (R10)(AX*1), Y15, Y11
	VFMADD231PS Y11, Y8, Y6
	VMASKMOVPS  (R11)(AX*1), Y15, Y12
	VFMADD231PS Y12, Y8, Y7

mv2reduce:
	MV4STOREAVX2(4)
	DECQ    BX
	JNZ     mv2group
	VZEROUPPER
	RET

// MatMul micro-kernel, AVX2: a tile of 3 tokens (Y12-Y14) by 4 weight rows
// (loaded into Y15 in turn); the accumulator for token t and row r is Y(4t+r).
// Pointers: x rows R8-R10, weight rows R11 R12 R13 BX, byte offset SI.

// MM2STEP multiplies 8 columns of the tile.
#define MM2STEP \
	VMOVUPS     (R8)(SI*1), Y12; \
	VMOVUPS     (R9)(SI*1), Y13; \
	VMOVUPS     (R10)(SI*1), Y14; \
	VMOVUPS     (R11)(SI*1), Y15; \
	VFMADD231PS Y15, Y12, Y0; \
	VFMADD231PS Y15, Y13, Y4; \
	VFMADD231PS Y15, Y14, Y8; \
	VMOVUPS     (R12)(SI*1), Y15; \
	VFMADD231PS Y15, Y12, Y1; \
	VFMADD231PS Y15, Y13, Y5; \
	VFMADD231PS Y15, Y14, Y9; \
	VMOVUPS     (R13)(SI*1), Y15; \
	VFMADD231PS Y15, Y12, Y2; \
	VFMADD231PS Y15, Y13, Y6; \
	VFMADD231PS Y15, Y14, Y10; \
	VMOVUPS     (BX)(SI*1), Y15; \
	VFMADD231PS Y15, Y12, Y3; \
	VFMADD231PS Y15, Y13, Y7; \
	VFMADD231PS Y15, Y14, Y11

// MM2MASKSTEP multiplies the last k&7 columns with VMASKMOVPS loads. With
// every register taken, the mask is reloaded from (R14) into Y15 before each
// weight row and the row is loaded over it.
#define MM2MASKSTEP \
	VMOVDQU     (R14), Y15; \
	VMASKMOVPS  (R8)(SI*1), Y15, Y12; \
	VMASKMOVPS  (R9)(SI*1), Y15, Y13; \
	VMASKMOVPS  (R10)(SI*1), Y15, Y14; \
	VMASKMOVPS  (R11)(SI*1), Y15, Y15; \
	VFMADD231PS Y15, Y12, Y0; \
	VFMADD231PS Y15, Y13, Y4; \
	VFMADD231PS Y15, Y14, Y8; \
	VMOVDQU     (R14), Y15; \
	VMASKMOVPS  (R12)(SI*1), Y15, Y15; \
	VFMADD231PS Y15, Y12, Y1; \
	VFMADD231PS Y15, Y13, Y5; \
	VFMADD231PS Y15, Y14, Y9; \
	VMOVDQU     (R14), Y15; \
	VMASKMOVPS  (R13)(SI*1), Y15, Y15; \
	VFMADD231PS Y15, Y12, Y2; \
	VFMADD231PS Y15, Y13, Y6; \
	VFMADD231PS Y15, Y14, Y10; \
	VMOVDQU     (R14), Y15; \
	VMASKMOVPS  (BX)(SI*1), Y15, Y15; \
	VFMADD231PS Y15, Y12, Y3; \
	VFMADD231PS Y15, Y13, Y7; \
	VFMADD231PS Y15, Y14, Y11

// func mmRowsAVX2(x *float32, ldx, tiles int, wp *[4]*float32, k int, out *float32, ldo, acc int)
// For i < tiles, t < 3, r < 4, with token T = 3i+t:
// out[T*ldo+r] (+)= dot(x[T*ldx:][:k], wp[r][:k]), adding to out when acc != 0.
TEXT ·mmRowsAVX2(SB), NOSPLIT, $0-64
	MOVQ  wp+24(FP), AX
	MOVQ  0(AX), R11
	MOVQ  8(AX), R12
	MOVQ  16(AX), R13
	MOVQ  24(AX), BX
	MOVQ  k+32(FP), CX
	ANDQ  $7, CX
	NEGQ  CX
	LEAQ  tailMask<>+32(SB), R14
	LEAQ  (R14)(CX*4), R14       // R14: mask for the last k&7 floats
	MOVQ  ldx+8(FP), R15
	SHLQ  $2, R15                // R15: x row stride in bytes
	MOVQ  ldo+48(FP), DX
	SHLQ  $2, DX                 // DX: out row stride in bytes
	MOVQ  out+40(FP), DI
	MOVQ  x+0(FP), R8
	MOVQ  tiles+16(FP), CX
	TESTQ CX, CX
	JLE   mmr2done

mmr2tile:
	LEAQ   (R8)(R15*1), R9
	LEAQ   (R9)(R15*1), R10
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	XORQ   SI, SI
	MOVQ   k+32(FP), AX
	ANDQ   $-8, AX
	SHLQ   $2, AX
	JZ     mmr2tail

mmr2loop:
	MM2STEP
	ADDQ $32, SI
	CMPQ SI, AX
	JB   mmr2loop

mmr2tail:
	TESTQ $7, k+32(FP)
	JZ    mmr2reduce
	MM2MASKSTEP

mmr2reduce:
	HSUM4Y(Y0, Y1, Y2, Y3, X0, X1)
	HSUM4Y(Y4, Y5, Y6, Y7, X4, X5)
	HSUM4Y(Y8, Y9, Y10, Y11, X8, X9)
	CMPQ   acc+56(FP), $0
	JEQ    mmr2store
	VADDPS (DI), X0, X0
	VADDPS (DI)(DX*1), X4, X4
	VADDPS (DI)(DX*2), X8, X8

mmr2store:
	VMOVUPS X0, (DI)
	VMOVUPS X4, (DI)(DX*1)
	VMOVUPS X8, (DI)(DX*2)
	LEAQ    (DI)(DX*2), DI
	ADDQ    DX, DI
	LEAQ    (R10)(R15*1), R8
	DECQ    CX
	JNZ     mmr2tile

mmr2done:
	VZEROUPPER
	RET

// func axpyAVX2(a float32, x, y []float32)
TEXT ·axpyAVX2(SB), NOSPLIT, $0-56
	VBROADCASTSS a+0(FP), Y14
	MOVQ         x_base+8(FP), SI
	MOVQ         x_len+16(FP), CX
	MOVQ         y_base+32(FP), DI
	XORQ         AX, AX
	MOVQ         CX, DX
	ANDQ         $-32, DX
	SHLQ         $2, DX
	JZ           ax2tail8

ax2loop32:
	VMOVUPS     (DI)(AX*1), Y0
	VMOVUPS     32(DI)(AX*1), Y1
	VMOVUPS     64(DI)(AX*1), Y2
	VMOVUPS     96(DI)(AX*1), Y3
	VFMADD231PS (SI)(AX*1), Y14, Y0
	VFMADD231PS 32(SI)(AX*1), Y14, Y1
	VFMADD231PS 64(SI)(AX*1), Y14, Y2
	VFMADD231PS 96(SI)(AX*1), Y14, Y3
	VMOVUPS     Y0, (DI)(AX*1)
	VMOVUPS     Y1, 32(DI)(AX*1)
	VMOVUPS     Y2, 64(DI)(AX*1)
	VMOVUPS     Y3, 96(DI)(AX*1)
	ADDQ        $128, AX
	CMPQ        AX, DX
	JB          ax2loop32

ax2tail8:
	MOVQ CX, DX
	ANDQ $-8, DX
	SHLQ $2, DX
	CMPQ AX, DX
	JAE  ax2mask

ax2loop8:
	VMOVUPS     (DI)(AX*1), Y0
	VFMADD231PS (SI)(AX*1), Y14, Y0
	VMOVUPS     Y0, (DI)(AX*1)
	ADDQ        $32, AX
	CMPQ        AX, DX
	JB          ax2loop8

ax2mask:
	TESTQ $7, CX
	JZ    ax2done
	MASK8
	VMASKMOVPS  (DI)(AX*1), Y15, Y0
	VMASKMOVPS  (SI)(AX*1), Y15, Y1
	VFMADD231PS Y1, Y14, Y0
	VMASKMOVPS  Y0, Y15, (DI)(AX*1)

ax2done:
	VZEROUPPER
	RET

// func matVecTAVX2(out, w, x *float32, rows, cols int)
// matVecTAVX512 with 8-float vectors: blocks of 32 columns, then of 8, then
// a VMASKMOVPS tail.
TEXT ·matVecTAVX2(SB), NOSPLIT, $0-40
	MOVQ out+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ x+16(FP), DX
	MOVQ rows+24(FP), R8
	MOVQ cols+32(FP), CX
	MOVQ CX, R10
	SHLQ $2, R10                 // R10: row stride in bytes
	MOVQ CX, R11
	ANDQ $-32, R11
	SHLQ $2, R11                 // R11: bytes of whole 32-column blocks
	MOVQ CX, R12
	ANDQ $-8, R12
	SHLQ $2, R12                 // R12: bytes of whole 8-column vectors
	MASK8                        // Y15: the mask of the last cols&7 columns
	XORQ BX, BX                  // BX: byte offset of the current columns

mvt2block32:
	CMPQ   BX, R11
	JAE    mvt2block8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	LEAQ   (SI)(BX*1), AX
	XORQ   R9, R9

mvt2row32:
	VBROADCASTSS (DX)(R9*4), Y8
	VFMADD231PS  (AX), Y8, Y0
	VFMADD231PS  32(AX), Y8, Y1
	VFMADD231PS  64(AX), Y8, Y2
	VFMADD231PS  96(AX), Y8, Y3
	ADDQ         R10, AX
	INCQ         R9
	CMPQ         R9, R8
	JB           mvt2row32
	VMOVUPS      Y0, (DI)(BX*1)
	VMOVUPS      Y1, 32(DI)(BX*1)
	VMOVUPS      Y2, 64(DI)(BX*1)
	VMOVUPS      Y3, 96(DI)(BX*1)
	ADDQ         $128, BX
	JMP          mvt2block32

mvt2block8:
	CMPQ   BX, R12
	JAE    mvt2mask
	VXORPS Y0, Y0, Y0
	LEAQ   (SI)(BX*1), AX
	XORQ   R9, R9

mvt2row8:
	VBROADCASTSS (DX)(R9*4), Y8
	VFMADD231PS  (AX), Y8, Y0
	ADDQ         R10, AX
	INCQ         R9
	CMPQ         R9, R8
	JB           mvt2row8
	VMOVUPS      Y0, (DI)(BX*1)
	ADDQ         $32, BX
	JMP          mvt2block8

mvt2mask:
	TESTQ  $7, CX
	JZ     mvt2done
	VXORPS Y0, Y0, Y0
	LEAQ   (SI)(BX*1), AX
	XORQ   R9, R9

mvt2rowmask:
	VBROADCASTSS (DX)(R9*4), Y8
	VMASKMOVPS   (AX), Y15, Y9
	VFMADD231PS  Y9, Y8, Y0
	ADDQ         R10, AX
	INCQ         R9
	CMPQ         R9, R8
	JB           mvt2rowmask
	VMASKMOVPS   Y0, Y15, (DI)(BX*1)

mvt2done:
	VZEROUPPER
	RET

// func streamReadAVX2(buf []float32) float32
TEXT ·streamReadAVX2(SB), NOSPLIT, $0-28
	MOVQ   buf_base+0(FP), SI
	MOVQ   buf_len+8(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

	// Eight streams side by side, as in streamReadAVX512.
	MOVQ CX, DX
	SHRQ $3, DX
	ANDQ $-8, DX
	SHLQ $2, DX                  // DX: bytes per eighth, a multiple of 32
	JZ   sr2rest
	LEAQ (SI)(DX*1), R8
	LEAQ (R8)(DX*1), R9
	LEAQ (R9)(DX*1), R10
	LEAQ (R10)(DX*1), R11
	LEAQ (R11)(DX*1), R12
	LEAQ (R12)(DX*1), R13
	LEAQ (R13)(DX*1), R14
	XORQ AX, AX

sr2eighths:
	VADDPS (SI)(AX*1), Y0, Y0
	VADDPS (R8)(AX*1), Y1, Y1
	VADDPS (R9)(AX*1), Y2, Y2
	VADDPS (R10)(AX*1), Y3, Y3
	VADDPS (R11)(AX*1), Y4, Y4
	VADDPS (R12)(AX*1), Y5, Y5
	VADDPS (R13)(AX*1), Y6, Y6
	VADDPS (R14)(AX*1), Y7, Y7
	ADDQ   $32, AX
	CMPQ   AX, DX
	JB     sr2eighths
	LEAQ   (R14)(DX*1), SI
	SHLQ   $1, DX
	SUBQ   DX, CX

sr2rest:
	XORQ   AX, AX
	MOVQ   CX, DX
	ANDQ   $-64, DX
	SHLQ   $2, DX
	JZ     sr2tail8

sr2loop64:
	VADDPS (SI)(AX*1), Y0, Y0
	VADDPS 32(SI)(AX*1), Y1, Y1
	VADDPS 64(SI)(AX*1), Y2, Y2
	VADDPS 96(SI)(AX*1), Y3, Y3
	VADDPS 128(SI)(AX*1), Y4, Y4
	VADDPS 160(SI)(AX*1), Y5, Y5
	VADDPS 192(SI)(AX*1), Y6, Y6
	VADDPS 224(SI)(AX*1), Y7, Y7
	ADDQ   $256, AX
	CMPQ   AX, DX
	JB     sr2loop64

sr2tail8:
	MOVQ CX, DX
	ANDQ $-8, DX
	SHLQ $2, DX
	CMPQ AX, DX
	JAE  sr2mask

sr2loop8:
	VADDPS (SI)(AX*1), Y0, Y0
	ADDQ   $32, AX
	CMPQ   AX, DX
	JB     sr2loop8

sr2mask:
	TESTQ $7, CX
	JZ    sr2reduce
	MASK8
	VMASKMOVPS (SI)(AX*1), Y15, Y8
	VADDPS     Y8, Y1, Y1

sr2reduce:
	VADDPS       Y4, Y0, Y0
	VADDPS       Y5, Y1, Y1
	VADDPS       Y6, Y2, Y2
	VADDPS       Y7, Y3, Y3
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	HSUMX
	VZEROUPPER
	MOVSS        X0, ret+24(FP)
	RET

// func fmaPeakAVX2(n int)
// Runs n iterations of 12 independent YMM FMAs (192 flops each).
TEXT ·fmaPeakAVX2(SB), NOSPLIT, $0-8
	MOVQ   n+0(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	TESTQ  CX, CX
	JLE    fp2done

fp2loop:
	VFMADD231PS Y12, Y13, Y0
	VFMADD231PS Y12, Y13, Y1
	VFMADD231PS Y12, Y13, Y2
	VFMADD231PS Y12, Y13, Y3
	VFMADD231PS Y12, Y13, Y4
	VFMADD231PS Y12, Y13, Y5
	VFMADD231PS Y12, Y13, Y6
	VFMADD231PS Y12, Y13, Y7
	VFMADD231PS Y12, Y13, Y8
	VFMADD231PS Y12, Y13, Y9
	VFMADD231PS Y12, Y13, Y10
	VFMADD231PS Y12, Y13, Y11
	DECQ        CX
	JNZ         fp2loop

fp2done:
	VZEROUPPER
	RET

// ---------------------------------------------------------------- exp

// The constants of expGeneric (kernels_generic.go), each repeated 8 times so
// that AVX2 code can use a row as a 32-byte operand; the offsets of the rows:
#define EC_HI 0
#define EC_LO 32
#define EC_LOG2E 64
#define EC_LN2HI 96
#define EC_LN2LO 128
#define EC_P0 160
#define EC_P1 192
#define EC_P2 224
#define EC_P3 256
#define EC_P4 288
#define EC_P5 320
#define EC_ONE 352
#define EC_BIAS 384
#define EC_NEGINF 416
#define EC_SIGN 448

DATA expConst<>+0(SB)/4, $0x42b20000
DATA expConst<>+4(SB)/4, $0x42b20000
DATA expConst<>+8(SB)/4, $0x42b20000
DATA expConst<>+12(SB)/4, $0x42b20000
DATA expConst<>+16(SB)/4, $0x42b20000
DATA expConst<>+20(SB)/4, $0x42b20000
DATA expConst<>+24(SB)/4, $0x42b20000
DATA expConst<>+28(SB)/4, $0x42b20000
DATA expConst<>+32(SB)/4, $0xc2d00000
DATA expConst<>+36(SB)/4, $0xc2d00000
DATA expConst<>+40(SB)/4, $0xc2d00000
DATA expConst<>+44(SB)/4, $0xc2d00000
DATA expConst<>+48(SB)/4, $0xc2d00000
DATA expConst<>+52(SB)/4, $0xc2d00000
DATA expConst<>+56(SB)/4, $0xc2d00000
DATA expConst<>+60(SB)/4, $0xc2d00000
DATA expConst<>+64(SB)/4, $0x3fb8aa3b
DATA expConst<>+68(SB)/4, $0x3fb8aa3b
DATA expConst<>+72(SB)/4, $0x3fb8aa3b
DATA expConst<>+76(SB)/4, $0x3fb8aa3b
DATA expConst<>+80(SB)/4, $0x3fb8aa3b
DATA expConst<>+84(SB)/4, $0x3fb8aa3b
DATA expConst<>+88(SB)/4, $0x3fb8aa3b
DATA expConst<>+92(SB)/4, $0x3fb8aa3b
DATA expConst<>+96(SB)/4, $0x3f318000
DATA expConst<>+100(SB)/4, $0x3f318000
DATA expConst<>+104(SB)/4, $0x3f318000
DATA expConst<>+108(SB)/4, $0x3f318000
DATA expConst<>+112(SB)/4, $0x3f318000
DATA expConst<>+116(SB)/4, $0x3f318000
DATA expConst<>+120(SB)/4, $0x3f318000
DATA expConst<>+124(SB)/4, $0x3f318000
DATA expConst<>+128(SB)/4, $0xb95e8083
DATA expConst<>+132(SB)/4, $0xb95e8083
DATA expConst<>+136(SB)/4, $0xb95e8083
DATA expConst<>+140(SB)/4, $0xb95e8083
DATA expConst<>+144(SB)/4, $0xb95e8083
DATA expConst<>+148(SB)/4, $0xb95e8083
DATA expConst<>+152(SB)/4, $0xb95e8083
DATA expConst<>+156(SB)/4, $0xb95e8083
DATA expConst<>+160(SB)/4, $0x39506967
DATA expConst<>+164(SB)/4, $0x39506967
DATA expConst<>+168(SB)/4, $0x39506967
DATA expConst<>+172(SB)/4, $0x39506967
DATA expConst<>+176(SB)/4, $0x39506967
DATA expConst<>+180(SB)/4, $0x39506967
DATA expConst<>+184(SB)/4, $0x39506967
DATA expConst<>+188(SB)/4, $0x39506967
DATA expConst<>+192(SB)/4, $0x3ab743ce
DATA expConst<>+196(SB)/4, $0x3ab743ce
DATA expConst<>+200(SB)/4, $0x3ab743ce
DATA expConst<>+204(SB)/4, $0x3ab743ce
DATA expConst<>+208(SB)/4, $0x3ab743ce
DATA expConst<>+212(SB)/4, $0x3ab743ce
DATA expConst<>+216(SB)/4, $0x3ab743ce
DATA expConst<>+220(SB)/4, $0x3ab743ce
DATA expConst<>+224(SB)/4, $0x3c088908
DATA expConst<>+228(SB)/4, $0x3c088908
DATA expConst<>+232(SB)/4, $0x3c088908
DATA expConst<>+236(SB)/4, $0x3c088908
DATA expConst<>+240(SB)/4, $0x3c088908
DATA expConst<>+244(SB)/4, $0x3c088908
DATA expConst<>+248(SB)/4, $0x3c088908
DATA expConst<>+252(SB)/4, $0x3c088908
DATA expConst<>+256(SB)/4, $0x3d2aa9c1
DATA expConst<>+260(SB)/4, $0x3d2aa9c1
DATA expConst<>+264(SB)/4, $0x3d2aa9c1
DATA expConst<>+268(SB)/4, $0x3d2aa9c1
DATA expConst<>+272(SB)/4, $0x3d2aa9c1
DATA expConst<>+276(SB)/4, $0x3d2aa9c1
DATA expConst<>+280(SB)/4, $0x3d2aa9c1
DATA expConst<>+284(SB)/4, $0x3d2aa9c1
DATA expConst<>+288(SB)/4, $0x3e2aaaaa
DATA expConst<>+292(SB)/4, $0x3e2aaaaa
DATA expConst<>+296(SB)/4, $0x3e2aaaaa
DATA expConst<>+300(SB)/4, $0x3e2aaaaa
DATA expConst<>+304(SB)/4, $0x3e2aaaaa
DATA expConst<>+308(SB)/4, $0x3e2aaaaa
DATA expConst<>+312(SB)/4, $0x3e2aaaaa
DATA expConst<>+316(SB)/4, $0x3e2aaaaa
DATA expConst<>+320(SB)/4, $0x3f000000
DATA expConst<>+324(SB)/4, $0x3f000000
DATA expConst<>+328(SB)/4, $0x3f000000
DATA expConst<>+332(SB)/4, $0x3f000000
DATA expConst<>+336(SB)/4, $0x3f000000
DATA expConst<>+340(SB)/4, $0x3f000000
DATA expConst<>+344(SB)/4, $0x3f000000
DATA expConst<>+348(SB)/4, $0x3f000000
DATA expConst<>+352(SB)/4, $0x3f800000
DATA expConst<>+356(SB)/4, $0x3f800000
DATA expConst<>+360(SB)/4, $0x3f800000
DATA expConst<>+364(SB)/4, $0x3f800000
DATA expConst<>+368(SB)/4, $0x3f800000
DATA expConst<>+372(SB)/4, $0x3f800000
DATA expConst<>+376(SB)/4, $0x3f800000
DATA expConst<>+380(SB)/4, $0x3f800000
DATA expConst<>+384(SB)/4, $0x0000007f
DATA expConst<>+388(SB)/4, $0x0000007f
DATA expConst<>+392(SB)/4, $0x0000007f
DATA expConst<>+396(SB)/4, $0x0000007f
DATA expConst<>+400(SB)/4, $0x0000007f
DATA expConst<>+404(SB)/4, $0x0000007f
DATA expConst<>+408(SB)/4, $0x0000007f
DATA expConst<>+412(SB)/4, $0x0000007f
DATA expConst<>+416(SB)/4, $0xff800000
DATA expConst<>+420(SB)/4, $0xff800000
DATA expConst<>+424(SB)/4, $0xff800000
DATA expConst<>+428(SB)/4, $0xff800000
DATA expConst<>+432(SB)/4, $0xff800000
DATA expConst<>+436(SB)/4, $0xff800000
DATA expConst<>+440(SB)/4, $0xff800000
DATA expConst<>+444(SB)/4, $0xff800000
DATA expConst<>+448(SB)/4, $0x80000000
DATA expConst<>+452(SB)/4, $0x80000000
DATA expConst<>+456(SB)/4, $0x80000000
DATA expConst<>+460(SB)/4, $0x80000000
DATA expConst<>+464(SB)/4, $0x80000000
DATA expConst<>+468(SB)/4, $0x80000000
DATA expConst<>+472(SB)/4, $0x80000000
DATA expConst<>+476(SB)/4, $0x80000000
GLOBL expConst<>(SB), RODATA|NOPTR, $480

// EXPCONST512 loads the constants of EXP512 into Z16-Z27.
#define EXPCONST512 \
	VBROADCASTSS expConst<>+EC_HI(SB), Z16; \
	VBROADCASTSS expConst<>+EC_LO(SB), Z17; \
	VBROADCASTSS expConst<>+EC_LOG2E(SB), Z18; \
	VBROADCASTSS expConst<>+EC_LN2HI(SB), Z19; \
	VBROADCASTSS expConst<>+EC_LN2LO(SB), Z20; \
	VBROADCASTSS expConst<>+EC_P0(SB), Z21; \
	VBROADCASTSS expConst<>+EC_P1(SB), Z22; \
	VBROADCASTSS expConst<>+EC_P2(SB), Z23; \
	VBROADCASTSS expConst<>+EC_P3(SB), Z24; \
	VBROADCASTSS expConst<>+EC_P4(SB), Z25; \
	VBROADCASTSS expConst<>+EC_P5(SB), Z26; \
	VBROADCASTSS expConst<>+EC_ONE(SB), Z27

// EXP512 replaces each lane of x by expGeneric of it, with the constants of
// EXPCONST512 in Z16-Z27; t0-t2 are clobbered. The clamps keep a NaN (it is
// the second source of MINPS and MAXPS, which they return on NaN), and
// VSCALEFPS rounds y·2^n once, as expGeneric's two exact steps do.
#define EXP512(x, t0, t1, t2) \
	VMINPS      x, Z16, x; \
	VMAXPS      x, Z17, x; \
	VMULPS      Z18, x, t0; \
	VRNDSCALEPS $0, t0, t0; \
	VMULPS      Z19, t0, t1; \
	VSUBPS      t1, x, x; \
	VMULPS      Z20, t0, t1; \
	VSUBPS      t1, x, x; \
	VMULPS      x, x, t2; \
	VMULPS      Z21, x, t1; \
	VADDPS      Z22, t1, t1; \
	VMULPS      x, t1, t1; \
	VADDPS      Z23, t1, t1; \
	VMULPS      x, t1, t1; \
	VADDPS      Z24, t1, t1; \
	VMULPS      x, t1, t1; \
	VADDPS      Z25, t1, t1; \
	VMULPS      x, t1, t1; \
	VADDPS      Z26, t1, t1; \
	VMULPS      t2, t1, t1; \
	VADDPS      x, t1, t1; \
	VADDPS      Z27, t1, t1; \
	VSCALEFPS   t0, t1, x

// func expVecAVX512(x []float32)
// x[i] = expGeneric(x[i]), bit for bit.
TEXT ·expVecAVX512(SB), NOSPLIT, $0-24
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	EXPCONST512
	XORQ AX, AX
	MOVQ CX, DX
	ANDQ $-16, DX
	SHLQ $2, DX
	JZ   ex512mask

ex512loop:
	VMOVUPS (SI)(AX*1), Z0
	EXP512(Z0, Z1, Z2, Z3)
	VMOVUPS Z0, (SI)(AX*1)
	ADDQ    $64, AX
	CMPQ    AX, DX
	JB      ex512loop

ex512mask:
	TESTQ $15, CX
	JZ    ex512done
	MASK16
	VMOVUPS.Z (SI)(AX*1), K1, Z0
	EXP512(Z0, Z1, Z2, Z3)
	VMOVUPS   Z0, K1, (SI)(AX*1)

ex512done:
	VZEROUPPER
	RET

// func softmaxAVX512(x []float32, d float32)
// softmaxGeneric(x, d), bit for bit: the maximum does not depend on the
// order, the 16 lanes of Z28 are the 16 partial sums, and the division and
// the final tree are the same operations.
TEXT ·softmaxAVX512(SB), NOSPLIT, $0-28
	MOVQ  x_base+0(FP), SI
	MOVQ  x_len+8(FP), CX
	TESTQ CX, CX
	JZ    sm512done
	MOVQ  CX, DX
	ANDQ  $-16, DX
	SHLQ  $2, DX                 // DX: bytes in whole vectors
	MASK16                       // K1: the tail
	VBROADCASTSS d+24(FP), Z31
	VBROADCASTSS expConst<>+EC_NEGINF(SB), Z30

	// Pass 1: x /= d and the maximum, into Z29 (the tail's missing lanes
	// read as -Inf).
	VMOVAPS Z30, Z29
	XORQ    AX, AX
	CMPQ    AX, DX
	JAE     sm512maxtail

sm512max:
	VMOVUPS (SI)(AX*1), Z0
	VDIVPS  Z31, Z0, Z0
	VMOVUPS Z0, (SI)(AX*1)
	VMAXPS  Z0, Z29, Z29
	ADDQ    $64, AX
	CMPQ    AX, DX
	JB      sm512max

sm512maxtail:
	KORTESTW K1, K1
	JZ       sm512maxred
	VMOVAPS  Z30, Z0
	VMOVUPS  (SI)(AX*1), K1, Z0
	VDIVPS   Z31, Z0, Z0
	VMOVUPS  Z0, K1, (SI)(AX*1)
	VMAXPS   Z0, Z29, Z29

sm512maxred:
	VEXTRACTF64X4 $1, Z29, Y0
	VMAXPS        Y0, Y29, Y0
	VEXTRACTF128  $1, Y0, X1
	VMAXPS        X1, X0, X0
	VMOVHLPS      X0, X0, X1
	VMAXPS        X1, X0, X0
	VMOVSHDUP     X0, X1
	VMAXPS        X1, X0, X0
	VBROADCASTSS  X0, Z29

	// Pass 2: x = exp(x - max), summed lane by lane into Z28.
	EXPCONST512
	VPXORD Z28, Z28, Z28
	XORQ   AX, AX
	CMPQ   AX, DX
	JAE    sm512exptail

sm512exp:
	VMOVUPS (SI)(AX*1), Z0
	VSUBPS  Z29, Z0, Z0
	EXP512(Z0, Z1, Z2, Z3)
	VMOVUPS Z0, (SI)(AX*1)
	VADDPS  Z0, Z28, Z28
	ADDQ    $64, AX
	CMPQ    AX, DX
	JB      sm512exp

sm512exptail:
	KORTESTW  K1, K1
	JZ        sm512sumred
	VMOVUPS.Z (SI)(AX*1), K1, Z0
	VSUBPS    Z29, Z0, Z0
	EXP512(Z0, Z1, Z2, Z3)
	VMOVUPS   Z0, K1, (SI)(AX*1)
	VADDPS    Z0, Z28, K1, Z28

sm512sumred:
	// Lane j adds lane j+8, then j+4, j+2 and j+1, as softmaxGeneric does.
	VEXTRACTF64X4 $1, Z28, Y0
	VADDPS        Y0, Y28, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VMOVHLPS      X0, X0, X1
	VADDPS        X1, X0, X0
	VMOVSHDUP     X0, X1
	VADDSS        X1, X0, X0
	VBROADCASTSS  X0, Z28

	// Pass 3: x /= sum.
	XORQ AX, AX
	CMPQ AX, DX
	JAE  sm512divtail

sm512div:
	VMOVUPS (SI)(AX*1), Z0
	VDIVPS  Z28, Z0, Z0
	VMOVUPS Z0, (SI)(AX*1)
	ADDQ    $64, AX
	CMPQ    AX, DX
	JB      sm512div

sm512divtail:
	KORTESTW  K1, K1
	JZ        sm512done
	VMOVUPS.Z (SI)(AX*1), K1, Z0
	VDIVPS    Z28, Z0, Z0
	VMOVUPS   Z0, K1, (SI)(AX*1)

sm512done:
	VZEROUPPER
	RET

// func swiGLUAVX512(gate, up []float32)
// swiGLUGeneric(gate, up), bit for bit; len(up) == len(gate).
TEXT ·swiGLUAVX512(SB), NOSPLIT, $0-48
	MOVQ gate_base+0(FP), SI
	MOVQ gate_len+8(FP), CX
	MOVQ up_base+24(FP), DI
	EXPCONST512
	VPBROADCASTD expConst<>+EC_SIGN(SB), Z28
	XORQ AX, AX
	MOVQ CX, DX
	ANDQ $-16, DX
	SHLQ $2, DX
	JZ   sg512mask

sg512loop:
	VMOVUPS (SI)(AX*1), Z4
	VPXORD  Z28, Z4, Z0          // -v
	EXP512(Z0, Z1, Z2, Z3)
	VADDPS  Z27, Z0, Z0          // 1 + exp(-v)
	VDIVPS  Z0, Z27, Z0          // 1 / (1 + exp(-v))
	VMULPS  Z0, Z4, Z0
	VMULPS  (DI)(AX*1), Z0, Z0
	VMOVUPS Z0, (SI)(AX*1)
	ADDQ    $64, AX
	CMPQ    AX, DX
	JB      sg512loop

sg512mask:
	TESTQ $15, CX
	JZ    sg512done
	MASK16
	VMOVUPS.Z (SI)(AX*1), K1, Z4
	VMOVUPS.Z (DI)(AX*1), K1, Z5
	VPXORD    Z28, Z4, Z0
	EXP512(Z0, Z1, Z2, Z3)
	VADDPS    Z27, Z0, Z0
	VDIVPS    Z0, Z27, Z0
	VMULPS    Z0, Z4, Z0
	VMULPS    Z5, Z0, Z0
	VMOVUPS   Z0, K1, (SI)(AX*1)

sg512done:
	VZEROUPPER
	RET


// EXP256 is EXP512 for AVX2, with the constants read from memory: it
// replaces each lane of x by expGeneric of it; t0-t2 are clobbered. 2^n is
// applied as expGeneric does, as two factors built in the exponent field.
#define EXP256(x, t0, t1, t2) \
	VMOVUPS   expConst<>+EC_HI(SB), t0; \
	VMINPS    x, t0, x; \
	VMOVUPS   expConst<>+EC_LO(SB), t0; \
	VMAXPS    x, t0, x; \
	VMULPS    expConst<>+EC_LOG2E(SB), x, t0; \
	VROUNDPS  $0, t0, t0; \
	VMULPS    expConst<>+EC_LN2HI(SB), t0, t1; \
	VSUBPS    t1, x, x; \
	VMULPS    expConst<>+EC_LN2LO(SB), t0, t1; \
	VSUBPS    t1, x, x; \
	VMULPS    x, x, t2; \
	VMULPS    expConst<>+EC_P0(SB), x, t1; \
	VADDPS    expConst<>+EC_P1(SB), t1, t1; \
	VMULPS    x, t1, t1; \
	VADDPS    expConst<>+EC_P2(SB), t1, t1; \
	VMULPS    x, t1, t1; \
	VADDPS    expConst<>+EC_P3(SB), t1, t1; \
	VMULPS    x, t1, t1; \
	VADDPS    expConst<>+EC_P4(SB), t1, t1; \
	VMULPS    x, t1, t1; \
	VADDPS    expConst<>+EC_P5(SB), t1, t1; \
	VMULPS    t2, t1, t1; \
	VADDPS    x, t1, t1; \
	VADDPS    expConst<>+EC_ONE(SB), t1, t1; \
	VCVTPS2DQ t0, t0; \
	VPSRAD    $1, t0, t2; \
	VPSUBD    t2, t0, t0; \
	VPADDD    expConst<>+EC_BIAS(SB), t2, t2; \
	VPSLLD    $23, t2, t2; \
	VPADDD    expConst<>+EC_BIAS(SB), t0, t0; \
	VPSLLD    $23, t0, t0; \
	VMULPS    t2, t1, t1; \
	VMULPS    t0, t1, x

// func expVecAVX2(x []float32)
// x[i] = expGeneric(x[i]), bit for bit.
TEXT ·expVecAVX2(SB), NOSPLIT, $0-24
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	XORQ AX, AX
	MOVQ CX, DX
	ANDQ $-8, DX
	SHLQ $2, DX
	JZ   ex2mask

ex2loop:
	VMOVUPS (SI)(AX*1), Y0
	EXP256(Y0, Y1, Y2, Y3)
	VMOVUPS Y0, (SI)(AX*1)
	ADDQ    $32, AX
	CMPQ    AX, DX
	JB      ex2loop

ex2mask:
	TESTQ      $7, CX
	JZ         ex2done
	MASK8
	VMASKMOVPS (SI)(AX*1), Y15, Y0
	EXP256(Y0, Y1, Y2, Y3)
	VMASKMOVPS Y0, Y15, (SI)(AX*1)

ex2done:
	VZEROUPPER
	RET

// func softmaxAVX2(x []float32, d float32)
// softmaxGeneric(x, d), bit for bit: 8-float vectors alternate between the
// partial sums of lanes 0-7 (Y11) and 8-15 (Y12), so element i still adds
// into sum i%16.
TEXT ·softmaxAVX2(SB), NOSPLIT, $0-28
	MOVQ         x_base+0(FP), SI
	MOVQ         x_len+8(FP), CX
	TESTQ        CX, CX
	JZ           sm2done
	MOVQ         CX, DX
	ANDQ         $-16, DX
	SHLQ         $2, DX          // DX: bytes in whole groups of 16
	MOVQ         CX, BX
	ANDQ         $15, BX         // BX: floats after them
	MASK8                        // Y15: the last CX&7 floats
	VBROADCASTSS d+24(FP), Y13
	VMOVUPS      expConst<>+EC_NEGINF(SB), Y14

	// Pass 1: x /= d and the maximum, into Y11 and Y12.
	VMOVUPS Y14, Y11
	VMOVUPS Y14, Y12
	XORQ    AX, AX
	CMPQ    AX, DX
	JAE     sm2maxtail

sm2max:
	VMOVUPS (SI)(AX*1), Y0
	VMOVUPS 32(SI)(AX*1), Y1
	VDIVPS  Y13, Y0, Y0
	VDIVPS  Y13, Y1, Y1
	VMOVUPS Y0, (SI)(AX*1)
	VMOVUPS Y1, 32(SI)(AX*1)
	VMAXPS  Y0, Y11, Y11
	VMAXPS  Y1, Y12, Y12
	ADDQ    $64, AX
	CMPQ    AX, DX
	JB      sm2max

sm2maxtail:
	CMPQ BX, $8
	JB   sm2maxmask
	VMOVUPS (SI)(AX*1), Y0
	VDIVPS  Y13, Y0, Y0
	VMOVUPS Y0, (SI)(AX*1)
	VMAXPS  Y0, Y11, Y11
	ADDQ    $32, AX

sm2maxmask:
	TESTQ      $7, BX
	JZ         sm2maxred
	VMASKMOVPS (SI)(AX*1), Y15, Y0
	VBLENDVPS  Y15, Y0, Y14, Y0  // -Inf in the lanes past the end
	VDIVPS     Y13, Y0, Y0
	VMASKMOVPS Y0, Y15, (SI)(AX*1)
	VMAXPS     Y0, Y12, Y12

sm2maxred:
	VMAXPS        Y12, Y11, Y0
	VEXTRACTF128  $1, Y0, X1
	VMAXPS        X1, X0, X0
	VMOVHLPS      X0, X0, X1
	VMAXPS        X1, X0, X0
	VMOVSHDUP     X0, X1
	VMAXPS        X1, X0, X0
	VBROADCASTSS  X0, Y13        // Y13: the maximum

	// Pass 2: x = exp(x - max), summed into Y11 (lanes 0-7) and Y12 (8-15).
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	XORQ   AX, AX
	CMPQ   AX, DX
	JAE    sm2exptail

sm2exp:
	VMOVUPS (SI)(AX*1), Y0
	VMOVUPS 32(SI)(AX*1), Y4
	VSUBPS  Y13, Y0, Y0
	VSUBPS  Y13, Y4, Y4
	EXP256(Y0, Y1, Y2, Y3)
	EXP256(Y4, Y5, Y6, Y7)
	VMOVUPS Y0, (SI)(AX*1)
	VMOVUPS Y4, 32(SI)(AX*1)
	VADDPS  Y0, Y11, Y11
	VADDPS  Y4, Y12, Y12
	ADDQ    $64, AX
	CMPQ    AX, DX
	JB      sm2exp

sm2exptail:
	CMPQ BX, $8
	JB   sm2explo
	VMOVUPS (SI)(AX*1), Y0
	VSUBPS  Y13, Y0, Y0
	EXP256(Y0, Y1, Y2, Y3)
	VMOVUPS Y0, (SI)(AX*1)
	VADDPS  Y0, Y11, Y11
	ADDQ    $32, AX
	TESTQ   $7, BX
	JZ      sm2sumred
	VMASKMOVPS (SI)(AX*1), Y15, Y0
	VSUBPS     Y13, Y0, Y0
	EXP256(Y0, Y1, Y2, Y3)
	VANDPS     Y15, Y0, Y0       // 0 past the end
	VMASKMOVPS Y0, Y15, (SI)(AX*1)
	VADDPS     Y0, Y12, Y12
	JMP        sm2sumred

sm2explo:
	TESTQ      $7, BX
	JZ         sm2sumred
	VMASKMOVPS (SI)(AX*1), Y15, Y0
	VSUBPS     Y13, Y0, Y0
	EXP256(Y0, Y1, Y2, Y3)
	VANDPS     Y15, Y0, Y0
	VMASKMOVPS Y0, Y15, (SI)(AX*1)
	VADDPS     Y0, Y11, Y11

sm2sumred:
	// Lane j adds lane j+8, then j+4, j+2 and j+1, as softmaxGeneric does.
	VADDPS       Y12, Y11, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMOVHLPS     X0, X0, X1
	VADDPS       X1, X0, X0
	VMOVSHDUP    X0, X1
	VADDSS       X1, X0, X0
	VBROADCASTSS X0, Y13         // Y13: the sum

	// Pass 3: x /= sum.
	XORQ AX, AX
	MOVQ CX, DX
	ANDQ $-8, DX
	SHLQ $2, DX
	JZ   sm2divmask

sm2div:
	VMOVUPS (SI)(AX*1), Y0
	VDIVPS  Y13, Y0, Y0
	VMOVUPS Y0, (SI)(AX*1)
	ADDQ    $32, AX
	CMPQ    AX, DX
	JB      sm2div

sm2divmask:
	TESTQ      $7, CX
	JZ         sm2done
	VMASKMOVPS (SI)(AX*1), Y15, Y0
	VDIVPS     Y13, Y0, Y0
	VMASKMOVPS Y0, Y15, (SI)(AX*1)

sm2done:
	VZEROUPPER
	RET

// func swiGLUAVX2(gate, up []float32)
// swiGLUGeneric(gate, up), bit for bit; len(up) == len(gate).
TEXT ·swiGLUAVX2(SB), NOSPLIT, $0-48
	MOVQ    gate_base+0(FP), SI
	MOVQ    gate_len+8(FP), CX
	MOVQ    up_base+24(FP), DI
	VMOVUPS expConst<>+EC_SIGN(SB), Y14
	VMOVUPS expConst<>+EC_ONE(SB), Y13
	XORQ    AX, AX
	MOVQ    CX, DX
	ANDQ    $-8, DX
	SHLQ    $2, DX
	JZ      sg2mask

sg2loop:
	VMOVUPS (SI)(AX*1), Y4
	VXORPS  Y14, Y4, Y0          // -v
	EXP256(Y0, Y1, Y2, Y3)
	VADDPS  Y13, Y0, Y0          // 1 + exp(-v)
	VDIVPS  Y0, Y13, Y0          // 1 / (1 + exp(-v))
	VMULPS  Y0, Y4, Y0
	VMULPS  (DI)(AX*1), Y0, Y0
	VMOVUPS Y0, (SI)(AX*1)
	ADDQ    $32, AX
	CMPQ    AX, DX
	JB      sg2loop

sg2mask:
	TESTQ      $7, CX
	JZ         sg2done
	MASK8
	VMASKMOVPS (SI)(AX*1), Y15, Y4
	VMASKMOVPS (DI)(AX*1), Y15, Y5
	VXORPS     Y14, Y4, Y0
	EXP256(Y0, Y1, Y2, Y3)
	VADDPS     Y13, Y0, Y0
	VDIVPS     Y0, Y13, Y0
	VMULPS     Y0, Y4, Y0
	VMULPS     Y5, Y0, Y0
	VMASKMOVPS Y0, Y15, (SI)(AX*1)

sg2done:
	VZEROUPPER
	RET

// ---------------------------------------------------------------- RoPE, Add

// ropeIdx<> duplicates each of 8 floats into a pair of lanes (VPERMPS
// indices 0 0 1 1 ... 7 7); ropeSign<> flips the sign of the even lanes.
DATA ropeIdx<>+0(SB)/4, $0
DATA ropeIdx<>+4(SB)/4, $0
DATA ropeIdx<>+8(SB)/4, $1
DATA ropeIdx<>+12(SB)/4, $1
DATA ropeIdx<>+16(SB)/4, $2
DATA ropeIdx<>+20(SB)/4, $2
DATA ropeIdx<>+24(SB)/4, $3
DATA ropeIdx<>+28(SB)/4, $3
DATA ropeIdx<>+32(SB)/4, $4
DATA ropeIdx<>+36(SB)/4, $4
DATA ropeIdx<>+40(SB)/4, $5
DATA ropeIdx<>+44(SB)/4, $5
DATA ropeIdx<>+48(SB)/4, $6
DATA ropeIdx<>+52(SB)/4, $6
DATA ropeIdx<>+56(SB)/4, $7
DATA ropeIdx<>+60(SB)/4, $7
GLOBL ropeIdx<>(SB), RODATA|NOPTR, $64

DATA ropeSign<>+0(SB)/8, $0x0000000080000000
DATA ropeSign<>+8(SB)/8, $0x0000000080000000
DATA ropeSign<>+16(SB)/8, $0x0000000080000000
DATA ropeSign<>+24(SB)/8, $0x0000000080000000
DATA ropeSign<>+32(SB)/8, $0x0000000080000000
DATA ropeSign<>+40(SB)/8, $0x0000000080000000
DATA ropeSign<>+48(SB)/8, $0x0000000080000000
DATA ropeSign<>+56(SB)/8, $0x0000000080000000
GLOBL ropeSign<>(SB), RODATA|NOPTR, $64

// func ropePairsAVX512(x []float32, headDim int, cos, sin []float32)
// ropeGeneric(x, headDim, cos, sin, true), bit for bit, for headDim a
// multiple of 16 dividing len(x), len(cos) and len(sin) >= headDim/2: each
// 16 floats (8 pairs) become x*[c0 c0 c1 c1 ..] + swap(x)*[-s0 s0 -s1 s1 ..],
// the generic loop's two rounded products and their sum.
TEXT ·ropePairsAVX512(SB), NOSPLIT, $0-80
	MOVQ    x_base+0(FP), DI
	MOVQ    x_len+8(FP), CX
	MOVQ    headDim+24(FP), DX
	SHLQ    $1, DX               // DX: bytes of cos (and sin) per head
	MOVQ    cos_base+32(FP), R8
	MOVQ    sin_base+56(FP), R9
	VMOVUPS ropeIdx<>(SB), Z30
	VMOVUPS ropeSign<>(SB), Z31
	SHLQ    $2, CX
	ADDQ    DI, CX               // CX: the end of x
	CMPQ    DI, CX
	JAE     ropedone

ropehead:
	XORQ AX, AX                  // byte offset into cos and sin

ropevec:
	VMOVUPS     (R8)(AX*1), Y0
	VMOVUPS     (R9)(AX*1), Y1
	VPERMPS     Z0, Z30, Z0      // c0 c0 c1 c1 ...
	VPERMPS     Z1, Z30, Z1      // s0 s0 s1 s1 ...
	VPXORD      Z31, Z1, Z1      // -s0 s0 -s1 s1 ...
	VMOVUPS     (DI), Z2
	VPERMILPS   $0xB1, Z2, Z3    // x1 x0 x3 x2 ...
	VMULPS      Z0, Z2, Z2
	VMULPS      Z1, Z3, Z3
	VADDPS      Z3, Z2, Z2
	VMOVUPS     Z2, (DI)
	ADDQ        $64, DI
	ADDQ        $32, AX
	CMPQ        AX, DX
	JB          ropevec
	CMPQ        DI, CX
	JB          ropehead

ropedone:
	VZEROUPPER
	RET

// func addAVX512(dst, src []float32)
// addGeneric(dst, src); len(src) >= len(dst).
TEXT ·addAVX512(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ src_base+24(FP), SI
	XORQ AX, AX
	MOVQ CX, DX
	ANDQ $-64, DX
	SHLQ $2, DX
	JZ   add512tail16

add512loop64:
	VMOVUPS (DI)(AX*1), Z0
	VMOVUPS 64(DI)(AX*1), Z1
	VMOVUPS 128(DI)(AX*1), Z2
	VMOVUPS 192(DI)(AX*1), Z3
	VADDPS  (SI)(AX*1), Z0, Z0
	VADDPS  64(SI)(AX*1), Z1, Z1
	VADDPS  128(SI)(AX*1), Z2, Z2
	VADDPS  192(SI)(AX*1), Z3, Z3
	VMOVUPS Z0, (DI)(AX*1)
	VMOVUPS Z1, 64(DI)(AX*1)
	VMOVUPS Z2, 128(DI)(AX*1)
	VMOVUPS Z3, 192(DI)(AX*1)
	ADDQ    $256, AX
	CMPQ    AX, DX
	JB      add512loop64

add512tail16:
	MOVQ CX, DX
	ANDQ $-16, DX
	SHLQ $2, DX
	CMPQ AX, DX
	JAE  add512mask

add512loop16:
	VMOVUPS (DI)(AX*1), Z0
	VADDPS  (SI)(AX*1), Z0, Z0
	VMOVUPS Z0, (DI)(AX*1)
	ADDQ    $64, AX
	CMPQ    AX, DX
	JB      add512loop16

add512mask:
	TESTQ $15, CX
	JZ    add512done
	MASK16
	VMOVUPS.Z (DI)(AX*1), K1, Z0
	VMOVUPS.Z (SI)(AX*1), K1, Z1
	VADDPS    Z1, Z0, Z0
	VMOVUPS   Z0, K1, (DI)(AX*1)

add512done:
	VZEROUPPER
	RET

// ---------------------------------------------------------------- AVX-512, half-precision rows

// The attention kernels of a half-precision KV cache: matVec8AVX512,
// dotAVX512 and matVecTAVX512 for rows of IEEE halves, each converted by
// VCVTPH2PS as it is loaded and then meeting the same FMAs in the same order
// as the float32 kernel's, so a result has the bits that kernel gives on the
// converted rows. AX counts elements (x and out at AX*4, rows at AX*2).

// CVTFMA8(off, xv, a0..a7) converts 16 halves at off(R8..R15)(AX*2) and adds
// their products with xv into a0..a7.
#define CVTFMA8(off, xv, a0, a1, a2, a3, a4, a5, a6, a7) \
	VCVTPH2PS   off(R8)(AX*2), Z18; \
	VCVTPH2PS   off(R9)(AX*2), Z19; \
	VCVTPH2PS   off(R10)(AX*2), Z20; \
	VCVTPH2PS   off(R11)(AX*2), Z21; \
	VCVTPH2PS   off(R12)(AX*2), Z22; \
	VCVTPH2PS   off(R13)(AX*2), Z23; \
	VCVTPH2PS   off(R14)(AX*2), Z24; \
	VCVTPH2PS   off(R15)(AX*2), Z25; \
	VFMADD231PS Z18, xv, a0; \
	VFMADD231PS Z19, xv, a1; \
	VFMADD231PS Z20, xv, a2; \
	VFMADD231PS Z21, xv, a3; \
	VFMADD231PS Z22, xv, a4; \
	VFMADD231PS Z23, xv, a5; \
	VFMADD231PS Z24, xv, a6; \
	VFMADD231PS Z25, xv, a7

// CVTMASK(r, z, a) loads the last cols&15 halves of row r (K1) zero-extended,
// converts them into z and adds their products with Z16 into a under K1.
#define CVTMASK(r, z, a) \
	VMOVDQU16.Z (r)(AX*2), K1, Y26; \
	VCVTPH2PS   Y26, z; \
	VFMADD231PS z, Z16, K1, a

// func matVec8F16AVX512(out *float32, w *uint16, x *float32, groups, cols, lane int)
// For g < groups and r < 8, with i = r*lane + g:
// out[i] = dot(float32(w[i*cols:][:cols]), x[:cols]), summed as
// matVec8AVX512 sums and read in the same eight lanes.
TEXT ·matVec8F16AVX512(SB), NOSPLIT, $0-48
	MOVQ  out+0(FP), DI
	MOVQ  w+8(FP), R8
	MOVQ  x+16(FP), SI
	MOVQ  cols+32(FP), CX
	MOVQ  lane+40(FP), DX
	IMULQ CX, DX
	SHLQ  $1, DX                 // DX: lane stride in bytes
	MOVQ CX, BX
	ANDQ $-16, BX                // BX: elements in whole 16-element vectors
	MASK16                       // K1: the last cols&15 elements
	MOVQ BX, CX
	ANDQ $-32, CX                // CX: elements covered by the 32-element loop

mvh8group:
	MV8ROWS
	XORQ  AX, AX
	TESTQ CX, CX
	JZ    mvh8step16

mvh8loop32:
	VMOVUPS (SI)(AX*4), Z16
	VMOVUPS 64(SI)(AX*4), Z17
	CVTFMA8(0, Z16, Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7)
	CVTFMA8(32, Z17, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15)
	ADDQ    $32, AX
	CMPQ    AX, CX
	JB      mvh8loop32

mvh8step16:
	CMPQ    AX, BX
	JAE     mvh8mask
	VMOVUPS (SI)(AX*4), Z16
	CVTFMA8(0, Z16, Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7)
	ADDQ    $16, AX

mvh8mask:
	KORTESTW  K1, K1
	JZ        mvh8reduce
	VMOVUPS.Z (SI)(AX*4), K1, Z16
	CVTMASK(R8, Z18, Z8)
	CVTMASK(R9, Z19, Z9)
	CVTMASK(R10, Z20, Z10)
	CVTMASK(R11, Z21, Z11)
	CVTMASK(R12, Z22, Z12)
	CVTMASK(R13, Z23, Z13)
	CVTMASK(R14, Z24, Z14)
	CVTMASK(R15, Z25, Z15)

mvh8reduce:
	MOVQ lane+40(FP), AX
	SHLQ $2, AX
	MV8STORE(2)
	DECQ groups+24(FP)
	JNZ  mvh8group
	VZEROUPPER
	RET

// func dotF16AVX512(a *uint16, b *float32, n int) float32
// dot(float32(a[:n]), b[:n]), summed as dotAVX512 sums.
TEXT ·dotF16AVX512(SB), NOSPLIT, $0-28
	MOVQ   a+0(FP), SI
	MOVQ   b+8(FP), DI
	MOVQ   n+16(FP), CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	XORQ   AX, AX
	MOVQ   CX, DX
	ANDQ   $-32, DX
	JZ     dh512step16

dh512loop32:
	VCVTPH2PS   (SI)(AX*2), Z4
	VCVTPH2PS   32(SI)(AX*2), Z5
	VFMADD231PS (DI)(AX*4), Z4, Z0
	VFMADD231PS 64(DI)(AX*4), Z5, Z1
	ADDQ        $32, AX
	CMPQ        AX, DX
	JB          dh512loop32

dh512step16:
	TESTQ       $16, CX
	JZ          dh512mask
	VCVTPH2PS   (SI)(AX*2), Z4
	VFMADD231PS (DI)(AX*4), Z4, Z0
	ADDQ        $16, AX

dh512mask:
	TESTQ $15, CX
	JZ    dh512reduce
	MASK16
	VMOVDQU16.Z (SI)(AX*2), K1, Y4
	VCVTPH2PS   Y4, Z4
	VFMADD231PS (DI)(AX*4), Z4, K1, Z1

dh512reduce:
	DOTSUMZ
	VZEROUPPER
	MOVSS         X0, ret+24(FP)
	RET

// func matVecTF16AVX512(out *float32, w *uint16, x *float32, rows, cols int)
// out[:cols] = Σ_r x[r]*float32(w[r*cols:][:cols]), summed as matVecTAVX512 sums.
TEXT ·matVecTF16AVX512(SB), NOSPLIT, $0-40
	MOVQ out+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ x+16(FP), DX
	MOVQ rows+24(FP), R8
	MOVQ cols+32(FP), CX
	MOVQ CX, R10
	SHLQ $1, R10                 // R10: row stride in bytes
	MOVQ CX, R11
	ANDQ $-64, R11               // R11: columns in whole 64-column blocks
	MOVQ CX, R12
	ANDQ $-16, R12               // R12: columns in whole 16-column vectors
	MASK16                       // K1: the last cols&15 columns
	XORQ BX, BX                  // BX: the current column

mvth512block64:
	CMPQ BX, R11
	JAE  mvth512block16
	ZERO4Z(Z0, Z1, Z2, Z3)
	LEAQ (SI)(BX*2), AX
	XORQ R9, R9

mvth512row64:
	VBROADCASTSS (DX)(R9*4), Z8
	VCVTPH2PS    (AX), Z4
	VCVTPH2PS    32(AX), Z5
	VCVTPH2PS    64(AX), Z6
	VCVTPH2PS    96(AX), Z7
	VFMADD231PS  Z4, Z8, Z0
	VFMADD231PS  Z5, Z8, Z1
	VFMADD231PS  Z6, Z8, Z2
	VFMADD231PS  Z7, Z8, Z3
	ADDQ         R10, AX
	INCQ         R9
	CMPQ         R9, R8
	JB           mvth512row64
	VMOVUPS      Z0, (DI)(BX*4)
	VMOVUPS      Z1, 64(DI)(BX*4)
	VMOVUPS      Z2, 128(DI)(BX*4)
	VMOVUPS      Z3, 192(DI)(BX*4)
	ADDQ         $64, BX
	JMP          mvth512block64

mvth512block16:
	CMPQ   BX, R12
	JAE    mvth512mask
	VPXORD Z0, Z0, Z0
	LEAQ   (SI)(BX*2), AX
	XORQ   R9, R9

mvth512row16:
	VBROADCASTSS (DX)(R9*4), Z8
	VCVTPH2PS    (AX), Z4
	VFMADD231PS  Z4, Z8, Z0
	ADDQ         R10, AX
	INCQ         R9
	CMPQ         R9, R8
	JB           mvth512row16
	VMOVUPS      Z0, (DI)(BX*4)
	ADDQ         $16, BX
	JMP          mvth512block16

mvth512mask:
	KORTESTW K1, K1
	JZ       mvth512done
	VPXORD   Z0, Z0, Z0
	LEAQ     (SI)(BX*2), AX
	XORQ     R9, R9

mvth512rowmask:
	VBROADCASTSS (DX)(R9*4), Z8
	VMOVDQU16.Z  (AX), K1, Y9
	VCVTPH2PS    Y9, Z9
	VFMADD231PS  Z9, Z8, Z0
	ADDQ         R10, AX
	INCQ         R9
	CMPQ         R9, R8
	JB           mvth512rowmask
	VMOVUPS      Z0, K1, (DI)(BX*4)

mvth512done:
	VZEROUPPER
	RET

// ---------------------------------------------------------------- AVX2 (F16C), half-precision rows

// matVec4AVX2, dotAVX2 and matVecTAVX2 for rows of halves whose length is a
// multiple of 8 (they have no masked tail, which needs 16-bit masked loads
// that AVX2 lacks), converting each vector with VCVTPH2PS as they load it:
// the same FMAs in the same order, so the bits of the float32 kernels on
// the converted rows. AX counts elements (x and out at AX*4, rows at AX*2).

// func matVec4F16AVX2(out *float32, w *uint16, x *float32, groups, cols, lane int)
// For g < groups and r < 4, with i = r*lane + g:
// out[i] = dot(float32(w[i*cols:][:cols]), x[:cols]), summed as
// matVec4AVX2 sums and read in the same four lanes; cols is a multiple of 8.
TEXT ·matVec4F16AVX2(SB), NOSPLIT, $0-48
	MOVQ  out+0(FP), DI
	MOVQ  w+8(FP), R8
	MOVQ  x+16(FP), SI
	MOVQ  groups+24(FP), BX
	MOVQ  cols+32(FP), DX
	MOVQ  lane+40(FP), R12
	IMULQ DX, R12
	SHLQ  $1, R12                // R12: lane stride in bytes
	MOVQ  lane+40(FP), R14
	SHLQ  $2, R14                // R14: output lane stride in bytes
	MOVQ DX, R13
	ANDQ $-16, R13               // R13: elements covered by the 16-element loop

mvh2group:
	MV4ROWSAVX2
	XORQ   AX, AX
	TESTQ  R13, R13
	JZ     mvh2step8

mvh2loop16:
	VMOVUPS     (SI)(AX*4), Y8
	VMOVUPS     32(SI)(AX*4), Y9
	VCVTPH2PS   (R8)(AX*2), Y10
	VCVTPH2PS   (R9)(AX*2), Y11
	VCVTPH2PS   (R10)(AX*2), Y12
	VCVTPH2PS   (R11)(AX*2), Y13
	VFMADD231PS Y10, Y8, Y0
	VFMADD231PS Y11, Y8, Y1
	VFMADD231PS Y12, Y8, Y2
	VFMADD231PS Y13, Y8, Y3
	VCVTPH2PS   16(R8)(AX*2), Y10
	VCVTPH2PS   16(R9)(AX*2), Y11
	VCVTPH2PS   16(R10)(AX*2), Y12
	VCVTPH2PS   16(R11)(AX*2), Y13
	VFMADD231PS Y10, Y9, Y4
	VFMADD231PS Y11, Y9, Y5
	VFMADD231PS Y12, Y9, Y6
	VFMADD231PS Y13, Y9, Y7
	ADDQ        $16, AX
	CMPQ        AX, R13
	JB          mvh2loop16

mvh2step8:
	CMPQ        AX, DX
	JAE         mvh2reduce
	VMOVUPS     (SI)(AX*4), Y8
	VCVTPH2PS   (R8)(AX*2), Y10
	VCVTPH2PS   (R9)(AX*2), Y11
	VCVTPH2PS   (R10)(AX*2), Y12
	VCVTPH2PS   (R11)(AX*2), Y13
	VFMADD231PS Y10, Y8, Y0
	VFMADD231PS Y11, Y8, Y1
	VFMADD231PS Y12, Y8, Y2
	VFMADD231PS Y13, Y8, Y3

mvh2reduce:
	MV4STOREAVX2(2)
	DECQ    BX
	JNZ     mvh2group
	VZEROUPPER
	RET

// func dotF16AVX2(a *uint16, b *float32, n int) float32
// dot(float32(a[:n]), b[:n]), summed as dotAVX2 sums; n is a multiple of 8.
TEXT ·dotF16AVX2(SB), NOSPLIT, $0-28
	MOVQ   a+0(FP), SI
	MOVQ   b+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	XORQ   AX, AX
	MOVQ   CX, DX
	ANDQ   $-16, DX
	JZ     dh2step8

dh2loop16:
	VCVTPH2PS   (SI)(AX*2), Y4
	VCVTPH2PS   16(SI)(AX*2), Y5
	VFMADD231PS (DI)(AX*4), Y4, Y0
	VFMADD231PS 32(DI)(AX*4), Y5, Y1
	ADDQ        $16, AX
	CMPQ        AX, DX
	JB          dh2loop16

dh2step8:
	TESTQ       $8, CX
	JZ          dh2reduce
	VCVTPH2PS   (SI)(AX*2), Y4
	VFMADD231PS (DI)(AX*4), Y4, Y0

dh2reduce:
	DOTSUMY
	VZEROUPPER
	MOVSS        X0, ret+24(FP)
	RET

// func matVecTF16AVX2(out *float32, w *uint16, x *float32, rows, cols int)
// out[:cols] = Σ_r x[r]*float32(w[r*cols:][:cols]), summed as matVecTAVX2
// sums; cols is a multiple of 8.
TEXT ·matVecTF16AVX2(SB), NOSPLIT, $0-40
	MOVQ out+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ x+16(FP), DX
	MOVQ rows+24(FP), R8
	MOVQ cols+32(FP), CX
	MOVQ CX, R10
	SHLQ $1, R10                 // R10: row stride in bytes
	MOVQ CX, R11
	ANDQ $-32, R11               // R11: columns in whole 32-column blocks
	XORQ BX, BX                  // BX: the current column

mvth2block32:
	CMPQ   BX, R11
	JAE    mvth2block8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	LEAQ   (SI)(BX*2), AX
	XORQ   R9, R9

mvth2row32:
	VBROADCASTSS (DX)(R9*4), Y8
	VCVTPH2PS    (AX), Y4
	VCVTPH2PS    16(AX), Y5
	VCVTPH2PS    32(AX), Y6
	VCVTPH2PS    48(AX), Y7
	VFMADD231PS  Y4, Y8, Y0
	VFMADD231PS  Y5, Y8, Y1
	VFMADD231PS  Y6, Y8, Y2
	VFMADD231PS  Y7, Y8, Y3
	ADDQ         R10, AX
	INCQ         R9
	CMPQ         R9, R8
	JB           mvth2row32
	VMOVUPS      Y0, (DI)(BX*4)
	VMOVUPS      Y1, 32(DI)(BX*4)
	VMOVUPS      Y2, 64(DI)(BX*4)
	VMOVUPS      Y3, 96(DI)(BX*4)
	ADDQ         $32, BX
	JMP          mvth2block32

mvth2block8:
	CMPQ   BX, CX
	JAE    mvth2done
	VXORPS Y0, Y0, Y0
	LEAQ   (SI)(BX*2), AX
	XORQ   R9, R9

mvth2row8:
	VBROADCASTSS (DX)(R9*4), Y8
	VCVTPH2PS    (AX), Y4
	VFMADD231PS  Y4, Y8, Y0
	ADDQ         R10, AX
	INCQ         R9
	CMPQ         R9, R8
	JB           mvth2row8
	VMOVUPS      Y0, (DI)(BX*4)
	ADDQ         $8, BX
	JMP          mvth2block8

mvth2done:
	VZEROUPPER
	RET
