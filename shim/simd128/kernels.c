// kernels.c: the browser CPU path's quantized products in WebAssembly
// SIMD128, built by scripts/build-kernels.sh into kernels.wasm (committed:
// `make serve` needs no C compiler; `make check` rebuilds it and compares).
//
// The module imports one shared WebAssembly.Memory, which shim/cpupool.js
// gives to every thread of its pool: the weights, the activations and the
// results live there, and a job (job_t) says what to compute. Every thread
// calls wi_work on the same job and claims chunks of its rows with an
// atomic counter until none is left, so a slow or late thread only takes
// fewer chunks.
//
// The activations come quantized as llama.cpp quantizes them (Q8_0: 32
// int8 quants and one f16-rounded scale per block, computed by the Go
// engine, wasm/cpu), so the integer block sums are exact; only the order
// of the float additions differs from the Go reference (four lanes, then
// the lanes summed), as it does in llama.cpp's own vector code.
//
// The kernels use no shadow stack (no local has its address taken): the
// threads' instances share the memory but each starts its stack pointer at
// the same address, so a kernel that spilled to the stack would have its
// threads overwrite each other. scripts/build-kernels.sh checks that no
// function touches __stack_pointer.
#include <stdint.h>
#include <wasm_simd128.h>

// A job: every field is an int32 (JS writes them through an Int32Array);
// offsets are byte addresses in the shared memory. A header says what to
// compute and how its units (a product's rows, attention's row-head
// items, SiLU's elements) are chunked; the op's arguments follow.
typedef struct {
  int32_t w;         // the weight: rows × row_bytes
  int32_t row_bytes; // one row's bytes
  int32_t cols;      // elements per row
  int32_t ntok;      // tokens (at least 1)
  int32_t x;         // token t's activations at x + t·xstride: int8 quants (Q8_0 for
  int32_t xstride;   // Q8_0/Q4_0, Q8_K for the K-quants) or floats (F32, F16)
  int32_t d;         // token t's float scales (one a block) at d + t·dstride
  int32_t dstride;
  int32_t s;         // token t's int32 sums of 16 quants (Q8_K) at s + t·sstride
  int32_t sstride;
  int32_t y;         // token t's float results (rows) at y + t·ystride
  int32_t ystride;
} product_t;

// products_t: units are the rows of one or more weights that share their
// activations (Q, K and V; gate and up), one after another: segment i
// (seg_t, at desc + 52·i) has rows of its own and a product_t whose
// activations are every segment's.
typedef struct {
  int32_t rows;
  product_t p;
} seg_t;

typedef struct {
  int32_t segs;
  int32_t desc;
} products_t;

// attend_t: units are rows × heads items; row i's descriptor (five
// int32s at desc + 20·i) holds the offsets of its query (heads × head_dim
// floats), its output (the same), its layer's keys and values (positions
// × kv_stride floats, rotated keys) and the positions it attends to.
typedef struct {
  int32_t desc;
  int32_t heads;
  int32_t group;      // query heads per KV head
  int32_t head_dim;
  int32_t kv_stride;  // floats from one position's keys to the next
  int32_t scale;      // 1/sqrt(head_dim), as float bits
  int32_t scores;     // scratch: span floats per item
  int32_t span;
} attend_t;

// silu_t: units are elements; out[i] = SiLU(gate[i]) · up[i] (out apart
// from gate, so that a job run twice, cpupool.js's fallback, gives the
// same result).
typedef struct {
  int32_t gate;
  int32_t up;
  int32_t out;
} silu_t;

typedef struct {
  int32_t op;     // OP_*
  int32_t units;  // what the chunks divide
  int32_t chunk;  // units per chunk
  int32_t chunks;
  int32_t next;   // the next chunk to claim (atomic)
  int32_t done;   // chunks finished (atomic)
  union {
    products_t p;
    attend_t a;
    silu_t s;
    int32_t pad[14];
  } args;
} job_t;

enum { OP_Q8_0 = 1, OP_Q4_0 = 2, OP_Q4_K = 3, OP_Q6_K = 4, OP_F16 = 5, OP_F32 = 6, OP_SILU = 7, OP_ATTEND = 8 };

