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
	VADDPS        Z1, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VHADDPS       Y0, Y0, Y0
	VHADDPS       Y0, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDSS        X1, X0, X0
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

// func matVec8AVX512(out, w, x *float32, groups, cols int)
// For g < groups and r < 8: out[8g+r] = dot(w[(8g+r)*cols:][:cols], x[:cols]).
// Eight rows share every load of x (and keep eight streams of cache misses
// in flight); each row has two accumulators, Z(r) and Z(8+r).
TEXT ·matVec8AVX512(SB), NOSPLIT, $0-40
	MOVQ out+0(FP), DI
	MOVQ w+8(FP), R8
	MOVQ x+16(FP), SI
	MOVQ cols+32(FP), CX
	MOVQ CX, DX
	SHLQ $2, DX                  // DX: row stride in bytes
	MOVQ CX, BX
	ANDQ $-16, BX
	SHLQ $2, BX                  // BX: bytes covered by whole 16-float vectors
	MASK16                       // K1: the last cols&15 floats
	MOVQ BX, CX
	ANDQ $-128, CX               // CX: bytes covered by the 32-float loop

mv8group:
	LEAQ (R8)(DX*1), R9
	LEAQ (R9)(DX*1), R10
	LEAQ (R10)(DX*1), R11
	LEAQ (R11)(DX*1), R12
	LEAQ (R12)(DX*1), R13
	LEAQ (R13)(DX*1), R14
	LEAQ (R14)(DX*1), R15
	ZERO4Z(Z0, Z1, Z2, Z3)
	ZERO4Z(Z4, Z5, Z6, Z7)
	ZERO4Z(Z8, Z9, Z10, Z11)
	ZERO4Z(Z12, Z13, Z14, Z15)
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
	VADDPS  Z8, Z0, Z0
	VADDPS  Z9, Z1, Z1
	VADDPS  Z10, Z2, Z2
	VADDPS  Z11, Z3, Z3
	VADDPS  Z12, Z4, Z4
	VADDPS  Z13, Z5, Z5
	VADDPS  Z14, Z6, Z6
	VADDPS  Z15, Z7, Z7
	HSUM4Z(Z0, Z1, Z2, Z3, Y0, Y1, Y2, Y3, Y0, Y1, Y2, Y3, X0, X1)
	HSUM4Z(Z4, Z5, Z6, Z7, Y4, Y5, Y6, Y7, Y4, Y5, Y6, Y7, X4, X5)
	VMOVUPS X0, (DI)
	VMOVUPS X4, 16(DI)
	ADDQ    $32, DI
	LEAQ    (R15)(DX*1), R8
	DECQ    groups+24(FP)
	JNZ     mv8group
	VZEROUPPER
	RET

// MatMul micro-kernel, AVX-512: a tile of 4 tokens (x rows, Z24-Z27) by 6
// weight rows (loaded into Z28-Z31 in turn) keeps 24 dot products in flight.
// Accumulator for token t and row r: Z(4t+r) for r < 4, Z(16+2t+r-4) for r >= 4,
// so that each reduction group of four lands in one or two runs of out.
// Pointers: x rows R8-R11, weight rows R12 R13 R14 BX DX DI, byte offset SI.

