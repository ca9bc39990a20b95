// matmul_q4_0: y[t] = W·x[t] for Q4_0 weights, for a batch of T vectors.
//
//   qs: (rows, cols/8) u32   the 4-bit quants: per 32-element block four
//                            words holding the 16 bytes of the GGUF block;
//                            byte j's low nibble is element j, its high
//                            nibble element j+16; value = (nibble − 8)·d
//   d:  (rows, cols/32) f32  one scale per block
//   x:  (T, cols) f32        y: (T, rows) f32
//
// As in matmul_q8_0.wgsl, the 18-byte GGUF blocks are split into these two
// word-aligned arrays at upload; the weights stay 4-bit on the GPU.

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

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x;
  let t = gid.y;
  if (row >= params.rows || t >= params.batch) {
    return;
  }
  let nb = params.cols / 32u;
  let xb = t * params.cols;
  var acc = 0.0;
  for (var b = 0u; b < nb; b++) {
    var s = 0.0;
    let wq = (row * nb + b) * 4u;
    let xo = xb + b * 32u;
    for (var j = 0u; j < 4u; j++) {
      let w = qs[wq + j];
      for (var k = 0u; k < 4u; k++) {
        let byte = (w >> (8u * k)) & 0xffu;
        let e = 4u * j + k;
        s += (f32(byte & 0xfu) - 8.0) * x[xo + e] + (f32(byte >> 4u) - 8.0) * x[xo + e + 16u];
      }
    }
    acc += s * d[row * nb + b];
  }
  y[t * params.rows + row] = acc;
}

// main_wg: one workgroup per (row, vector), as in matmul_q8_0.wgsl.
var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(64)
fn main_wg(@builtin(local_invocation_id) lid: vec3<u32>,
           @builtin(workgroup_id) wid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = wid.y * nwg.x + wid.x;
  let t = wid.z;
  if (row >= params.rows) {
    return;
  }
  let nb = params.cols / 32u;
  let xb = t * params.cols;
  var acc = 0.0;
  for (var b = lid.x; b < nb; b += 64u) {
    var s = 0.0;
    let wq = (row * nb + b) * 4u;
    let xo = xb + b * 32u;
    for (var j = 0u; j < 4u; j++) {
      let w = qs[wq + j];
      for (var k = 0u; k < 4u; k++) {
        let byte = (w >> (8u * k)) & 0xffu;
        let e = 4u * j + k;
        s += (f32(byte & 0xfu) - 8.0) * x[xo + e] + (f32(byte >> 4u) - 8.0) * x[xo + e + 16u];
      }
    }
    acc += s * d[row * nb + b];
  }
  red[lid.x] = acc;
  workgroupBarrier();
  for (var k = 32u; k > 0u; k >>= 1u) {
    if (lid.x < k) {
      red[lid.x] += red[lid.x + k];
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    y[t * params.rows + row] = red[0];
  }
}