// f16 → f32 for every half, filled once by wi_init: a load per block
// instead of a dozen integer operations.
static float f16_table[65536];

static float f16_to_f32(uint32_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13); // inf, nan
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else { // subnormal: normalise
    exp = 113;
    while ((man & 0x400) == 0) {
      man <<= 1;
      exp--;
    }
    bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
  }
  union { uint32_t u; float f; } v = {bits};
  return v.f;
}

// wi_init fills the tables; JS calls it once, on the first instance,
// before any job.
__attribute__((export_name("wi_init"))) void wi_init(void) {
  for (uint32_t h = 0; h < 65536; h++) f16_table[h] = f16_to_f32(h);
}

static inline float hsum(v128_t v) {
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
         (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

static inline uint32_t load16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }

// block_dot is Σ w·x over one block of 32, as four i32 lanes; w is the
// block's weights widened to i16 (four vectors of eight), x its 32 quants.
static inline v128_t block_dot(v128_t w0, v128_t w1, v128_t w2, v128_t w3, const int8_t *x) {
  v128_t x0 = wasm_v128_load(x), x1 = wasm_v128_load(x + 16);
  v128_t s = wasm_i32x4_dot_i16x8(w0, wasm_i16x8_extend_low_i8x16(x0));
  s = wasm_i32x4_add(s, wasm_i32x4_dot_i16x8(w1, wasm_i16x8_extend_high_i8x16(x0)));
  s = wasm_i32x4_add(s, wasm_i32x4_dot_i16x8(w2, wasm_i16x8_extend_low_i8x16(x1)));
  return wasm_i32x4_add(s, wasm_i32x4_dot_i16x8(w3, wasm_i16x8_extend_high_i8x16(x1)));
}

// widen_q8_0 and widen_q4_0 load one block's 32 weights as four vectors
// of eight i16.
static inline __attribute__((always_inline)) void widen_q8_0(const uint8_t *wb, v128_t *w0, v128_t *w1,
                                                             v128_t *w2, v128_t *w3) {
  v128_t a = wasm_v128_load(wb + 2), c = wasm_v128_load(wb + 18);
  *w0 = wasm_i16x8_extend_low_i8x16(a);
  *w1 = wasm_i16x8_extend_high_i8x16(a);
  *w2 = wasm_i16x8_extend_low_i8x16(c);
  *w3 = wasm_i16x8_extend_high_i8x16(c);
}

static inline __attribute__((always_inline)) void widen_q4_0(const uint8_t *wb, v128_t *w0, v128_t *w1,
                                                             v128_t *w2, v128_t *w3) {
  v128_t q = wasm_v128_load(wb + 2);
  v128_t eight = wasm_i8x16_splat(8);
  v128_t a = wasm_i8x16_sub(wasm_v128_and(q, wasm_i8x16_splat(0x0f)), eight);
  v128_t c = wasm_i8x16_sub(wasm_u8x16_shr(q, 4), eight);
  *w0 = wasm_i16x8_extend_low_i8x16(a);
  *w1 = wasm_i16x8_extend_high_i8x16(a);
  *w2 = wasm_i16x8_extend_low_i8x16(c);
  *w3 = wasm_i16x8_extend_high_i8x16(c);
}

// acc_token adds one token's block product into its accumulator: the
// integer sum converted, times the weight's scale times the token's.
#define ACC_TOKEN(ACC, T)                                                             \
  ACC = wasm_f32x4_add(ACC, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(block_dot(       \
                                               w0, w1, w2, w3, xb + (T) * xs)),       \
                                           wasm_f32x4_splat(dw * *(const float *)(    \
                                               (const uint8_t *)db + (T) * ds))))

