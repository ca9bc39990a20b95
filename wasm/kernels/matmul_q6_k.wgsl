// matmul_q6_k: y[t] = W·x[t] for Q6_K weights, for a batch of T vectors.
//
//   qs: (rows, cols/256, 52) u32   each GGUF block (210 bytes) without its
//       trailing f16 scale: ql (128 bytes, low 4 bits), qh (64 bytes, high
//       2 bits), scales (16 int8); split at upload since 210 bytes is not
//       word-aligned
//   d:  (rows, cols/256) f32
//   x: (T, cols) f32   y: (T, rows) f32
//
// In each half h of 128 elements, element 128h+32k+l (k = 0..3) takes
// nibble k/2 of ql[64h+32(k%2)+l] and bits 2k..2k+1 of qh[32h+l];
// value = d·scale[8h + 2k + l/16]·(q − 32).

struct Params {
  rows: u32,
  cols: u32,
  batch: u32,
}

@group(0) @binding(0) var<storage, read> qs: array<u32>;
@group(0) @binding(1) var<storage, read> d: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

override WORKGROUP_SIZE: u32 = 64u;

fn byte_at(base: u32, i: u32) -> u32 {
  return (qs[base + i / 4u] >> (8u * (i % 4u))) & 0xffu;
}

fn scale(base: u32, s: u32) -> f32 {
  return f32(bitcast<i32>(byte_at(base, 192u + s) << 24u) >> 24u);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x;
  let t = gid.y;
  if (row >= params.rows || t >= params.batch) {
    return;
  }
  let nb = params.cols / 256u;
  var acc = 0.0;
  for (var b = 0u; b < nb; b++) {
    let base = (row * nb + b) * 52u;
    let xo = t * params.cols + b * 256u;
    var s = 0.0;
    for (var h = 0u; h < 2u; h++) {
      for (var l = 0u; l < 32u; l++) {
        let lo0 = byte_at(base, 64u * h + l);
        let lo1 = byte_at(base, 64u * h + 32u + l);
        let hb = byte_at(base, 128u + 32u * h + l);
        let q1 = f32((lo0 & 0xfu) | ((hb & 3u) << 4u)) - 32.0;
        let q2 = f32((lo1 & 0xfu) | (((hb >> 2u) & 3u) << 4u)) - 32.0;
        let q3 = f32((lo0 >> 4u) | (((hb >> 4u) & 3u) << 4u)) - 32.0;
        let q4 = f32((lo1 >> 4u) | (((hb >> 6u) & 3u) << 4u)) - 32.0;
        let is = 8u * h + l / 16u;
        let e = xo + 128u * h + l;
        s += scale(base, is) * q1 * x[e] + scale(base, is + 2u) * q2 * x[e + 32u]
           + scale(base, is + 4u) * q3 * x[e + 64u] + scale(base, is + 6u) * q4 * x[e + 96u];
      }
    }
    acc += s * d[row * nb + b];
  }
  y[t * params.rows + row] = acc;
}
