//go:build amd64 && !purego

#include "textflag.h"
#include "go_asm.h"

// The integer kernels of quant_amd64.go. Each routine takes a *qArgs and
// runs, for each group of four weight rows (at R8, R8+R9, R8+2*R9, R8+BX)
// and each input row, over the blocks in chunks of eight:
//
//   pass:  fetch the fp16 scales of the chunk's eight blocks of each row at
//          once (byte permutes of a few loads for VNNI, a gather for
//          AVX2), convert them, and store s[r][j] = d_w*d_x
//          in qScratch; meanwhile sum d_w*c_x (Q4_1: m*c_x) into eight
//          lanes o[r] (lane j: blocks j, 8+j, ... in order, by FMA);
//   block: integer dot products of the weights with the quantized inputs,
//          converted to float and added into accumulators times their
//          blocks' s[r][j] by FMA (see the variants below);
//   final: add k*o[r] (k: -128, -8 or 1, see below), reduce the
//          accumulators to one float per row with the same tree for every
//          row, and store the four floats at out + t*ldo.
//
// The pass of the next chunk runs before the blocks of the current one, so
// that the blocks never wait for their scales. Q4_0 VNNI has neither pass
// nor o: it fetches each row's scales from the loads of its chunk, and its
// integer sums carry the offset of its nibbles (see "Q4_0 VNNI, eight
// blocks a register").
// Q8_0 VNNI has two routines with two orders of the float sums (below):
// qmmQ8_0VNNI, two blocks a register in the skeleton above, for QMatMul
// calls of fewer than q80QuadMin input rows (decode), and
// qmmQ8_0QuadVNNI, quads of four blocks a register for tiles of up to
// four input rows, without pass or o (see "VNNI, Q8_0 quads"), for
// calls of q80QuadMin or more (prefill). qMatMul picks one by the call's
// whole x.n, so every row of a call takes the same routine. The quad
// routine is faster in prefill but slower streaming weights from DRAM.
// Every chunk's cache lines are prefetched two groups (eight rows) ahead
// into L1 and six groups ahead into L2: the VNNI routines a chunk's share
// of those groups' contiguous bytes (PFLIN, about half the prefetches of
// the AVX2 routines' one chunk of each row, PFROWS; the Q8_0 quad routine
// a quad's share), except Q4_0 VNNI,
// which prefetches six groups ahead into L1 only (PFLIN6) and also a call's
// first groups at its start (PROLOGUE).
// A row is computed by the same instructions in any of the four slots and
// for any number of input rows (of one routine), so it gives the same bits
// in any group and call, and a group of one row repeated (rb = 0) gives that row. The integer sums are exact:
//   VNNI: VPDPBUSD multiplies unsigned weight bytes by signed inputs and
//         sums four products per int32 lane. Q8_0 weights are made unsigned
//         by flipping their sign bit (u = w+128), so the lanes sum u*x and
//         the final step adds -128 times Σ_b d_w*d_x*Σx = Σ_b d_w*c_x;
//         in the quad routine each lane instead starts from -128 times the
//         sum of its inputs (from Q8Acts.x8), so it ends with the sum of
//         w*x. Q4_0 nibbles are u = w+8, and each lane starts from -8 times
//         the sum of its inputs (from Q8Acts.xq), so it ends with the sum
//         of w*x. Lane sums are at most 4*255*127 (Q8_0), 8*128*127 (Q8_0
//         quads: two VPDPBUSD), 8*15*127 (Q4_1: two) and 16*15*127 +
//         8*16*127 (Q4_0: four).
//   AVX2: VPMADDUBSW pairs unsigned by signed bytes into int16, which cannot
//         saturate (|w|*|x| <= 128*127 for Q8_0, whose signs VPSIGNB moves
//         onto x; 15*127 for nibbles), and VPMADDWD by ones sums the pairs
//         into int32. Q4_0 nibbles are u = w+8 as above; Q8_0 needs no offset.
// Q4_1 adds Σ_b m*c_x, its minimums, with k = 1.
//
// The float sums of a row and input row are, in order:
//   Q4_0 VNNI: a chunk of eight blocks at a time in 16 lanes, lane l
//         holding the exact int32 sum (offset included) of 16 products of
//         block l%8 (see "eight blocks a register" below):
//         A[l] = fma(float(sum_l), d_w*d_x of the block, A[l]), chunk after
//         chunk, a last chunk of n < 8 blocks as a whole one whose missing
//         blocks add fma(0, 0, A[l]); then lanes l and l+8 (l < 8) added and
//         the tree ((v0+v1)+(v2+v3)) + ((v4+v5)+(v6+v7)).
//   Q4_1 VNNI: four blocks ("a quad") at a time in 16 lanes, lane l holding an
//         int32 sum of 8 products of block l%4 (see "four blocks a
//         register" below): a whole chunk's first quad (blocks 8c..8c+3)
//         goes into accumulator E and its second into O, each lane by
//         E[l] = fma(float(sum_l), s[block], E[l]), chunk after chunk; a
//         last chunk of n < 8 blocks puts a whole quad into E if n >= 4
//         and the n%4 blocks left (a quad whose missing blocks have s = 0)
//         into the next one (O after a whole quad, else E). Then, per
//         lane, E+O; lanes l and l+8 (l < 8) added; fma(k, o[r][l], that);
//         and the tree ((v0+v1)+(v2+v3)) + ((v4+v5)+(v6+v7)).
//   Q8_0 VNNI, qmmQ8_0VNNI (x.n < q80QuadMin): eight lanes a block,
//         E[l] = fma(float(sum_l), s[block], E[l]) for even blocks and the
//         same into O for odd ones (a last odd block into E), E and O being
//         the low and high halves of one zmm accumulator that a pair of
//         blocks updates at once; then E+O, fma(k, o[r][l], that) and the
//         same tree.
//   Q8_0 VNNI, qmmQ8_0QuadVNNI (x.n >= q80QuadMin; qDotQ80Lanes in
//         quant_generic.go): a quad of four blocks at a time in 16 lanes,
//         lane l holding the exact int32 sum of 8 products of block l%4
//         (weights 4(l/4)..4(l/4)+3 and 16 on; see "VNNI, Q8_0 quads"):
//         A[l] = fma(float(sum_l), float(d_w*d_x) of the block, A[l]), quad
//         after quad, a last quad of n < 4 blocks as a whole one whose
//         missing blocks add fma(0, 0, A[l]); then lanes l and l+8 (l < 8)
//         added and the tree ((v0+v1)+(v2+v3)) + ((v4+v5)+(v6+v7)).
//   AVX2: as qmmQ8_0VNNI with one accumulator per row for all blocks.

// SROW is the distance between the rows of a half of qScratch.s in bytes.
#define SROW 32

// QHSUM4Y reduces Y10-Y13 to one float each, leaving the four sums in X10
// (X11 is clobbered): ((v0+v1)+(v2+v3)) + ((v4+v5)+(v6+v7)) for every row.
#define QHSUM4Y \
	VHADDPS      Y11, Y10, Y10; \
	VHADDPS      Y13, Y12, Y12; \
	VHADDPS      Y12, Y10, Y10; \
	VEXTRACTF128 $1, Y10, X11; \
	VADDPS       X11, X10, X10

// BCAST32(imm, x, y) broadcasts the 32-bit constant imm to every lane of y
// (x is its XMM view); AX is clobbered.
#define BCAST32(imm, x, y) \
	MOVL         imm, AX; \
	VMOVD        AX, x; \
	VPBROADCASTD x, y

#define NONE

// ---------------------------------------------------------------- constants

// The gather offsets of eight consecutive blocks of each format, and the
// lane numbers 0-7 that the tail masks compare against.
DATA qIdx34<>+0(SB)/4, $0
DATA qIdx34<>+4(SB)/4, $34
DATA qIdx34<>+8(SB)/4, $68
DATA qIdx34<>+12(SB)/4, $102
DATA qIdx34<>+16(SB)/4, $136
DATA qIdx34<>+20(SB)/4, $170
DATA qIdx34<>+24(SB)/4, $204
DATA qIdx34<>+28(SB)/4, $238
GLOBL qIdx34<>(SB), RODATA|NOPTR, $32

DATA qIdx18<>+0(SB)/4, $0
DATA qIdx18<>+4(SB)/4, $18
DATA qIdx18<>+8(SB)/4, $36
DATA qIdx18<>+12(SB)/4, $54
DATA qIdx18<>+16(SB)/4, $72
DATA qIdx18<>+20(SB)/4, $90
DATA qIdx18<>+24(SB)/4, $108
DATA qIdx18<>+28(SB)/4, $126
GLOBL qIdx18<>(SB), RODATA|NOPTR, $32

DATA qIdx20<>+0(SB)/4, $0
DATA qIdx20<>+4(SB)/4, $20
DATA qIdx20<>+8(SB)/4, $40
DATA qIdx20<>+12(SB)/4, $60
DATA qIdx20<>+16(SB)/4, $80
DATA qIdx20<>+20(SB)/4, $100
DATA qIdx20<>+24(SB)/4, $120
DATA qIdx20<>+28(SB)/4, $140
GLOBL qIdx20<>(SB), RODATA|NOPTR, $32

DATA qLanes<>+0(SB)/4, $0
DATA qLanes<>+4(SB)/4, $1
DATA qLanes<>+8(SB)/4, $2
DATA qLanes<>+12(SB)/4, $3
DATA qLanes<>+16(SB)/4, $4
DATA qLanes<>+20(SB)/4, $5
DATA qLanes<>+24(SB)/4, $6
DATA qLanes<>+28(SB)/4, $7
GLOBL qLanes<>(SB), RODATA|NOPTR, $32

// qShuf20 moves the fp16 scales and minimums of Q4_1 out of four 32-byte
// loads 40 bytes apart, each holding two blocks' (one per 128-bit lane),
// into word slots i and 4+i of their lane; qBytes holds the byte numbers
// 0-31.
DATA qShuf20<>+0(SB)/8, $0x8080808080800100
DATA qShuf20<>+8(SB)/8, $0x8080808080800302
DATA qShuf20<>+16(SB)/8, $0x8080808080800504
DATA qShuf20<>+24(SB)/8, $0x8080808080800706
DATA qShuf20<>+32(SB)/8, $0x8080808001008080
DATA qShuf20<>+40(SB)/8, $0x8080808003028080
DATA qShuf20<>+48(SB)/8, $0x8080808005048080
DATA qShuf20<>+56(SB)/8, $0x8080808007068080
DATA qShuf20<>+64(SB)/8, $0x8080010080808080
DATA qShuf20<>+72(SB)/8, $0x8080030280808080
DATA qShuf20<>+80(SB)/8, $0x8080050480808080
DATA qShuf20<>+88(SB)/8, $0x8080070680808080
DATA qShuf20<>+96(SB)/8, $0x0100808080808080
DATA qShuf20<>+104(SB)/8, $0x0302808080808080
DATA qShuf20<>+112(SB)/8, $0x0504808080808080
DATA qShuf20<>+120(SB)/8, $0x0706808080808080
GLOBL qShuf20<>(SB), RODATA|NOPTR, $128

DATA qBytes64<>+0(SB)/8, $0x0706050403020100
DATA qBytes64<>+8(SB)/8, $0x0f0e0d0c0b0a0908
DATA qBytes64<>+16(SB)/8, $0x1716151413121110
DATA qBytes64<>+24(SB)/8, $0x1f1e1d1c1b1a1918
DATA qBytes64<>+32(SB)/8, $0x2726252423222120
DATA qBytes64<>+40(SB)/8, $0x2f2e2d2c2b2a2928
DATA qBytes64<>+48(SB)/8, $0x3736353433323130
DATA qBytes64<>+56(SB)/8, $0x3f3e3d3c3b3a3938
GLOBL qBytes64<>(SB), RODATA|NOPTR, $64

DATA qBytes<>+0(SB)/8, $0x0706050403020100
DATA qBytes<>+8(SB)/8, $0x0f0e0d0c0b0a0908
DATA qBytes<>+16(SB)/8, $0x1716151413121110
DATA qBytes<>+24(SB)/8, $0x1f1e1d1c1b1a1918
GLOBL qBytes<>(SB), RODATA|NOPTR, $32

// qPackW gathers the low words of the dwords of each 128-bit lane into its low 8 bytes.
DATA qPackW<>+0(SB)/8, $0x0d0c090805040100
DATA qPackW<>+8(SB)/8, $0x8080808080808080
DATA qPackW<>+16(SB)/8, $0x0d0c090805040100
DATA qPackW<>+24(SB)/8, $0x8080808080808080
GLOBL qPackW<>(SB), RODATA|NOPTR, $32

// ---------------------------------------------------------------- block bodies

// SI points at the 32 quantized inputs of the chunk, R11 at the chunk's
// block of row 0, DX at the chunk's s[0][0]; X, W and S are the offsets of
// one block from them, and a0-a3 the accumulators of rows 0-3.

#define FMA4AVX2(S, a0, a1, a2, a3) \
	VBROADCASTSS S(DX), Y2; \
	VFMADD231PS  Y2, Y6, a0; \
	VBROADCASTSS (S+SROW)(DX), Y3; \
	VFMADD231PS  Y3, Y7, a1; \
	VBROADCASTSS (S+2*SROW)(DX), Y4; \
	VFMADD231PS  Y4, Y8, a2; \
	VBROADCASTSS (S+3*SROW)(DX), Y5; \
	VFMADD231PS  Y5, Y9, a3

// ROW_Q8AVX2(off, w, t) leaves in t the sums of four products of one row's
// Q8_0 weights at off with the inputs (Y0), converted to float; Y14 holds
// int16 ones.
#define ROW_Q8AVX2(off, w, t) \
	VMOVDQU    off, w; \
	VPSIGNB    w, Y0, t; \
	VPABSB     w, w; \
	VPMADDUBSW t, w, t; \
	VPMADDWD   Y14, t, t; \
	VCVTDQ2PS  t, t

