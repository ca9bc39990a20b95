// matmul_f32: y[t] = W·x[t] for f32 weights, for a batch of T vectors.
//
//   w: (rows, cols) f32   x: (T, cols) f32   y: (T, rows) f32
//
// One invocation per (row, vector).

struct Params {
  rows: u32,
  cols: u32,
  batch: u32,
}

@group(0) @binding(0) var<storage, read> w: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x;
  let t = gid.y;
  if (row >= params.rows || t >= params.batch) {
    return;
  }
  let wb = row * params.cols;
  let xb = t * params.cols;
  var acc = 0.0;
  for (var c = 0u; c < params.cols; c++) {
    acc += w[wb + c] * x[xb + c];
  }
  y[t * params.rows + row] = acc;
}

// main_wg: one workgroup per (row, vector); invocations take every 64th
// column, so reads are coalesced.
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
  let wb = row * params.cols;
  let xb = t * params.cols;
  var acc = 0.0;
  for (var c = lid.x; c < params.cols; c += 64u) {
    acc += w[wb + c] * x[xb + c];
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
