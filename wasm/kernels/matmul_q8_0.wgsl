// matmul_q8_0: y[t] = W·x[t] for Q8_0 weights, for a batch of T vectors.
//
//   qs: (rows, cols/4) u32   the int8 quants, four per word, little-endian
//   d:  (rows, cols/32) f32  one scale per 32-element block
//   x:  (T, cols) f32        y: (T, rows) f32
//
// The GGUF blocks (34 bytes: f16 scale + 32 int8) are split into these two
// arrays at upload, since WGSL reads storage in 4-byte words and a 34-byte
// block is not word-aligned. The weights stay 8-bit on the GPU.
// One invocation per (row, vector): the form that runs fastest on the CPU
// WebGPU adapters we test on.

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

// s8 sign-extends byte k of w.
fn s8(w: u32, k: u32) -> f32 {
  return f32(bitcast<i32>(w << (24u - 8u * k)) >> 24u);
}

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
    let wq = (row * nb + b) * 8u;
    let xo = xb + b * 32u;
    for (var j = 0u; j < 8u; j++) {
      let w = qs[wq + j];
      let o = xo + 4u * j;
      s += s8(w, 0u) * x[o] + s8(w, 1u) * x[o + 1u] + s8(w, 2u) * x[o + 2u] + s8(w, 3u) * x[o + 3u];
    }
    acc += s * d[row * nb + b];
  }
  y[t * params.rows + row] = acc;
}

// main_wg is the same product with one workgroup per (row, vector): the 64
// invocations take every 64th block and reduce in workgroup memory, so
// neighbouring invocations read neighbouring blocks (coalesced on a real
// GPU). Dispatch (x, y, batch) covering rows as row = wid.y·nwg.x + wid.x.
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
    let wq = (row * nb + b) * 8u;
    let xo = xb + b * 32u;
    for (var j = 0u; j < 8u; j++) {
      let w = qs[wq + j];
      let o = xo + 4u * j;
      s += s8(w, 0u) * x[o] + s8(w, 1u) * x[o + 1u] + s8(w, 2u) * x[o + 2u] + s8(w, 3u) * x[o + 3u];
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
