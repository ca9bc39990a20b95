//go:build amd64

#include "textflag.h"
#include "dot_avx2_amd64.h"

// Q8_0 and Q4_0 products in AVX2, FMA and F16C, one call for a run of
// rows (dot_asm_amd64.go says why assembly). Per block, as llama.cpp's
// AVX2 code: the weights' signs moved onto the activations (VPSIGNB), |w|
// times them in byte pairs (VPMADDUBSW), pairs of int16 to int32
// (VPMADDWD by ones), converted and multiplied by the block's two scales
// (f16 weight scale by F16C, times the activation scale) into one of two
// float accumulators. Every instruction is VEX-encoded, and VZEROUPPER
// ends each call, so the Go code around it pays no SSE/AVX transition.

// Q8DOT leaves in R the eight int32 partial sums of Σ w·x over the Q8_0
// block whose quants are at woff(SI) and its activations at xoff(BX).
#define Q8DOT(woff, xoff, R) \
	VMOVDQU woff(SI), R; \
	VMOVDQU xoff(BX), Y10; \
	VPSIGNB R, Y10, Y10; \
	VPABSB R, R; \
	VPMADDUBSW Y10, R, R; \
	VPMADDWD Y15, R, R

// Q4DOT is Q8DOT for the Q4_0 block whose 16 nibble bytes are at
// woff(SI): spread to 32 bytes (low nibbles, then high), less 8.
#define Q4DOT(woff, xoff, XR, R) \
	SPREAD4(woff, XR, R, Y14); \
	VPSUBB Y13, R, R; \
	VMOVDQU xoff(BX), Y10; \
	VPSIGNB R, Y10, Y10; \
	VPABSB R, R; \
	VPMADDUBSW Y10, R, R; \
	VPMADDWD Y15, R, R

// Q4DOTU leaves in R the eight int32 partial sums of Σ n·x over the Q4_0
// block whose nibbles n (0…15, unsigned: VPMADDUBSW's first operand as
// they are) are at woff(SI): Q4DOT's sums plus 8·Σx, which the caller
// takes off the reduced block sums (integers: exact in any order).
#define Q4DOTU(woff, xoff, XR, R) \
	SPREAD4(woff, XR, R, Y14); \
	VPMADDUBSW xoff(BX), R, R; \
	VPMADDWD Y15, R, R

// SCALED1 converts block sums R (eight int32 lanes, YR/its float) and
// adds them, times the block's weight scale (f16 at soff(SI), by F16C)
// times its activation scale at doff(DX), into ACC; XS/YS is a temporary.
#define SCALED1(soff, doff, YR, XS, YS, ACC) \
	VCVTDQ2PS YR, YR; \
	WIDEN1(soff, XS); \
	VMULSS doff(DX), XS, XS; \
	VBROADCASTSS XS, YS; \
	VFMADD231PS YS, YR, ACC

// REDUCE8I sums each of Y1…Y8's lanes into lane j of Y2 (block j's sum),
// as int32: VPHADDD twice within 128-bit halves, then the halves added.
#define REDUCE8I \
	VPHADDD Y2, Y1, Y1; \
	VPHADDD Y4, Y3, Y3; \
	VPHADDD Y3, Y1, Y1; \
	VPHADDD Y6, Y5, Y5; \
	VPHADDD Y8, Y7, Y7; \
	VPHADDD Y7, Y5, Y5; \
	VPERM2I128 $0x20, Y5, Y1, Y2; \
	VPERM2I128 $0x31, Y5, Y1, Y3; \
	VPADDD Y3, Y2, Y2

// REDUCE8 is REDUCE8I converted to float32.
#define REDUCE8 \
	REDUCE8I; \
	VCVTDQ2PS Y2, Y2

// SCALES8 leaves in Y9 the eight blocks' weight scales (f16 at stride
// bytes from (SI), widened by F16C) times their activation scales at (DX).
#define SCALES8(stride) \
	WIDEN8(stride); \
	VMULPS (DX), Y9, Y9

// func q8_0RowsAVX2(y *float32, w *byte, x *int8, d *float32, sum *int32, rows, nb int)
//
// sum is not read (q4_0RowsAVX2's signature, for one adapter).
TEXT ·q8_0RowsAVX2(SB), NOSPLIT, $0-56
	MOVQ y+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ rows+40(FP), R10
	MOVQ nb+48(FP), R11
	MOVL $0x00010001, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15        // int16 ones