#define BLOCK_Q8AVX2(X, W, S, a0, a1, a2, a3) \
	VMOVDQU X(SI), Y0; \
	ROW_Q8AVX2((W+2)(R11), Y2, Y6); \
	ROW_Q8AVX2((W+2)(R11)(R9*1), Y3, Y7); \
	ROW_Q8AVX2((W+2)(R11)(R9*2), Y4, Y8); \
	ROW_Q8AVX2((W+2)(R11)(BX*1), Y5, Y9); \
	FMA4AVX2(S, a0, a1, a2, a3)

// ROW_Q4AVX2(off, w, t) unpacks one row's nibbles at off into w (Y15 holds
// 0x0f bytes) and leaves in t their sums of four products with the inputs,
// converted to float.
#define ROW_Q4AVX2(off, w, t) \
	VBROADCASTI128 off, w; \
	VPSRLW         $4, w, t; \
	VPBLENDD       $0xf0, t, w, w; \
	VPAND          Y15, w, w; \
	VPMADDUBSW     Y0, w, t; \
	VPMADDWD       Y14, t, t; \
	VCVTDQ2PS      t, t

#define BLOCK_Q40AVX2(X, W, S, a0, a1, a2, a3) \
	VMOVDQU X(SI), Y0; \
	ROW_Q4AVX2((W+2)(R11), Y2, Y6); \
	ROW_Q4AVX2((W+2)(R11)(R9*1), Y3, Y7); \
	ROW_Q4AVX2((W+2)(R11)(R9*2), Y4, Y8); \
	ROW_Q4AVX2((W+2)(R11)(BX*1), Y5, Y9); \
	FMA4AVX2(S, a0, a1, a2, a3)

#define BLOCK_Q41AVX2(X, W, S, a0, a1, a2, a3) \
	VMOVDQU X(SI), Y0; \
	ROW_Q4AVX2((W+4)(R11), Y2, Y6); \
	ROW_Q4AVX2((W+4)(R11)(R9*1), Y3, Y7); \
	ROW_Q4AVX2((W+4)(R11)(R9*2), Y4, Y8); \
	ROW_Q4AVX2((W+4)(R11)(BX*1), Y5, Y9); \
	FMA4AVX2(S, a0, a1, a2, a3)

// ---------------------------------------------------------------- VNNI passes

// CONSTS_Q4VNNI(shuf, k) sets up the Q4 passes: the last-chunk pass's
// shuffles (copied to qScratch.k) and byte numbers (Y25), and k (in
// qScratch.o, which the VNNI kernels do not otherwise use).
#define CONSTS_Q4VNNI(shuf, k) \
	VMOVDQU64    shuf<>(SB), Y0; \
	VMOVDQU64    Y0, qScratch_k(DI); \
	VMOVDQU64    shuf<>+32(SB), Y0; \
	VMOVDQU64    Y0, (qScratch_k+32)(DI); \
	VMOVDQU64    shuf<>+64(SB), Y0; \
	VMOVDQU64    Y0, (qScratch_k+64)(DI); \
	VMOVDQU64    shuf<>+96(SB), Y0; \
	VMOVDQU64    Y0, (qScratch_k+96)(DI); \
	VMOVDQU64    qBytes<>(SB), Y25; \
	MOVL         k, AX; \
	MOVL         AX, qScratch_o(DI)

// The passes fetch the scales of the eight blocks at base of each row (only
// the CX-skip < 8 left in a last chunk) and store s at dest; R12 and R10
// point at the chunk's d_x and c_x and move on by a chunk.

// PASS_Q4VNNI(bb, OP, MF, MT, ROW) fetches the scales of Q4_1 (bb 20) and
// its minimums. In a whole chunk ROW does each row with
// one two-source byte permute (qPass20, below); in a last chunk
// four 32-byte loads at 0, 2*bb, 4*bb and 6*bb, each holding two blocks'
// scales, are masked (K3-K6) to the blocks left, and a byte shuffle each
// (qShuf) and three ORs leave the even blocks' scales in the low 128-bit
// lane and the odd blocks' in the high one, whose words an unpack
// interleaves. Gathers and word permutes cost several times more. MF and
// MT put Q4_1's minimums in X7.
// OM_Q4VNNI adds Q4_1's m*c_x, the minimums being in X7.
#define OM_Q4VNNI(Yo) \
	VCVTPH2PS   X7, Y7; \
	VFMADD231PS (R10), Y7, Yo

// MINF and MINT leave Q4_1's minimums in X7 (whole and last chunk).
#define MINF VEXTRACTI128 $1, Y1, X7
#define MINT VPUNPCKHWD X2, X1, X7

#define SHUF4_Q4VNNI(dest, r, OP, Yo, MIN) \
	VPSHUFB      qScratch_k(DI), Y1, Y1; \
	VPSHUFB      (qScratch_k+32)(DI), Y2, Y2; \
	VPSHUFB      (qScratch_k+64)(DI), Y3, Y3; \
	VPSHUFB      (qScratch_k+96)(DI), Y4, Y4; \
	VPOR         Y2, Y1, Y1; \
	VPOR         Y4, Y3, Y3; \
	VPOR         Y3, Y1, Y1; \
	VEXTRACTI128 $1, Y1, X2; \
	VPUNPCKLWD   X2, X1, X5; \
	MIN; \
	VCVTPH2PS    X5, Y5; \
	VMULPS       (R12), Y5, Y6; \
	VMOVUPS      Y6, (r*SROW)(dest); \
	OP(Yo)

// TAILMASKS(bb, skip, v, t, idx) sets K3-K6 to the bytes of a last chunk's
// CX-skip blocks of bb bytes within each of the chunk's four loads, 2*bb
// bytes apart (idx holds the byte indices 0, 1, ...; v and t are
// clobbered, AX too).
#define TAILMASKS(bb, skip, v, t, idx) \
	IMUL3Q       $bb, CX, AX; \
	SUBQ         $(skip*bb), AX; \
	VPBROADCASTB AX, v; \
	VPCMPUB      $1, v, idx, K3; \
	MOVL         $(2*bb), AX; \
	VPBROADCASTB AX, t; \
	VPSUBUSB     t, v, v; \
	VPCMPUB      $1, v, idx, K4; \
	VPSUBUSB     t, v, v; \
	VPCMPUB      $1, v, idx, K5; \
	VPSUBUSB     t, v, v; \
	VPCMPUB      $1, v, idx, K6

#define PASSROWM_Q4VNNI(base, dest, bb, r, OP, Yo, MIN) \
	VMOVDQU8.Z (base), K3, Y1; \
	VMOVDQU8.Z (2*bb)(base), K4, Y2; \
	VMOVDQU8.Z (4*bb)(base), K5, Y3; \
	VMOVDQU8.Z (6*bb)(base), K6, Y4; \
	SHUF4_Q4VNNI(dest, r, OP, Yo, MIN)

#define PASS_Q4VNNI(bb, OP, MF, MT, ROW, base, dest, skip, full, done) \
	CMPQ         CX, $(8+skip); \
	JGE          full; \
	TAILMASKS(bb, skip, Y8, Y7, Y25); \
	PASSROWM_Q4VNNI(base, dest, bb, 0, OP, Y16, MT); \
	LEAQ         (base)(R9*1), AX; \
	PASSROWM_Q4VNNI(AX, dest, bb, 1, OP, Y17, MT); \
	LEAQ         (base)(R9*2), AX; \
	PASSROWM_Q4VNNI(AX, dest, bb, 2, OP, Y18, MT); \
	LEAQ         (base)(BX*1), AX; \
	PASSROWM_Q4VNNI(AX, dest, bb, 3, OP, Y19, MT); \
	JMP          done; \
full: \
	ROW(base, dest, bb, 0, OP, Y16, MF); \
	LEAQ         (base)(R9*1), AX; \
	ROW(AX, dest, bb, 1, OP, Y17, MF); \
	LEAQ         (base)(R9*2), AX; \
	ROW(AX, dest, bb, 2, OP, Y18, MF); \
	LEAQ         (base)(BX*1), AX; \
	ROW(AX, dest, bb, 3, OP, Y19, MF); \
done: \
	ADDQ         $32, R12; \
	ADDQ         $32, R10

#define PASS_Q41VNNI(base, dest, skip, full, done) PASS_Q4VNNI(20, OM_Q4VNNI, MINF, MINT, PASSROW_Q41QUAD, base, dest, skip, full, done)

// ---------------------------------------------------------------- VNNI, four blocks a register

// The Q4_1 VNNI kernel takes four blocks of a row at once in 512-bit
// registers, dword lane l (0-15) belonging to block l%4. One two-source
// byte permute (qQuad20) of two loads that lie inside the four
// blocks puts nibble bytes 4(l/4) to 4(l/4)+3 of block l%4 in lane l; the
// low nibbles (masked) and the high ones (a GF(2) affine shift by 4) meet
// the matching inputs, which two dword permutes (qXLo, qXHi) of the 128
// inputs form once for the four rows. Two VPDPBUSD leave in lane l the
// sum of 8 products of block l%4, so one conversion and one FMA with the
// four scales s[r][j..j+3] broadcast to every 128-bit lane do four blocks.
// The nibbles are q, and the final step adds k*o[r] (the minimums).

DATA qQuad20<>+0(SB)/8, $0x1716151403020100
DATA qQuad20<>+8(SB)/8, $0x3f3e3d3c2b2a2928
DATA qQuad20<>+16(SB)/8, $0x1b1a191807060504
DATA qQuad20<>+24(SB)/8, $0x474645442f2e2d2c
DATA qQuad20<>+32(SB)/8, $0x1f1e1d1c0b0a0908
DATA qQuad20<>+40(SB)/8, $0x4b4a494833323130
DATA qQuad20<>+48(SB)/8, $0x232221200f0e0d0c
DATA qQuad20<>+56(SB)/8, $0x4f4e4d4c37363534
GLOBL qQuad20<>(SB), RODATA|NOPTR, $64

// qPass20 gathers the scales and minimums of a whole chunk.
DATA qPass20<>+0(SB)/8, $0x3d3c292815140100
DATA qPass20<>+8(SB)/8, $0x7d7c696855544140
DATA qPass20<>+16(SB)/8, $0x3f3e2b2a17160302
DATA qPass20<>+24(SB)/8, $0x7f7e6b6a57564342
DATA qPass20<>+32(SB)/8, $0x0000000000000000
DATA qPass20<>+40(SB)/8, $0x0000000000000000
DATA qPass20<>+48(SB)/8, $0x0000000000000000
DATA qPass20<>+56(SB)/8, $0x0000000000000000
GLOBL qPass20<>(SB), RODATA|NOPTR, $64

DATA qXLo<>+0(SB)/8, $0x0000000800000000
DATA qXLo<>+8(SB)/8, $0x0000001800000010
DATA qXLo<>+16(SB)/8, $0x0000000900000001
DATA qXLo<>+24(SB)/8, $0x0000001900000011
DATA qXLo<>+32(SB)/8, $0x0000000a00000002
DATA qXLo<>+40(SB)/8, $0x0000001a00000012
DATA qXLo<>+48(SB)/8, $0x0000000b00000003
DATA qXLo<>+56(SB)/8, $0x0000001b00000013
GLOBL qXLo<>(SB), RODATA|NOPTR, $64

DATA qXHi<>+0(SB)/8, $0x0000000c00000004
DATA qXHi<>+8(SB)/8, $0x0000001c00000014
DATA qXHi<>+16(SB)/8, $0x0000000d00000005
DATA qXHi<>+24(SB)/8, $0x0000001d00000015
DATA qXHi<>+32(SB)/8, $0x0000000e00000006
DATA qXHi<>+40(SB)/8, $0x0000001e00000016
DATA qXHi<>+48(SB)/8, $0x0000000f00000007
DATA qXHi<>+56(SB)/8, $0x0000001f00000017
GLOBL qXHi<>(SB), RODATA|NOPTR, $64

// Registers: Z0 and Z1 the inputs of four blocks that meet the low and
// high nibbles, Z2-Z7 temporaries, Z10-Z13 and Z21-Z24 the accumulators of
// even and odd quads, Z14 the shift matrix, Z15 0x0f bytes, Z16-Z19 o[r],
// Z20 and Z31 the input permutes, Z30 the nibble permute; k is in
// qScratch.o. The pass uses Y1-Y9, Y25, Z26 and K3-K6; a last quad
// uses K3-K5.

// NIBCONSTS sets Z15 to bytes of 0x0f (the low nibbles' mask) and Z14 to
// the GF(2) affine matrix that shifts each byte right by four (the high
// nibbles, VGF2P8AFFINEQB); AX is clobbered.
#define NIBCONSTS \
	BCAST32($0x0f0f0f0f, X15, Y15); \
	VPBROADCASTD X15, Z15; \
	MOVQ         $0x1020408000000000, AX; \
	VMOVQ        AX, X14; \
	VPBROADCASTQ X14, Z14

// CONSTS_Q4QUAD(shuf, quad, k) sets up the pass as
// CONSTS_Q4VNNI does, then the quads' constants.
#define CONSTS_Q4QUAD(shuf, quad, k) \
	CONSTS_Q4VNNI(shuf, k); \
	NIBCONSTS; \
	VMOVDQU64       quad<>(SB), Z30; \
	VMOVDQU64       qXLo<>(SB), Z20; \
	VMOVDQU64       qXHi<>(SB), Z31

// CONSTS_Q41QUAD also loads the whole-chunk pass's permute.
#define CONSTS_Q41QUAD \
	CONSTS_Q4QUAD(qShuf20, qQuad20, $0x3f800000); \
	VMOVDQU64 qPass20<>(SB), Z26

