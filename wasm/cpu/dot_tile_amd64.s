//go:build amd64

#include "textflag.h"
#include "dot_avx2_amd64.h"

// Q8_0 and Q4_0 products in AVX2 for two tokens at once: the batched
// product of prefill and of several sequences per step (dot_asm_amd64.go
// registers them as the asm-avx2 kernels' tile). Each weight block is
// loaded, widened and made absolute once for both tokens, and its f16
// scales widened once; the per-token work is q8_0RowsAVX2's, instruction
// for instruction on the same values (the block sums are exact integers
// whatever their order of addition; every float operation is the
// one-token kernel's, on the same operands in the same order), so a
// token's results equal bit for bit what it gets alone.
//
// Registers: Y9 a block's weights (signed), Y10 their absolute values,
// Y11 a temporary, Y1…Y8 the per-token block sums, Y15 int16 ones;
// token 0's accumulators Y0 (and Y13 for the pairs' second blocks),
// token 1's Y12 (and Y14). SI walks the weights, BX and DX token 0's
// activations, scales and (Q4_0) Σq per block, R9; token 1's are at R12,
// R13 and R11 bytes from them.

// TOK leaves in S the eight int32 partial sums of the block in Y9/Y10
// times the token's activations at X (q8_0RowsAVX2's Q8DOT).
#define TOK(XA, S) \
	VMOVDQU XA, Y11; \
	VPSIGNB Y9, Y11, Y11; \
	VPMADDUBSW Y11, Y10, Y11; \
	VPMADDWD Y15, Y11, S

// W8 loads the Q8_0 block whose quants are at woff(SI).
#define W8(woff) \
	VMOVDQU woff(SI), Y9; \
	VPABSB Y9, Y10

// W4 loads the Q4_0 block whose 16 nibble bytes are at woff(SI): spread
// to 32 bytes (low nibbles, then high), less 8 (the last one to seven
// blocks of a row; eight at a time go through W4U).
#define W4(woff) \
	SPREAD4(woff, X9, Y9, nibbles<>(SB)); \
	VPSUBB eights<>(SB), Y9, Y9; \
	VPABSB Y9, Y10

// W4U loads the Q4_0 block's nibbles as they are (0…15, unsigned) into
// Y9, for TOKU.
#define W4U(woff) \
	SPREAD4(woff, X9, Y9, nibbles<>(SB))

// TOKU is TOK for W4U's unsigned nibbles n: Σ n·x, 8·Σx more than TOK's
// sums, which FIX4 takes off the reduced block sums (exact integers).
#define TOKU(XA, S) \
	VPMADDUBSW XA, Y9, S; \
	VPMADDWD Y15, S, S

// BLOCKU is BLOCK for W4U and TOKU.
#define BLOCKU(W, woff, xoff, S0, S1) \
	W4U(woff); \
	TOKU(xoff(BX), S0); \
	TOKU(xoff(BX)(R12*1), S1)

// FIX4 takes 8·Σx off the block sums Y5 (token 0) and Y7 (token 1).
#define FIX4 \
	VMOVDQU (R9), Y9; \
	VPSLLD $3, Y9, Y9; \
	VPSUBD Y9, Y5, Y5; \
	VMOVDQU (R9)(R11*1), Y9; \
	VPSLLD $3, Y9, Y9; \
	VPSUBD Y9, Y7, Y7

// NOFIX is FIX4 for Q8_0: nothing.
#define NOFIX

// BLOCK runs both tokens through the block loaded by W(woff), the
// activations at xoff, into S0 and S1.
#define BLOCK(W, woff, xoff, S0, S1) \
	W(woff); \
	TOK(xoff(BX), S0); \
	TOK(xoff(BX)(R12*1), S1)

