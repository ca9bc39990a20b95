//go:build amd64

#include "textflag.h"

// Q8_0 and Q4_0 products in AVX-512 with VNNI, four rows at a time for one
// token (the ...VNNI1 functions), two (...VNNI2) or four at once (...VNNI4),
// each weight block loaded and widened once for all of them
// (dot_vnni_amd64.go says why and how the activations are packed).
//
// Per pair of blocks and per (row, token): the int32 sums start at the
// token's correction (−K·Σx per four elements), VPDPBUSD adds the
// unsigned weights times the signed activations, and the sums are
// converted, multiplied by the activation scales and added, times the
// weight scales, into the (row, token) accumulator. The one-, two- and
// four-token functions run that same sequence for every (row, token), and
// the same final reduction, so their results are equal bit for bit: a
// token's logits do not depend on what it was batched with.
//
// Registers: Z0 the widened weights of the current row, Z1 its scales,
// Z2 the sums, Z3 the byte constant (0x80 or 0x0F), Z4 the scale
// permutation, Z16…Z31 the accumulators (row r, token t in Z16+4r+t).
// SI, DI, R12, R13 point at the four rows; R8…R11 at the tokens' packed
// activations; BX at the vnniArgs.

#define A_W 0
#define A_RB 8
#define A_ROWS 16
#define A_NB 24
#define A_R 32
#define A_X 40
#define A_Y 72

// PF is how far ahead of each row the one-token kernels prefetch: a
// decode step streams its weights from memory once, four rows at a time.
#define PF 2048

// PAIR adds one (row, token) product of a pair of blocks to ACC: the
// token's packed step at P holds its 64 activation bytes, then 16 scales,
// then 16 corrections.
#define PAIR(P, ACC) \
	VMOVDQU32 128(P), Z2; \
	VPDPBUSD (P), Z0, Z2; \
	VCVTDQ2PS Z2, Z2; \
	VMULPS 64(P), Z2, Z2; \
	VFMADD231PS Z1, Z2, ACC

// SCALES2 leaves in Z1 the f16 scales at off1(R) and off2(R), widened,
// block one's in lanes 0–7 and block two's in lanes 8–15.
#define SCALES2(R, off1, off2) \
	MOVWLZX off1(R), AX; \
	VMOVD AX, X1; \
	VPINSRW $1, off2(R), X1, X1; \
	VCVTPH2PS X1, X1; \
	VPERMPS Z1, Z4, Z1

// SCALES1 is SCALES2 for a last, single block: lanes 8–15 are zero.
#define SCALES1(R) \
	MOVWLZX (R), AX; \
	VMOVD AX, X1; \
	VCVTPH2PS X1, X1; \
	VPERMPS Z1, Z4, Z1

// Q8W2 widens the Q8_0 row at R's next two blocks into Z0, Z1: quants
// plus 128 (unsigned), and scales.
#define Q8W2(R) \
	VMOVDQU 2(R), Y0; \
	VINSERTI64X4 $1, 36(R), Z0, Z0; \
	VPXORD Z3, Z0, Z0; \
	SCALES2(R, 0, 34)

#define Q8W1(R) \
	VMOVDQU 2(R), Y0; \
	VPXORD Z3, Z0, Z0; \
	SCALES1(R)

// Q4W2 widens the Q4_0 row at R's next two blocks: each block's 16 bytes
// to 32 nibbles (low nibbles are elements 0–15, high ones 16–31).
#define Q4W2(R) \
	VMOVDQU 2(R), X0; \
	VINSERTI128 $1, 20(R), Y0, Y0; \
	VPSRLW $4, Y0, Y5; \
	VINSERTI64X4 $1, Y5, Z0, Z0; \
	VSHUFI64X2 $0xD8, Z0, Z0, Z0; \
	VPANDD Z3, Z0, Z0; \
	SCALES2(R, 0, 18)

#define Q4W1(R) \
	VMOVDQU 2(R), X0; \
	VPSRLW $4, X0, X5; \
	VINSERTI128 $1, X5, Y0, Y0; \
	VPANDD Z3, Z0, Z0; \
	SCALES1(R)

// ROW2 runs one widened row against two tokens.
#define ROW2(A0, A1) \
	PAIR(R8, A0); \
	PAIR(R9, A1)

// ROW4 runs one widened row against the four tokens.
#define ROW4(A0, A1, A2, A3) \
	PAIR(R8, A0); \
	PAIR(R9, A1); \
	PAIR(R10, A2); \
	PAIR(R11, A3)