// PASSROW_Q41QUAD fetches a row's eight Q4_1 scales and minimums of a
// whole chunk with one two-source byte permute of its bytes 0-63 and
// 80-143: the scales to words 0-7, the minimums to 8-15 (MIN takes them).
#define PASSROW_Q41QUAD(base, dest, bb, r, OP, Yo, MIN) \
	VMOVDQU64 (base), Z1; \
	VPERMT2B  80(base), Z26, Z1; \
	MIN; \
	VCVTPH2PS X1, Y5; \
	VMULPS    (R12), Y5, Y6; \
	VMOVUPS   Y6, (r*SROW)(dest); \
	OP(Yo)

// XQUAD(X) forms the inputs of the four blocks at X(SI).
#define XQUAD(X) \
	VMOVDQU64 X(SI), Z0; \
	VMOVDQU64 (X+64)(SI), Z9; \
	VMOVDQA64 Z0, Z1; \
	VPERMT2D  Z9, Z20, Z0; \
	VPERMT2D  Z9, Z31, Z1

// NIBQ(t, u) turns the permuted nibble bytes in t into the low nibbles
// (t) and the high ones (u).
#define NIBQ(t, u) \
	VGF2P8AFFINEQB $0, Z14, t, u; \
	VPANDD         Z15, t, t

// DOTQ(S, t, u, v, a) adds the four blocks' sums times their scales (at
// S(DX): the row's s[r][j..j+3]) into a.
#define DOTQ(S, t, u, v, a) \
	VPXORD          v, v, v; \
	VPDPBUSD        Z0, t, v; \
	VPDPBUSD        Z1, u, v; \
	VCVTDQ2PS       v, v; \
	VBROADCASTF32X4 S(DX), u; \
	VFMADD231PS     u, v, a

// ROWQ(o1, o2, S, t, u, v, a) does four whole blocks of one row: t loads
// the 64 bytes at o1, the permute's second table the 16 at o2 (the blocks'
// last; both loads inside the blocks, and the second narrow, as the ports
// for 512-bit loads are busy).
#define ROWQ(o1, o2, S, t, u, v, a) \
	VMOVDQU64 o1, t; \
	VMOVDQU   o2, X8; \
	VPERMT2B  Z8, Z30, t; \
	NIBQ(t, u); \
	DOTQ(S, t, u, v, a)

// ROWQM(o1, S, t, u, v, a) does the last 1-3 blocks of a row: the load
// from o1 is masked (K3) to the bytes of the blocks left, whose nibbles
// all come from it; the lanes of the missing blocks, whatever their
// bytes, meet scales of 0 (the pass zeroes d_w there, and d_x is 0).
#define ROWQM(o1, S, t, u, v, a) \
	VMOVDQU8.Z o1, K3, t; \
	VPERMB     t, Z30, t; \
	NIBQ(t, u); \
	DOTQ(S, t, u, v, a)

// QUAD(bb, hdr, X, W, S, a0, a1, a2, a3) does four whole blocks of the four rows.
#define QUAD(bb, hdr, X, W, S, a0, a1, a2, a3) \
	XQUAD(X); \
	ROWQ((W+hdr)(R11), (W+4*bb-16)(R11), S, Z2, Z3, Z4, a0); \
	ROWQ((W+hdr)(R11)(R9*1), (W+4*bb-16)(R11)(R9*1), (S+SROW), Z5, Z6, Z7, a1); \
	ROWQ((W+hdr)(R11)(R9*2), (W+4*bb-16)(R11)(R9*2), (S+2*SROW), Z2, Z3, Z4, a2); \
	ROWQ((W+hdr)(R11)(BX*1), (W+4*bb-16)(R11)(BX*1), (S+3*SROW), Z5, Z6, Z7, a3)

// XQUADM forms the inputs of the last CX < 4 blocks as XQUAD does, with
// the loads masked (K4, K5) to the row's 32*CX inputs.
#define XQUADM \
	VMOVDQU8.Z (SI), K4, Z0; \
	VMOVDQU8.Z 64(SI), K5, Z2; \
	VMOVDQA64  Z0, Z1; \
	VPERMT2D   Z2, Z20, Z0; \
	VPERMT2D   Z2, Z31, Z1

// QUADM(bb, hdr, a0, a1, a2, a3) does the last CX < 4 blocks of the four
// rows, reading nothing past them: K3 masks the weight loads to the
// bb*(CX-1)+16 bytes from the first nibble to the last, and K4 and K5 the
// inputs (BZHI clears the bits from the count up, none for counts >= 64).
// R10, R12, R13 and R15 are free after the last pass.
#define QUADM(bb, hdr, a0, a1, a2, a3) \
	MOVQ    $-1, R15; \
	IMUL3Q  $bb, CX, AX; \
	ADDQ    $(16-bb), AX; \
	BZHIQ   AX, R15, R13; \
	KMOVQ   R13, K3; \
	MOVQ    CX, AX; \
	SHLQ    $5, AX; \
	BZHIQ   AX, R15, R13; \
	KMOVQ   R13, K4; \
	SUBQ    $64, AX; \
	MOVQ    $0, R12; \
	CMOVQLT R12, AX; \
	BZHIQ   AX, R15, R13; \
	KMOVQ   R13, K5; \
	XQUADM; \
	ROWQM(hdr(R11), 0, Z2, Z3, Z4, a0); \
	ROWQM(hdr(R11)(R9*1), SROW, Z5, Z6, Z7, a1); \
	ROWQM(hdr(R11)(R9*2), 2*SROW, Z2, Z3, Z4, a2); \
	ROWQM(hdr(R11)(BX*1), 3*SROW, Z5, Z6, Z7, a3)

// BLOCKSQ(bb, Q, QM, b0, b1, b2, b3) is the block section of the quad
// kernels: a whole chunk's two quads (Q) into Z10-Z13 and b0-b3; in a last
// chunk of CX < 8 blocks, a whole quad into Z10-Z13 if CX >= 4, then the
// rest (QM) into the next accumulators.
#define BLOCKSQ(bb, Q, QM, b0, b1, b2, b3) \
blocks: \
	CMPQ   CX, $8; \
	JLT    tail; \
	Q(0, 0, 0, Z10, Z11, Z12, Z13); \
	Q(128, 4*bb, 16, b0, b1, b2, b3); \
	ADDQ   $256, SI; \
	ADDQ   $(8*bb), R11; \
	MOVQ   R13, DX; \
	SUBQ   $8, CX; \
	JNZ    chunk; \
	JMP    final; \
tail: \
	CMPQ   CX, $4; \
	JLT    last; \
	Q(0, 0, 0, Z10, Z11, Z12, Z13); \
	ADDQ   $128, SI; \
	ADDQ   $(4*bb), R11; \
	ADDQ   $16, DX; \
	SUBQ   $4, CX; \
	JZ     final; \
	QM(b0, b1, b2, b3); \
	JMP    final; \
last: \
	QM(Z10, Z11, Z12, Z13)

#define QUAD41(X, W, S, a0, a1, a2, a3) QUAD(20, 4, X, W, S, a0, a1, a2, a3)
#define QUADM41(a0, a1, a2, a3) QUADM(20, 4, a0, a1, a2, a3)

#define INIT_Q4QUAD \
	VPXORD Z21, Z21, Z21; \
	VPXORD Z22, Z22, Z22; \
	VPXORD Z23, Z23, Z23; \
	VPXORD Z24, Z24, Z24; \
	VPXORD Y16, Y16, Y16; \
	VPXORD Y17, Y17, Y17; \
	VPXORD Y18, Y18, Y18; \
	VPXORD Y19, Y19, Y19

// FINAL_Q4QUAD adds the odd quads' sums to the even ones', then lanes 8-15
// to lanes 0-7, then k*o[r].
#define FINAL_Q4QUAD \
	VADDPS           Z21, Z10, Z10; \
	VADDPS           Z22, Z11, Z11; \
	VADDPS           Z23, Z12, Z12; \
	VADDPS           Z24, Z13, Z13; \
	VEXTRACTF64X4    $1, Z10, Y21; \
	VEXTRACTF64X4    $1, Z11, Y22; \
	VEXTRACTF64X4    $1, Z12, Y23; \
	VEXTRACTF64X4    $1, Z13, Y24; \
	VADDPS           Y21, Y10, Y10; \
	VADDPS           Y22, Y11, Y11; \
	VADDPS           Y23, Y12, Y12; \
	VADDPS           Y24, Y13, Y13; \
	VFMADD231PS.BCST qScratch_o(DI), Y16, Y10; \
	VFMADD231PS.BCST qScratch_o(DI), Y17, Y11; \
	VFMADD231PS.BCST qScratch_o(DI), Y18, Y12; \
	VFMADD231PS.BCST qScratch_o(DI), Y19, Y13


// ---------------------------------------------------------------- Q4_0 VNNI, eight blocks a register

// The Q4_0 VNNI kernel takes a whole chunk of a row (144 bytes) at once,
// dword lane l (0-15) of a 512-bit register belonging to block l%8 of the
// chunk. Two loads, at bytes 0 and 72 of the chunk, and the 64 bytes at 80
// and at 10 (read by the permutes themselves) feed three two-source byte
// permutes: qS18 (tables 0-63 and 72-135) puts the blocks' fp16 scales in
// words l, qT1 (0-63 and 80-143) four nibble bytes of block l%8 in lane l
// of t1, and qT0 (72-135 and 10-73) four others in lane l of t0, so that
// the two lanes l and l+8 of t0 and t1 hold a block's sixteen nibble bytes
// (which four: q40Group in quant_amd64.go; its blocks 4 and 7 take other
// groups than the rest because of where the four windows reach). The low
// nibbles (masked) and the high ones (a GF(2) affine shift by 4) meet the
// inputs that Q8Acts.xq holds arranged to match (arrangeQ40), and four
// VPDPBUSD add the 16 products of lane l into that lane's bias, -8 times
// the sum of its 16 inputs, which turns the sums of u = w+8 into those of
// w: the int32 lane sums are exact (|sum| <= 16*15*127 + 8*16*127). One
// conversion and one FMA with the scales (converted and times the lanes'
// d_x from xq) do the whole chunk. A last chunk of fewer than eight
// blocks is the same with its loads masked to its bytes (K3-K6): the
// missing blocks have zero nibbles and scales, and zero inputs, biases
// and d_x in xq, so they add 0*0.
// Registers: Z0, Z1 the inputs that meet t0's low and high nibbles, Z27,
// Z28 t1's, Z16 the lane biases, Z17 the lane d_x (all from xq, SI), Z2-Z9
// temporaries, Z10-Z13 the accumulators, Z14 the shift matrix, Z15 0x0f
// bytes, Z26, Z29 and Z30 the permutes qS18, qT0 and qT1.

DATA qT0<>+0(SB)/8, $0x5554535243424140
DATA qT0<>+8(SB)/8, $0x7978777667666564
DATA qT0<>+16(SB)/8, $0x1f1e1d1c05040302
DATA qT0<>+24(SB)/8, $0x3b3a393831302f2e
DATA qT0<>+32(SB)/8, $0x5958575647464544
DATA qT0<>+40(SB)/8, $0x7d7c7b7a6b6a6968
DATA qT0<>+48(SB)/8, $0x2322212009080706
DATA qT0<>+56(SB)/8, $0x3f3e3d3c35343332
GLOBL qT0<>(SB), RODATA|NOPTR, $64

DATA qT1<>+0(SB)/8, $0x1716151405040302
DATA qT1<>+8(SB)/8, $0x3b3a393829282726
DATA qT1<>+16(SB)/8, $0x4f4e4d4c45444342
DATA qT1<>+24(SB)/8, $0x7b7a797861605f5e
DATA qT1<>+32(SB)/8, $0x1b1a191809080706
DATA qT1<>+40(SB)/8, $0x3f3e3d3c2d2c2b2a
DATA qT1<>+48(SB)/8, $0x5352515049484746
DATA qT1<>+56(SB)/8, $0x7f7e7d7c65646362
GLOBL qT1<>(SB), RODATA|NOPTR, $64

DATA qS18<>+0(SB)/8, $0x3736252413120100
DATA qS18<>+8(SB)/8, $0x7776656453524140
DATA qS18<>+16(SB)/8, $0x3736252413120100
DATA qS18<>+24(SB)/8, $0x7776656453524140
DATA qS18<>+32(SB)/8, $0x0000000000000000
DATA qS18<>+40(SB)/8, $0x0000000000000000
DATA qS18<>+48(SB)/8, $0x0000000000000000
DATA qS18<>+56(SB)/8, $0x0000000000000000
GLOBL qS18<>(SB), RODATA|NOPTR, $64

#define CONSTS_Q40 \
	NIBCONSTS; \
	VMOVDQU64    qS18<>(SB), Z26; \
	VMOVDQU64    qT0<>(SB), Z29; \
	VMOVDQU64    qT1<>(SB), Z30

// XCHUNK40 loads a chunk's inputs, biases and d_x from xq.
#define XCHUNK40 \
	VMOVDQU64 (SI), Z0; \
	VMOVDQU64 64(SI), Z1; \
	VMOVDQU64 128(SI), Z27; \
	VMOVDQU64 192(SI), Z28; \
	VMOVDQU64 256(SI), Z16; \
	VMOVDQU64 320(SI), Z17

