//go:build amd64 && !purego

#include "textflag.h"

// The sparse kernels (sparse_amd64.go states their contracts). Both are
// frameless leaves like those of kernels_amd64.s; a row's lanes are summed
// once, after the row, and every row is computed the same way in any call.

// HSUMZ0 reduces Z0 (with YMM half Y0) to its sum in X0's low lane.
#define HSUMZ0 \
	VEXTRACTF64X4 $1, Z0, Y1; \
	VADDPS        Y1, Y0, Y0; \
	VEXTRACTF128  $1, Y0, X1; \
	VADDPS        X1, X0, X0; \
	VMOVHLPS      X0, X1, X1; \
	VADDPS        X1, X0, X0; \
	VMOVSHDUP     X0, X1; \
	VADDSS        X1, X0, X0

// func spMatVecAVX512(out, vals *float32, idx *uint16, ptr *int32, x *float32, rows int)
TEXT ·spMatVecAVX512(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ vals+8(FP), SI
	MOVQ idx+16(FP), R8
	MOVQ ptr+24(FP), R9
	MOVQ x+32(FP), DX
	MOVQ rows+40(FP), R12

csr512row:
	TESTQ   R12, R12
	JZ      csr512done
	MOVLQSX (R9), AX
	MOVLQSX 4(R9), BX
	SUBQ    AX, BX
	LEAQ    (SI)(AX*4), R10
	LEAQ    (R8)(AX*2), R11
	VPXORD  Z0, Z0, Z0
	VPXORD  Z4, Z4, Z4

csr512loop32:
	CMPQ        BX, $32
	JLT         csr512step16
	VPMOVZXWD   (R11), Z1
	VPMOVZXWD   32(R11), Z5
	KXNORW      K0, K0, K2
	KXNORW      K0, K0, K3
	VPXORD      Z2, Z2, Z2
	VPXORD      Z6, Z6, Z6
	VGATHERDPS  (DX)(Z1*4), K2, Z2
	VGATHERDPS  (DX)(Z5*4), K3, Z6
	VFMADD231PS (R10), Z2, Z0
	VFMADD231PS 64(R10), Z6, Z4
	ADDQ        $128, R10
	ADDQ        $64, R11
	SUBQ        $32, BX
	JMP         csr512loop32

csr512step16:
	CMPQ        BX, $16
	JLT         csr512tail
	VPMOVZXWD   (R11), Z1
	KXNORW      K0, K0, K2
	VPXORD      Z2, Z2, Z2
	VGATHERDPS  (DX)(Z1*4), K2, Z2
	VFMADD231PS (R10), Z2, Z0
	ADDQ        $64, R10
	ADDQ        $32, R11
	SUBQ        $16, BX

csr512tail:
	TESTQ        BX, BX
	JZ           csr512reduce
	MOVQ         BX, CX
	MOVL         $1, AX
	SHLL         CX, AX
	DECL         AX
	KMOVW        AX, K1
	KMOVW        AX, K2
	VPMOVZXWD.Z  (R11), K1, Z1
	VPXORD       Z2, Z2, Z2
	VGATHERDPS   (DX)(Z1*4), K2, Z2
	VMOVUPS.Z    (R10), K1, Z3
	VFMADD231PS  Z3, Z2, Z4

csr512reduce:
	VADDPS Z4, Z0, Z0
	HSUMZ0
	VMOVSS X0, (DI)
	ADDQ   $4, DI
	ADDQ   $4, R9
	DECQ   R12
	JMP    csr512row

csr512done:
	VZEROUPPER
	RET

// func spMatVecAVX2(out, vals *float32, idx *uint16, ptr *int32, x *float32, rows int)
TEXT ·spMatVecAVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ vals+8(FP), SI
	MOVQ idx+16(FP), R8
	MOVQ ptr+24(FP), R9
	MOVQ x+32(FP), DX
	MOVQ rows+40(FP), R12

csr256row:
	TESTQ   R12, R12
	JZ      csr256done
	MOVLQSX (R9), AX
	MOVLQSX 4(R9), BX
	SUBQ    AX, BX
	LEAQ    (SI)(AX*4), R10
	LEAQ    (R8)(AX*2), R11
	VXORPS  Y0, Y0, Y0
	VXORPS  Y4, Y4, Y4

csr256loop16:
	CMPQ        BX, $16
	JLT         csr256step8
	VPMOVZXWD   (R11), Y1
	VPMOVZXWD   16(R11), Y5
	VPCMPEQD    Y3, Y3, Y3
	VPCMPEQD    Y7, Y7, Y7
	VXORPS      Y2, Y2, Y2
	VXORPS      Y6, Y6, Y6
	VGATHERDPS  Y3, (DX)(Y1*4), Y2
	VGATHERDPS  Y7, (DX)(Y5*4), Y6
	VFMADD231PS (R10), Y2, Y0
	VFMADD231PS 32(R10), Y6, Y4
	ADDQ        $64, R10
	ADDQ        $32, R11
	SUBQ        $16, BX
	JMP         csr256loop16

csr256step8:
	CMPQ        BX, $8
	JLT         csr256scalar
	VPMOVZXWD   (R11), Y1
	VPCMPEQD    Y3, Y3, Y3
	VXORPS      Y2, Y2, Y2
	VGATHERDPS  Y3, (DX)(Y1*4), Y2
	VFMADD231PS (R10), Y2, Y0
	ADDQ        $32, R10
	ADDQ        $16, R11
	SUBQ        $8, BX

csr256scalar:
	VADDPS       Y4, Y0, Y0
	VXORPS       X4, X4, X4

csr256tail:
	TESTQ       BX, BX
	JZ          csr256reduce
	MOVWQZX     (R11), AX
	VMOVSS      (DX)(AX*4), X2
	VFMADD231SS (R10), X2, X4
	ADDQ        $4, R10
	ADDQ        $2, R11
	DECQ        BX
	JMP         csr256tail

csr256reduce:
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMOVHLPS     X0, X1, X1
	VADDPS       X1, X0, X0
	VMOVSHDUP    X0, X1
	VADDSS       X1, X0, X0
	VADDSS       X4, X0, X0
	VMOVSS       X0, (DI)
	ADDQ         $4, DI
	ADDQ         $4, R9
	DECQ         R12
	JMP          csr256row

csr256done:
	VZEROUPPER
	RET

// Lane j of a 2:4 chunk takes its position from bits 2j..2j+1 of the chunk's
// word (sp24Shift) and its group's first column (sp24Base).
DATA sp24Shift<>+0(SB)/4, $0
DATA sp24Shift<>+4(SB)/4, $2
DATA sp24Shift<>+8(SB)/4, $4
DATA sp24Shift<>+12(SB)/4, $6
DATA sp24Shift<>+16(SB)/4, $8
DATA sp24Shift<>+20(SB)/4, $10
DATA sp24Shift<>+24(SB)/4, $12
DATA sp24Shift<>+28(SB)/4, $14
DATA sp24Shift<>+32(SB)/4, $16
DATA sp24Shift<>+36(SB)/4, $18
DATA sp24Shift<>+40(SB)/4, $20
DATA sp24Shift<>+44(SB)/4, $22
DATA sp24Shift<>+48(SB)/4, $24
DATA sp24Shift<>+52(SB)/4, $26
DATA sp24Shift<>+56(SB)/4, $28
DATA sp24Shift<>+60(SB)/4, $30
GLOBL sp24Shift<>(SB), RODATA|NOPTR, $64

DATA sp24Base<>+0(SB)/4, $0
DATA sp24Base<>+4(SB)/4, $0
DATA sp24Base<>+8(SB)/4, $4
DATA sp24Base<>+12(SB)/4, $4
DATA sp24Base<>+16(SB)/4, $8
DATA sp24Base<>+20(SB)/4, $8
DATA sp24Base<>+24(SB)/4, $12
DATA sp24Base<>+28(SB)/4, $12
DATA sp24Base<>+32(SB)/4, $16
DATA sp24Base<>+36(SB)/4, $16
DATA sp24Base<>+40(SB)/4, $20
DATA sp24Base<>+44(SB)/4, $20
DATA sp24Base<>+48(SB)/4, $24
DATA sp24Base<>+52(SB)/4, $24
DATA sp24Base<>+56(SB)/4, $28
DATA sp24Base<>+60(SB)/4, $28
GLOBL sp24Base<>(SB), RODATA|NOPTR, $64

// func sp24MatVecAVX512(out, vals *float32, meta *uint32, x *float32, rows, chunks, stride int)
TEXT ·sp24MatVecAVX512(SB), NOSPLIT, $0-56
	MOVQ    out+0(FP), DI
	MOVQ    vals+8(FP), SI
	MOVQ    meta+16(FP), R8
	MOVQ    x+24(FP), DX
	MOVQ    rows+32(FP), R12
	MOVQ    chunks+40(FP), R13
	MOVQ    stride+48(FP), R14
	VMOVDQU32 sp24Shift<>(SB), Z8
	VMOVDQU32 sp24Base<>(SB), Z9
	MOVL    $3, AX
	VPBROADCASTD AX, Z10
	MOVQ    R14, R15
	SHLQ    $6, R15        // value bytes per row
	SHLQ    $2, R14        // meta bytes per row

sp24row:
	TESTQ  R12, R12
	JZ     sp24done
	MOVQ   SI, R10
	MOVQ   R8, R11
	MOVQ   DX, BX
	MOVQ   R13, CX
	VPXORD Z0, Z0, Z0
	VPXORD Z4, Z4, Z4

sp24loop2:
	CMPQ         CX, $2
	JLT          sp24step1
	VPBROADCASTD (R11), Z1
	VPBROADCASTD 4(R11), Z5
	VPSRLVD      Z8, Z1, Z1
	VPSRLVD      Z8, Z5, Z5
	VPANDD       Z10, Z1, Z1
	VPANDD       Z10, Z5, Z5
	VPADDD       Z9, Z1, Z1
	VPADDD       Z9, Z5, Z5
	VMOVUPS      (BX), Z2
	VMOVUPS      128(BX), Z6
	VPERMT2PS    64(BX), Z1, Z2
	VPERMT2PS    192(BX), Z5, Z6
	VFMADD231PS  (R10), Z2, Z0
	VFMADD231PS  64(R10), Z6, Z4
	ADDQ         $128, R10
	ADDQ         $8, R11
	ADDQ         $256, BX
	SUBQ         $2, CX
	JMP          sp24loop2

sp24step1:
	TESTQ        CX, CX
	JZ           sp24reduce
	VPBROADCASTD (R11), Z1
	VPSRLVD      Z8, Z1, Z1
	VPANDD       Z10, Z1, Z1
	VPADDD       Z9, Z1, Z1
	VMOVUPS      (BX), Z2
	VPERMT2PS    64(BX), Z1, Z2
	VFMADD231PS  (R10), Z2, Z0

sp24reduce:
	VADDPS Z4, Z0, Z0
	HSUMZ0
	VMOVSS X0, (DI)
	ADDQ   $4, DI
	ADDQ   R15, SI
	ADDQ   R14, R8
	DECQ   R12
	JMP    sp24row

sp24done:
	VZEROUPPER
	RET

// func sp24MatVecAVX2(out, vals *float32, meta *uint32, x *float32, rows, chunks, stride int)
// Each half chunk (16 columns, 8 values) takes its inputs with two VPERMPS,
// one per 8 columns (which read only the low 3 bits of each index, so the
// group bases of sp24Base serve both), and VBLENDPS joins the halves.
TEXT ·sp24MatVecAVX2(SB), NOSPLIT, $0-56
	MOVQ         out+0(FP), DI
	MOVQ         vals+8(FP), SI
	MOVQ         meta+16(FP), R8
	MOVQ         x+24(FP), DX
	MOVQ         rows+32(FP), R12
	MOVQ         chunks+40(FP), R13
	MOVQ         stride+48(FP), R14
	VMOVDQU      sp24Shift<>+0(SB), Y8
	VMOVDQU      sp24Shift<>+32(SB), Y11
	VMOVDQU      sp24Base<>+0(SB), Y9
	MOVL         $3, AX
	MOVD         AX, X10
	VPBROADCASTD X10, Y10
	MOVQ         R14, R15
	SHLQ         $6, R15
	SHLQ         $2, R14

sp24a2row:
	TESTQ  R12, R12
	JZ     sp24a2done
	MOVQ   SI, R10
	MOVQ   R8, R11
	MOVQ   DX, BX
	MOVQ   R13, CX
	VXORPS Y0, Y0, Y0
	VXORPS Y4, Y4, Y4

sp24a2loop:
	TESTQ        CX, CX
	JZ           sp24a2reduce
	VPBROADCASTD (R11), Y1
	VPSRLVD      Y11, Y1, Y5
	VPSRLVD      Y8, Y1, Y1
	VPAND        Y10, Y1, Y1
	VPAND        Y10, Y5, Y5
	VPADDD       Y9, Y1, Y1
	VPADDD       Y9, Y5, Y5
	VPERMPS      (BX), Y1, Y2
	VPERMPS      32(BX), Y1, Y3
	VBLENDPS     $0xF0, Y3, Y2, Y2
	VPERMPS      64(BX), Y5, Y6
	VPERMPS      96(BX), Y5, Y7
	VBLENDPS     $0xF0, Y7, Y6, Y6
	VFMADD231PS  (R10), Y2, Y0
	VFMADD231PS  32(R10), Y6, Y4
	ADDQ         $64, R10
	ADDQ         $4, R11
	ADDQ         $128, BX
	DECQ         CX
	JMP          sp24a2loop

sp24a2reduce:
	VADDPS       Y4, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMOVHLPS     X0, X1, X1
	VADDPS       X1, X0, X0
	VMOVSHDUP    X0, X1
	VADDSS       X1, X0, X0
	VMOVSS       X0, (DI)
	ADDQ         $4, DI
	ADDQ         R15, SI
	ADDQ         R14, R8
	DECQ         R12
	JMP          sp24a2row

sp24a2done:
	VZEROUPPER
	RET
