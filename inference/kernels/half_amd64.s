//go:build amd64 && !purego

#include "textflag.h"

// The half-precision conversions of half_amd64.go. Every variant converts
// each value on its own, exactly (halves to float32) or rounded to nearest
// even (imm8 0 of VCVTPS2PH: neither MXCSR's rounding nor its exception
// masks change the result), so all give the bits of the generic loops.

// HALFMASK sets K1 to the low CX bits (0 < CX < 16); AX is clobbered.
#define HALFMASK \
	MOVL  $1, AX; \
	SHLL  CX, AX; \
	DECL  AX; \
	KMOVW AX, K1

// func halfToFloatAVX512(dst *float32, src *uint16, n int)
// for i < n: dst[i] = float32(src[i]). The last n%16 values are loaded and
// stored under a mask, so nothing past either slice is touched.
TEXT ·halfToFloatAVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

h2s16:
	CMPQ      CX, $16
	JB        h2stail
	VCVTPH2PS (SI), Z0
	VMOVUPS   Z0, (DI)
	ADDQ      $32, SI
	ADDQ      $64, DI
	SUBQ      $16, CX
	JMP       h2s16

h2stail:
	TESTQ        CX, CX
	JZ           h2sdone
	HALFMASK
	VMOVDQU16.Z  (SI), K1, Y0
	VCVTPH2PS    Y0, Z0
	VMOVUPS      Z0, K1, (DI)

h2sdone:
	VZEROUPPER
	RET

// func floatToHalfAVX512(dst *uint16, src *float32, n int)
// for i < n: dst[i] = half(src[i]), rounded to nearest even; the tail as above.
TEXT ·floatToHalfAVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

s2h16:
	CMPQ      CX, $16
	JB        s2htail
	VMOVUPS   (SI), Z0
	VCVTPS2PH $0, Z0, Y1
	VMOVDQU   Y1, (DI)
	ADDQ      $64, SI
	ADDQ      $32, DI
	SUBQ      $16, CX
	JMP       s2h16

s2htail:
	TESTQ       CX, CX
	JZ          s2hdone
	HALFMASK
	VMOVUPS.Z   (SI), K1, Z0
	VCVTPS2PH   $0, Z0, Y1
	VMOVDQU16   Y1, K1, (DI)

s2hdone:
	VZEROUPPER
	RET

// func halfToFloatF16C(dst *float32, src *uint16, n int)
// halfToFloatAVX512 eight values at a time; n is a positive multiple of 8.
TEXT ·halfToFloatF16C(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

h2s8:
	VCVTPH2PS (SI), Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	SUBQ      $8, CX
	JNZ       h2s8
	VZEROUPPER
	RET

// func floatToHalfF16C(dst *uint16, src *float32, n int)
// floatToHalfAVX512 eight values at a time; n is a positive multiple of 8.
TEXT ·floatToHalfF16C(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

s2h8:
	VMOVUPS   (SI), Y0
	VCVTPS2PH $0, Y0, X1
	VMOVDQU   X1, (DI)
	ADDQ      $32, SI
	ADDQ      $16, DI
	SUBQ      $8, CX
	JNZ       s2h8
	VZEROUPPER
	RET