// REDUCE4 sums each of four accumulators' 16 lanes into X0 (lane i the
// sum of the i-th).
#define REDUCE4(A0, A1, A2, A3) \
	VEXTRACTF64X4 $1, A0, Y0; \
	VADDPS A0, Z0, Z0; \
	VEXTRACTF64X4 $1, A1, Y1; \
	VADDPS A1, Z1, Z1; \
	VEXTRACTF64X4 $1, A2, Y2; \
	VADDPS A2, Z2, Z2; \
	VEXTRACTF64X4 $1, A3, Y5; \
	VADDPS A3, Z5, Z5; \
	VHADDPS Y1, Y0, Y0; \
	VHADDPS Y5, Y2, Y2; \
	VHADDPS Y2, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS X1, X0, X0

// SETUP loads the byte constant C and the scale permutation, and points
// the row registers at the group of rows starting at row r.
#define SETUP(C) \
	MOVQ a+0(FP), BX; \
	MOVL C, AX; \
	VPBROADCASTB AX, Z3; \
	VPXORD Z4, Z4, Z4; \
	MOVL $1, AX; \
	VPBROADCASTD AX, Z5; \
	VINSERTI64X4 $1, Y5, Z4, Z4

#define GROUP \
	MOVQ A_R(BX), SI; \
	IMULQ A_RB(BX), SI; \
	ADDQ A_W(BX), SI; \
	MOVQ A_RB(BX), AX; \
	LEAQ (SI)(AX*1), DI; \
	LEAQ (DI)(AX*1), R12; \
	LEAQ (R12)(AX*1), R13; \
	MOVQ A_NB(BX), DX; \
	SHRQ $1, DX

#define ZERO16 \
	VPXORD Z16, Z16, Z16; VPXORD Z17, Z17, Z17; VPXORD Z18, Z18, Z18; VPXORD Z19, Z19, Z19; \
	VPXORD Z20, Z20, Z20; VPXORD Z21, Z21, Z21; VPXORD Z22, Z22, Z22; VPXORD Z23, Z23, Z23; \
	VPXORD Z24, Z24, Z24; VPXORD Z25, Z25, Z25; VPXORD Z26, Z26, Z26; VPXORD Z27, Z27, Z27; \
	VPXORD Z28, Z28, Z28; VPXORD Z29, Z29, Z29; VPXORD Z30, Z30, Z30; VPXORD Z31, Z31, Z31

#define LOADX4 \
	MOVQ (A_X+0)(BX), R8; \
	MOVQ (A_X+8)(BX), R9; \
	MOVQ (A_X+16)(BX), R10; \
	MOVQ (A_X+24)(BX), R11

// STORE4 reduces token T's four accumulators and stores them at its
// output's rows r…r+3.
#define STORE4(T, A0, A1, A2, A3) \
	REDUCE4(A0, A1, A2, A3); \
	MOVQ (A_Y+8*T)(BX), AX; \
	MOVQ A_R(BX), CX; \
	VMOVUPS X0, (AX)(CX*4)

// NEXT moves to the next group of rows, or jumps to done.
#define NEXT(loop, done) \
	MOVQ A_R(BX), AX; \
	ADDQ $4, AX; \
	MOVQ AX, A_R(BX); \
	CMPQ AX, A_ROWS(BX); \
	JLT loop; \
	JMP done

// func q8_0VNNI4(a *vnniArgs)
TEXT ·q8_0VNNI4(SB), NOSPLIT, $0-8
	SETUP($0x80)
q84group:
	GROUP
	LOADX4
	ZERO16
q84step:
	TESTQ DX, DX
	JZ    q84tail
	Q8W2(SI)
	ROW4(Z16, Z17, Z18, Z19)
	Q8W2(DI)
	ROW4(Z20, Z21, Z22, Z23)
	Q8W2(R12)
	ROW4(Z24, Z25, Z26, Z27)
	Q8W2(R13)
	ROW4(Z28, Z29, Z30, Z31)
	ADDQ $68, SI
	ADDQ $68, DI
	ADDQ $68, R12
	ADDQ $68, R13
	ADDQ $192, R8
	ADDQ $192, R9
	ADDQ $192, R10
	ADDQ $192, R11
	DECQ DX
	JMP  q84step