#define MM512FMAS \
	VFMADD231PS Z28, Z24, Z0; \
	VFMADD231PS Z28, Z25, Z4; \
	VFMADD231PS Z28, Z26, Z8; \
	VFMADD231PS Z28, Z27, Z12; \
	VMOVUPS     (R14)(SI*1), Z30; \
	VFMADD231PS Z29, Z24, Z1; \
	VFMADD231PS Z29, Z25, Z5; \
	VFMADD231PS Z29, Z26, Z9; \
	VFMADD231PS Z29, Z27, Z13; \
	VMOVUPS     (BX)(SI*1), Z31; \
	VFMADD231PS Z30, Z24, Z2; \
	VFMADD231PS Z30, Z25, Z6; \
	VFMADD231PS Z30, Z26, Z10; \
	VFMADD231PS Z30, Z27, Z14; \
	VMOVUPS     (DX)(SI*1), Z28; \
	VFMADD231PS Z31, Z24, Z3; \
	VFMADD231PS Z31, Z25, Z7; \
	VFMADD231PS Z31, Z26, Z11; \
	VFMADD231PS Z31, Z27, Z15; \
	VMOVUPS     (DI)(SI*1), Z29; \
	VFMADD231PS Z28, Z24, Z16; \
	VFMADD231PS Z28, Z25, Z18; \
	VFMADD231PS Z28, Z26, Z20; \
	VFMADD231PS Z28, Z27, Z22; \
	VFMADD231PS Z29, Z24, Z17; \
	VFMADD231PS Z29, Z25, Z19; \
	VFMADD231PS Z29, Z26, Z21; \
	VFMADD231PS Z29, Z27, Z23

// MM512STEP multiplies 16 columns of the tile.
#define MM512STEP \
	VMOVUPS (R8)(SI*1), Z24; \
	VMOVUPS (R9)(SI*1), Z25; \
	VMOVUPS (R10)(SI*1), Z26; \
	VMOVUPS (R11)(SI*1), Z27; \
	VMOVUPS (R12)(SI*1), Z28; \
	VMOVUPS (R13)(SI*1), Z29; \
	MM512FMAS

// MM512MASKSTEP multiplies the last k&15 columns, every load zero-masked by
// K1 so that nothing past the end of a row is read (or faults).
#define MM512MASKSTEP \
	VMOVUPS.Z   (R8)(SI*1), K1, Z24; \
	VMOVUPS.Z   (R9)(SI*1), K1, Z25; \
	VMOVUPS.Z   (R10)(SI*1), K1, Z26; \
	VMOVUPS.Z   (R11)(SI*1), K1, Z27; \
	VMOVUPS.Z   (R12)(SI*1), K1, Z28; \
	VMOVUPS.Z   (R13)(SI*1), K1, Z29; \
	VFMADD231PS Z28, Z24, Z0; \
	VFMADD231PS Z28, Z25, Z4; \
	VFMADD231PS Z28, Z26, Z8; \
	VFMADD231PS Z28, Z27, Z12; \
	VMOVUPS.Z   (R14)(SI*1), K1, Z30; \
	VFMADD231PS Z29, Z24, Z1; \
	VFMADD231PS Z29, Z25, Z5; \
	VFMADD231PS Z29, Z26, Z9; \
	VFMADD231PS Z29, Z27, Z13; \
	VMOVUPS.Z   (BX)(SI*1), K1, Z31; \
	VFMADD231PS Z30, Z24, Z2; \
	VFMADD231PS Z30, Z25, Z6; \
	VFMADD231PS Z30, Z26, Z10; \
	VFMADD231PS Z30, Z27, Z14; \
	VMOVUPS.Z   (DX)(SI*1), K1, Z28; \
	VFMADD231PS Z31, Z24, Z3; \
	VFMADD231PS Z31, Z25, Z7; \
	VFMADD231PS Z31, Z26, Z11; \
	VFMADD231PS Z31, Z27, Z15; \
	VMOVUPS.Z   (DI)(SI*1), K1, Z29; \
	VFMADD231PS Z28, Z24, Z16; \
	VFMADD231PS Z28, Z25, Z18; \
	VFMADD231PS Z28, Z26, Z20; \
	VFMADD231PS Z28, Z27, Z22; \
	VFMADD231PS Z29, Z24, Z17; \
	VFMADD231PS Z29, Z25, Z19; \
	VFMADD231PS Z29, Z26, Z21; \
	VFMADD231PS Z29, Z27, Z23