// DOT40(a) adds a row's chunk into a, from t1 in Z2, t0 in Z3 and the
// fp16 scales in Y4.
#define DOT40(a) \
	VCVTPH2PS      Y4, Z4; \
	VMULPS         Z17, Z4, Z4; \
	VGF2P8AFFINEQB $0, Z14, Z3, Z5; \
	VPANDD         Z15, Z3, Z3; \
	VGF2P8AFFINEQB $0, Z14, Z2, Z6; \
	VPANDD         Z15, Z2, Z2; \
	VMOVDQA64      Z16, Z7; \
	VPDPBUSD       Z0, Z3, Z7; \
	VPDPBUSD       Z1, Z5, Z7; \
	VPDPBUSD       Z27, Z2, Z7; \
	VPDPBUSD       Z28, Z6, Z7; \
	VCVTDQ2PS      Z7, Z7; \
	VFMADD231PS    Z4, Z7, a

// ROW40(R, a) does a whole chunk of the row at R11 plus the addressing
// suffix R into a.
#define ROW40(R, a) \
	VMOVDQU64 (R11)R, Z2; \
	VMOVDQU64 72(R11)R, Z3; \
	VMOVDQA64 Z26, Z4; \
	VPERMI2B  Z3, Z2, Z4; \
	VPERMT2B  80(R11)R, Z30, Z2; \
	VPERMT2B  10(R11)R, Z29, Z3; \
	DOT40(a)

// ROWM40(R, a) does a last chunk of CX < 8 blocks as ROW40 does, its loads
// masked to the blocks' bytes.
#define ROWM40(R, a) \
	VMOVDQU8.Z (R11)R, K3, Z2; \
	VMOVDQU8.Z 72(R11)R, K4, Z3; \
	VMOVDQU8.Z 80(R11)R, K5, Z8; \
	VMOVDQU8.Z 10(R11)R, K6, Z9; \
	VMOVDQA64  Z26, Z4; \
	VPERMI2B   Z3, Z2, Z4; \
	VPERMT2B   Z8, Z30, Z2; \
	VPERMT2B   Z9, Z29, Z3; \
	DOT40(a)

// TAILMASK4(bb, d1, d2, d3, ka, kb, kc, kd) sets ka to the bytes of the
// last CX blocks of bb bytes within a load at their start, and kb, kc and
// kd to those within loads d1, d1+d2 and d1+d2+d3 bytes on (BZHI clears
// the bits from the count up, none for counts >= 64); R10, R13 and R15
// are free.
#define TAILMASK4(bb, d1, d2, d3, ka, kb, kc, kd) \
	MOVQ    $-1, R15; \
	XORL    R10, R10; \
	IMUL3Q  $bb, CX, AX; \
	BZHIQ   AX, R15, R13; \
	KMOVQ   R13, ka; \
	SUBQ    $d1, AX; \
	BZHIQ   AX, R15, R13; \
	KMOVQ   R13, kb; \
	SUBQ    $d2, AX; \
	CMOVQLT R10, AX; \
	BZHIQ   AX, R15, R13; \
	KMOVQ   R13, kc; \
	SUBQ    $d3, AX; \
	CMOVQLT R10, AX; \
	BZHIQ   AX, R15, R13; \
	KMOVQ   R13, kd

// TAILMASKS40 sets K3, K4, K5 and K6 to the bytes of the last CX < 8
// blocks within the loads at 0, 72, 80 and 10.
#define TAILMASKS40 TAILMASK4(18, 10, 62, 8, K3, K6, K4, K5)

// NOPASS stands for QKERNEL's pass, which the Q4_0 kernel does without.
#define NOPASS(base, dest, skip, full, done)

// BLOCKS40 is the block section of the Q4_0 kernel: each chunk, whole or
// last, row by row.
#define BLOCKS40 \
blocks: \
	CMPQ   CX, $8; \
	JLT    tail; \
	XCHUNK40; \
	ROW40(NONE, Z10); \
	ROW40((R9*1), Z11); \
	ROW40((R9*2), Z12); \
	ROW40((BX*1), Z13); \
	ADDQ   $const_q40Chunk, SI; \
	ADDQ   $(8*18), R11; \
	SUBQ   $8, CX; \
	JNZ    chunk; \
	JMP    final; \
tail: \
	TAILMASKS40; \
	XCHUNK40; \
	ROWM40(NONE, Z10); \
	ROWM40((R9*1), Z11); \
	ROWM40((R9*2), Z12); \
	ROWM40((BX*1), Z13)

// FINAL40 adds lanes 8-15 of the accumulators to lanes 0-7.
#define FINAL40 \
	VEXTRACTF64X4 $1, Z10, Y21; \
	VEXTRACTF64X4 $1, Z11, Y22; \
	VEXTRACTF64X4 $1, Z12, Y23; \
	VEXTRACTF64X4 $1, Z13, Y24; \
	VADDPS        Y21, Y10, Y10; \
	VADDPS        Y22, Y11, Y11; \
	VADDPS        Y23, Y12, Y12; \
	VADDPS        Y24, Y13, Y13

// ---------------------------------------------------------------- VNNI, Q8_0

// The Q8_0 VNNI kernel of decode (qmmQ8_0VNNI: calls of fewer than
// q80QuadMin input rows) does two blocks at a time in zmm registers, each
// block's weights loaded whole (the quad kernel below, two permutes a
// row, runs prefill 1.3-1.5x faster but streams weights from DRAM ~0.75x
// as fast, which is decode's limit). Registers:
// Z0 inputs, Z2-Z5 weights, Z6-Z9 sums, Z10-Z13 the accumulators (even
// blocks in the low halves, odd ones in the high), Z15 0x80 bytes, Z16 and
// Z17 o, Y20 k, Z14, Z25, Z28 and Z29 the scale permutes, Z26, Z27, Z18 and
// Z19 the rows' s, K1 the low halves; the pass uses Z1-Z9, Z26, Z27, Z30
// (its byte permute), Z31 (byte numbers) and K3-K6.

// ZERO4, DPBUSD4 and CVT4 start, compute and convert the four rows' sums.
#define ZERO4 \
	VPXOR Y6, Y6, Y6; \
	VPXOR Y7, Y7, Y7; \
	VPXOR Y8, Y8, Y8; \
	VPXOR Y9, Y9, Y9

#define DPBUSD4 \
	VPDPBUSD Y0, Y2, Y6; \
	VPDPBUSD Y0, Y3, Y7; \
	VPDPBUSD Y0, Y4, Y8; \
	VPDPBUSD Y0, Y5, Y9

#define CVT4 \
	VCVTDQ2PS Y6, Y6; \
	VCVTDQ2PS Y7, Y7; \
	VCVTDQ2PS Y8, Y8; \
	VCVTDQ2PS Y9, Y9

// BLOCK2_Q8VNNI does two blocks of the four rows in zmm registers: a
// row's two blocks' weights (a load and an insert) meet both blocks'
// inputs (one load) in one VPDPBUSD, whose low eight lanes are the even
// block's sums and the high eight the odd one's, so one accumulator a row
// (Z10-Z13) holds the even blocks' sums in its low half and the odd ones'
// in its high half; one VPERMPS spreads the two blocks' scales over the
// halves from the row's s (loaded into Z26, Z27, Z18, Z19 once a chunk;
// the permutes of block pairs 0-3 are Z14, Z25, Z28, Z29). These are
// the one-block form's operations on the same lanes (a last single block
// still takes that form, BLOCK1_Q8VNNI), without a load per scale; w XOR
// 0x80 = w+128 as an unsigned byte.
#define ROW2_Q8(o1, o2, yt, zt) \
	VMOVDQU      o1, yt; \
	VINSERTI64X4 $1, o2, zt, zt; \
	VPXORD       Z15, zt, zt

#define BLOCK2_Q8VNNI(X, W, P) \
	VMOVDQU64 X(SI), Z0; \
	ROW2_Q8((W+2)(R11), (W+36)(R11), Y2, Z2); \
	ROW2_Q8((W+2)(R11)(R9*1), (W+36)(R11)(R9*1), Y3, Z3); \
	ROW2_Q8((W+2)(R11)(R9*2), (W+36)(R11)(R9*2), Y4, Z4); \
	ROW2_Q8((W+2)(R11)(BX*1), (W+36)(R11)(BX*1), Y5, Z5); \
	VPXORD    Z6, Z6, Z6; \
	VPXORD    Z7, Z7, Z7; \
	VPXORD    Z8, Z8, Z8; \
	VPXORD    Z9, Z9, Z9; \
	VPDPBUSD  Z0, Z2, Z6; \
	VPDPBUSD  Z0, Z3, Z7; \
	VPDPBUSD  Z0, Z4, Z8; \
	VPDPBUSD  Z0, Z5, Z9; \
	VCVTDQ2PS Z6, Z6; \
	VCVTDQ2PS Z7, Z7; \
	VCVTDQ2PS Z8, Z8; \
	VCVTDQ2PS Z9, Z9; \
	VPERMPS   Z26, P, Z2; \
	VFMADD231PS Z2, Z6, Z10; \
	VPERMPS   Z27, P, Z3; \
	VFMADD231PS Z3, Z7, Z11; \
	VPERMPS   Z18, P, Z4; \
	VFMADD231PS Z4, Z8, Z12; \
	VPERMPS   Z19, P, Z5; \
	VFMADD231PS Z5, Z9, Z13

// LOADS_Q8 loads the four rows' s of the chunk at DX.
#define LOADS_Q8 \
	VMOVUPS (DX), Y26; \
	VMOVUPS SROW(DX), Y27; \
	VMOVUPS (2*SROW)(DX), Y18; \
	VMOVUPS (3*SROW)(DX), Y19

// BLOCK1_Q8VNNI(X, W, S) does a last single block into the low halves (K1).
#define BLOCK1_Q8VNNI(X, W, S) \
	VMOVDQU X(SI), Y0; \
	VPXORD  (W+2)(R11), Y15, Y2; \
	VPXORD  (W+2)(R11)(R9*1), Y15, Y3; \
	VPXORD  (W+2)(R11)(R9*2), Y15, Y4; \
	VPXORD  (W+2)(R11)(BX*1), Y15, Y5; \
	ZERO4; \
	DPBUSD4; \
	CVT4; \
	VFMADD231PS.BCST S(DX), Z6, K1, Z10; \
	VFMADD231PS.BCST (S+SROW)(DX), Z7, K1, Z11; \
	VFMADD231PS.BCST (S+2*SROW)(DX), Z8, K1, Z12; \
	VFMADD231PS.BCST (S+3*SROW)(DX), Z9, K1, Z13

// BLOCKS8Z is BLOCKS8 for Q8_0 VNNI, two blocks at a time; a last chunk
// of CX < 8 blocks does its pairs, then a last single block.
#define BLOCKS8Z \
blocks: \
	LOADS_Q8; \
	CMPQ   CX, $8; \
	JLT    tail; \
	BLOCK2_Q8VNNI(0, 0, Z14); \
	BLOCK2_Q8VNNI(64, 2*34, Z25); \
	BLOCK2_Q8VNNI(128, 4*34, Z28); \
	BLOCK2_Q8VNNI(192, 6*34, Z29); \
	ADDQ   $256, SI; \
	ADDQ   $(8*34), R11; \
	MOVQ   R13, DX; \
	SUBQ   $8, CX; \
	JNZ    chunk; \
	JMP    final; \
tail: \
	MOVQ   CX, AX; \
	SHRQ   $1, AX; \
	JZ     single0; \
	BLOCK2_Q8VNNI(0, 0, Z14); \
	DECQ   AX; \
	JZ     single1; \
	BLOCK2_Q8VNNI(64, 2*34, Z25); \
	DECQ   AX; \
	JZ     single2; \
	BLOCK2_Q8VNNI(128, 4*34, Z28); \
	TESTQ  $1, CX; \
	JZ     final; \
	BLOCK1_Q8VNNI(192, 6*34, 24); \
	JMP    final; \
single0: \
	BLOCK1_Q8VNNI(0, 0, 0); \
	JMP    final; \
single1: \
	TESTQ  $1, CX; \
	JZ     final; \
	BLOCK1_Q8VNNI(64, 2*34, 8); \
	JMP    final; \
single2: \
	TESTQ  $1, CX; \
	JZ     final; \
	BLOCK1_Q8VNNI(128, 4*34, 16)

// qPair holds the VPERMPS indices of block pairs 0-3: 2p in the low
// eight lanes, 2p+1 in the high ones.
DATA qPair<>+0(SB)/8, $0x0000000000000000
DATA qPair<>+8(SB)/8, $0x0000000000000000
DATA qPair<>+16(SB)/8, $0x0000000000000000
DATA qPair<>+24(SB)/8, $0x0000000000000000
DATA qPair<>+32(SB)/8, $0x0000000100000001
DATA qPair<>+40(SB)/8, $0x0000000100000001
DATA qPair<>+48(SB)/8, $0x0000000100000001
DATA qPair<>+56(SB)/8, $0x0000000100000001
DATA qPair<>+64(SB)/8, $0x0000000200000002
DATA qPair<>+72(SB)/8, $0x0000000200000002
DATA qPair<>+80(SB)/8, $0x0000000200000002
DATA qPair<>+88(SB)/8, $0x0000000200000002
DATA qPair<>+96(SB)/8, $0x0000000300000003
DATA qPair<>+104(SB)/8, $0x0000000300000003
DATA qPair<>+112(SB)/8, $0x0000000300000003
DATA qPair<>+120(SB)/8, $0x0000000300000003
DATA qPair<>+128(SB)/8, $0x0000000400000004
DATA qPair<>+136(SB)/8, $0x0000000400000004
DATA qPair<>+144(SB)/8, $0x0000000400000004
DATA qPair<>+152(SB)/8, $0x0000000400000004
DATA qPair<>+160(SB)/8, $0x0000000500000005
DATA qPair<>+168(SB)/8, $0x0000000500000005
DATA qPair<>+176(SB)/8, $0x0000000500000005
DATA qPair<>+184(SB)/8, $0x0000000500000005
DATA qPair<>+192(SB)/8, $0x0000000600000006
DATA qPair<>+200(SB)/8, $0x0000000600000006
DATA qPair<>+208(SB)/8, $0x0000000600000006
DATA qPair<>+216(SB)/8, $0x0000000600000006
DATA qPair<>+224(SB)/8, $0x0000000700000007
DATA qPair<>+232(SB)/8, $0x0000000700000007
DATA qPair<>+240(SB)/8, $0x0000000700000007
DATA qPair<>+248(SB)/8, $0x0000000700000007
GLOBL qPair<>(SB), RODATA|NOPTR, $256

