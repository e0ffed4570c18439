//go:build amd64 && !purego

#include "textflag.h"
#include "go_asm.h"

// The kernels of the int formats (quant_int_amd64.go), in four parts: the
// AVX2 row kernels (one or four rows, one input row), the AVX-512 VNNI
// kernels (eight rows, every input row), the AVX2 eight-row kernels for
// int4, and the VNNI lane kernels (four rows, every input row) for I4G128,
// each part with its own header comment. All but the lane kernels add
// their block sums in qDotIntSeq's order; the lane kernels in qDotI4Lanes's.
//
// The row kernels each compute one weight row's product with one quantized
// input row, block by block in the
// order qDotIntSeq adds them: the 32 integer products of a block are summed
// exactly in eight int32 lanes (VPMADDUBSW pairs unsigned by signed bytes
// into int16, which cannot saturate: |w|*|x| <= 128*127, and VPMADDWD by
// ones sums the pairs), the lanes are reduced to one int32, and the scalar
// float steps are qDotIntSeq's (float32(is)*(s*d_x), then m*c_x for an
// asymmetric group), each rounded as Go rounds it. So the result has the
// bits of qDotIntSeq.
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
// row's scalar steps, so every row gets the bits of qDotIntSeq. X12 holds the
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

// ---------------------------------------------------------------- VNNI

// The VNNI kernels (qmmI8ChVNNI, qmmI4SymVNNI, qmmI4AsymVNNI; the int4
// ones now only for I4G64, I4G64Asym and I4G32Asym in rows that are not
// whole chunks of four blocks) take eight weight rows at a time, rows 0-3 at SI, SI+R9, SI+2*R9, SI+R10 and rows 4-7
// at R11 = SI+4*R9 on (R9 = rb, R10 = 3*rb), and run every input row past
// them, group by group and block by block as qDotIntSeq does. For one block:
//
//   int:   VPDPBUSD multiplies unsigned weight bytes by the signed inputs
//          and sums four products per int32 lane. I8Ch bytes are flipped
//          to u = w+128, one register per row; int4 nibbles are used as
//          they are, two rows per register (one per 128-bit half, low and
//          high nibbles meeting inputs 0-15 and 16-31 in the same lanes).
//          So the lanes hold Σ u*x exactly. VPHADDD (and, for I8Ch, two
//          128-bit permutes) reduce the eight rows' lanes to one int32 per
//          row: sums of integers, exact in any order. A symmetric row then
//          subtracts 8*Σx and an I8Ch row 128*Σx (Σx from Q8Acts.s),
//          leaving qDotIntSeq's block sum is.
//   float: float32(is) * (s*d_x) is added to the row's lane of the sum
//          (Y26), then, for an asymmetric group, m*c_x: qDotIntSeq's steps,
//          each rounded to float32, in its order, for eight rows side by
//          side.
//
// At each group the eight rows' header dwords (scale, and an asymmetric
// group's zero point in the third byte) are fetched into their lanes and
// the scales converted exactly with VCVTPH2PS. The int4 lanes hold the
// rows in the order [0 2 4 6 1 3 5 7], which the store undoes. So every
// row gets qDotIntSeq's bits, whichever lane it falls in. R15 runs through the
// rows two groups of eight ahead, prefetching them.
//
// Registers: R12 the qiArgs, DI the inputs, DX d_x, BX Σx, R8 c_x, CX
// blocks left in the group, R13 groups left, R14 input rows left; Y0-Y7 the
// rows' int32 lanes (VPHADDD takes only Y0-Y15), Y8-Y13 temporaries, Y16-Y23
// the rows' weights, Y24 the inputs, Y25 the weight mask or flip, Y26 the
// eight sums, Y27 the scales, Y28 the asymmetric m = -z*s, Y29 the gather
// offsets r*rb (I8Ch), Y30 the inputs 16-31 (int4), Y31 the affine matrix
// of a right shift by 4 (int4); an asymmetric group's header takes Y14
// (0xff dwords) and Y15 (float sign bits).

DATA qiLanes<>+0(SB)/4, $0
DATA qiLanes<>+4(SB)/4, $1
DATA qiLanes<>+8(SB)/4, $2
DATA qiLanes<>+12(SB)/4, $3
DATA qiLanes<>+16(SB)/4, $4
DATA qiLanes<>+20(SB)/4, $5
DATA qiLanes<>+24(SB)/4, $6
DATA qiLanes<>+28(SB)/4, $7
GLOBL qiLanes<>(SB), RODATA|NOPTR, $32

// qiPairLanes is the order of the rows in the int4 kernels' lanes, and
// qiUnpair the lane of each row (its inverse).
DATA qiPairLanes<>+0(SB)/4, $0
DATA qiPairLanes<>+4(SB)/4, $2
DATA qiPairLanes<>+8(SB)/4, $4
DATA qiPairLanes<>+12(SB)/4, $6
DATA qiPairLanes<>+16(SB)/4, $1
DATA qiPairLanes<>+20(SB)/4, $3
DATA qiPairLanes<>+24(SB)/4, $5
DATA qiPairLanes<>+28(SB)/4, $7
GLOBL qiPairLanes<>(SB), RODATA|NOPTR, $32