// GROUP8 is eight blocks for both tokens through B (BLOCK or BLOCKU) with
// the block loader W, whose blocks are bb bytes with the quants at q: the
// sums reduced per token as REDUCE8 does (lane j block j's), FIX applied,
// converted, and added, times the weight scales times each
// token's activation scales, into Y0 and Y12.
#define GROUP8(B, W, bb, q, FIX) \
	B(W, (q+0*bb), 0, Y1, Y2); \
	B(W, (q+1*bb), 32, Y3, Y4); \
	VPHADDD Y3, Y1, Y1; \
	VPHADDD Y4, Y2, Y2; \
	B(W, (q+2*bb), 64, Y3, Y4); \
	B(W, (q+3*bb), 96, Y5, Y6); \
	VPHADDD Y5, Y3, Y3; \
	VPHADDD Y6, Y4, Y4; \
	VPHADDD Y3, Y1, Y1; \
	VPHADDD Y4, Y2, Y2; \
	B(W, (q+4*bb), 128, Y3, Y4); \
	B(W, (q+5*bb), 160, Y5, Y6); \
	VPHADDD Y5, Y3, Y3; \
	VPHADDD Y6, Y4, Y4; \
	B(W, (q+6*bb), 192, Y5, Y6); \
	B(W, (q+7*bb), 224, Y7, Y8); \
	VPHADDD Y7, Y5, Y5; \
	VPHADDD Y8, Y6, Y6; \
	VPHADDD Y5, Y3, Y3; \
	VPHADDD Y6, Y4, Y4; \
	VPERM2I128 $0x20, Y3, Y1, Y5; \
	VPERM2I128 $0x31, Y3, Y1, Y6; \
	VPADDD Y6, Y5, Y5; \
	VPERM2I128 $0x20, Y4, Y2, Y7; \
	VPERM2I128 $0x31, Y4, Y2, Y8; \
	VPADDD Y8, Y7, Y7; \
	FIX; \
	VCVTDQ2PS Y5, Y5; \
	VCVTDQ2PS Y7, Y7; \
	WIDEN8(bb); \
	VMULPS (DX), Y9, Y10; \
	VFMADD231PS Y10, Y5, Y0; \
	VMULPS (DX)(R13*1), Y9, Y10; \
	VFMADD231PS Y10, Y7, Y12

// SCALED2 converts the block sums S0, S1 of both tokens and adds them,
// times the block's weight scale (f16 at soff(SI)) times each token's
// activation scale at doff, into A0 and A1 (q8_0RowsAVX2's SCALED1).
#define SCALED2(soff, doff, S0, S1, A0, A1) \
	WIDEN1(soff, X9); \
	VCVTDQ2PS S0, S0; \
	VMULSS doff(DX), X9, X10; \
	VBROADCASTSS X10, Y10; \
	VFMADD231PS Y10, S0, A0; \
	VCVTDQ2PS S1, S1; \
	VMULSS doff(DX)(R13*1), X9, X10; \
	VBROADCASTSS X10, Y10; \
	VFMADD231PS Y10, S1, A1

// ROWEND stores the row's two sums: each token's accumulators added and
// reduced as q8_0RowsAVX2 does.
#define ROWEND \
	VADDPS Y13, Y0, Y0; \
	HSUM(Y0, X0, (DI)); \
	VADDPS Y14, Y12, Y12; \
	HSUM(Y12, X12, (R8)); \
	ADDQ $4, DI; \
	ADDQ $4, R8

// PROLOGUE loads the arguments and the constant.
#define PROLOGUE \
	MOVQ y0+0(FP), DI; \
	MOVQ y1+8(FP), R8; \
	MOVQ w+16(FP), SI; \
	MOVQ x1+32(FP), R12; \
	SUBQ x0+24(FP), R12; \
	MOVQ d1+48(FP), R13; \
	SUBQ d0+40(FP), R13; \
	MOVQ sum1+64(FP), R11; \
	SUBQ sum0+56(FP), R11; \
	MOVQ rows+72(FP), R10; \
	MOVL $0x00010001, AX; \
	VMOVD AX, X15; \
	VPBROADCASTD X15, Y15