// CONSTS_Q8VNNI(k) sets up Q8_0: the pass's scale permute (Z30) and byte
// numbers 0-63 (Z31), k (Y20), 0x80 bytes (Y15).
#define CONSTS_Q8VNNI(k) \
	MOVQ      $0x6362414023220100, AX; \
	VMOVQ     AX, X30; \
	VMOVDQU64 qBytes64<>(SB), Z31; \
	BCAST32(k, X0, Y0); \
	VMOVDQA64 Y0, Y20; \
	BCAST32($0x80808080, X15, Y15); \
	VPBROADCASTD X15, Z15; \
	VMOVDQU64 qPair<>(SB), Z14; \
	VMOVDQU64 qPair<>+64(SB), Z25; \
	VMOVDQU64 qPair<>+128(SB), Z28; \
	VMOVDQU64 qPair<>+192(SB), Z29; \
	MOVW      $0x00ff, AX; \
	KMOVW     AX, K1

// INIT_Q8VNNI runs once per input row: clear o (o[0] and o[1] in Z16,
// o[2] and o[3] in Z17).
#define INIT_Q8VNNI \
	VPXORD Y16, Y16, Y16; \
	VPXORD Y17, Y17, Y17

// The Q8_0 pass takes the rows in pairs. A row's eight scales lie at 34j
// from the chunk's start: two 64-byte tables 68 bytes apart hold four of
// them, at bytes 0, 34, 64+0 and 64+34 of the pair, which one two-source
// byte permute (Z30) gathers into a qword; an unpack joins a row's two
// qwords, an insert the pair's two rows, and one conversion, one multiply
// by d_x (Z26: d_x of the chunk in both halves) and one FMA with c_x (Z27)
// do sixteen blocks. In a last chunk the table loads are masked (K3-K6)
// to the bytes of the CX-skip blocks left, so the missing blocks' scales
// are 0. Gathers cost several times more.
//
// SCW_Q8(a, b, c, d, t0, t1) leaves in X(t0) the fp16 scales of a row
// of a whole chunk from the tables at a, b (68 bytes on) and c, d (136 and
// 204 bytes on); SCT_Q8 does the same with masked loads.
#define SCW_Q8(a, b, c, d, t0, t1) \
	VMOVDQU64   a, t0; \
	VPERMT2B    b, Z30, t0; \
	VMOVDQU64   c, t1; \
	VPERMT2B    d, Z30, t1; \
	VPUNPCKLQDQ t1, t0, t0

#define SCT_Q8(a, b, c, d, t0, t1) \
	VMOVDQU8.Z  a, K3, t0; \
	VMOVDQU8.Z  b, K4, Z9; \
	VPERMT2B    Z9, Z30, t0; \
	VMOVDQU8.Z  c, K5, t1; \
	VMOVDQU8.Z  d, K6, Z9; \
	VPERMT2B    Z9, Z30, t1; \
	VPUNPCKLQDQ t1, t0, t0

// PAIR_Q8(SC, base, R, R1, off, Zo) does the pair of rows at base+R and
// base+R1 (addressing suffixes), storing s at off(R13) and adding into Zo.
#define PAIR_Q8(SC, base, R, R1, off, Zo) \
	SC((base)R, 68(base)R, 136(base)R, 204(base)R, Z1, Z2); \
	SC((base)R1, 68(base)R1, 136(base)R1, 204(base)R1, Z3, Z4); \
	VINSERTI32X4 $1, X3, Y1, Y1; \
	VCVTPH2PS    Y1, Z1; \
	VMULPS       Z26, Z1, Z2; \
	VMOVUPS      Z2, off(R13); \
	VFMADD231PS  Z27, Z1, Zo

#define PASS4_Q8(SC, base) \
	PAIR_Q8(SC, base, NONE, (R9*1), 0, Z16); \
	PAIR_Q8(SC, base, (R9*2), (BX*1), 2*SROW, Z17)

// PASS_Q8VNNI fetches the scales of the chunk at base into the s at dest
// (always R13).
#define PASS_Q8VNNI(base, dest, skip, full, done) \
	VBROADCASTF32X8 (R12), Z26; \
	VBROADCASTF32X8 (R10), Z27; \
	CMPQ         CX, $(8+skip); \
	JGE          full; \
	TAILMASKS(34, skip, Z8, Z7, Z31); \
	PASS4_Q8(SCT_Q8, base); \
	JMP          done; \
full: \
	PASS4_Q8(SCW_Q8, base); \
done: \
	ADDQ         $32, R12; \
	ADDQ         $32, R10

// FINAL_Q8VNNI adds the odd blocks' sums to the even ones', then k*o[r].
#define ADDB_VNNI \
	VADDPS Y21, Y10, Y10; \
	VADDPS Y22, Y11, Y11; \
	VADDPS Y23, Y12, Y12; \
	VADDPS Y24, Y13, Y13

#define FINAL_Q8VNNI \
	VEXTRACTF32X8 $1, Z10, Y21; \
	VEXTRACTF32X8 $1, Z11, Y22; \
	VEXTRACTF32X8 $1, Z12, Y23; \
	VEXTRACTF32X8 $1, Z13, Y24; \
	ADDB_VNNI; \
	VEXTRACTF32X8 $1, Z16, Y18; \
	VEXTRACTF32X8 $1, Z17, Y19; \
	VFMADD231PS   Y20, Y16, Y10; \
	VFMADD231PS   Y20, Y18, Y11; \
	VFMADD231PS   Y20, Y17, Y12; \
	VFMADD231PS   Y20, Y19, Y13

// ---------------------------------------------------------------- VNNI, Q8_0 quads

// The Q8_0 VNNI kernel of prefill (qmmQ8_0QuadVNNI: calls of q80QuadMin
// or more input rows) takes four blocks of a row ("a quad", 136 bytes) at
// once, dword lane l (0-15) of a 512-bit register belonging to block l%4
// of the quad, and several input rows per group of four weight rows, so
// that what depends on the weights alone is done once for them all. Two
// two-source byte permutes of the quad's bytes put weight dwords l/4 and
// 4+l/4 of block l%4 in lane l of p (qP34, tables at bytes 0 and 64 of the
// quad) and of q (qQ34, tables at 8 and 72: both windows inside the quad),
// and a third (qS34, p's tables) the four blocks' fp16 scales in words l,
// so one conversion gives d_w of block l%4 in lane l (kept in qScratch.w).
// The weights are made unsigned by flipping their sign bit (u = w+128);
// Q8Acts.x8 holds each input row's quads arranged to match (arrangeQ80:
// the inputs that meet p and q, the lane biases -128 times the sum of a
// lane's eight inputs, which turn the sums of u*x into those of w*x, and
// the lanes' d_x), so two VPDPBUSD leave in lane l the exact sum of the
// eight products w*x of block l%4 (|sum| <= 8*128*127), and one
// conversion, one multiply (d_w*d_x) and one FMA do four blocks of a row
// and input row. A last quad of CX < 4 blocks is the same with its weight
// loads masked to its bytes (K3-K6): the missing blocks have zero scales,
// and zero inputs, biases and d_x in x8, so they add fma(0, 0, A).
// Input rows go four at a time (a tile), then one at a time; every input
// row of a tile takes the same instructions, so its bits do not depend on
// the tile. Registers: Z0-Z7 the weights p and q of rows 0-3, Z16-Z31 the
// accumulators of input row t and weight row r (Z16+4t+r), Z8-Z12
// temporaries; the byte permutes and 0x80 bytes are in qScratch.p.

DATA qP34<>+0(SB)/8, $0x2726252405040302
DATA qP34<>+8(SB)/8, $0x6b6a696849484746
DATA qP34<>+16(SB)/8, $0x2b2a292809080706
DATA qP34<>+24(SB)/8, $0x6f6e6d6c4d4c4b4a
DATA qP34<>+32(SB)/8, $0x2f2e2d2c0d0c0b0a
DATA qP34<>+40(SB)/8, $0x7372717051504f4e
DATA qP34<>+48(SB)/8, $0x3332313011100f0e
DATA qP34<>+56(SB)/8, $0x7776757455545352
GLOBL qP34<>(SB), RODATA|NOPTR, $64

DATA qQ34<>+0(SB)/8, $0x2f2e2d2c0d0c0b0a
DATA qQ34<>+8(SB)/8, $0x7372717051504f4e
DATA qQ34<>+16(SB)/8, $0x3332313011100f0e
DATA qQ34<>+24(SB)/8, $0x7776757455545352
DATA qQ34<>+32(SB)/8, $0x3736353415141312
DATA qQ34<>+40(SB)/8, $0x7b7a797859585756
DATA qQ34<>+48(SB)/8, $0x3b3a393819181716
DATA qQ34<>+56(SB)/8, $0x7f7e7d7c5d5c5b5a
GLOBL qQ34<>(SB), RODATA|NOPTR, $64

DATA qS34<>+0(SB)/8, $0x6766454423220100
DATA qS34<>+8(SB)/8, $0x6766454423220100
DATA qS34<>+16(SB)/8, $0x6766454423220100
DATA qS34<>+24(SB)/8, $0x6766454423220100
GLOBL qS34<>(SB), RODATA|NOPTR, $32

// CONSTS_Q8QUAD copies the permutes into qScratch.p (p, q, then the scales'
// 32 bytes) and 64 bytes of 0x80 after them.
#define CONSTS_Q8QUAD \
	VMOVDQU64    qP34<>(SB), Z8; \
	VMOVDQU64    Z8, qScratch_p(DI); \
	VMOVDQU64    qQ34<>(SB), Z8; \
	VMOVDQU64    Z8, (qScratch_p+64)(DI); \
	VMOVDQU      qS34<>(SB), Y8; \
	VMOVDQU      Y8, (qScratch_p+128)(DI); \
	BCAST32($0x80808080, X8, Y8); \
	VPBROADCASTD X8, Z8; \
	VMOVDQU64    Z8, (qScratch_p+192)(DI)

// INIT8x4 and INIT8x1 start a tile of four input rows and of one: they
// clear its accumulators and load the permutes into Z13-Z15 (STORE8
// clobbers Z13); a tile of one also keeps 0x80 bytes in Z28 and the four
// rows' d_w in Z24-Z27, where a tile of four keeps them in qScratch (p, w).
#define ZERO8(a0, a1, a2, a3) \
	VPXORD a0, a0, a0; \
	VPXORD a1, a1, a1; \
	VPXORD a2, a2, a2; \
	VPXORD a3, a3, a3

#define LOADP8 \
	VMOVDQU64 qScratch_p(DI), Z13; \
	VMOVDQU64 (qScratch_p+64)(DI), Z14; \
	VMOVDQU64 (qScratch_p+128)(DI), Z15

#define INIT8x4 \
	ZERO8(Z16, Z17, Z18, Z19); \
	ZERO8(Z20, Z21, Z22, Z23); \
	ZERO8(Z24, Z25, Z26, Z27); \
	ZERO8(Z28, Z29, Z30, Z31); \
	LOADP8

#define INIT8x1 \
	ZERO8(Z16, Z17, Z18, Z19); \
	LOADP8; \
	VMOVDQU64 (qScratch_p+192)(DI), Z28

// PERMP8(t2, wp, x80, dw) forms p into wp from the tables Z8 and t2, and
// the d_w of its quad's four blocks into dw; PERMQ8(t2, wq, x80) forms q
// from Z8 and t2. x80 holds 0x80 bytes.
#define PERMP8(t2, wp, x80, dw) \
	VMOVDQA64 Z13, wp; \
	VPERMI2B  t2, Z8, wp; \
	VMOVDQA64 Z15, Z10; \
	VPERMI2B  t2, Z8, Z10; \
	VCVTPH2PS Y10, Z10; \
	VMOVUPS   Z10, dw; \
	VPXORD    x80, wp, wp

#define PERMQ8(t2, wq, x80) \
	VMOVDQA64 Z14, wq; \
	VPERMI2B  t2, Z8, wq; \
	VPXORD    x80, wq, wq

// ROW8(R, wp, wq, x80, dw) forms p and q of the whole quad of a row at
// R11 plus the addressing suffix R; ROWM8 those of a last quad of CX < 4
// blocks, its loads masked to the blocks' bytes.
#define ROW8(R, wp, wq, x80, dw) \
	VMOVDQU64 (R11)R, Z8; \
	VMOVDQU64 64(R11)R, Z9; \
	PERMP8(Z9, wp, x80, dw); \
	VMOVDQU64 8(R11)R, Z8; \
	PERMQ8(72(R11)R, wq, x80)

#define ROWM8(R, wp, wq, x80, dw) \
	VMOVDQU8.Z (R11)R, K3, Z8; \
	VMOVDQU8.Z 64(R11)R, K4, Z9; \
	PERMP8(Z9, wp, x80, dw); \
	VMOVDQU8.Z 8(R11)R, K5, Z8; \
	VMOVDQU8.Z 72(R11)R, K6, Z9; \
	PERMQ8(Z9, wq, x80)