// func mmRowsAVX512(x *float32, ldx, tiles int, wp *[6]*float32, k int, out *float32, ldo, acc, pf int)
// For i < tiles, t < 4, r < 6, with token T = 4i+t:
// out[T*ldo+r] (+)= dot(x[T*ldx:][:k], wp[r][:k]), adding to out when acc != 0.
// If pf != 0, the k floats at byte offset pf from each wp[r] are prefetched.
TEXT ·mmRowsAVX512(SB), NOSPLIT, $0-72
	MOVQ  wp+24(FP), AX
	MOVQ  0(AX), R12
	MOVQ  8(AX), R13
	MOVQ  16(AX), R14
	MOVQ  24(AX), BX
	MOVQ  32(AX), DX
	MOVQ  40(AX), DI
	MOVQ  k+32(FP), CX
	MASK16
	SHLQ  $2, ldx+8(FP)          // strides in bytes from here on
	SHLQ  $2, ldo+48(FP)
	MOVQ  x+0(FP), R8
	MOVQ  tiles+16(FP), CX
	TESTQ CX, CX
	JLE   mmr512done

mmr512tile:
	MOVQ ldx+8(FP), R15
	LEAQ (R8)(R15*1), R9
	LEAQ (R9)(R15*1), R10
	LEAQ (R10)(R15*1), R11
	ZERO4Z(Z0, Z1, Z2, Z3)
	ZERO4Z(Z4, Z5, Z6, Z7)
	ZERO4Z(Z8, Z9, Z10, Z11)
	ZERO4Z(Z12, Z13, Z14, Z15)
	ZERO4Z(Z16, Z17, Z18, Z19)
	ZERO4Z(Z20, Z21, Z22, Z23)
	XORQ SI, SI
	MOVQ k+32(FP), AX
	ANDQ $-16, AX
	SHLQ $2, AX
	JZ   mmr512tail

	// The first six tiles each pull one row of the next row group (at
	// wp[i]+pf) into L2, a line per step, so its first tile need not wait.
	MOVQ  tiles+16(FP), R15
	SUBQ  CX, R15                // R15: tile index i
	CMPQ  R15, $6
	JAE   mmr512plain
	CMPQ  pf+64(FP), $0
	JEQ   mmr512plain
	MOVQ  wp+24(FP), SI
	MOVQ  (SI)(R15*8), R15
	ADDQ  pf+64(FP), R15
	XORQ  SI, SI

mmr512pfloop:
	PREFETCHT1 (R15)(SI*1)
	MM512STEP
	ADDQ       $64, SI
	CMPQ       SI, AX
	JB         mmr512pfloop
	JMP        mmr512tail

mmr512plain:
mmr512loop:
	MM512STEP
	ADDQ $64, SI
	CMPQ SI, AX
	JB   mmr512loop

mmr512tail:
	KORTESTW K1, K1
	JZ       mmr512reduce
	MM512MASKSTEP

