//go:build amd64 && !purego

#include "textflag.h"

// The row kernels of the int formats (quant_int_amd64.go). Each computes one
// weight row's product with one quantized input row, block by block in the
// order qDotInt adds them: the 32 integer products of a block are summed
// exactly in eight int32 lanes (VPMADDUBSW pairs unsigned by signed bytes
// into int16, which cannot saturate: |w|*|x| <= 128*127, and VPMADDWD by
// ones sums the pairs), the lanes are reduced to one int32, and the scalar
// float steps are qDotInt's (float32(is)*(s*d_x), then m*c_x for an
// asymmetric group), each rounded as Go rounds it. So the result has the
// bits of qDotInt.
//
// Registers: SI weights, DI inputs, DX input scales d_x, R11 c_x; X11 the
// sum, X12 the scale s, X9 an asymmetric group's m; Y13 bytes of 8, Y14
// int16 ones, Y15 bytes of 0x0f.

// BCAST32(imm, x, y) broadcasts the 32-bit constant imm to every lane of y
// (x is its XMM view); AX is clobbered.
#define BCAST32(imm, x, y) \
	MOVL         imm, AX; \
	VMOVD        AX, x; \
	VPBROADCASTD x, y

// ISUM reduces the eight int32 lanes of Y4 to their sum, converted to float,
// in X4 lane 0 (X6 is clobbered).
#define ISUM \
	VEXTRACTI128 $1, Y4, X6; \
	VPADDD       X6, X4, X4; \
	VPSHUFD      $0x4e, X4, X6; \
	VPADDD       X6, X4, X4; \
	VPSHUFD      $0xb1, X4, X6; \
	VPADDD       X6, X4, X4; \
	VCVTDQ2PS    X4, X4

// SIGNED_DOT leaves in Y4 the products of the signed weight bytes in Y5 with
// the inputs at (DI), pairs summed into int32 lanes: VPSIGNB moves the
// weights' signs onto the inputs, so the weights' magnitudes (up to 128) are
// the unsigned operand.
#define SIGNED_DOT \
	VMOVDQU    (DI), Y0; \
	VPSIGNB    Y5, Y0, Y3; \
	VPABSB     Y5, Y2; \
	VPMADDUBSW Y3, Y2, Y4; \
	VPMADDWD   Y14, Y4, Y4

// ADD_BLOCK adds float32(is)*(s*d_x) to the sum, is being X4 lane 0.
#define ADD_BLOCK \
	VMULSS (DX), X12, X7; \
	VMULSS X7, X4, X4; \
	VADDSS X4, X11, X11

// NIBBLES loads the 16 bytes at (BX) into Y5 as 32 bytes: the low nibbles
// (weights 0-15) in the low half, the high nibbles (16-31) in the high half.
#define NIBBLES \
	VMOVDQU     (BX), X5; \
	VPSRLW      $4, X5, X6; \
	VPAND       X15, X5, X5; \
	VPAND       X15, X6, X6; \
	VINSERTI128 $1, X6, Y5, Y5

// func dotI8ChAVX2(w *byte, q *int8, d *float32, s float32, nb int) float32
TEXT ·dotI8ChAVX2(SB), NOSPLIT, $0-44
	MOVQ   w+0(FP), SI
	MOVQ   q+8(FP), DI
	MOVQ   d+16(FP), DX
	VMOVSS s+24(FP), X12
	MOVQ   nb+32(FP), CX
	BCAST32($0x00010001, X14, Y14)
	VXORPS X11, X11, X11
	TESTQ  CX, CX
	JZ     i8done

i8loop:
	VMOVDQU (SI), Y5
	SIGNED_DOT
	ISUM
	ADD_BLOCK
	ADDQ    $32, SI
	ADDQ    $32, DI
	ADDQ    $4, DX
	DECQ    CX
	JNZ     i8loop

i8done:
	VZEROUPPER
	VMOVSS X11, ret+40(FP)
	RET