// WEIGHTS8(ROW, x80, d0, d1, d2, d3) forms the four rows' p and q, and
// their d_w into d0-d3.
#define WEIGHTS8(ROW, x80, d0, d1, d2, d3) \
	ROW(NONE, Z0, Z1, x80, d0); \
	ROW((R9*1), Z2, Z3, x80, d1); \
	ROW((R9*2), Z4, Z5, x80, d2); \
	ROW((BX*1), Z6, Z7, x80, d3)

#define WEIGHTS8x4(ROW) WEIGHTS8(ROW, (qScratch_p+192)(DI), qScratch_w(DI), (qScratch_w+64)(DI), (qScratch_w+128)(DI), (qScratch_w+192)(DI))
#define WEIGHTS8x1(ROW) WEIGHTS8(ROW, Z28, Z24, Z25, Z26, Z27)

// DOT8(T, wp, wq, dw, a) adds the quad of a row with the input row at SI
// plus the addressing suffix T (its inputs in Z8 and Z9, d_x in Z10) into
// a: bias, two VPDPBUSD, conversion, d_w*d_x, FMA.
#define DOT8(T, wp, wq, dw, a) \
	VMOVDQU64   128(SI)T, Z11; \
	VPDPBUSD    Z8, wp, Z11; \
	VPDPBUSD    Z9, wq, Z11; \
	VCVTDQ2PS   Z11, Z11; \
	VMULPS      dw, Z10, Z12; \
	VFMADD231PS Z12, Z11, a

// TOKEN8(T, a0, a1, a2, a3, d0, d1, d2, d3) does the quad of the four
// rows (d_w in d0-d3) with one input row.
#define TOKEN8(T, a0, a1, a2, a3, d0, d1, d2, d3) \
	VMOVDQU64 (SI)T, Z8; \
	VMOVDQU64 64(SI)T, Z9; \
	VMOVDQU64 192(SI)T, Z10; \
	DOT8(T, Z0, Z1, d0, a0); \
	DOT8(T, Z2, Z3, d1, a1); \
	DOT8(T, Z4, Z5, d2, a2); \
	DOT8(T, Z6, Z7, d3, a3)

// TOKENS8x4 and TOKENS8x1 do a tile of four input rows (qs bytes apart in
// x8: DX, R12 = 3*DX) and of one.
#define TOKEN8x4(T, a0, a1, a2, a3) TOKEN8(T, a0, a1, a2, a3, qScratch_w(DI), (qScratch_w+64)(DI), (qScratch_w+128)(DI), (qScratch_w+192)(DI))

#define TOKENS8x4 \
	TOKEN8x4(NONE, Z16, Z17, Z18, Z19); \
	TOKEN8x4((DX*1), Z20, Z21, Z22, Z23); \
	TOKEN8x4((DX*2), Z24, Z25, Z26, Z27); \
	TOKEN8x4((R12*1), Z28, Z29, Z30, Z31)

#define TOKENS8x1 TOKEN8(NONE, Z16, Z17, Z18, Z19, Z24, Z25, Z26, Z27)

// FOLD8(a, z) adds lanes 8-15 of a to lanes 0-7 into the low half of z.
#define FOLD8(a, z) \
	VSHUFF64X2 $0x4e, a, a, z; \
	VADDPS     a, z, z

// STORE8(t, a0, a1, a2, a3) reduces input row t's accumulators (lanes l
// and l+8 added, then QHSUM4Y's tree) and stores the four rows' products
// at tout + t*ldo.
#define STORE8(t, a0, a1, a2, a3) \
	FOLD8(a0, Z10); \
	FOLD8(a1, Z11); \
	FOLD8(a2, Z12); \
	FOLD8(a3, Z13); \
	QHSUM4Y; \
	MOVQ    qArgs_tout(R14), AX; \
	MOVQ    qArgs_ldo(R14), R10; \
	IMUL3Q  $t, R10, R10; \
	VMOVUPS X10, (AX)(R10*1)

#define STORES8x4 \
	STORE8(0, Z16, Z17, Z18, Z19); \
	STORE8(1, Z20, Z21, Z22, Z23); \
	STORE8(2, Z24, Z25, Z26, Z27); \
	STORE8(3, Z28, Z29, Z30, Z31)

#define STORES8x1 STORE8(0, Z16, Z17, Z18, Z19)

// TILE8(nt, INIT, WEIGHTS, TOKENS, STORES, quads, last, done) computes the tile of nt
// input rows at qArgs.tq with the group of rows at R8: whole quads, then a
// last one of CX < 4 blocks, then the stores; tout, tq and tn move on by
// nt input rows.
#define TILE8(nt, INIT, WEIGHTS, TOKENS, STORES, quads, last, done) \
	MOVQ    qArgs_tq(R14), SI; \
	MOVQ    R8, R11; \
	INIT; \
	MOVQ    qArgs_nb(R14), CX; \
quads: \
	CMPQ    CX, $4; \
	JLT     last; \
	PFLIN(PFL18, PFL18T1); \
	WEIGHTS(ROW8); \
	TOKENS; \
	ADDQ    $const_q80Quad, SI; \
	ADDQ    $(4*34), R11; \
	SUBQ    $4, CX; \
	JMP     quads; \
last: \
	TESTQ   CX, CX; \
	JZ      done; \
	TAILMASK4(34, 8, 56, 8, K3, K5, K4, K6); \
	WEIGHTS(ROWM8); \
	TOKENS; \
done: \
	STORES; \
	MOVQ    qArgs_ldo(R14), AX; \
	IMUL3Q  $nt, AX, AX; \
	ADDQ    AX, qArgs_tout(R14); \
	MOVQ    qArgs_qs(R14), AX; \
	IMUL3Q  $nt, AX, AX; \
	ADDQ    AX, qArgs_tq(R14); \
	SUBQ    $nt, qArgs_tn(R14)

// ---------------------------------------------------------------- AVX2

// Registers: Y0 inputs, Y2-Y5 weights, Y6-Y9 sums, Y10-Y13 accumulators
// (one chain per row: no registers to spare), Y14 int16 ones, Y15 the
// nibble mask; the pass uses Y0-Y9 and keeps its constants and o[r] in
// qScratch: k[0] gather offsets, k[1] gather mask, k[2] word packing,
// k[3] lane numbers.

// CONSTS_AVX2(idx) copies the pass's constants into qScratch.k and sets Y14 and Y15.
#define CONSTS_AVX2(idx) \
	VMOVDQU      idx<>(SB), Y0; \
	VMOVDQU      Y0, qScratch_k(DI); \
	VMOVDQU      qPackW<>(SB), Y0; \
	VMOVDQU      Y0, (qScratch_k+64)(DI); \
	VMOVDQU      qLanes<>(SB), Y0; \
	VMOVDQU      Y0, (qScratch_k+96)(DI); \
	BCAST32($0x00010001, X14, Y14); \
	BCAST32($0x0f0f0f0f, X15, Y15)

#define INIT_AVX2 \
	VPCMPEQD Y0, Y0, Y0; \
	VMOVDQU  Y0, (qScratch_k+32)(DI); \
	VPXOR    Y0, Y0, Y0; \
	VMOVDQU  Y0, qScratch_o(DI); \
	VMOVDQU  Y0, (qScratch_o+32)(DI); \
	VMOVDQU  Y0, (qScratch_o+64)(DI); \
	VMOVDQU  Y0, (qScratch_o+96)(DI)

// OD_AVX2 and OM_AVX2 add d_w*c_x (or m*c_x) of eight blocks into o[r]; Y1
// holds the gathered dwords and Y3 the converted d_w.
#define OD_AVX2(r) \
	VMOVUPS     (qScratch_o+32*r)(DI), Y5; \
	VFMADD231PS (R10), Y3, Y5; \
	VMOVUPS     Y5, (qScratch_o+32*r)(DI)

#define OM_AVX2(r) \
	VPSRLD      $16, Y1, Y1; \
	VPSHUFB     (qScratch_k+64)(DI), Y1, Y1; \
	VPERMQ      $0x08, Y1, Y1; \
	VCVTPH2PS   X1, Y1; \
	VMOVUPS     (qScratch_o+32*r)(DI), Y5; \
	VFMADD231PS (R10), Y1, Y5; \
	VMOVUPS     Y5, (qScratch_o+32*r)(DI)

#define ONONE(r)

#define PASSROW_AVX2(base, dest, r, OP) \
	VPXOR      Y1, Y1, Y1; \
	VMOVDQU    (qScratch_k+32)(DI), Y2; \
	VPGATHERDD Y2, (base)(Y0*1), Y1; \
	VPSHUFB    (qScratch_k+64)(DI), Y1, Y3; \
	VPERMQ     $0x08, Y3, Y3; \
	VCVTPH2PS  X3, Y3; \
	VMULPS     (R12), Y3, Y4; \
	VMOVUPS    Y4, (r*SROW)(dest); \
	OP(r)

#define PASS_AVX2(OP, base, dest, skip, full, done) \
	CMPQ         CX, $(8+skip); \
	JGE          full; \
	LEAQ         -skip(CX), AX; \
	VMOVD        AX, X1; \
	VPBROADCASTD X1, Y1; \
	VPCMPGTD     (qScratch_k+96)(DI), Y1, Y1; \
	VMOVDQU      Y1, (qScratch_k+32)(DI); \
full: \
	VMOVDQU      qScratch_k(DI), Y0; \
	PASSROW_AVX2(base, dest, 0, OP); \
	LEAQ         (base)(R9*1), AX; \
	PASSROW_AVX2(AX, dest, 1, OP); \
	LEAQ         (base)(R9*2), AX; \
	PASSROW_AVX2(AX, dest, 2, OP); \
	LEAQ         (base)(BX*1), AX; \
	PASSROW_AVX2(AX, dest, 3, OP); \
	ADDQ         $32, R12; \
	ADDQ         $32, R10

#define PASS_Q8AVX2(base, dest, skip, full, done) PASS_AVX2(ONONE, base, dest, skip, full, done)
#define PASS_Q40AVX2(base, dest, skip, full, done) PASS_AVX2(OD_AVX2, base, dest, skip, full, done)
#define PASS_Q41AVX2(base, dest, skip, full, done) PASS_AVX2(OM_AVX2, base, dest, skip, full, done)

// FINAL_AVX2(k) adds k*o[r] into Y10-Y13.
#define FINAL_AVX2(k) \
	BCAST32(k, X0, Y0); \
	VFMADD231PS qScratch_o(DI), Y0, Y10; \
	VFMADD231PS (qScratch_o+32)(DI), Y0, Y11; \
	VFMADD231PS (qScratch_o+64)(DI), Y0, Y12; \
	VFMADD231PS (qScratch_o+96)(DI), Y0, Y13

// ---------------------------------------------------------------- skeleton

// PF34, PF18 and PF20 prefetch every cache line of a chunk of eight blocks
// at p into L1, and the T1 forms into L2.
#define PF34(p) \
	PREFETCHT0 (p); \
	PREFETCHT0 64(p); \
	PREFETCHT0 128(p); \
	PREFETCHT0 192(p); \
	PREFETCHT0 256(p); \
	PREFETCHT0 271(p)

#define PF34T1(p) \
	PREFETCHT1 (p); \
	PREFETCHT1 64(p); \
	PREFETCHT1 128(p); \
	PREFETCHT1 192(p); \
	PREFETCHT1 256(p); \
	PREFETCHT1 271(p)

#define PF18T1(p) \
	PREFETCHT1 (p); \
	PREFETCHT1 64(p); \
	PREFETCHT1 128(p); \
	PREFETCHT1 143(p)

#define PF20T1(p) \
	PREFETCHT1 (p); \
	PREFETCHT1 64(p); \
	PREFETCHT1 128(p); \
	PREFETCHT1 159(p)

#define PF18(p) \
	PREFETCHT0 (p); \
	PREFETCHT0 64(p); \
	PREFETCHT0 128(p); \
	PREFETCHT0 143(p)

#define PF20(p) \
	PREFETCHT0 (p); \
	PREFETCHT0 64(p); \
	PREFETCHT0 128(p); \
	PREFETCHT0 159(p)

// PFROWS(PF, PFT1) prefetches the chunk's blocks of the rows two groups
// ahead into L1 (PF) and of the rows six groups ahead into L2 (PFT1).
#define PFROWS(PF, PFT1) \
	LEAQ   (R11)(R9*8), R15; \
	PF(R15); \
	LEAQ   (R15)(R9*1), R15; \
	PF(R15); \
	LEAQ   (R15)(R9*1), R15; \
	PF(R15); \
	LEAQ   (R15)(R9*1), R15; \
	PF(R15); \
	LEAQ   (R15)(R9*4), R15; \
	LEAQ   (R15)(R9*4), R15; \
	LEAQ   (R15)(R9*4), R15; \
	LEAQ   (R15)(R9*4), R15; \
	PFT1(R15); \
	LEAQ   (R15)(R9*1), R15; \
	PFT1(R15); \
	LEAQ   (R15)(R9*1), R15; \
	PFT1(R15); \
	LEAQ   (R15)(R9*1), R15; \
	PFT1(R15); \

// CHUNKSHARE points R15 at the current chunk's share of its group's bytes:
// the chunks of a group's four rows (4*8*bb bytes each time) map in order
// onto its 4*rb contiguous bytes, so R8 + 4*(R11-R8).
#define CHUNKSHARE \
	MOVQ   R11, R15; \
	SUBQ   R8, R15; \
	SHLQ   $2, R15; \
	LEAQ   (R8)(R15*1), R15

// PFLIN(PF, PFT1) prefetches the chunk's share of the groups two and six
// groups on into L1 (PF) and L2 (PFT1) (Q8_0 and Q4_1 VNNI, and the Q8_0
// quad kernel a quad's share; on qmmQ8_0VNNI it issues 17 prefetches a
// chunk instead of PFROWS's 24 and ran 2-7% faster from DRAM): the rows
// of the groups are
// contiguous, and the chunks of a group's four rows (4*8*bb bytes each
// time) map in order onto its 4*rb bytes from 4*(R11-R8) on.
#define PFLIN(PF, PFT1) \
	CHUNKSHARE; \
	LEAQ   (R15)(R9*8), R15; \
	PF(R15); \
	LEAQ   (R15)(R9*8), R15; \
	LEAQ   (R15)(R9*8), R15; \
	PFT1(R15)

