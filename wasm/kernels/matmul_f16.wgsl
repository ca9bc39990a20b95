// matmul_f16: y[t] = W·x[t] for f16 weights, for a batch of T vectors.
//
//   w: (rows, cols/2) u32   two f16 weights a word (cols is even), unpacked
//                           with unpack2x16float: no shader-f16 needed
//   x: (T, cols) f32        y: (T, rows) f32
//
// One invocation per (row, vector).

struct Params {
  rows: u32,
  cols: u32,
  batch: u32,
}

@group(0) @binding(0) var<storage, read> w: array<u32>;
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
  let wb = row * params.cols / 2u;
  let xb = t * params.cols;
  var acc = 0.0;
  for (var c = 0u; c < params.cols / 2u; c++) {
    let v = unpack2x16float(w[wb + c]);
    acc += v.x * x[xb + 2u * c] + v.y * x[xb + 2u * c + 1u];
  }
  y[t * params.rows + row] = acc;
}