DATA qiUnpair<>+0(SB)/4, $0
DATA qiUnpair<>+4(SB)/4, $4
DATA qiUnpair<>+8(SB)/4, $1
DATA qiUnpair<>+12(SB)/4, $5
DATA qiUnpair<>+16(SB)/4, $2
DATA qiUnpair<>+20(SB)/4, $6
DATA qiUnpair<>+24(SB)/4, $3
DATA qiUnpair<>+28(SB)/4, $7
GLOBL qiUnpair<>(SB), RODATA|NOPTR, $32

// VSETUP(lanes) loads the qiArgs into R12, sets R9 and R10, the gather
// offsets in Y29 (rb times the row of each lane), and the row-group cursors.
#define VSETUP(lanes) SETUP(lanes, X12, Y12, Y29)

// SETUP(lanes, xt, yt, off) is VSETUP with the offsets in off, through the
// temporaries xt and yt (its XMM and YMM views of one register).
#define SETUP(lanes, xt, yt, off) \
	MOVQ         a+0(FP), R12; \
	MOVQ         qiArgs_rb(R12), R9; \
	LEAQ         (R9)(R9*2), R10; \
	MOVQ         R9, xt; \
	VPBROADCASTD xt, yt; \
	VPMULLD      lanes<>(SB), yt, off; \
	MOVQ         qiArgs_w(R12), AX; \
	MOVQ         AX, qiArgs_gw(R12); \
	MOVQ         qiArgs_out(R12), AX; \
	MOVQ         AX, qiArgs_gout(R12); \
	MOVQ         qiArgs_n8(R12), AX; \
	MOVQ         AX, qiArgs_gn(R12)

// VROWGROUP starts a group of eight rows at its first input row.
#define VROWGROUP \
	MOVQ qiArgs_gout(R12), AX; \
	MOVQ AX, qiArgs_tout(R12); \
	MOVQ qiArgs_q(R12), DI; \
	MOVQ qiArgs_d(R12), DX; \
	MOVQ qiArgs_s(R12), BX; \
	MOVQ qiArgs_c(R12), R8; \
	MOVQ qiArgs_n(R12), R14

// VTOKEN starts an input row at the rows' first group.
#define VTOKEN \
	MOVQ   qiArgs_gw(R12), SI; \
	LEAQ   (SI)(R9*4), R11; \
	MOVQ   R9, AX; \
	SHLQ   $4, AX; \
	LEAQ   (SI)(AX*1), R15; \
	VPXORD Y26, Y26, Y26; \
	MOVQ   qiArgs_groups(R12), R13

// VPREFETCH(lines) fetches the next lines cache lines of the rows two
// groups ahead (R15 runs through them from their start, at least as many
// bytes a block as the eight rows have) into L1: the hardware prefetcher
// alone does not keep up with eight streams of rows beyond L2.
#define VPREFETCH3 \
	PREFETCHT0 (R15); \
	PREFETCHT0 64(R15); \
	PREFETCHT0 128(R15); \
	ADDQ       $192, R15

#define VPREFETCH5 \
	PREFETCHT0 (R15); \
	PREFETCHT0 64(R15); \
	PREFETCHT0 128(R15); \
	PREFETCHT0 192(R15); \
	PREFETCHT0 256(R15); \
	ADDQ       $320, R15

// VPAIRSCALES is VSCALES for the int4 kernels, whose lanes hold the rows in
// qiPairLanes order: a broadcast of row 0's header dword, then merging
// broadcasts (masks K1-K7, set by VPAIRMASKS) of the others' into their
// lanes. Eight loads cost less than a gather, which matters for I4G32,
// whose groups are single blocks.
#define VPAIRSCALES \
	VPBROADCASTD (SI), Y12; \
	VPBROADCASTD (SI)(R9*2), K1, Y12; \
	VPBROADCASTD (R11), K2, Y12; \
	VPBROADCASTD (R11)(R9*2), K3, Y12; \
	VPBROADCASTD (SI)(R9*1), K4, Y12; \
	VPBROADCASTD (SI)(R10*1), K5, Y12; \
	VPBROADCASTD (R11)(R9*1), K6, Y12; \
	VPBROADCASTD (R11)(R10*1), K7, Y12; \
	VPMOVDW      Y12, X13; \
	VCVTPH2PS    X13, Y27

// VPAIRMASKS sets K1-K7 to the lanes of rows 2, 4, 6, 1, 3, 5 and 7.
#define VPAIRMASKS \
	MOVL  $0x02, AX; \
	KMOVW AX, K1; \
	MOVL  $0x04, AX; \
	KMOVW AX, K2; \
	MOVL  $0x08, AX; \
	KMOVW AX, K3; \
	MOVL  $0x10, AX; \
	KMOVW AX, K4; \
	MOVL  $0x20, AX; \
	KMOVW AX, K5; \
	MOVL  $0x40, AX; \
	KMOVW AX, K6; \
	MOVL  $0x80, AX; \
	KMOVW AX, K7

// VSCALES gathers the dwords at the eight rows' group headers into Y12 and
// converts their low words, the scales, into Y27.
#define VSCALES \
	KXNORW     K1, K1, K1; \
	VPXORD     Y12, Y12, Y12; \
	VPGATHERDD (SI)(Y29*1), K1, Y12; \
	VPMOVDW    Y12, X13; \
	VCVTPH2PS  X13, Y27