// rows_nt computes rows [lo, hi) for NT tokens from token t0, widening
// each weight block once for all NT; BB is a block's bytes and WIDEN its
// loader. Inlined with a constant NT, so every accumulator is a local and
// no pointer array is needed (kernels.c's first comment says why that
// matters). Q4_0's nibbles become n−8, the signed values the Go reference
// multiplies.
static inline __attribute__((always_inline)) void rows_nt(const product_t *j, int lo, int hi, int t0,
                                                          const int NT, const int BB,
                                                          const int q4) {
  const int xs = j->xstride, ds = j->dstride, ys = j->ystride, nb = j->cols / 32;
  const int8_t *x0 = (const int8_t *)(uintptr_t)(j->x + t0 * xs);
  const float *d0 = (const float *)(uintptr_t)(j->d + t0 * ds);
  uint8_t *y0 = (uint8_t *)(uintptr_t)(j->y + t0 * ys);
  for (int r = lo; r < hi; r++) {
    const uint8_t *wb = (const uint8_t *)(uintptr_t)j->w + r * j->row_bytes;
    v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
    for (int b = 0; b < nb; b++, wb += BB) {
      v128_t w0, w1, w2, w3;
      if (q4)
        widen_q4_0(wb, &w0, &w1, &w2, &w3);
      else
        widen_q8_0(wb, &w0, &w1, &w2, &w3);
      const float dw = f16_table[load16(wb)];
      const int8_t *xb = x0 + 32 * b;
      const float *db = d0 + b;
      ACC_TOKEN(a0, 0);
      if (NT > 1) ACC_TOKEN(a1, 1);
      if (NT > 2) ACC_TOKEN(a2, 2);
      if (NT > 3) ACC_TOKEN(a3, 3);
    }
    ((float *)y0)[r] = hsum(a0);
    if (NT > 1) ((float *)(y0 + ys))[r] = hsum(a1);
    if (NT > 2) ((float *)(y0 + 2 * ys))[r] = hsum(a2);
    if (NT > 3) ((float *)(y0 + 3 * ys))[r] = hsum(a3);
  }
}

// ---- K-quants (llama.cpp's layouts, as wasm/cpu's unpackK reads them),
// against Q8_K activations: 256 int8 quants, a float scale and sixteen
// sums of 16 quants per block. The integer sums are exact and the float
// expression per block is the Go reference's (dotK), so the results equal
// it bit for bit; only several tokens share a weight block's unpacking.

// dot16 is Σ w·x over 16 int8 pairs, as four i32 lanes.
static inline v128_t dot16(v128_t w, const int8_t *x) {
  v128_t xv = wasm_v128_load(x);
  return wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(w), wasm_i16x8_extend_low_i8x16(xv)),
                        wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(w), wasm_i16x8_extend_high_i8x16(xv)));
}

static inline int32_t hsum_i32(v128_t v) {
  return (wasm_i32x4_extract_lane(v, 0) + wasm_i32x4_extract_lane(v, 1)) +
         (wasm_i32x4_extract_lane(v, 2) + wasm_i32x4_extract_lane(v, 3));
}

#define TOKEN_PTRS(T)                                                           \
  const int8_t *xq##T = (const int8_t *)(uintptr_t)(j->x + (t0 + T) * j->xstride); \
  const float *dk##T = (const float *)(uintptr_t)(j->d + (t0 + T) * j->dstride);   \
  const int32_t *bs##T = (const int32_t *)(uintptr_t)(j->s + (t0 + T) * j->sstride); \
  float *y##T = (float *)(uintptr_t)(j->y + (t0 + T) * j->ystride);