// PFLIN6(PF) prefetches the chunk's share of the group six groups on into
// L1 (Q4_0 VNNI: streaming from DRAM in 64-row calls it ran 5-10% faster
// than with PFLIN, and as fast as a loop of its loads and prefetches
// without the arithmetic, so that its speed from DRAM is the prefetches'
// doing; two to eight groups on, with or without L2 hints, did no better).
#define PFLIN6(PF) \
	CHUNKSHARE; \
	LEAQ   (R15)(R9*8), R15; \
	LEAQ   (R15)(R9*8), R15; \
	LEAQ   (R15)(R9*8), R15; \
	PF(R15)

#define LIN18(I, p) \
	I (p); \
	I 64(p); \
	I 128(p); \
	I 192(p); \
	I 256(p); \
	I 320(p); \
	I 384(p); \
	I 448(p); \
	I 512(p)
#define LIN20(I, p) \
	LIN18(I, p); \
	I 576(p)
#define LIN34(I, p) \
	LIN20(I, p); \
	I 640(p); \
	I 704(p); \
	I 768(p); \
	I 832(p); \
	I 896(p); \
	I 960(p); \
	I 1024(p)
#define PFL34(p) LIN34(PREFETCHT0, p)
#define PFL34T1(p) LIN34(PREFETCHT1, p)
#define PFL18(p) LIN18(PREFETCHT0, p)
#define PFL18T1(p) LIN18(PREFETCHT1, p)
#define PFL20(p) LIN20(PREFETCHT0, p)
#define PFL20T1(p) LIN20(PREFETCHT1, p)
// PROLOGUE prefetches a call's first two groups of rows into L1 and the
// next four into L2: the chunks prefetch two and six groups ahead of
// their own, so without it a call whose rows are not already on their way
// (the first block of a matrix, a thread's first in a run) starts with
// demand misses only (Q4_0 VNNI: whole-model decode of llama-134m q4_0
// from DRAM got 5-8% back, which it had lost when the whole chunks went row
// by row; on Q8_0 it made no difference).
#define PROLOGUE \
	MOVQ       qArgs_w(R14), AX; \
	MOVQ       qArgs_rb(R14), CX; \
	SHLQ       $3, CX; \
	LEAQ       (AX)(CX*1), DX; \
pro0: \
	PREFETCHT0 (AX); \
	ADDQ       $64, AX; \
	CMPQ       AX, DX; \
	JB         pro0; \
	LEAQ       (DX)(CX*2), DX; \
pro1: \
	PREFETCHT1 (AX); \
	ADDQ       $64, AX; \
	CMPQ       AX, DX; \
	JB         pro1

// QKERNEL is the body of every routine: CONSTS sets up constants, INIT
// starts an input row, PASS(base, dest, skip, labels) fetches the scales of
// the chunk at base into dest, BLOCK(X, W, S, a0-a3) does one block of four
// rows (bb bytes each) at the given offsets, into Y10-Y13 for even blocks
// and b0-b3 for odd ones, and FINAL adds the odd sums and the per-row
// corrections before the reduction. The pass of the next chunk runs before
// the blocks of the current one, into the other half of qScratch.s, so that
// the two overlap. R14 holds the *qArgs throughout; R15 is only written
// after the last access to a global (CONSTS), as dynamic linking requires.
// BLOCKS8(bb, BLOCK, b0, b1, b2, b3) is the block section of the ymm
// kernels: the chunk's eight blocks one by one, even blocks into Y10-Y13
// and odd ones into b0-b3, then the tail in pairs and a last single block.
#define BLOCKS8(bb, BLOCK, b0, b1, b2, b3) \
blocks: \
	CMPQ   CX, $8; \
	JLT    tail; \
	BLOCK(0, 0, 0, Y10, Y11, Y12, Y13); \
	BLOCK(32, bb, 4, b0, b1, b2, b3); \
	BLOCK(64, 2*bb, 8, Y10, Y11, Y12, Y13); \
	BLOCK(96, 3*bb, 12, b0, b1, b2, b3); \
	BLOCK(128, 4*bb, 16, Y10, Y11, Y12, Y13); \
	BLOCK(160, 5*bb, 20, b0, b1, b2, b3); \
	BLOCK(192, 6*bb, 24, Y10, Y11, Y12, Y13); \
	BLOCK(224, 7*bb, 28, b0, b1, b2, b3); \
	ADDQ   $256, SI; \
	ADDQ   $(8*bb), R11; \
	MOVQ   R13, DX; \
	SUBQ   $8, CX; \
	JNZ    chunk; \
	JMP    final; \
tail: \
	SHRQ   $1, CX; \
	JZ     single; \
pairs: \
	BLOCK(0, 0, 0, Y10, Y11, Y12, Y13); \
	BLOCK(32, bb, 4, b0, b1, b2, b3); \
	ADDQ   $64, SI; \
	ADDQ   $(2*bb), R11; \
	ADDQ   $8, DX; \
	DECQ   CX; \
	JNZ    pairs; \
single: \
	TESTQ  $1, qArgs_nb(R14); \
	JZ     final; \
	BLOCK(0, 0, 0, Y10, Y11, Y12, Y13);

#define QKERNEL(bb, CONSTS, INIT, PASS, BODY, FINAL, PREFETCH) \
	MOVQ   a+0(FP), R14; \
	MOVQ   qArgs_sc(R14), DI; \
	CONSTS; \
	MOVQ   qArgs_w(R14), R8; \
	MOVQ   qArgs_rb(R14), R9; \
	LEAQ   (R9)(R9*2), BX; \
	MOVQ   qArgs_out(R14), AX; \
	MOVQ   AX, qArgs_gout(R14); \
	MOVQ   qArgs_groups(R14), AX; \
	MOVQ   AX, qArgs_gn(R14); \
group: \
	MOVQ   qArgs_gout(R14), AX; \
	MOVQ   AX, qArgs_tout(R14); \
	MOVQ   qArgs_q(R14), AX; \
	MOVQ   AX, qArgs_tq(R14); \
	MOVQ   qArgs_d(R14), AX; \
	MOVQ   AX, qArgs_td(R14); \
	MOVQ   qArgs_c(R14), AX; \
	MOVQ   AX, qArgs_tc(R14); \
	MOVQ   qArgs_n(R14), AX; \
	MOVQ   AX, qArgs_tn(R14); \
token: \
	MOVQ   qArgs_tq(R14), SI; \
	MOVQ   qArgs_td(R14), R12; \
	MOVQ   qArgs_tc(R14), R10; \
	MOVQ   R8, R11; \
	MOVQ   qArgs_nb(R14), CX; \
	VXORPS Y10, Y10, Y10; \
	VXORPS Y11, Y11, Y11; \
	VXORPS Y12, Y12, Y12; \
	VXORPS Y13, Y13, Y13; \
	INIT; \
	LEAQ   qScratch_s(DI), R13; \
	PASS(R11, R13, 0, pass0, pass0done); \
	MOVQ   R13, DX; \
chunk: \
	PREFETCH; \
	CMPQ   CX, $8; \
	JLE    blocks; \
	LEAQ   (2*qScratch_s+128)(DI)(DI*1), R13; \
	SUBQ   DX, R13; \
	LEAQ   (8*bb)(R11), R15; \
	PASS(R15, R13, 8, pass1, pass1done); \
	BODY; \
final: \
	FINAL; \
	QHSUM4Y; \
	MOVQ   qArgs_tout(R14), AX; \
	VMOVUPS X10, (AX); \
	MOVQ   qArgs_ldo(R14), CX; \
	ADDQ   CX, qArgs_tout(R14); \
	MOVQ   qArgs_qs(R14), CX; \
	ADDQ   CX, qArgs_tq(R14); \
	MOVQ   qArgs_ss(R14), CX; \
	ADDQ   CX, qArgs_td(R14); \
	ADDQ   CX, qArgs_tc(R14); \
	DECQ   qArgs_tn(R14); \
	JNZ    token; \
	LEAQ   (R8)(R9*4), R8; \
	ADDQ   $16, qArgs_gout(R14); \
	DECQ   qArgs_gn(R14); \
	JNZ    group; \
	VZEROUPPER; \
	RET

// func qmmQ8_0VNNI(a *qArgs)
TEXT ·qmmQ8_0VNNI(SB), NOSPLIT, $0-8
	QKERNEL(34, CONSTS_Q8VNNI($0xc3000000), INIT_Q8VNNI, PASS_Q8VNNI, BLOCKS8Z, FINAL_Q8VNNI, PFLIN(PFL34, PFL34T1))

// func qmmQ8_0QuadVNNI(a *qArgs)
// For each group of four weight rows: tiles of four input rows while
// four are left, then single ones.
TEXT ·qmmQ8_0QuadVNNI(SB), NOSPLIT, $0-8
	MOVQ a+0(FP), R14
	MOVQ qArgs_sc(R14), DI
	CONSTS_Q8QUAD
	MOVQ qArgs_w(R14), R8
	MOVQ qArgs_rb(R14), R9
	LEAQ (R9)(R9*2), BX
	MOVQ qArgs_qs(R14), DX
	LEAQ (DX)(DX*2), R12
	MOVQ qArgs_out(R14), AX
	MOVQ AX, qArgs_gout(R14)
	MOVQ qArgs_groups(R14), AX
	MOVQ AX, qArgs_gn(R14)

q8group:
	MOVQ qArgs_gout(R14), AX
	MOVQ AX, qArgs_tout(R14)
	MOVQ qArgs_q(R14), AX
	MOVQ AX, qArgs_tq(R14)
	MOVQ qArgs_n(R14), AX
	MOVQ AX, qArgs_tn(R14)

q8tile4:
	CMPQ qArgs_tn(R14), $4
	JLT  q8tile1
	TILE8(4, INIT8x4, WEIGHTS8x4, TOKENS8x4, STORES8x4, q8quads4, q8last4, q8done4)
	JMP  q8tile4

q8tile1:
	CMPQ qArgs_tn(R14), $0
	JEQ  q8next
	TILE8(1, INIT8x1, WEIGHTS8x1, TOKENS8x1, STORES8x1, q8quads1, q8last1, q8done1)
	JMP  q8tile1

q8next:
	LEAQ (R8)(R9*4), R8
	ADDQ $16, qArgs_gout(R14)
	DECQ qArgs_gn(R14)
	JNZ  q8group
	VZEROUPPER
	RET

// func qmmQ4_0VNNI(a *qArgs)
TEXT ·qmmQ4_0VNNI(SB), NOSPLIT, $0-8
	QKERNEL(18, CONSTS_Q40; PROLOGUE, NONE, NOPASS, BLOCKS40, FINAL40, PFLIN6(PFL18))

// func qmmQ4_1VNNI(a *qArgs)
TEXT ·qmmQ4_1VNNI(SB), NOSPLIT, $0-8
	QKERNEL(20, CONSTS_Q41QUAD, INIT_Q4QUAD, PASS_Q41VNNI, BLOCKSQ(20, QUAD41, QUADM41, Z21, Z22, Z23, Z24), FINAL_Q4QUAD, PFLIN(PFL20, PFL20T1))

// func qmmQ8_0AVX2(a *qArgs)
TEXT ·qmmQ8_0AVX2(SB), NOSPLIT, $0-8
	QKERNEL(34, CONSTS_AVX2(qIdx34), INIT_AVX2, PASS_Q8AVX2, BLOCKS8(34, BLOCK_Q8AVX2, Y10, Y11, Y12, Y13), NONE, PFROWS(PF34, PF34T1))

// func qmmQ4_0AVX2(a *qArgs)
TEXT ·qmmQ4_0AVX2(SB), NOSPLIT, $0-8
	QKERNEL(18, CONSTS_AVX2(qIdx18), INIT_AVX2, PASS_Q40AVX2, BLOCKS8(18, BLOCK_Q40AVX2, Y10, Y11, Y12, Y13), FINAL_AVX2($0xc1000000), PFROWS(PF18, PF18T1))

// func qmmQ4_1AVX2(a *qArgs)
TEXT ·qmmQ4_1AVX2(SB), NOSPLIT, $0-8
	QKERNEL(20, CONSTS_AVX2(qIdx20), INIT_AVX2, PASS_Q41AVX2, BLOCKS8(20, BLOCK_Q41AVX2, Y10, Y11, Y12, Y13), FINAL_AVX2($0x3f800000), PFROWS(PF20, PF20T1))

// ---------------------------------------------------------------- quantize

// func quantizeRowAVX2(q *int8, d, c *float32, s *int32, x *float32, nb int)
// For each block of 32 floats at x: amax = max |v| (a tree of exact maxima),
// d = amax/127, q = v/d rounded to nearest even (VCVTPS2DQ under Go's
// default rounding), s = Σq, c = d*Σq; a block of zeros (amax 0) gets q = 0,
// d = 0, s = 0 and c = 0. These are quantizeRow's float32 operations, so the
// bits agree.
TEXT ·quantizeRowAVX2(SB), NOSPLIT, $0-48
	MOVQ q+0(FP), DI
	MOVQ d+8(FP), R8
	MOVQ c+16(FP), R9
	MOVQ s+24(FP), R11
	MOVQ x+32(FP), SI
	MOVQ nb+40(FP), CX
	MOVL $0x7fffffff, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15          // abs mask
	MOVL $0x42fe0000, AX           // 127.0
	VMOVD AX, X14
	MOVL $0, R10
	VMOVDQU qPackPerm<>(SB), Y13   // dword order after the packs