q84tail:
	TESTQ $1, A_NB(BX)
	JZ    q84store
	Q8W1(SI)
	ROW4(Z16, Z17, Z18, Z19)
	Q8W1(DI)
	ROW4(Z20, Z21, Z22, Z23)
	Q8W1(R12)
	ROW4(Z24, Z25, Z26, Z27)
	Q8W1(R13)
	ROW4(Z28, Z29, Z30, Z31)
q84store:
	STORE4(0, Z16, Z20, Z24, Z28)
	STORE4(1, Z17, Z21, Z25, Z29)
	STORE4(2, Z18, Z22, Z26, Z30)
	STORE4(3, Z19, Z23, Z27, Z31)
	NEXT(q84group, q84done)
q84done:
	VZEROUPPER
	RET

// func q8_0VNNI1(a *vnniArgs)
TEXT ·q8_0VNNI1(SB), NOSPLIT, $0-8
	SETUP($0x80)
q81group:
	GROUP
	MOVQ (A_X+0)(BX), R8
	VPXORD Z16, Z16, Z16
	VPXORD Z20, Z20, Z20
	VPXORD Z24, Z24, Z24
	VPXORD Z28, Z28, Z28
q81step:
	TESTQ DX, DX
	JZ    q81tail
	PREFETCHT0 PF(SI)
	PREFETCHT0 PF(DI)
	PREFETCHT0 PF(R12)
	PREFETCHT0 PF(R13)
	Q8W2(SI)
	PAIR(R8, Z16)
	Q8W2(DI)
	PAIR(R8, Z20)
	Q8W2(R12)
	PAIR(R8, Z24)
	Q8W2(R13)
	PAIR(R8, Z28)
	ADDQ $68, SI
	ADDQ $68, DI
	ADDQ $68, R12
	ADDQ $68, R13
	ADDQ $192, R8
	DECQ DX
	JMP  q81step
q81tail:
	TESTQ $1, A_NB(BX)
	JZ    q81store
	Q8W1(SI)
	PAIR(R8, Z16)
	Q8W1(DI)
	PAIR(R8, Z20)
	Q8W1(R12)
	PAIR(R8, Z24)
	Q8W1(R13)
	PAIR(R8, Z28)
q81store:
	STORE4(0, Z16, Z20, Z24, Z28)
	NEXT(q81group, q81done)
q81done:
	VZEROUPPER
	RET

// func q4_0VNNI4(a *vnniArgs)
TEXT ·q4_0VNNI4(SB), NOSPLIT, $0-8
	SETUP($0x0F)
q44group:
	GROUP
	LOADX4
	ZERO16
q44step:
	TESTQ DX, DX
	JZ    q44tail
	Q4W2(SI)
	ROW4(Z16, Z17, Z18, Z19)
	Q4W2(DI)
	ROW4(Z20, Z21, Z22, Z23)
	Q4W2(R12)
	ROW4(Z24, Z25, Z26, Z27)
	Q4W2(R13)
	ROW4(Z28, Z29, Z30, Z31)
	ADDQ $36, SI
	ADDQ $36, DI
	ADDQ $36, R12
	ADDQ $36, R13
	ADDQ $192, R8
	ADDQ $192, R9
	ADDQ $192, R10
	ADDQ $192, R11
	DECQ DX
	JMP  q44step
q44tail:
	TESTQ $1, A_NB(BX)
	JZ    q44store
	Q4W1(SI)
	ROW4(Z16, Z17, Z18, Z19)
	Q4W1(DI)
	ROW4(Z20, Z21, Z22, Z23)
	Q4W1(R12)
	ROW4(Z24, Z25, Z26, Z27)
	Q4W1(R13)
	ROW4(Z28, Z29, Z30, Z31)
q44store:
	STORE4(0, Z16, Z20, Z24, Z28)
	STORE4(1, Z17, Z21, Z25, Z29)
	STORE4(2, Z18, Z22, Z26, Z30)
	STORE4(3, Z19, Z23, Z27, Z31)
	NEXT(q44group, q44done)
q44done:
	VZEROUPPER
	RET

// func q4_0VNNI1(a *vnniArgs)
TEXT ·q4_0VNNI1(SB), NOSPLIT, $0-8
	SETUP($0x0F)
q41group:
	GROUP
	MOVQ (A_X+0)(BX), R8
	VPXORD Z16, Z16, Z16
	VPXORD Z20, Z20, Z20
	VPXORD Z24, Z24, Z24
	VPXORD Z28, Z28, Z28
