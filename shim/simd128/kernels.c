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
// offsets are byte addresses in the shared memory.
typedef struct {
  int32_t op;        // OP_*
  int32_t w;         // the weight: rows × row_bytes
  int32_t row_bytes; // one row's bytes
  int32_t nb;        // 32-element blocks per row
  int32_t rows;
  int32_t ntok;      // tokens (at least 1)
  int32_t x;         // token t's int8 quants at x + t·xstride
  int32_t xstride;
  int32_t d;         // token t's float scales (one a block) at d + t·dstride
  int32_t dstride;
  int32_t y;         // token t's float results (rows) at y + t·ystride
  int32_t ystride;
  int32_t chunk;     // rows per chunk
  int32_t chunks;
  int32_t next;      // the next chunk to claim (atomic)
  int32_t done;      // chunks finished (atomic)
} job_t;

enum { OP_Q8_0 = 1, OP_Q4_0 = 2 };

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
static inline __attribute__((always_inline)) void rows_nt(const job_t *j, int lo, int hi, int t0,
                                                          const int NT, const int BB,
                                                          const int q4) {
  const int xs = j->xstride, ds = j->dstride, ys = j->ystride, nb = j->nb;
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

static void q8_0_rows(const job_t *j, int lo, int hi, int t0, int nt) {
  switch (nt) {
  case 4: rows_nt(j, lo, hi, t0, 4, 34, 0); break;
  case 3: rows_nt(j, lo, hi, t0, 3, 34, 0); break;
  case 2: rows_nt(j, lo, hi, t0, 2, 34, 0); break;
  default: rows_nt(j, lo, hi, t0, 1, 34, 0); break;
  }
}

static void q4_0_rows(const job_t *j, int lo, int hi, int t0, int nt) {
  switch (nt) {
  case 4: rows_nt(j, lo, hi, t0, 4, 18, 1); break;
  case 3: rows_nt(j, lo, hi, t0, 3, 18, 1); break;
  case 2: rows_nt(j, lo, hi, t0, 2, 18, 1); break;
  default: rows_nt(j, lo, hi, t0, 1, 18, 1); break;
  }
}

// run_rows computes rows [lo, hi) for every token of the job, four at a
// time (each weight block read once for four), then the rest.
static void run_rows(const job_t *j, int lo, int hi) {
  void (*kernel)(const job_t *, int, int, int, int) = j->op == OP_Q4_0 ? q4_0_rows : q8_0_rows;
  for (int t = 0; t < j->ntok; t += 4) kernel(j, lo, hi, t, j->ntok - t < 4 ? j->ntok - t : 4);
}

// wi_work claims and runs the job's chunks until none is left; the last
// chunk a thread finishes is counted in done, which the caller waits on.
__attribute__((export_name("wi_work"))) void wi_work(job_t *j) {
  for (;;) {
    int c = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
    if (c >= j->chunks) return;
    int lo = c * j->chunk, hi = lo + j->chunk;
    if (hi > j->rows) hi = j->rows;
    run_rows(j, lo, hi);
    __atomic_fetch_add(&j->done, 1, __ATOMIC_RELEASE);
  }
}