// func dotI4SymAVX2(w *byte, q *int8, d *float32, groups, per, gb int) float32
TEXT ·dotI4SymAVX2(SB), NOSPLIT, $0-52
	MOVQ   w+0(FP), SI
	MOVQ   q+8(FP), DI
	MOVQ   d+16(FP), DX
	MOVQ   groups+24(FP), R8
	MOVQ   per+32(FP), R9
	MOVQ   gb+40(FP), R10
	BCAST32($0x08080808, X13, Y13)
	BCAST32($0x00010001, X14, Y14)
	BCAST32($0x0f0f0f0f, X15, Y15)
	VXORPS X11, X11, X11
	TESTQ  R8, R8
	JZ     symdone

symgroup:
	MOVWLZX   (SI), AX
	VMOVD     AX, X12
	VCVTPH2PS X12, X12
	LEAQ      2(SI), BX
	MOVQ      R9, CX

symblock:
	NIBBLES
	VPSUBB Y13, Y5, Y5 // u-8
	SIGNED_DOT
	ISUM
	ADD_BLOCK
	ADDQ   $16, BX
	ADDQ   $32, DI
	ADDQ   $4, DX
	DECQ   CX
	JNZ    symblock
	ADDQ   R10, SI
	DECQ   R8
	JNZ    symgroup

symdone:
	VZEROUPPER
	VMOVSS X11, ret+48(FP)
	RET

// func dotI4AsymAVX2(w *byte, q *int8, d, c *float32, groups, per, gb int) float32
TEXT ·dotI4AsymAVX2(SB), NOSPLIT, $0-60
	MOVQ   w+0(FP), SI
	MOVQ   q+8(FP), DI
	MOVQ   d+16(FP), DX
	MOVQ   c+24(FP), R11
	MOVQ   groups+32(FP), R8
	MOVQ   per+40(FP), R9
	MOVQ   gb+48(FP), R10
	BCAST32($0x00010001, X14, Y14)
	BCAST32($0x0f0f0f0f, X15, Y15)
	VXORPS X11, X11, X11
	TESTQ  R8, R8
	JZ     asymdone

asymgroup:
	MOVWLZX    (SI), AX
	VMOVD      AX, X12
	VCVTPH2PS  X12, X12
	MOVBLZX    2(SI), AX
	NEGL       AX
	VCVTSI2SSL AX, X9, X9
	VMULSS     X12, X9, X9 // m = -z*s, exact
	LEAQ       3(SI), BX
	MOVQ       R9, CX

asymblock:
	NIBBLES
	VMOVDQU    (DI), Y0
	VPMADDUBSW Y0, Y5, Y4 // u*x: u unsigned, x signed
	VPMADDWD   Y14, Y4, Y4
	ISUM
	ADD_BLOCK
	VMULSS     (R11), X9, X8
	VADDSS     X8, X11, X11
	ADDQ       $16, BX
	ADDQ       $32, DI
	ADDQ       $4, DX
	ADDQ       $4, R11
	DECQ       CX
	JNZ        asymblock
	ADDQ       R10, SI
	DECQ       R8
	JNZ        asymgroup

asymdone:
	VZEROUPPER
	VMOVSS X11, ret+56(FP)
	RET

// The four-row kernels take rows at SI, R8 = SI+rb, R9 = SI+2rb and
// R13 = SI+3rb together: the input block is loaded once, the four rows'
// integer sums are reduced side by side (VPHADDD; integer sums are exact in
// any order), and the float steps run in four lanes, each lane doing its
// row's scalar steps, so every row gets the bits of qDotInt. X12 holds the
// four scales, X9 (asymmetric) the four m = −z*s, X11 the four sums.

// ROWPTRS sets R8, R9 and R13 from SI and the row stride R12.
#define ROWPTRS \
	LEAQ (SI)(R12*1), R8; \
	LEAQ (SI)(R12*2), R9; \
	LEAQ (R9)(R12*1), R13

// SCALES4(off) loads the fp16 scales at off(SI), off(R8), off(R9), off(R13)
// into the four lanes of X12, as floats.
#define SCALES4(off) \
	MOVWLZX   off(SI), AX; \
	VMOVD     AX, X12; \
	MOVWLZX   off(R8), AX; \
	VPINSRW   $1, AX, X12, X12; \
	MOVWLZX   off(R9), AX; \
	VPINSRW   $2, AX, X12, X12; \
	MOVWLZX   off(R13), AX; \
	VPINSRW   $3, AX, X12, X12; \
	VCVTPH2PS X12, X12