// VENDTOKEN(order) stores the eight sums of the input row, put in row
// order by order, and moves d_x, Σx and c_x over the padding to the next
// input row (DI is there already).
#define VENDTOKEN(order) \
	MOVQ    qiArgs_tout(R12), AX; \
	order; \
	VMOVUPS Y26, (AX); \
	ADDQ    qiArgs_ldo(R12), AX; \
	MOVQ    AX, qiArgs_tout(R12); \
	MOVQ    qiArgs_dpad(R12), AX; \
	ADDQ    AX, DX; \
	ADDQ    AX, BX; \
	ADDQ    AX, R8

// VENDROWGROUP moves on to the next eight rows and their outputs.
#define VENDROWGROUP \
	MOVQ R9, AX; \
	SHLQ $3, AX; \
	ADDQ AX, qiArgs_gw(R12); \
	ADDQ $32, qiArgs_gout(R12)

#define VZERO8 \
	VPXOR Y0, Y0, Y0; \
	VPXOR Y1, Y1, Y1; \
	VPXOR Y2, Y2, Y2; \
	VPXOR Y3, Y3, Y3; \
	VPXOR Y4, Y4, Y4; \
	VPXOR Y5, Y5, Y5; \
	VPXOR Y6, Y6, Y6; \
	VPXOR Y7, Y7, Y7

// I8ROW(addr, wr, sr) adds to sr the products of the 32 I8Ch weights at
// addr, flipped to w+128, with the inputs.
#define I8ROW(addr, wr, sr) \
	VPXORD   addr, Y25, wr; \
	VPDPBUSD Y24, wr, sr

// I4PAIR(a, b, wl, wh, xl, sr) adds to sr the products of two rows' 32
// nibbles at a and b with the inputs: the rows' 16 bytes go to the low and
// high halves of wl (xl is its XMM view), their low nibbles (weights 0-15)
// stay in wl and their high nibbles (16-31) go to wh, shifted down by a
// GF(2) affine map (one instruction for a shift and a mask), and meet the
// inputs 0-15 (Y24) and 16-31 (Y30) in both halves. So each half of sr
// holds four lanes of one row's sums, and no lane mixes rows.
#define I4PAIR(a, b, wl, wh, xl, sr) \
	VMOVDQU64    a, xl; \
	VINSERTI32X4   $1, b, wl, wl; \
	VGF2P8AFFINEQB $0, Y31, wl, wh; \
	VPANDD         Y25, wl, wl; \
	VPDPBUSD     Y24, wl, sr; \
	VPDPBUSD     Y30, wh, sr

#define I8ROWS \
	I8ROW((SI), Y16, Y0); \
	I8ROW((SI)(R9*1), Y17, Y1); \
	I8ROW((SI)(R9*2), Y18, Y2); \
	I8ROW((SI)(R10*1), Y19, Y3); \
	I8ROW((R11), Y20, Y4); \
	I8ROW((R11)(R9*1), Y21, Y5); \
	I8ROW((R11)(R9*2), Y22, Y6); \
	I8ROW((R11)(R10*1), Y23, Y7)

// I4ROWS leaves rows 0 and 1 in Y0, 2 and 3 in Y1, 4 and 5 in Y2, 6 and 7 in Y3.
#define I4ROWS \
	I4PAIR((SI), (SI)(R9*1), Y16, Y17, X16, Y0); \
	I4PAIR((SI)(R9*2), (SI)(R10*1), Y18, Y19, X18, Y1); \
	I4PAIR((R11), (R11)(R9*1), Y20, Y21, X20, Y2); \
	I4PAIR((R11)(R9*2), (R11)(R10*1), Y22, Y23, X22, Y3)

// I4REDUCE reduces the lanes of I4ROWS's Y0-Y3 to one int32 per row in Y8,
// rows in qiPairLanes order: [0 2 4 6 | 1 3 5 7].
#define I4REDUCE \
	VPHADDD Y1, Y0, Y8; \
	VPHADDD Y3, Y2, Y9; \
	VPHADDD Y9, Y8, Y8

#define VZERO4 \
	VPXOR Y0, Y0, Y0; \
	VPXOR Y1, Y1, Y1; \
	VPXOR Y2, Y2, Y2; \
	VPXOR Y3, Y3, Y3

// VI4INPUTS loads the block's inputs 0-15 into both halves of Y24 and
// 16-31 into both halves of Y30.
#define VI4INPUTS \
	VBROADCASTI32X4 (DI), Y24; \
	VBROADCASTI32X4 16(DI), Y30

// UNPAIR puts the sums of the int4 kernels back in row order.
#define UNPAIR \
	VMOVDQU64 qiUnpair<>(SB), Y12; \
	VPERMPS   Y26, Y12, Y26

// VREDUCE reduces the lanes of Y0-Y7 (I8ROWS) to one int32 per row in Y8:
// the horizontal adds leave rows 0-3 in Y8 and rows 4-7 in Y10, each with
// the sums of lanes 0-3 in its low half and of lanes 4-7 in its high half,
// which the permutes line up to be added.
#define VREDUCE \
	VPHADDD    Y1, Y0, Y8; \
	VPHADDD    Y3, Y2, Y9; \
	VPHADDD    Y5, Y4, Y10; \
	VPHADDD    Y7, Y6, Y11; \
	VPHADDD    Y9, Y8, Y8; \
	VPHADDD    Y11, Y10, Y10; \
	VPERM2I128 $0x20, Y10, Y8, Y9; \
	VPERM2I128 $0x31, Y10, Y8, Y8; \
	VPADDD     Y9, Y8, Y8

#define NONE