mmr512reduce:
	// Reduce the 24 accumulators as a tree: each group of four to one ZMM
	// of per-quarter partial sums, then the quarters across groups.
	LANE4(Z0, Z1, Z2, Z3, Z24, Z25, Z26)
	LANE4(Z4, Z5, Z6, Z7, Z24, Z25, Z26)
	LANE4(Z8, Z9, Z10, Z11, Z24, Z25, Z26)
	LANE4(Z12, Z13, Z14, Z15, Z24, Z25, Z26)
	LANE4(Z16, Z17, Z18, Z19, Z24, Z25, Z26)
	LANE4(Z20, Z21, Z22, Z23, Z24, Z25, Z26)
	VSHUFF32X4 $0x44, Z4, Z0, Z24
	VSHUFF32X4 $0xEE, Z4, Z0, Z25
	VADDPS     Z25, Z24, Z24         // groups 0, 1: (q0+q2), (q1+q3) each
	VSHUFF32X4 $0x44, Z12, Z8, Z25
	VSHUFF32X4 $0xEE, Z12, Z8, Z26
	VADDPS     Z26, Z25, Z25         // groups 2, 3
	VSHUFF32X4 $0x88, Z25, Z24, Z26
	VSHUFF32X4 $0xDD, Z25, Z24, Z27
	VADDPS     Z27, Z26, Z0          // quarter t: token t, rows 0-3
	VSHUFF32X4 $0x44, Z20, Z16, Z24
	VSHUFF32X4 $0xEE, Z20, Z16, Z25
	VADDPS     Z25, Z24, Z24         // groups 4, 5
	VSHUFF32X4 $0xB1, Z24, Z24, Z25
	VADDPS     Z25, Z24, Z1          // quarter 0: group 4, quarter 2: group 5
	VEXTRACTF32X4 $1, Z0, X4
	VEXTRACTF32X4 $2, Z0, X8
	VEXTRACTF32X4 $3, Z0, X12
	VEXTRACTF32X4 $2, Z1, X6

	// X0, X4, X8, X12: rows 0-3 of tokens 0-3; X1, X6: rows 4-5 of tokens 0-1, 2-3.
	MOVQ out+40(FP), SI
	MOVQ ldo+48(FP), AX
	LEAQ (SI)(AX*2), R15
	CMPQ acc+56(FP), $0
	JEQ  mmr512store
	VADDPS  (SI), X0, X0
	VADDPS  (SI)(AX*1), X4, X4
	VADDPS  (R15), X8, X8
	VADDPS  (R15)(AX*1), X12, X12
	VMOVSD  16(SI), X2
	VMOVHPS 16(SI)(AX*1), X2, X2
	VADDPS  X2, X1, X1
	VMOVSD  16(R15), X3
	VMOVHPS 16(R15)(AX*1), X3, X3
	VADDPS  X3, X6, X6

mmr512store:
	VMOVUPS X0, (SI)
	VMOVUPS X4, (SI)(AX*1)
	VMOVUPS X8, (R15)
	VMOVUPS X12, (R15)(AX*1)
	VMOVLPS X1, 16(SI)
	VMOVHPS X1, 16(SI)(AX*1)
	VMOVLPS X6, 16(R15)
	VMOVHPS X6, 16(R15)(AX*1)
	LEAQ    (R15)(AX*2), SI
	MOVQ    SI, out+40(FP)
	MOVQ    ldx+8(FP), R15
	LEAQ    (R11)(R15*1), R8
	DECQ    CX
	JNZ     mmr512tile

mmr512done:
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
	VADDPS       Y1, Y0, Y0
	VHADDPS      Y0, Y0, Y0
	VHADDPS      Y0, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDSS       X1, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+48(FP)
	RET

// func matVec4AVX2(out, w, x *float32, groups, cols int)
// Same contract as matVec4AVX512.
TEXT ·matVec4AVX2(SB), NOSPLIT, $0-40
	MOVQ out+0(FP), DI
	MOVQ w+8(FP), R8
	MOVQ x+16(FP), SI
	MOVQ groups+24(FP), BX
	MOVQ cols+32(FP), CX
	MOVQ CX, R12
	SHLQ $2, R12
	MOVQ CX, R13
	ANDQ $-16, R13
	SHLQ $2, R13
	MOVQ CX, DX
	ANDQ $-8, DX
	SHLQ $2, DX
	MASK8

mv2group:
	LEAQ   (R8)(R12*1), R9
	LEAQ   (R9)(R12*1), R10
	LEAQ   (R10)(R12*1), R11
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
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
	VADDPS  Y4, Y0, Y0
	VADDPS  Y5, Y1, Y1
	VADDPS  Y6, Y2, Y2
	VADDPS  Y7, Y3, Y3
	HSUM4Y(Y0, Y1, Y2, Y3, X0, X1)
	VMOVUPS X0, (DI)
	ADDQ    $16, DI
	LEAQ    (R11)(R12*1), R8
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