// q4_k_rows_nt: each block's 8 six-bit scales and mins, then per 64
// elements the nibbles, low ones for the first 32 and high for the rest.
static inline __attribute__((always_inline)) void q4_k_rows_nt(const product_t *j, int lo, int hi, int t0,
                                                               const int NT) {
  TOKEN_PTRS(0) TOKEN_PTRS(1) TOKEN_PTRS(2) TOKEN_PTRS(3)
  const int nb = j->cols / 256;
  const v128_t m4 = wasm_i8x16_splat(0x0f);
  for (int r = lo; r < hi; r++) {
    const uint8_t *blk = (const uint8_t *)(uintptr_t)j->w + r * j->row_bytes;
    float acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
    for (int b = 0; b < nb; b++, blk += 144) {
      const float d = f16_table[load16(blk)], dmin = f16_table[load16(blk + 2)];
      const uint8_t *q = blk + 4;
      int32_t sc[8], mn[8]; // unrolled below, so they stay in locals
#pragma clang loop unroll(full)
      for (int k = 0; k < 4; k++) {
        sc[k] = q[k] & 63;
        mn[k] = q[k + 4] & 63;
        sc[k + 4] = (q[k + 8] & 0xf) | ((q[k] >> 6) << 4);
        mn[k + 4] = (q[k + 8] >> 4) | ((q[k + 4] >> 6) << 4);
      }
      v128_t i0 = wasm_i32x4_splat(0), i1 = i0, i2 = i0, i3 = i0;
#pragma clang loop unroll(full)
      for (int c = 0; c < 4; c++) {
        v128_t a = wasm_v128_load(blk + 16 + 32 * c), e = wasm_v128_load(blk + 32 + 32 * c);
        v128_t l0 = wasm_v128_and(a, m4), l1 = wasm_v128_and(e, m4);
        v128_t h0 = wasm_u8x16_shr(a, 4), h1 = wasm_u8x16_shr(e, 4);
        v128_t s_lo = wasm_i32x4_splat(sc[2 * c]), s_hi = wasm_i32x4_splat(sc[2 * c + 1]);
        const int off = 256 * b + 64 * c;
#define K4_TOKEN(T)                                                                          \
  i##T = wasm_i32x4_add(i##T, wasm_i32x4_add(                                                \
      wasm_i32x4_mul(wasm_i32x4_add(dot16(l0, xq##T + off), dot16(l1, xq##T + off + 16)), s_lo), \
      wasm_i32x4_mul(wasm_i32x4_add(dot16(h0, xq##T + off + 32), dot16(h1, xq##T + off + 48)), s_hi)));
        K4_TOKEN(0)
        if (NT > 1) K4_TOKEN(1)
        if (NT > 2) K4_TOKEN(2)
        if (NT > 3) K4_TOKEN(3)
#undef K4_TOKEN
      }
#define K4_SUM(T)                                                                  \
  {                                                                                \
    const int32_t *bsb = bs##T + 16 * b;                                           \
    int32_t msum = 0;                                                              \
    _Pragma("clang loop unroll(full)")                                             \
    for (int k = 0; k < 8; k++) msum += mn[k] * (bsb[2 * k] + bsb[2 * k + 1]);     \
    const float da = dk##T[b];                                                     \
    acc##T += d * da * (float)hsum_i32(i##T) - dmin * da * (float)msum;            \
  }
      K4_SUM(0)
      if (NT > 1) K4_SUM(1)
      if (NT > 2) K4_SUM(2)
      if (NT > 3) K4_SUM(3)
#undef K4_SUM
    }
    y0[r] = acc0;
    if (NT > 1) y1[r] = acc1;
    if (NT > 2) y2[r] = acc2;
    if (NT > 3) y3[r] = acc3;
  }
}

// q6_k_rows_nt: per half block, 64 bytes of low nibbles and 32 of two-bit
// high parts make 128 six-bit values, minus 32, with an int8 scale per 16.
static inline __attribute__((always_inline)) void q6_k_rows_nt(const product_t *j, int lo, int hi, int t0,
                                                               const int NT) {
  TOKEN_PTRS(0) TOKEN_PTRS(1) TOKEN_PTRS(2) TOKEN_PTRS(3)
  (void)bs0; (void)bs1; (void)bs2; (void)bs3;
  const int nb = j->cols / 256;
  const v128_t m4 = wasm_i8x16_splat(0x0f), m2 = wasm_i8x16_splat(3), k32 = wasm_i8x16_splat(32);
  for (int r = lo; r < hi; r++) {
    const uint8_t *blk = (const uint8_t *)(uintptr_t)j->w + r * j->row_bytes;
    float acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
    for (int b = 0; b < nb; b++, blk += 210) {
      const int8_t *sc = (const int8_t *)(blk + 192);
      const float d = f16_table[load16(blk + 208)];
      v128_t i0 = wasm_i32x4_splat(0), i1 = i0, i2 = i0, i3 = i0;
      for (int half = 0; half < 2; half++) {
        const uint8_t *l4 = blk + 64 * half, *h2 = blk + 128 + 32 * half;
        for (int l0 = 0; l0 < 32; l0 += 16) {
          v128_t a = wasm_v128_load(l4 + l0), c = wasm_v128_load(l4 + 32 + l0), h = wasm_v128_load(h2 + l0);
          v128_t q0 = wasm_i8x16_sub(wasm_v128_or(wasm_v128_and(a, m4), wasm_i8x16_shl(wasm_v128_and(h, m2), 4)), k32);
          v128_t q1 = wasm_i8x16_sub(wasm_v128_or(wasm_v128_and(c, m4), wasm_i8x16_shl(wasm_v128_and(wasm_u8x16_shr(h, 2), m2), 4)), k32);
          v128_t q2 = wasm_i8x16_sub(wasm_v128_or(wasm_u8x16_shr(a, 4), wasm_i8x16_shl(wasm_v128_and(wasm_u8x16_shr(h, 4), m2), 4)), k32);
          v128_t q3 = wasm_i8x16_sub(wasm_v128_or(wasm_u8x16_shr(c, 4), wasm_i8x16_shl(wasm_u8x16_shr(h, 6), 4)), k32);
          const int e = 128 * half + l0, s0 = 8 * half + l0 / 16;
          v128_t c0 = wasm_i32x4_splat(sc[s0]), c1 = wasm_i32x4_splat(sc[s0 + 2]);
          v128_t c2 = wasm_i32x4_splat(sc[s0 + 4]), c3 = wasm_i32x4_splat(sc[s0 + 6]);
#define K6_TOKEN(T)                                                                        \
  {                                                                                        \
    const int8_t *x = xq##T + 256 * b + e;                                                 \
    i##T = wasm_i32x4_add(i##T, wasm_i32x4_add(wasm_i32x4_add(wasm_i32x4_mul(dot16(q0, x), c0),      \
                                                              wasm_i32x4_mul(dot16(q1, x + 32), c1)), \
                                               wasm_i32x4_add(wasm_i32x4_mul(dot16(q2, x + 64), c2),  \
                                                              wasm_i32x4_mul(dot16(q3, x + 96), c3)))); \
  }
          K6_TOKEN(0)
          if (NT > 1) K6_TOKEN(1)
          if (NT > 2) K6_TOKEN(2)
          if (NT > 3) K6_TOKEN(3)
#undef K6_TOKEN
        }
      }
      acc0 += d * dk0[b] * (float)hsum_i32(i0);
      if (NT > 1) acc1 += d * dk1[b] * (float)hsum_i32(i1);
      if (NT > 2) acc2 += d * dk2[b] * (float)hsum_i32(i2);
      if (NT > 3) acc3 += d * dk3[b] * (float)hsum_i32(i3);
    }
    y0[r] = acc0;
    if (NT > 1) y1[r] = acc1;
    if (NT > 2) y2[r] = acc2;
    if (NT > 3) y3[r] = acc3;
  }
}

// ---- Float weights against float activations (F16 weights: the
// activations f16-rounded, as the Go reference's dotHalf takes them).
// Four lanes by element index mod 4, summed (0+1)+(2+3): for F32 the Go
// reference's own order (dotF32), bit for bit.

// f16x4 converts four halves (in the low 16 bits of each lane) to floats:
// the magnitude shifted into place and scaled by 2^112 (exact for normal
// and subnormal halves), infinities and NaNs given the full exponent.
static inline v128_t f16x4(v128_t h) {
  v128_t mag = wasm_v128_and(h, wasm_i32x4_splat(0x7fff));
  v128_t f = wasm_f32x4_mul(wasm_i32x4_shl(mag, 13), wasm_f32x4_splat(0x1p112f));
  v128_t special = wasm_i32x4_ge(mag, wasm_i32x4_splat(0x7c00));
  f = wasm_v128_bitselect(wasm_v128_or(wasm_i32x4_shl(mag, 13), wasm_i32x4_splat(0x70000000)), f, special);
  // 0x7c00 << 13 | 0x70000000 = 0x7f800000: inf (NaN keeps its mantissa)
  return wasm_v128_or(f, wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_splat(0x8000)), 16));
}

static inline __attribute__((always_inline)) void float_rows_nt(const product_t *j, int lo, int hi, int t0,
                                                                const int NT, const int half) {
  TOKEN_PTRS(0) TOKEN_PTRS(1) TOKEN_PTRS(2) TOKEN_PTRS(3)
  (void)dk0; (void)dk1; (void)dk2; (void)dk3; (void)bs0; (void)bs1; (void)bs2; (void)bs3;
  const float *x0 = (const float *)xq0, *x1 = (const float *)xq1, *x2 = (const float *)xq2, *x3 = (const float *)xq3;
  const int n = j->cols, n4 = n & ~3;
  for (int r = lo; r < hi; r++) {
    const uint8_t *row = (const uint8_t *)(uintptr_t)j->w + r * j->row_bytes;
    v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
    for (int i = 0; i < n4; i += 4) {
      v128_t w = half ? f16x4(wasm_u32x4_load16x4(row + 2 * i)) : wasm_v128_load(row + 4 * i);
      a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(w, wasm_v128_load(x0 + i)));
      if (NT > 1) a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(w, wasm_v128_load(x1 + i)));
      if (NT > 2) a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(w, wasm_v128_load(x2 + i)));
      if (NT > 3) a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(w, wasm_v128_load(x3 + i)));
    }
    float s0 = wasm_f32x4_extract_lane(a0, 0), s1 = 0, s2 = 0, s3 = 0;
    if (NT > 1) s1 = wasm_f32x4_extract_lane(a1, 0);
    if (NT > 2) s2 = wasm_f32x4_extract_lane(a2, 0);
    if (NT > 3) s3 = wasm_f32x4_extract_lane(a3, 0);
    for (int i = n4; i < n; i++) { // a tail goes into lane 0, as in dotF32
      float w = half ? f16_table[load16(row + 2 * i)] : ((const float *)row)[i];
      s0 += w * x0[i];
      if (NT > 1) s1 += w * x1[i];
      if (NT > 2) s2 += w * x2[i];
      if (NT > 3) s3 += w * x3[i];
    }