// NIB4(off, y, x) loads the 16 nibble bytes at off into y as NIBBLES does (X10 is clobbered).
#define NIB4(off, y, x) \
	VMOVDQU     off, x; \
	VPSRLW      $4, x, X10; \
	VPAND       X15, x, x; \
	VPAND       X15, X10, X10; \
	VINSERTI128 $1, X10, y, y

// SDOT4 leaves in Y5-Y8 the pair sums of the signed weights Y1-Y4 times the
// inputs Y0 (Y1-Y4 are clobbered).
#define SDOT4 \
	VPSIGNB    Y1, Y0, Y5; \
	VPABSB     Y1, Y1; \
	VPMADDUBSW Y5, Y1, Y5; \
	VPMADDWD   Y14, Y5, Y5; \
	VPSIGNB    Y2, Y0, Y6; \
	VPABSB     Y2, Y2; \
	VPMADDUBSW Y6, Y2, Y6; \
	VPMADDWD   Y14, Y6, Y6; \
	VPSIGNB    Y3, Y0, Y7; \
	VPABSB     Y3, Y3; \
	VPMADDUBSW Y7, Y3, Y7; \
	VPMADDWD   Y14, Y7, Y7; \
	VPSIGNB    Y4, Y0, Y8; \
	VPABSB     Y4, Y4; \
	VPMADDUBSW Y8, Y4, Y8; \
	VPMADDWD   Y14, Y8, Y8

// UDOT4 is SDOT4 for unsigned weights (asymmetric nibbles).
#define UDOT4 \
	VPMADDUBSW Y0, Y1, Y5; \
	VPMADDWD   Y14, Y5, Y5; \
	VPMADDUBSW Y0, Y2, Y6; \
	VPMADDWD   Y14, Y6, Y6; \
	VPMADDUBSW Y0, Y3, Y7; \
	VPMADDWD   Y14, Y7, Y7; \
	VPMADDUBSW Y0, Y4, Y8; \
	VPMADDWD   Y14, Y8, Y8

// ADD4 reduces Y5-Y8 to the four rows' integer sums and adds
// float32(is)*(s*d_x) to each row's sum.
#define ADD4 \
	VPHADDD      Y6, Y5, Y5; \
	VPHADDD      Y8, Y7, Y7; \
	VPHADDD      Y7, Y5, Y5; \
	VEXTRACTI128 $1, Y5, X6; \
	VPADDD       X6, X5, X5; \
	VCVTDQ2PS    X5, X5; \
	VBROADCASTSS (DX), X6; \
	VMULPS       X6, X12, X6; \
	VMULPS       X6, X5, X5; \
	VADDPS       X5, X11, X11

// func dotI8Ch4AVX2(w *byte, rb int, q *int8, d *float32, nb int, out *[4]float32)
TEXT ·dotI8Ch4AVX2(SB), NOSPLIT, $0-48
	MOVQ   w+0(FP), SI
	MOVQ   rb+8(FP), R12
	MOVQ   q+16(FP), DI
	MOVQ   d+24(FP), DX
	MOVQ   nb+32(FP), CX
	BCAST32($0x00010001, X14, Y14)
	VXORPS X11, X11, X11
	ROWPTRS
	SCALES4(0)
	XORQ   R10, R10
	TESTQ  CX, CX
	JZ     i84done

i84loop:
	VMOVDQU (DI), Y0
	VMOVDQU 2(SI)(R10*1), Y1
	VMOVDQU 2(R8)(R10*1), Y2
	VMOVDQU 2(R9)(R10*1), Y3
	VMOVDQU 2(R13)(R10*1), Y4
	SDOT4
	ADD4
	ADDQ    $32, R10
	ADDQ    $32, DI
	ADDQ    $4, DX
	DECQ    CX
	JNZ     i84loop

i84done:
	MOVQ    out+40(FP), AX
	VMOVUPS X11, (AX)
	VZEROUPPER
	RET

