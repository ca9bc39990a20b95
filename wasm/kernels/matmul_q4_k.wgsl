// matmul_q4_k: y[t] = W·x[t] for Q4_K weights, for a batch of T vectors.
//
//   blocks: (rows, cols/256, 36) u32   the GGUF blocks as they are (144
//           bytes, word-aligned): d and dmin (f16 pair), 12 bytes of 6-bit
//           scales and mins, 128 bytes of 4-bit quants. Element 64c+l of a
//           block is d·sc(2c)·lo(q[32c+l]) − dmin·m(2c), element 64c+32+l
//           the same with the high nibble and sc(2c+1), m(2c+1).
//   x: (T, cols) f32   y: (T, rows) f32
//
// One invocation per (row, vector).

struct Params {
  rows: u32,
  cols: u32,
  batch: u32,
}

@group(0) @binding(0) var<storage, read> blocks: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

override WORKGROUP_SIZE: u32 = 64u;

// byte i of the block starting at word base.
fn byte_at(base: u32, i: u32) -> u32 {
  return (blocks[base + i / 4u] >> (8u * (i % 4u))) & 0xffu;
}

// scale and min j (0..7), packed in bytes 4..15 as ggml's get_scale_min_k4.
fn scale_min(base: u32, j: u32) -> vec2<f32> {
  if (j < 4u) {
    return vec2<f32>(f32(byte_at(base, 4u + j) & 63u), f32(byte_at(base, 8u + j) & 63u));
  }
  let sc = (byte_at(base, 8u + j) & 0xfu) | ((byte_at(base, j) >> 6u) << 4u);
  let m = (byte_at(base, 8u + j) >> 4u) | ((byte_at(base, 4u + j) >> 6u) << 4u);
  return vec2<f32>(f32(sc), f32(m));
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
    let base = (row * nb + b) * 36u;
    let dm = unpack2x16float(blocks[base]);
    let xo = t * params.cols + b * 256u;
    for (var c = 0u; c < 4u; c++) {
      let s1 = scale_min(base, 2u * c);
      let s2 = scale_min(base, 2u * c + 1u);
      var lo = 0.0;
      var hi = 0.0;
      var xlo = 0.0;
      var xhi = 0.0;
      for (var l = 0u; l < 32u; l++) {
        let q = byte_at(base, 16u + 32u * c + l);
        let a = x[xo + 64u * c + l];
        let bb = x[xo + 64u * c + 32u + l];
        lo += f32(q & 0xfu) * a;
        hi += f32(q >> 4u) * bb;
        xlo += a;
        xhi += bb;
      }
      acc += dm.x * (s1.x * lo + s2.x * hi) - dm.y * (s1.y * xlo + s2.y * xhi);
    }
  }
  y[t * params.rows + row] = acc;
}