#define F_SUM(T, S) ((S + wasm_f32x4_extract_lane(a##T, 1)) + (wasm_f32x4_extract_lane(a##T, 2) + wasm_f32x4_extract_lane(a##T, 3)))
    y0[r] = F_SUM(0, s0);
    if (NT > 1) y1[r] = F_SUM(1, s1);
    if (NT > 2) y2[r] = F_SUM(2, s2);
    if (NT > 3) y3[r] = F_SUM(3, s3);
#undef F_SUM
  }
}

// DISPATCH_NT makes NAME, each type's kernel for 1 to 4 tokens: CALL(N)
// inlines its rows for a constant N, so its accumulators stay in locals.
#define DISPATCH_NT(NAME, CALL)                                      \
  static void NAME(const product_t *j, int lo, int hi, int t0, int nt) { \
    switch (nt) {                                                    \
    case 4: CALL(4); break;                                          \
    case 3: CALL(3); break;                                          \
    case 2: CALL(2); break;                                          \
    default: CALL(1); break;                                         \
    }                                                                \
  }
#define CALL_Q80(N) rows_nt(j, lo, hi, t0, N, 34, 0)
#define CALL_Q40(N) rows_nt(j, lo, hi, t0, N, 18, 1)
#define CALL_Q4K(N) q4_k_rows_nt(j, lo, hi, t0, N)
#define CALL_Q6K(N) q6_k_rows_nt(j, lo, hi, t0, N)
#define CALL_F16(N) float_rows_nt(j, lo, hi, t0, N, 1)
#define CALL_F32(N) float_rows_nt(j, lo, hi, t0, N, 0)
DISPATCH_NT(q8_0_rows, CALL_Q80)
DISPATCH_NT(q4_0_rows, CALL_Q40)
DISPATCH_NT(q4_k_rows, CALL_Q4K)
DISPATCH_NT(q6_k_rows, CALL_Q6K)
DISPATCH_NT(f16_rows, CALL_F16)
DISPATCH_NT(f32_rows, CALL_F32)