// ROWSTART zeroes the accumulators and points at the activations' start.
#define ROWSTART \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y12, Y12, Y12; \
	VXORPS Y13, Y13, Y13; \
	VXORPS Y14, Y14, Y14; \
	MOVQ x0+24(FP), BX; \
	MOVQ d0+40(FP), DX; \
	MOVQ sum0+56(FP), R9; \
	MOVQ nb+80(FP), CX

// func q8_0Rows2AVX2(y0, y1 *float32, w *byte, x0, x1 *int8, d0, d1 *float32, sum0, sum1 *int32, rows, nb int)
TEXT ·q8_0Rows2AVX2(SB), NOSPLIT, $0-88
	PROLOGUE

q8row:
	TESTQ R10, R10
	JZ    q8done
	ROWSTART

q8group:
	CMPQ CX, $8
	JB   q8pair
	GROUP8(BLOCK, W8, 34, 2, NOFIX)
	ADDQ $272, SI
	ADDQ $256, BX
	ADDQ $32, DX
	SUBQ $8, CX
	JMP  q8group

q8pair:
	CMPQ CX, $2
	JB   q8single
	BLOCK(W8, 2, 0, Y1, Y2)
	BLOCK(W8, 36, 32, Y5, Y6)
	SCALED2(0, 0, Y1, Y2, Y0, Y12)
	SCALED2(34, 4, Y5, Y6, Y13, Y14)
	ADDQ $68, SI
	ADDQ $64, BX
	ADDQ $8, DX
	SUBQ $2, CX
	JMP  q8pair

q8single:
	TESTQ CX, CX
	JZ    q8rowend
	BLOCK(W8, 2, 0, Y1, Y2)
	SCALED2(0, 0, Y1, Y2, Y0, Y12)
	ADDQ $34, SI

q8rowend:
	ROWEND
	DECQ R10
	JMP  q8row

q8done:
	VZEROUPPER
	RET

// func q4_0Rows2AVX2(y0, y1 *float32, w *byte, x0, x1 *int8, d0, d1 *float32, sum0, sum1 *int32, rows, nb int)
TEXT ·q4_0Rows2AVX2(SB), NOSPLIT, $0-88
	PROLOGUE

q4row:
	TESTQ R10, R10
	JZ    q4done
	ROWSTART

q4group:
	CMPQ CX, $8
	JB   q4pair
	GROUP8(BLOCKU, W4, 18, 2, FIX4)
	ADDQ $144, SI
	ADDQ $256, BX
	ADDQ $32, DX
	ADDQ $32, R9
	SUBQ $8, CX
	JMP  q4group

q4pair:
	CMPQ CX, $2
	JB   q4single
	BLOCK(W4, 2, 0, Y1, Y2)
	BLOCK(W4, 20, 32, Y5, Y6)
	SCALED2(0, 0, Y1, Y2, Y0, Y12)
	SCALED2(18, 4, Y5, Y6, Y13, Y14)
	ADDQ $36, SI
	ADDQ $64, BX
	ADDQ $8, DX
	SUBQ $2, CX
	JMP  q4pair

q4single:
	TESTQ CX, CX
	JZ    q4rowend
	BLOCK(W4, 2, 0, Y1, Y2)
	SCALED2(0, 0, Y1, Y2, Y0, Y12)
	ADDQ $18, SI

q4rowend:
	ROWEND
	DECQ R10
	JMP  q4row

q4done:
	VZEROUPPER
	RET

DATA nibbles<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA nibbles<>+8(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA nibbles<>+16(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA nibbles<>+24(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL nibbles<>(SB), RODATA|NOPTR, $32

DATA eights<>+0(SB)/8, $0x0808080808080808
DATA eights<>+8(SB)/8, $0x0808080808080808
DATA eights<>+16(SB)/8, $0x0808080808080808
DATA eights<>+24(SB)/8, $0x0808080808080808
GLOBL eights<>(SB), RODATA|NOPTR, $32