q8row:
	TESTQ R10, R10
	JZ    q8done
	VXORPS Y0, Y0, Y0
	VXORPS Y12, Y12, Y12
	MOVQ x+16(FP), BX
	MOVQ d+24(FP), DX
	MOVQ R11, CX

	// Eight blocks a step: their sums reduced to one vector and scaled by
	// one FMA; the pairs and single blocks below take the rest.
q8group:
	CMPQ CX, $8
	JB   q8pair
	Q8DOT(2, 0, Y1)
	Q8DOT(36, 32, Y2)
	Q8DOT(70, 64, Y3)
	Q8DOT(104, 96, Y4)
	Q8DOT(138, 128, Y5)
	Q8DOT(172, 160, Y6)
	Q8DOT(206, 192, Y7)
	Q8DOT(240, 224, Y8)
	REDUCE8
	SCALES8(34)
	VFMADD231PS Y9, Y2, Y0
	ADDQ $272, SI
	ADDQ $256, BX
	ADDQ $32, DX
	SUBQ $8, CX
	JMP  q8group

q8pair:
	CMPQ CX, $2
	JB   q8single
	Q8DOT(2, 0, Y1)
	SCALED1(0, 0, Y1, X3, Y3, Y0)
	Q8DOT(36, 32, Y5)
	SCALED1(34, 4, Y5, X7, Y7, Y12)
	ADDQ $68, SI
	ADDQ $64, BX
	ADDQ $8, DX
	SUBQ $2, CX
	JMP  q8pair

q8single:
	TESTQ CX, CX
	JZ    q8rowend
	Q8DOT(2, 0, Y1)
	SCALED1(0, 0, Y1, X3, Y3, Y0)
	ADDQ $34, SI

q8rowend:
	VADDPS Y12, Y0, Y0
	HSUM(Y0, X0, (DI))
	ADDQ $4, DI
	DECQ R10
	JMP  q8row

q8done:
	VZEROUPPER
	RET

// func q4_0RowsAVX2(y *float32, w *byte, x *int8, d *float32, sum *int32, rows, nb int)
//
// Q4_0 blocks: the 16 bytes after the scale hold element j in the low
// nibble of byte j and element j+16 in its high nibble; n−8 is the value.
// Eight blocks at a time, the nibbles (unsigned) multiply the activations
// directly and 8·Σx per block (sum: the activations' Σq per block) comes
// off the block sums; a last one to seven blocks are spread to bytes, less
// 8, and go through Q8_0's loop. The block sums are the same integers
// either way.
TEXT ·q4_0RowsAVX2(SB), NOSPLIT, $0-56
	MOVQ y+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ rows+40(FP), R10
	MOVQ nb+48(FP), R11
	MOVL $0x00010001, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15        // int16 ones
	MOVL $0x0f0f0f0f, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14        // nibble mask
	MOVL $0x08080808, AX
	VMOVD AX, X13
	VPBROADCASTD X13, Y13        // eights

q4row:
	TESTQ R10, R10
	JZ    q4done
	VXORPS Y0, Y0, Y0
	VXORPS Y12, Y12, Y12
	MOVQ x+16(FP), BX
	MOVQ d+24(FP), DX
	MOVQ R11, CX
	MOVQ sum+32(FP), R9

q4group:
	CMPQ CX, $8
	JB   q4pair
	Q4DOTU(2, 0, X1, Y1)
	Q4DOTU(20, 32, X2, Y2)
	Q4DOTU(38, 64, X3, Y3)
	Q4DOTU(56, 96, X4, Y4)
	Q4DOTU(74, 128, X5, Y5)
	Q4DOTU(92, 160, X6, Y6)
	Q4DOTU(110, 192, X7, Y7)
	Q4DOTU(128, 224, X8, Y8)
	REDUCE8I
	VMOVDQU (R9), Y3
	VPSLLD $3, Y3, Y3
	VPSUBD Y3, Y2, Y2
	VCVTDQ2PS Y2, Y2
	SCALES8(18)
	VFMADD231PS Y9, Y2, Y0
	ADDQ $144, SI
	ADDQ $256, BX
	ADDQ $32, DX
	ADDQ $32, R9
	SUBQ $8, CX
	JMP  q4group