// run_rows computes rows [lo, hi) for every token of the product, four at
// a time (each weight block read once for four), then the rest.
static void run_rows(int op, const product_t *j, int lo, int hi) {
  void (*kernel)(const product_t *, int, int, int, int);
  switch (op) {
  case OP_Q4_0: kernel = q4_0_rows; break;
  case OP_Q4_K: kernel = q4_k_rows; break;
  case OP_Q6_K: kernel = q6_k_rows; break;
  case OP_F16: kernel = f16_rows; break;
  case OP_F32: kernel = f32_rows; break;
  default: kernel = q8_0_rows; break;
  }
  for (int t = 0; t < j->ntok; t += 4) kernel(j, lo, hi, t, j->ntok - t < 4 ? j->ntok - t : 4);
}

// ---- SiLU and attention: the float work between the products. Their
// results equal the Go engine's on js/wasm bit for bit (wasm/model's
// forward and attention): the same float32 and float64 operations in the
// same order, and Go's own exp, ported below, in place of a libm.

typedef union { double f; uint64_t u; } f64bits;

// ldexp_go is Go's math.Ldexp as its portable code computes it (js/wasm
// has no assembly for it): frac · 2^exp, denormals included.
static double ldexp_go(double frac, int exp) {
  if (frac == 0) return frac;
  f64bits x = {frac};
  if (((x.u >> 52) & 0x7ff) == 0x7ff) return frac; // inf, nan
  if ((x.u & 0x7fffffffffffffffull) < 0x0010000000000000ull) { // normalize a denormal
    frac *= (double)(1ull << 52);
    exp -= 52;
    x.f = frac;
  }
  exp += (int)((x.u >> 52) & 0x7ff) - 1023;
  if (exp < -1075) { // underflow: zero of frac's sign
    f64bits z = {0};
    z.u = x.u & 0x8000000000000000ull;
    return z.f;
  }
  if (exp > 1023) return frac < 0 ? -__builtin_inf() : __builtin_inf();
  double m = 1;
  if (exp < -1022) { // denormal
    exp += 53;
    m = 1.0 / (double)(1ull << 53);
  }
  x.u &= ~(0x7ffull << 52);
  x.u |= (uint64_t)(exp + 1023) << 52;
  return m * x.f;
}