// VOFFSET(sh) subtracts (1<<sh)*Σx from the eight sums in Y8.
#define VOFFSET(sh) \
	VPBROADCASTD (BX), Y9; \
	VPSLLD       $sh, Y9, Y9; \
	VPSUBD       Y9, Y8, Y8

// VFSTEP adds float32(is)*(s*d_x) to the eight sums.
#define VFSTEP \
	VCVTDQ2PS       Y8, Y8; \
	VMULPS.BCST     (DX), Y27, Y9; \
	VMULPS          Y9, Y8, Y8; \
	VADDPS          Y8, Y26, Y26

// VNEXT moves the inputs on by a block and the weights by bytes.
#define VNEXT(bytes) \
	ADDQ $bytes, SI; \
	ADDQ $bytes, R11; \
	ADDQ $32, DI; \
	ADDQ $4, DX; \
	ADDQ $4, BX; \
	ADDQ $4, R8

// func qmmI8ChVNNI(a *qiArgs)
TEXT ·qmmI8ChVNNI(SB), NOSPLIT, $0-8
	VSETUP(qiLanes)
	BCAST32($0x80808080, X12, Y12)
	VMOVDQA64 Y12, Y25

v8rowgroup:
	VROWGROUP

v8token:
	VTOKEN
	VSCALES
	ADDQ $2, SI
	ADDQ $2, R11
	MOVQ qiArgs_per(R12), CX

v8block:
	VMOVDQU64 (DI), Y24
	VPREFETCH5
	VZERO8
	I8ROWS
	VREDUCE
	VOFFSET(7)
	VFSTEP
	VNEXT(32)
	DECQ    CX
	JNZ     v8block
	VENDTOKEN(NONE)
	DECQ    R14
	JNZ     v8token
	VENDROWGROUP
	DECQ    qiArgs_gn(R12)
	JNZ     v8rowgroup
	VZEROUPPER
	RET

// VI4CONSTS sets Y25 to 0x0f bytes and Y31 to the GF(2) affine matrix
// that shifts every byte right by 4.
#define VI4CONSTS \
	BCAST32($0x0f0f0f0f, X12, Y12); \
	VMOVDQA64 Y12, Y25; \
	MOVQ      $0x1020408000000000, AX; \
	MOVQ      AX, X12; \
	VPBROADCASTQ X12, Y12; \
	VMOVDQA64 Y12, Y31

// func qmmI4SymVNNI(a *qiArgs)
TEXT ·qmmI4SymVNNI(SB), NOSPLIT, $0-8
	VSETUP(qiPairLanes)
	VI4CONSTS
	VPAIRMASKS

vsrowgroup:
	VROWGROUP

vstoken:
	VTOKEN

vsgroup:
	VPAIRSCALES
	ADDQ $2, SI
	ADDQ $2, R11
	MOVQ qiArgs_per(R12), CX

vsblock:
	VI4INPUTS
	VPREFETCH3
	VZERO4
	I4ROWS
	I4REDUCE
	VOFFSET(3)
	VFSTEP
	VNEXT(16)
	DECQ    CX
	JNZ     vsblock
	DECQ    R13
	JNZ     vsgroup
	VENDTOKEN(UNPAIR)
	DECQ    R14
	JNZ     vstoken
	VENDROWGROUP
	DECQ    qiArgs_gn(R12)
	JNZ     vsrowgroup
	VZEROUPPER
	RET

// func qmmI4AsymVNNI(a *qiArgs)
TEXT ·qmmI4AsymVNNI(SB), NOSPLIT, $0-8
	VSETUP(qiPairLanes)
	VI4CONSTS
	VPAIRMASKS
	BCAST32($0x000000ff, X14, Y14)
	BCAST32($0x80000000, X15, Y15)

varowgroup:
	VROWGROUP

vatoken:
	VTOKEN

vagroup:
	VPAIRSCALES
	VPSRLD    $16, Y12, Y13
	VPANDD    Y14, Y13, Y13
	VCVTDQ2PS Y13, Y13
	VPXORD    Y15, Y13, Y13 // -float32(z)
	VMULPS    Y27, Y13, Y28 // m = -z*s, exact
	ADDQ      $3, SI
	ADDQ      $3, R11
	MOVQ      qiArgs_per(R12), CX

vablock:
	VI4INPUTS
	VPREFETCH3
	VZERO4
	I4ROWS
	I4REDUCE
	VFSTEP
	VMULPS.BCST (R8), Y28, Y9
	VADDPS      Y9, Y26, Y26
	VNEXT(16)
	DECQ        CX
	JNZ         vablock
	DECQ        R13
	JNZ         vagroup
	VENDTOKEN(UNPAIR)
	DECQ        R14
	JNZ         vatoken
	VENDROWGROUP
	DECQ        qiArgs_gn(R12)
	JNZ         varowgroup
	VZEROUPPER
	RET

// ---------------------------------------------------------------- AVX2, eight rows

// qmmI4SymAVX2 and qmmI4AsymAVX2 are the int4 VNNI kernels for AVX2: the
// same loops over the same qiArgs, rows in pairs in the same lanes, with
// VPMADDUBSW (unsigned nibbles by signed inputs, pairs summed into int16:
// at most 2*15*127, and the low and high nibbles' pairs together at most
// 4*15*127, so nothing saturates) and VPMADDWD by ones in place of
// VPDPBUSD, and a gather for the headers. The integer block sums are exact
// and the float steps qDotIntSeq's, so every row gets qDotIntSeq's bits.
//
// Registers: as the VNNI kernels' for the GPRs; Y0-Y3 the pairs' int32
// lanes, Y4-Y5 temporaries, Y6 and Y7 the inputs 0-15 and 16-31 in both
// halves, Y8 0x0f bytes, Y9 int16 ones, Y10 the eight sums, Y11 the
// scales, Y12 the asymmetric m = -z*s, Y13 the gather offsets, Y14 0xff
// dwords and Y15 the float sign bit (asymmetric).