// func dotI4Sym4AVX2(w *byte, rb int, q *int8, d *float32, groups, per, gb int, out *[4]float32)
TEXT ·dotI4Sym4AVX2(SB), NOSPLIT, $0-64
	MOVQ   w+0(FP), SI
	MOVQ   rb+8(FP), R12
	MOVQ   q+16(FP), DI
	MOVQ   d+24(FP), DX
	MOVQ   groups+32(FP), R14
	MOVQ   gb+48(FP), BX
	BCAST32($0x08080808, X13, Y13)
	BCAST32($0x00010001, X14, Y14)
	BCAST32($0x0f0f0f0f, X15, Y15)
	VXORPS X11, X11, X11
	ROWPTRS
	TESTQ  R14, R14
	JZ     sym4done

sym4group:
	SCALES4(0)
	XORQ R10, R10
	MOVQ per+40(FP), CX

sym4block:
	VMOVDQU (DI), Y0
	NIB4(2(SI)(R10*1), Y1, X1)
	NIB4(2(R8)(R10*1), Y2, X2)
	NIB4(2(R9)(R10*1), Y3, X3)
	NIB4(2(R13)(R10*1), Y4, X4)
	VPSUBB  Y13, Y1, Y1
	VPSUBB  Y13, Y2, Y2
	VPSUBB  Y13, Y3, Y3
	VPSUBB  Y13, Y4, Y4
	SDOT4
	ADD4
	ADDQ    $16, R10
	ADDQ    $32, DI
	ADDQ    $4, DX
	DECQ    CX
	JNZ     sym4block
	ADDQ    BX, SI
	ADDQ    BX, R8
	ADDQ    BX, R9
	ADDQ    BX, R13
	DECQ    R14
	JNZ     sym4group

sym4done:
	MOVQ    out+56(FP), AX
	VMOVUPS X11, (AX)
	VZEROUPPER
	RET

// func dotI4Asym4AVX2(w *byte, rb int, q *int8, d, c *float32, groups, per, gb int, out *[4]float32)
TEXT ·dotI4Asym4AVX2(SB), NOSPLIT, $0-72
	MOVQ   w+0(FP), SI
	MOVQ   rb+8(FP), R12
	MOVQ   q+16(FP), DI
	MOVQ   d+24(FP), DX
	MOVQ   c+32(FP), R11
	MOVQ   groups+40(FP), R14
	MOVQ   gb+56(FP), BX
	BCAST32($0x00010001, X14, Y14)
	BCAST32($0x0f0f0f0f, X15, Y15)
	VXORPS X11, X11, X11
	ROWPTRS
	TESTQ  R14, R14
	JZ     asym4done

asym4group:
	SCALES4(0)
	MOVBLZX   2(SI), AX
	NEGL      AX
	VMOVD     AX, X9
	MOVBLZX   2(R8), AX
	NEGL      AX
	VPINSRD   $1, AX, X9, X9
	MOVBLZX   2(R9), AX
	NEGL      AX
	VPINSRD   $2, AX, X9, X9
	MOVBLZX   2(R13), AX
	NEGL      AX
	VPINSRD   $3, AX, X9, X9
	VCVTDQ2PS X9, X9
	VMULPS    X12, X9, X9 // m = -z*s, exact
	XORQ      R10, R10
	MOVQ      per+48(FP), CX

asym4block:
	VMOVDQU      (DI), Y0
	NIB4(3(SI)(R10*1), Y1, X1)
	NIB4(3(R8)(R10*1), Y2, X2)
	NIB4(3(R9)(R10*1), Y3, X3)
	NIB4(3(R13)(R10*1), Y4, X4)
	UDOT4
	ADD4
	VBROADCASTSS (R11), X6
	VMULPS       X6, X9, X6
	VADDPS       X6, X11, X11
	ADDQ         $16, R10
	ADDQ         $32, DI
	ADDQ         $4, DX
	ADDQ         $4, R11
	DECQ         CX
	JNZ          asym4block
	ADDQ         BX, SI
	ADDQ         BX, R8
	ADDQ         BX, R9
	ADDQ         BX, R13
	DECQ         R14
	JNZ          asym4group

asym4done:
	MOVQ    out+64(FP), AX
	VMOVUPS X11, (AX)
	VZEROUPPER
	RET