// exp_go is Go's math.Exp as its portable code computes it (exp and
// expmulti in Go's src/math/exp.go, from FreeBSD's e_exp.c).
static double exp_go(double x) {
  const double Ln2Hi = 6.93147180369123816490e-01, Ln2Lo = 1.90821492927058770002e-10,
               Log2e = 1.44269504088896338700e+00, Overflow = 7.09782712893383973096e+02,
               Underflow = -7.45133219101941108420e+02, NearZero = 1.0 / (1 << 28);
  if (x != x) return x;
  if (x > Overflow) return __builtin_inf();
  if (x < Underflow) return 0;
  if (-NearZero < x && x < NearZero) return 1 + x;
  int k = 0;
  if (x < 0)
    k = (int)(Log2e * x - 0.5);
  else if (x > 0)
    k = (int)(Log2e * x + 0.5);
  const double hi = x - (double)k * Ln2Hi, lo = (double)k * Ln2Lo;
  const double P1 = 1.66666666666666657415e-01, P2 = -2.77777777770155933842e-03,
               P3 = 6.61375632143793436117e-05, P4 = -1.65339022054652515390e-06,
               P5 = 4.13813679705723846039e-08;
  const double r = hi - lo, t = r * r;
  const double c = r - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
  const double y = 1 - ((lo - (r * c) / (2 - c)) - hi);
  return ldexp_go(y, k);
}

// silu computes elements [lo, hi): out = gate/(1+e^−gate) · up, as the
// Go loop does (float32 arithmetic around a float64 exp).
static void silu(const silu_t *a, int lo, int hi) {
  const float *g = (const float *)(uintptr_t)a->gate, *u = (const float *)(uintptr_t)a->up;
  float *out = (float *)(uintptr_t)a->out;
  for (int i = lo; i < hi; i++) {
    const float x = g[i];
    out[i] = x / (1 + (float)exp_go(-(double)x)) * u[i];
  }
}

// dot_go is q·k over n floats in Go's dotGo order: four partial sums by
// index mod 4 (one f32x4), a tail into the first, then (0+1)+(2+3).
static inline float dot_go(const float *q, const float *k, int n) {
  const int n4 = n & ~3;
  v128_t acc = wasm_f32x4_splat(0);
  for (int i = 0; i < n4; i += 4) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(q + i), wasm_v128_load(k + i)));
  float s0 = wasm_f32x4_extract_lane(acc, 0);
  for (int i = n4; i < n; i++) s0 += q[i] * k[i];
  return (s0 + wasm_f32x4_extract_lane(acc, 1)) + (wasm_f32x4_extract_lane(acc, 2) + wasm_f32x4_extract_lane(acc, 3));
}