// qiPackW gathers the low words of the dwords of each 128-bit lane into its low 8 bytes.
DATA qiPackW<>+0(SB)/8, $0x0d0c090805040100
DATA qiPackW<>+8(SB)/8, $0x8080808080808080
DATA qiPackW<>+16(SB)/8, $0x0d0c090805040100
DATA qiPackW<>+24(SB)/8, $0x8080808080808080
GLOBL qiPackW<>(SB), RODATA|NOPTR, $32

// ASETUP is VSETUP(qiPairLanes) for AVX2, with the gather offsets in Y13
// and the constants Y8 and Y9.
#define ASETUP \
	SETUP(qiPairLanes, X13, Y13, Y13); \
	BCAST32($0x0f0f0f0f, X8, Y8); \
	BCAST32($0x00010001, X9, Y9)

#define ATOKEN \
	MOVQ  qiArgs_gw(R12), SI; \
	LEAQ  (SI)(R9*4), R11; \
	MOVQ  R9, AX; \
	SHLQ  $4, AX; \
	LEAQ  (SI)(AX*1), R15; \
	VPXOR Y10, Y10, Y10; \
	MOVQ  qiArgs_groups(R12), R13

// ASCALES gathers the eight rows' header dwords into Y4 and converts their
// low words, the scales, into Y11.
#define ASCALES \
	VPCMPEQD   Y5, Y5, Y5; \
	VPXOR      Y4, Y4, Y4; \
	VPGATHERDD Y5, (SI)(Y13*1), Y4; \
	VPSHUFB    qiPackW<>(SB), Y4, Y5; \
	VPERMQ     $0x08, Y5, Y5; \
	VCVTPH2PS  X5, Y11

// AZPOINTS sets Y12 to m = -float32(z)*s from the header dwords in Y4.
#define AZPOINTS \
	VPSRLD    $16, Y4, Y5; \
	VPAND     Y14, Y5, Y5; \
	VCVTDQ2PS Y5, Y5; \
	VXORPS    Y15, Y5, Y5; \
	VMULPS    Y11, Y5, Y12

// APAIR(a, b, p) leaves in p the int32 lanes of two rows' products with the
// inputs, as I4PAIR does.
#define APAIR(a, b, p) \
	VMOVDQU     a, X4; \
	VINSERTI128 $1, b, Y4, Y4; \
	VPSRLW      $4, Y4, Y5; \
	VPAND       Y8, Y4, Y4; \
	VPAND       Y8, Y5, Y5; \
	VPMADDUBSW  Y6, Y4, Y4; \
	VPMADDUBSW  Y7, Y5, Y5; \
	VPADDW      Y5, Y4, Y4; \
	VPMADDWD    Y9, Y4, p

#define AROWS \
	APAIR((SI), (SI)(R9*1), Y0); \
	APAIR((SI)(R9*2), (SI)(R10*1), Y1); \
	APAIR((R11), (R11)(R9*1), Y2); \
	APAIR((R11)(R9*2), (R11)(R10*1), Y3)

// ABLOCK computes the eight rows' block sums is into Y4 (rows in
// qiPairLanes order), before any offset.
#define ABLOCK \
	VBROADCASTI128 (DI), Y6; \
	VBROADCASTI128 16(DI), Y7; \
	VPREFETCH3; \
	AROWS; \
	VPHADDD        Y1, Y0, Y4; \
	VPHADDD        Y3, Y2, Y5; \
	VPHADDD        Y5, Y4, Y4

// AFSTEP adds float32(is)*(s*d_x) to the eight sums.
#define AFSTEP \
	VCVTDQ2PS    Y4, Y4; \
	VBROADCASTSS (DX), Y5; \
	VMULPS       Y5, Y11, Y5; \
	VMULPS       Y5, Y4, Y4; \
	VADDPS       Y4, Y10, Y10

// AENDTOKEN is VENDTOKEN(UNPAIR) for the sums in Y10.
#define AENDTOKEN \
	MOVQ    qiArgs_tout(R12), AX; \
	VMOVDQU qiUnpair<>(SB), Y5; \
	VPERMPS Y10, Y5, Y10; \
	VMOVUPS Y10, (AX); \
	ADDQ    qiArgs_ldo(R12), AX; \
	MOVQ    AX, qiArgs_tout(R12); \
	MOVQ    qiArgs_dpad(R12), AX; \
	ADDQ    AX, DX; \
	ADDQ    AX, BX; \
	ADDQ    AX, R8

// func qmmI4SymAVX2(a *qiArgs)
TEXT ·qmmI4SymAVX2(SB), NOSPLIT, $0-8
	ASETUP

asrowgroup:
	VROWGROUP

astoken:
	ATOKEN

asgroup:
	ASCALES
	ADDQ $2, SI
	ADDQ $2, R11
	MOVQ qiArgs_per(R12), CX

