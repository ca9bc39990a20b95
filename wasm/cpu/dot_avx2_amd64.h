// Macros shared by the AVX2 assembly products (dot_asm_amd64.s, one
// token; dot_tile_amd64.s, two): the steps whose every instruction both
// must run alike, for their results to be equal bit for bit.

// WIDEN8 leaves in Y9 the f16 scales of eight blocks stride bytes apart
// from (SI), widened by F16C (AX and X9 are temporaries).
#define WIDEN8(stride) \
	MOVWLZX (SI), AX; \
	VMOVD AX, X9; \
	VPINSRW $1, (1*stride)(SI), X9, X9; \
	VPINSRW $2, (2*stride)(SI), X9, X9; \
	VPINSRW $3, (3*stride)(SI), X9, X9; \
	VPINSRW $4, (4*stride)(SI), X9, X9; \
	VPINSRW $5, (5*stride)(SI), X9, X9; \
	VPINSRW $6, (6*stride)(SI), X9, X9; \
	VPINSRW $7, (7*stride)(SI), X9, X9; \
	VCVTPH2PS X9, Y9

// WIDEN1 leaves in XS the block's f16 scale at soff(SI), widened.
#define WIDEN1(soff, XS) \
	MOVWLZX soff(SI), AX; \
	VMOVD AX, XS; \
	VCVTPH2PS XS, XS

// SPREAD4 leaves in R (XR its low half) the Q4_0 block whose 16 nibble
// bytes are at woff(SI) spread to 32 bytes, low nibbles then high, each
// 0…15 (MASK: 0x0F bytes; X11 is a temporary).
#define SPREAD4(woff, XR, R, MASK) \
	VMOVDQU woff(SI), XR; \
	VPSRLW $4, XR, X11; \
	VINSERTI128 $1, X11, R, R; \
	VPAND MASK, R, R

// HSUM adds the eight lanes of the accumulator ACC (XACC its low half)
// and stores the sum at DST (X1 is a temporary).
#define HSUM(ACC, XACC, DST) \
	VEXTRACTF128 $1, ACC, X1; \
	VADDPS X1, XACC, XACC; \
	VHADDPS XACC, XACC, XACC; \
	VHADDPS XACC, XACC, XACC; \
	VMOVSS XACC, DST