// attend computes items [lo, hi): item i·heads + h is row i's head h, the
// softmax-weighted sum of values over its positions, as wasm/model's
// attention does it: scores scaled, their maximum subtracted, exp in
// float64 rounded to float32, the sum in float64, the weights times
// float32(1/sum), then each position's value added in order.
static void attend(const attend_t *a, int lo, int hi) {
  union { int32_t i; float f; } sc = {a->scale};
  const int hd = a->head_dim, stride = a->kv_stride, hd4 = hd & ~3;
  for (int it = lo; it < hi; it++) {
    const int row = it / a->heads, h = it % a->heads, kvh = h / a->group;
    const int32_t *d = (const int32_t *)(uintptr_t)(a->desc + 20 * row);
    const float *q = (const float *)(uintptr_t)d[0] + h * hd;
    float *out = (float *)(uintptr_t)d[1] + h * hd;
    const float *K = (const float *)(uintptr_t)d[2] + kvh * hd;
    const float *V = (const float *)(uintptr_t)d[3] + kvh * hd;
    const int end = d[4];
    float *s = (float *)(uintptr_t)a->scores + it * a->span;
    float mx = -__builtin_inff();
    for (int p = 0; p < end; p++) {
      const float v = dot_go(q, K + p * stride, hd) * sc.f;
      s[p] = v;
      if (v > mx) mx = v;
    }
    double sum = 0;
    for (int p = 0; p < end; p++) {
      const float e = (float)exp_go((double)(s[p] - mx));
      s[p] = e;
      sum += (double)e;
    }
    const float inv = (float)(1 / sum);
    for (int e = 0; e < hd; e++) out[e] = 0;
    for (int p = 0; p < end; p++) {
      const float w = s[p] * inv;
      const float *v = V + p * stride;
      const v128_t wv = wasm_f32x4_splat(w);
      for (int e = 0; e < hd4; e += 4)
        wasm_v128_store(out + e, wasm_f32x4_add(wasm_v128_load(out + e), wasm_f32x4_mul(wv, wasm_v128_load(v + e))));
      for (int e = hd4; e < hd; e++) out[e] += w * v[e];
    }
  }
}

// run_products computes rows [lo, hi) of the segments taken one after
// another: each segment's part of them.
static void run_products(int op, const products_t *a, int lo, int hi) {
  const seg_t *seg = (const seg_t *)(uintptr_t)a->desc;
  for (int i = 0, base = 0; i < a->segs && base < hi; base += seg[i].rows, i++) {
    const int from = lo > base ? lo - base : 0, to = hi - base < seg[i].rows ? hi - base : seg[i].rows;
    if (from < to) run_rows(op, &seg[i].p, from, to);
  }
}

// run_units computes units [lo, hi) of the job, whatever its op.
static void run_units(const job_t *j, int lo, int hi) {
  switch (j->op) {
  case OP_SILU: silu(&j->args.s, lo, hi); break;
  case OP_ATTEND: attend(&j->args.a, lo, hi); break;
  default: run_products(j->op, &j->args.p, lo, hi); break;
  }
}

// wi_run computes units [lo, hi) of the job, claiming nothing: the caller
// redoing a job alone after a worker stopped (cpupool.js).
__attribute__((export_name("wi_run"))) void wi_run(const job_t *j, int lo, int hi) { run_units(j, lo, hi); }

// wi_work claims and runs the job's chunks until none is left; the last
// chunk a thread finishes is counted in done, which the caller waits on.
__attribute__((export_name("wi_work"))) void wi_work(job_t *j) {
  for (;;) {
    int c = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
    if (c >= j->chunks) return;
    int lo = c * j->chunk, hi = lo + j->chunk;
    if (hi > j->units) hi = j->units;
    run_units(j, lo, hi);
    __atomic_fetch_add(&j->done, 1, __ATOMIC_RELEASE);
  }
}