asblock:
	ABLOCK
	VPBROADCASTD (BX), Y5
	VPSLLD       $3, Y5, Y5
	VPSUBD       Y5, Y4, Y4 // less 8*Σx
	AFSTEP
	VNEXT(16)
	DECQ         CX
	JNZ          asblock
	DECQ         R13
	JNZ          asgroup
	AENDTOKEN
	DECQ         R14
	JNZ          astoken
	VENDROWGROUP
	DECQ         qiArgs_gn(R12)
	JNZ          asrowgroup
	VZEROUPPER
	RET

// func qmmI4AsymAVX2(a *qiArgs)
TEXT ·qmmI4AsymAVX2(SB), NOSPLIT, $0-8
	ASETUP
	BCAST32($0x000000ff, X14, Y14)
	BCAST32($0x80000000, X15, Y15)

aarowgroup:
	VROWGROUP

aatoken:
	ATOKEN

aagroup:
	ASCALES
	AZPOINTS
	ADDQ $3, SI
	ADDQ $3, R11
	MOVQ qiArgs_per(R12), CX

aablock:
	ABLOCK
	AFSTEP
	VBROADCASTSS (R8), Y5
	VMULPS       Y5, Y12, Y5
	VADDPS       Y5, Y10, Y10
	VNEXT(16)
	DECQ         CX
	JNZ          aablock
	DECQ         R13
	JNZ          aagroup
	AENDTOKEN
	DECQ         R14
	JNZ          aatoken
	VENDROWGROUP
	DECQ         qiArgs_gn(R12)
	JNZ          aarowgroup
	VZEROUPPER
	RET

// ---------------------------------------------------------------- VNNI, sixteen lanes a row (int4)

// qmmI4G128SymVNNI and qmmI4G128AsymVNNI take four weight rows at a time
// (at SI, SI+R9, SI+2*R9, SI+R10; R9 = rb, which is 0 for a row repeated)
// and every input row, one chunk of four blocks (128 weights, an I4G128
// group) a step, with the sums of each row in sixteen float32 lanes
// (qDotI4Lanes): the group's 64 code bytes are one load whose dword lane
// 4k+i holds bytes 4i..4i+3 of block k, so its low nibbles (masked) and high ones (a GF(2) affine shift
// by 4) meet the inputs 0-15 and 16-31 that Q8Acts.xi lays out to match,
// and two VPDPBUSD add the lane's eight products of unsigned codes into
// its bias: -z*Σq of the block in the block's first lane (VPMADDWD of z in
// the high words by -Σq in xi's high words; z = 8 when symmetric), 0 in
// the others. The int32 lanes are exact (see qDotI4Lanes). One conversion
// and one FMA by s*d_x (the scale broadcast and converted, times the lanes'
// d_x from xi) add the group into the row's accumulator. (Converting the
// four rows' scales at once and broadcasting them from memory was 3-5%
// slower from L2.) At the end of an input row each accumulator is reduced
// by the same tree, so a row gets the same bits in any slot and call. Each
// step prefetches a line of the same chunk of the rows eight rows on into
// L1 (interleaved from L2, decode 1.00-1.08x, prefill 1.00x).
//
// Registers: R12 the qiArgs, R15 the rows' start, R8 their outputs, R11
// groups of rows left, BX the current output row, DI xi, R14 input rows
// left, CX chunks left, R13 the prefetches; Z0, Z1 the inputs 0-15 and 16-31, Z2 the biases
// (symmetric) or -Σq words (asymmetric), Z3 the lanes' d_x, Z4-Z11
// temporaries, Z13 8 in the high words (symmetric) or the
// zero-point mask, Z14 the shift matrix, Z15 0x0f bytes, Z16-Z19 the
// accumulators of rows 0-3.

// L128SYM(R, a) and L128ASYM add a group of the row at SI plus the
// addressing suffix R into a: L128NIBS splits the group's nibbles at
// off(SI)R into Z4 (low) and Z5 (high), the variant starts Z6 at the lane
// biases, and L128DOT adds the integer products and folds the lanes into a
// by the group's scale times d_x.
#define L128NIBS(off, R) \
	VMOVDQU64      off(SI)R, Z4; \
	VGF2P8AFFINEQB $0, Z14, Z4, Z5; \
	VPANDD         Z15, Z4, Z4

#define L128DOT(R, a) \
	VPDPBUSD       Z0, Z4, Z6; \
	VPDPBUSD       Z1, Z5, Z6; \
	VPBROADCASTW   (SI)R, Y7; \
	VCVTPH2PS      Y7, Z7; \
	VMULPS         Z3, Z7, Z7; \
	VCVTDQ2PS      Z6, Z6; \
	VFMADD231PS    Z7, Z6, a

#define L128SYM(R, a) \
	L128NIBS(2, R); \
	VMOVDQA64      Z2, Z6; \
	L128DOT(R, a)

#define L128ASYM(R, a) \
	L128NIBS(3, R); \
	VPANDD.BCST    (SI)R, Z13, Z6; \
	VPMADDWD       Z2, Z6, Z6; \
	L128DOT(R, a)

// L128SUM(a, off) reduces the lanes of a, (A[l]+A[l+8]) + (the same four
// on) and so on, and stores the sum at off(BX).
#define L128SUM(a, y, x, off) \
	VEXTRACTF64X4 $1, a, Y8; \
	VADDPS        Y8, y, Y8; \
	VEXTRACTF128  $1, Y8, X9; \
	VADDPS        X9, X8, X8; \
	VMOVHLPS      X8, X8, X9; \
	VADDPS        X9, X8, X8; \
	VMOVSHDUP     X8, X9; \
	VADDSS        X9, X8, X8; \
	VMOVSS        X8, off(BX)