qrloop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	VANDPS  Y15, Y0, Y4
	VANDPS  Y15, Y1, Y5
	VANDPS  Y15, Y2, Y6
	VANDPS  Y15, Y3, Y7
	VMAXPS  Y5, Y4, Y4
	VMAXPS  Y7, Y6, Y6
	VMAXPS  Y6, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VMAXPS  X5, X4, X4
	VMOVHLPS X4, X4, X5
	VMAXPS  X5, X4, X4
	VMOVSHDUP X4, X5
	VMAXSS  X5, X4, X4             // amax
	VDIVSS  X14, X4, X4            // d = amax/127
	VXORPS  X5, X5, X5
	VUCOMISS X5, X4
	JEQ     qrzero
	VBROADCASTSS X4, Y5
	VDIVPS  Y5, Y0, Y0
	VDIVPS  Y5, Y1, Y1
	VDIVPS  Y5, Y2, Y2
	VDIVPS  Y5, Y3, Y3
	VCVTPS2DQ Y0, Y0
	VCVTPS2DQ Y1, Y1
	VCVTPS2DQ Y2, Y2
	VCVTPS2DQ Y3, Y3
	VPADDD  Y1, Y0, Y6
	VPADDD  Y3, Y2, Y7
	VPADDD  Y7, Y6, Y6
	VEXTRACTI128 $1, Y6, X7
	VPADDD  X7, X6, X6
	VPSHUFD $0x4e, X6, X7
	VPADDD  X7, X6, X6
	VPSHUFD $0xb1, X6, X7
	VPADDD  X7, X6, X6             // Σq in every lane
	VMOVD   X6, (R11)
	VCVTDQ2PS X6, X6
	VMULSS  X4, X6, X6             // c = d*Σq
	VPACKSSDW Y1, Y0, Y0
	VPACKSSDW Y3, Y2, Y2
	VPACKSSWB Y2, Y0, Y0
	VPERMD  Y0, Y13, Y0
	VMOVDQU Y0, (DI)
	VMOVSS  X4, (R8)
	VMOVSS  X6, (R9)
	JMP     qrnext

qrzero:
	VPXOR   Y0, Y0, Y0
	VMOVDQU Y0, (DI)
	MOVL    R10, (R8)
	MOVL    R10, (R9)
	MOVL    R10, (R11)

qrnext:
	ADDQ $128, SI
	ADDQ $32, DI
	ADDQ $4, R8
	ADDQ $4, R9
	ADDQ $4, R11
	DECQ CX
	JNZ  qrloop
	VZEROUPPER
	RET

// qPackPerm restores the order of eight dwords of bytes after
// VPACKSSDW/VPACKSSWB, which work within 128-bit lanes.
DATA qPackPerm<>+0(SB)/4, $0
DATA qPackPerm<>+4(SB)/4, $4
DATA qPackPerm<>+8(SB)/4, $1
DATA qPackPerm<>+12(SB)/4, $5
DATA qPackPerm<>+16(SB)/4, $2
DATA qPackPerm<>+20(SB)/4, $6
DATA qPackPerm<>+24(SB)/4, $3
DATA qPackPerm<>+28(SB)/4, $7
GLOBL qPackPerm<>(SB), RODATA|NOPTR, $32

// ---------------------------------------------------------------- Q8Acts.xq

// qA<o><h> gather the inputs of output o (t0's low and high nibbles, t1's)
// of arrangeQ40 for blocks 0-3 (h 0, from bytes 0-127 of a chunk) and 4-7
// (h 1, from bytes 128-255); a byte blend (K1) joins the halves.
DATA qA00<>+0(SB)/8, $0x2b2a29280b0a0908
DATA qA00<>+8(SB)/8, $0x6b6a69684b4a4948
DATA qA00<>+16(SB)/8, $0x0000000000000000
DATA qA00<>+24(SB)/8, $0x0000000000000000
DATA qA00<>+32(SB)/8, $0x2f2e2d2c0f0e0d0c
DATA qA00<>+40(SB)/8, $0x6f6e6d6c4f4e4d4c
DATA qA00<>+48(SB)/8, $0x0000000000000000
DATA qA00<>+56(SB)/8, $0x0000000000000000
GLOBL qA00<>(SB), RODATA|NOPTR, $64

DATA qA01<>+0(SB)/8, $0x0000000000000000
DATA qA01<>+8(SB)/8, $0x0000000000000000
DATA qA01<>+16(SB)/8, $0x2b2a292803020100
DATA qA01<>+24(SB)/8, $0x636261604b4a4948
DATA qA01<>+32(SB)/8, $0x0000000000000000
DATA qA01<>+40(SB)/8, $0x0000000000000000
DATA qA01<>+48(SB)/8, $0x2f2e2d2c07060504
DATA qA01<>+56(SB)/8, $0x676665644f4e4d4c
GLOBL qA01<>(SB), RODATA|NOPTR, $64

DATA qA10<>+0(SB)/8, $0x3b3a39381b1a1918
DATA qA10<>+8(SB)/8, $0x7b7a79785b5a5958
DATA qA10<>+16(SB)/8, $0x0000000000000000
DATA qA10<>+24(SB)/8, $0x0000000000000000
DATA qA10<>+32(SB)/8, $0x3f3e3d3c1f1e1d1c
DATA qA10<>+40(SB)/8, $0x7f7e7d7c5f5e5d5c
DATA qA10<>+48(SB)/8, $0x0000000000000000
DATA qA10<>+56(SB)/8, $0x0000000000000000
GLOBL qA10<>(SB), RODATA|NOPTR, $64

DATA qA11<>+0(SB)/8, $0x0000000000000000
DATA qA11<>+8(SB)/8, $0x0000000000000000
DATA qA11<>+16(SB)/8, $0x3b3a393813121110
DATA qA11<>+24(SB)/8, $0x737271705b5a5958
DATA qA11<>+32(SB)/8, $0x0000000000000000
DATA qA11<>+40(SB)/8, $0x0000000000000000
DATA qA11<>+48(SB)/8, $0x3f3e3d3c17161514
DATA qA11<>+56(SB)/8, $0x777675745f5e5d5c
GLOBL qA11<>(SB), RODATA|NOPTR, $64

DATA qA20<>+0(SB)/8, $0x2322212003020100
DATA qA20<>+8(SB)/8, $0x6362616043424140
DATA qA20<>+16(SB)/8, $0x0000000000000000
DATA qA20<>+24(SB)/8, $0x0000000000000000
DATA qA20<>+32(SB)/8, $0x2726252407060504
DATA qA20<>+40(SB)/8, $0x6766656447464544
DATA qA20<>+48(SB)/8, $0x0000000000000000
DATA qA20<>+56(SB)/8, $0x0000000000000000
GLOBL qA20<>(SB), RODATA|NOPTR, $64

DATA qA21<>+0(SB)/8, $0x0000000000000000
DATA qA21<>+8(SB)/8, $0x0000000000000000
DATA qA21<>+16(SB)/8, $0x232221200b0a0908
DATA qA21<>+24(SB)/8, $0x6b6a696843424140
DATA qA21<>+32(SB)/8, $0x0000000000000000
DATA qA21<>+40(SB)/8, $0x0000000000000000
DATA qA21<>+48(SB)/8, $0x272625240f0e0d0c
DATA qA21<>+56(SB)/8, $0x6f6e6d6c47464544
GLOBL qA21<>(SB), RODATA|NOPTR, $64

DATA qA30<>+0(SB)/8, $0x3332313013121110
DATA qA30<>+8(SB)/8, $0x7372717053525150
DATA qA30<>+16(SB)/8, $0x0000000000000000
DATA qA30<>+24(SB)/8, $0x0000000000000000
DATA qA30<>+32(SB)/8, $0x3736353417161514
DATA qA30<>+40(SB)/8, $0x7776757457565554
DATA qA30<>+48(SB)/8, $0x0000000000000000
DATA qA30<>+56(SB)/8, $0x0000000000000000
GLOBL qA30<>(SB), RODATA|NOPTR, $64

DATA qA31<>+0(SB)/8, $0x0000000000000000
DATA qA31<>+8(SB)/8, $0x0000000000000000
DATA qA31<>+16(SB)/8, $0x333231301b1a1918
DATA qA31<>+24(SB)/8, $0x7b7a797853525150
DATA qA31<>+32(SB)/8, $0x0000000000000000
DATA qA31<>+40(SB)/8, $0x0000000000000000
DATA qA31<>+48(SB)/8, $0x373635341f1e1d1c
DATA qA31<>+56(SB)/8, $0x7f7e7d7c57565554
GLOBL qA31<>(SB), RODATA|NOPTR, $64


// func arrangeQ40VNNI(dst *int8, q *int8, d *float32, nc int)
// does arrangeQ40 for nc whole chunks.
TEXT ·arrangeQ40VNNI(SB), NOSPLIT, $0-32
	MOVQ            dst+0(FP), DI
	MOVQ            q+8(FP), SI
	MOVQ            d+16(FP), DX
	MOVQ            nc+24(FP), CX
	VMOVDQU64       qA00<>(SB), Z16
	VMOVDQU64       qA01<>(SB), Z17
	VMOVDQU64       qA10<>(SB), Z18
	VMOVDQU64       qA11<>(SB), Z19
	VMOVDQU64       qA20<>(SB), Z20
	VMOVDQU64       qA21<>(SB), Z21
	VMOVDQU64       qA30<>(SB), Z22
	VMOVDQU64       qA31<>(SB), Z23
	MOVQ            $0xffff0000ffff0000, AX
	KMOVQ           AX, K1
	MOVL            $0x01010101, AX
	VPBROADCASTD    AX, Z31
	VPXORD          Z30, Z30, Z30

arrange:
	VMOVDQU64       (SI), Z0
	VMOVDQU64       64(SI), Z1
	VMOVDQU64       128(SI), Z2
	VMOVDQU64       192(SI), Z3
	VPXORD          Z6, Z6, Z6
	VMOVDQA64       Z16, Z4
	VPERMI2B        Z1, Z0, Z4
	VMOVDQA64       Z17, Z5
	VPERMI2B        Z3, Z2, Z5
	VPBLENDMB       Z5, Z4, K1, Z8
	VMOVDQU64       Z8, 0(DI)
	VPDPBUSD        Z8, Z31, Z6
	VMOVDQA64       Z18, Z4
	VPERMI2B        Z1, Z0, Z4
	VMOVDQA64       Z19, Z5
	VPERMI2B        Z3, Z2, Z5
	VPBLENDMB       Z5, Z4, K1, Z9
	VMOVDQU64       Z9, 64(DI)
	VPDPBUSD        Z9, Z31, Z6
	VMOVDQA64       Z20, Z4
	VPERMI2B        Z1, Z0, Z4
	VMOVDQA64       Z21, Z5
	VPERMI2B        Z3, Z2, Z5
	VPBLENDMB       Z5, Z4, K1, Z10
	VMOVDQU64       Z10, 128(DI)
	VPDPBUSD        Z10, Z31, Z6
	VMOVDQA64       Z22, Z4
	VPERMI2B        Z1, Z0, Z4
	VMOVDQA64       Z23, Z5
	VPERMI2B        Z3, Z2, Z5
	VPBLENDMB       Z5, Z4, K1, Z11
	VMOVDQU64       Z11, 192(DI)
	VPDPBUSD        Z11, Z31, Z6
	VPSLLD          $3, Z6, Z6
	VPSUBD          Z6, Z30, Z6
	VMOVDQU64       Z6, 256(DI)
	VBROADCASTF32X8 (DX), Z7
	VMOVUPS         Z7, 320(DI)
	ADDQ            $256, SI
	ADDQ            $const_q40Chunk, DI
	ADDQ            $32, DX
	DECQ            CX
	JNZ             arrange
	VZEROUPPER
	RET

// func arrangeQ80VNNI(dst *int8, q *int8, d *float32, nq int)
// does arrangeQ80 for nq whole quads: two dword permutes (qXLo, qXHi) of
// a quad's 128 inputs give the inputs that meet p and q, two VPDPBUSD by
// bytes of 1 their lane sums (times -128: the biases), and a 128-bit
// broadcast the lanes' d_x.
TEXT ·arrangeQ80VNNI(SB), NOSPLIT, $0-32
	MOVQ            dst+0(FP), DI
	MOVQ            q+8(FP), SI
	MOVQ            d+16(FP), DX
	MOVQ            nq+24(FP), CX
	VMOVDQU64       qXLo<>(SB), Z16
	VMOVDQU64       qXHi<>(SB), Z17
	MOVL            $0x01010101, AX
	VPBROADCASTD    AX, Z31
	VPXORD          Z30, Z30, Z30

arrange8:
	VMOVDQU64       (SI), Z0
	VMOVDQU64       64(SI), Z1
	VMOVDQA64       Z16, Z2
	VPERMI2D        Z1, Z0, Z2
	VMOVDQA64       Z17, Z3
	VPERMI2D        Z1, Z0, Z3
	VMOVDQU64       Z2, (DI)
	VMOVDQU64       Z3, 64(DI)
	VPXORD          Z4, Z4, Z4
	VPDPBUSD        Z2, Z31, Z4
	VPDPBUSD        Z3, Z31, Z4
	VPSLLD          $7, Z4, Z4
	VPSUBD          Z4, Z30, Z4
	VMOVDQU64       Z4, 128(DI)
	VBROADCASTF32X4 (DX), Z5
	VMOVUPS         Z5, 192(DI)
	ADDQ            $128, SI
	ADDQ            $const_q80Quad, DI
	ADDQ            $16, DX
	DECQ            CX
	JNZ             arrange8
	VZEROUPPER
	RET