q4pair:
	CMPQ CX, $2
	JB   q4single
	Q4DOT(2, 0, X1, Y1)
	SCALED1(0, 0, Y1, X3, Y3, Y0)
	Q4DOT(20, 32, X5, Y5)
	SCALED1(18, 4, Y5, X7, Y7, Y12)
	ADDQ $36, SI
	ADDQ $64, BX
	ADDQ $8, DX
	SUBQ $2, CX
	JMP  q4pair

q4single:
	TESTQ CX, CX
	JZ    q4rowend
	Q4DOT(2, 0, X1, Y1)
	SCALED1(0, 0, Y1, X3, Y3, Y0)
	ADDQ $18, SI

q4rowend:
	VADDPS Y12, Y0, Y0
	HSUM(Y0, X0, (DI))
	ADDQ $4, DI
	DECQ R10
	JMP  q4row

q4done:
	VZEROUPPER
	RET

// func quantizeQ8AVX2(x *float32, q *int8, amax *float32, sum *int32, nb int)
//
// Q8_0 activation quantization of nb blocks of 32 (Activations.ensureQ8
// says how; this is its loop, bit for bit): per block the largest |x|
// into amax, q = round-to-even(x · (127/amax)) (0 where amax is 0), and
// Σq into sum. VCVTPS2DQ rounds to nearest even, as math.RoundToEven.
TEXT ·quantizeQ8AVX2(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ q+8(FP), DI
	MOVQ amax+16(FP), R8
	MOVQ sum+24(FP), R9
	MOVQ nb+32(FP), CX
	MOVL $0x7fffffff, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15        // |x| mask
	MOVL $0x42fe0000, AX         // 127.0
	VMOVD AX, X14
	VXORPS X13, X13, X13
	VMOVDQU q8order<>(SB), Y12

qzblock:
	TESTQ CX, CX
	JZ    qzdone
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	VANDPS Y15, Y0, Y4
	VANDPS Y15, Y1, Y5
	VANDPS Y15, Y2, Y6
	VANDPS Y15, Y3, Y7
	VMAXPS Y5, Y4, Y4
	VMAXPS Y7, Y6, Y6
	VMAXPS Y6, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VMAXPS X5, X4, X4
	VPERMILPS $0x4E, X4, X5
	VMAXPS X5, X4, X4
	VPERMILPS $0xB1, X4, X5
	VMAXPS X5, X4, X4            // amax in every lane
	VMOVSS X4, (R8)
	VDIVSS X4, X14, X5           // 127/amax
	VCMPSS $4, X13, X4, X6       // amax != 0
	VANDPS X6, X5, X5
	VBROADCASTSS X5, Y5
	VMULPS Y5, Y0, Y0
	VMULPS Y5, Y1, Y1
	VMULPS Y5, Y2, Y2
	VMULPS Y5, Y3, Y3
	VCVTPS2DQ Y0, Y0
	VCVTPS2DQ Y1, Y1
	VCVTPS2DQ Y2, Y2
	VCVTPS2DQ Y3, Y3
	VPADDD Y1, Y0, Y8
	VPADDD Y3, Y2, Y9
	VPADDD Y9, Y8, Y8
	VEXTRACTI128 $1, Y8, X9
	VPADDD X9, X8, X8
	VPSHUFD $0x4E, X8, X9
	VPADDD X9, X8, X8
	VPSHUFD $0xB1, X8, X9
	VPADDD X9, X8, X8
	VMOVD X8, (R9)
	VPACKSSDW Y1, Y0, Y0
	VPACKSSDW Y3, Y2, Y2
	VPACKSSWB Y2, Y0, Y0
	VPERMD Y0, Y12, Y0
	VMOVDQU Y0, (DI)
	ADDQ $128, SI
	ADDQ $32, DI
	ADDQ $4, R8
	ADDQ $4, R9
	DECQ CX
	JMP  qzblock

qzdone:
	VZEROUPPER
	RET

// q8order puts the packed bytes' 4-byte groups back in element order.
DATA q8order<>+0(SB)/4, $0
DATA q8order<>+4(SB)/4, $4
DATA q8order<>+8(SB)/4, $1
DATA q8order<>+12(SB)/4, $5
DATA q8order<>+16(SB)/4, $2
DATA q8order<>+20(SB)/4, $6
DATA q8order<>+24(SB)/4, $3
DATA q8order<>+28(SB)/4, $7
GLOBL q8order<>(SB), RODATA|NOPTR, $32