// L128KERNEL(row, hdr, bias) is the kernel's body: row the macro of a row
// step, hdr the group header's size, bias what turns the -Σq words into
// the symmetric biases (NONE when asymmetric).
#define L128KERNEL(row, gb, bias) \
	MOVQ    a+0(FP), R12; \
	MOVQ    qiArgs_rb(R12), R9; \
	LEAQ    (R9)(R9*2), R10; \
	MOVQ    qiArgs_w(R12), R15; \
	MOVQ    qiArgs_out(R12), R8; \
	MOVQ    qiArgs_n8(R12), R11; \
	MOVL    $0xff00, AX; \
	KMOVW   AX, K4; \
	MOVL    $0x0f0f0f0f, AX; \
	VPBROADCASTD AX, Z15; \
	MOVQ    $0x1020408000000000, AX; \
	VPBROADCASTQ AX, Z14; \
rowgroup: \
	MOVQ    R8, BX; \
	MOVQ    qiArgs_xi(R12), DI; \
	MOVQ    qiArgs_n(R12), R14; \
token: \
	MOVQ    R15, SI; \
	LEAQ    (R15)(R9*8), R13; \
	MOVQ    qiArgs_groups(R12), CX; \
	VPXORD  Z16, Z16, Z16; \
	VPXORD  Z17, Z17, Z17; \
	VPXORD  Z18, Z18, Z18; \
	VPXORD  Z19, Z19, Z19; \
group: \
	VMOVDQU64 (DI), Z0; \
	VMOVDQU64 64(DI), Z1; \
	VMOVDQU64 128(DI), Z2; \
	VMOVDQU64 192(DI), Z3; \
	bias; \
	row(NONE, Z16); \
	row((R9*1), Z17); \
	row((R9*2), Z18); \
	row((R10*1), Z19); \
	PREFETCHT0 (R13); \
	PREFETCHT0 (R13)(R9*1); \
	PREFETCHT0 (R13)(R9*2); \
	PREFETCHT0 (R13)(R10*1); \
	ADDQ    $gb, R13; \
	ADDQ    $gb, SI; \
	ADDQ    $const_xiChunk, DI; \
	DECQ    CX; \
	JNZ     group; \
	L128SUM(Z16, Y16, X16, 0); \
	L128SUM(Z17, Y17, X17, 4); \
	L128SUM(Z18, Y18, X18, 8); \
	L128SUM(Z19, Y19, X19, 12); \
	ADDQ    qiArgs_ldo(R12), BX; \
	DECQ    R14; \
	JNZ     token; \
	LEAQ    (R15)(R9*4), R15; \
	ADDQ    $16, R8; \
	DECQ    R11; \
	JNZ     rowgroup; \
	VZEROUPPER; \
	RET

// L128BIAS makes the symmetric biases, -8*Σq in each block's first lane.
#define L128BIAS VPMADDWD Z13, Z2, Z2

// LSYM(BODY, n) and LASYM(BODY, n) run L128KERNEL for a symmetric format
// (Z13: 8 in the high words, times the -Σq words into biases) or an
// asymmetric one (Z13: the mask of a header dword's zero-point byte).
#define LSYM(BODY, n) \
	MOVL         $0x00080000, AX; \
	VPBROADCASTD AX, Z13; \
	L128KERNEL(BODY, n, L128BIAS)

#define LASYM(BODY, n) \
	MOVL         $0x00ff0000, AX; \
	VPBROADCASTD AX, Z13; \
	L128KERNEL(BODY, n, NONE)

// func qmmI4G128SymVNNI(a *qiArgs)
TEXT ·qmmI4G128SymVNNI(SB), NOSPLIT, $0-8
	LSYM(L128SYM, 66)

// func qmmI4G128AsymVNNI(a *qiArgs)
TEXT ·qmmI4G128AsymVNNI(SB), NOSPLIT, $0-8
	LASYM(L128ASYM, 67)

// The lane kernels of I4G64, I4G64Asym and I4G32Asym (rows of whole
// chunks of four blocks): a chunk of a row is two or four groups, whose
// codes go to the lanes of their blocks, and whose scales (converted) and
// zero points to the same lanes: for I4G64 by two loads of the codes and
// broadcasts of the headers merged into lanes 8-15 (K4), for I4G32Asym by
// byte permutes; the scale vector times the lanes' d_x is the FMA's factor.

// LHDR64(R, gb) leaves a row's chunk's lanes' scales times d_x in Z7.
#define LHDR64(R, gb) \
	VPBROADCASTW (SI)R, Y11; \
	VPBROADCASTW gb(SI)R, K4, Y11; \
	VCVTPH2PS    Y11, Z11; \
	VMULPS       Z3, Z11, Z7

// LHDRZ64(R, gb) is LHDR64 for I4G64Asym: it leaves the header dwords of
// a row's chunk in Z10 (for the zero points) and takes the scales from
// their low words.
#define LHDRZ64(R, gb) \
	VPBROADCASTD (SI)R, Z10; \
	VPBROADCASTD gb(SI)R, K4, Z10; \
	VPMOVDW      Z10, Y11; \
	VCVTPH2PS    Y11, Z11; \
	VMULPS       Z3, Z11, Z7