q41step:
	TESTQ DX, DX
	JZ    q41tail
	PREFETCHT0 PF(SI)
	PREFETCHT0 PF(DI)
	PREFETCHT0 PF(R12)
	PREFETCHT0 PF(R13)
	Q4W2(SI)
	PAIR(R8, Z16)
	Q4W2(DI)
	PAIR(R8, Z20)
	Q4W2(R12)
	PAIR(R8, Z24)
	Q4W2(R13)
	PAIR(R8, Z28)
	ADDQ $36, SI
	ADDQ $36, DI
	ADDQ $36, R12
	ADDQ $36, R13
	ADDQ $192, R8
	DECQ DX
	JMP  q41step
q41tail:
	TESTQ $1, A_NB(BX)
	JZ    q41store
	Q4W1(SI)
	PAIR(R8, Z16)
	Q4W1(DI)
	PAIR(R8, Z20)
	Q4W1(R12)
	PAIR(R8, Z24)
	Q4W1(R13)
	PAIR(R8, Z28)
q41store:
	STORE4(0, Z16, Z20, Z24, Z28)
	NEXT(q41group, q41done)
q41done:
	VZEROUPPER
	RET

// func q8_0VNNI2(a *vnniArgs)
TEXT ·q8_0VNNI2(SB), NOSPLIT, $0-8
	SETUP($0x80)
q8_02group:
	GROUP
	MOVQ (A_X+0)(BX), R8
	MOVQ (A_X+8)(BX), R9
	VPXORD Z16, Z16, Z16; VPXORD Z17, Z17, Z17; VPXORD Z18, Z18, Z18; VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20; VPXORD Z21, Z21, Z21; VPXORD Z22, Z22, Z22; VPXORD Z23, Z23, Z23
q8_02step:
	TESTQ DX, DX
	JZ    q8_02tail
	Q8W2(SI)
	ROW2(Z16, Z17)
	Q8W2(DI)
	ROW2(Z18, Z19)
	Q8W2(R12)
	ROW2(Z20, Z21)
	Q8W2(R13)
	ROW2(Z22, Z23)
	ADDQ $68, SI
	ADDQ $68, DI
	ADDQ $68, R12
	ADDQ $68, R13
	ADDQ $192, R8
	ADDQ $192, R9
	DECQ DX
	JMP  q8_02step
q8_02tail:
	TESTQ $1, A_NB(BX)
	JZ    q8_02store
	Q8W1(SI)
	ROW2(Z16, Z17)
	Q8W1(DI)
	ROW2(Z18, Z19)
	Q8W1(R12)
	ROW2(Z20, Z21)
	Q8W1(R13)
	ROW2(Z22, Z23)
q8_02store:
	STORE4(0, Z16, Z18, Z20, Z22)
	STORE4(1, Z17, Z19, Z21, Z23)
	NEXT(q8_02group, q8_02done)
q8_02done:
	VZEROUPPER
	RET

// func q4_0VNNI2(a *vnniArgs)
TEXT ·q4_0VNNI2(SB), NOSPLIT, $0-8
	SETUP($0x0F)
q4_02group:
	GROUP
	MOVQ (A_X+0)(BX), R8
	MOVQ (A_X+8)(BX), R9
	VPXORD Z16, Z16, Z16; VPXORD Z17, Z17, Z17; VPXORD Z18, Z18, Z18; VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20; VPXORD Z21, Z21, Z21; VPXORD Z22, Z22, Z22; VPXORD Z23, Z23, Z23
q4_02step:
	TESTQ DX, DX
	JZ    q4_02tail
	Q4W2(SI)
	ROW2(Z16, Z17)
	Q4W2(DI)
	ROW2(Z18, Z19)
	Q4W2(R12)
	ROW2(Z20, Z21)
	Q4W2(R13)
	ROW2(Z22, Z23)
	ADDQ $36, SI
	ADDQ $36, DI
	ADDQ $36, R12
	ADDQ $36, R13
	ADDQ $192, R8
	ADDQ $192, R9
	DECQ DX
	JMP  q4_02step
q4_02tail:
	TESTQ $1, A_NB(BX)
	JZ    q4_02store
	Q4W1(SI)
	ROW2(Z16, Z17)
	Q4W1(DI)
	ROW2(Z18, Z19)
	Q4W1(R12)
	ROW2(Z20, Z21)
	Q4W1(R13)
	ROW2(Z22, Z23)
q4_02store:
	STORE4(0, Z16, Z18, Z20, Z22)
	STORE4(1, Z17, Z19, Z21, Z23)
	NEXT(q4_02group, q4_02done)
q4_02done:
	VZEROUPPER
	RET