// LCODES64(R, hdr, gb) loads a row's chunk of codes into Z4.
#define LCODES64(R, hdr, gb) \
	VMOVDQU64    hdr(SI)R, Y4; \
	VINSERTI64X4 $1, (gb+hdr)(SI)R, Z4, Z4

// LDOT(a, bias) adds the chunk in Z4 into a, with the factors in Z7 and
// the int32 lanes started by bias.
#define LDOT(a, bias) \
	VGF2P8AFFINEQB $0, Z14, Z4, Z5; \
	VPANDD         Z15, Z4, Z4; \
	bias; \
	VPDPBUSD       Z0, Z4, Z6; \
	VPDPBUSD       Z1, Z5, Z6; \
	VCVTDQ2PS      Z6, Z6; \
	VFMADD231PS    Z7, Z6, a

#define LSYMBIAS VMOVDQA64 Z2, Z6
#define LASYMBIAS VPANDD Z13, Z10, Z6; VPMADDWD Z2, Z6, Z6

#define L64SYM(R, a) LHDR64(R, 34); LCODES64(R, 2, 34); LDOT(a, LSYMBIAS)
#define L64ASYM(R, a) LHDRZ64(R, 35); LCODES64(R, 3, 35); LDOT(a, LASYMBIAS)

// I4G32Asym's chunk, four 19-byte groups (76 bytes), is two 64-byte loads,
// at 0 and 12, and three byte permutes: qiP32AC puts the codes in their
// blocks' lanes, qiP32AS the scale of each lane's group in its word (of
// the low half), and qiP32AZ (masked by K1 to the third byte of each
// dword) its zero point in the dword's high word. (Two 64-byte loads and
// permutes in place of two loads and an insert for I4G64 ran no faster.)

// qiP32A: the permutes of a chunk of 19-byte groups (second load at 12).

DATA qiP32AC<>+0(SB)/8, $0x0a09080706050403
DATA qiP32AC<>+8(SB)/8, $0x1211100f0e0d0c0b
DATA qiP32AC<>+16(SB)/8, $0x1d1c1b1a19181716
DATA qiP32AC<>+24(SB)/8, $0x2524232221201f1e
DATA qiP32AC<>+32(SB)/8, $0x302f2e2d2c2b2a29
DATA qiP32AC<>+40(SB)/8, $0x3837363534333231
DATA qiP32AC<>+48(SB)/8, $0x777675743f3e3d3c
DATA qiP32AC<>+56(SB)/8, $0x7f7e7d7c7b7a7978
GLOBL qiP32AC<>(SB), RODATA|NOPTR, $64

DATA qiP32AS<>+0(SB)/8, $0x0100010001000100
DATA qiP32AS<>+8(SB)/8, $0x1413141314131413
DATA qiP32AS<>+16(SB)/8, $0x2726272627262726
DATA qiP32AS<>+24(SB)/8, $0x3a393a393a393a39
DATA qiP32AS<>+32(SB)/8, $0x0000000000000000
DATA qiP32AS<>+40(SB)/8, $0x0000000000000000
DATA qiP32AS<>+48(SB)/8, $0x0000000000000000
DATA qiP32AS<>+56(SB)/8, $0x0000000000000000
GLOBL qiP32AS<>(SB), RODATA|NOPTR, $64

DATA qiP32AZ<>+0(SB)/8, $0x0002000000020000
DATA qiP32AZ<>+8(SB)/8, $0x0002000000020000
DATA qiP32AZ<>+16(SB)/8, $0x0015000000150000
DATA qiP32AZ<>+24(SB)/8, $0x0015000000150000
DATA qiP32AZ<>+32(SB)/8, $0x0028000000280000
DATA qiP32AZ<>+40(SB)/8, $0x0028000000280000
DATA qiP32AZ<>+48(SB)/8, $0x003b0000003b0000
DATA qiP32AZ<>+56(SB)/8, $0x003b0000003b0000
GLOBL qiP32AZ<>(SB), RODATA|NOPTR, $64

#define LPBIAS VPMADDWD Z2, Z6, Z6

#define L32ASYM(R, a) \
	VMOVDQU64 (SI)R, Z10; \
	VMOVDQA64 Z20, Z4; \
	VPERMI2B  12(SI)R, Z10, Z4; \
	VPERMB    Z10, Z21, Z11; \
	VCVTPH2PS Y11, Z11; \
	VMULPS    Z3, Z11, Z7; \
	VPERMB.Z  Z10, Z22, K1, Z6; \
	LDOT(a, LPBIAS)

// func qmmI4G64SymVNNI(a *qiArgs)
TEXT ·qmmI4G64SymVNNI(SB), NOSPLIT, $0-8
	LSYM(L64SYM, 68)

// func qmmI4G64AsymVNNI(a *qiArgs)
TEXT ·qmmI4G64AsymVNNI(SB), NOSPLIT, $0-8
	LASYM(L64ASYM, 70)

// func qmmI4G32AsymVNNI(a *qiArgs)
TEXT ·qmmI4G32AsymVNNI(SB), NOSPLIT, $0-8
	VMOVDQU64 qiP32AC<>(SB), Z20
	VMOVDQU64 qiP32AS<>(SB), Z21
	VMOVDQU64 qiP32AZ<>(SB), Z22
	MOVQ      $0x4444444444444444, AX
	KMOVQ     AX, K1
	L128KERNEL(L32ASYM, 76, NONE)
