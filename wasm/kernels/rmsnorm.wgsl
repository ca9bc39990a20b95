// rmsnorm: y = x / sqrt(mean(x²) + eps) · w, row by row.
//
//   x: (rows, n) f32     w: (n) f32     y: (rows, n) f32
//
// One workgroup per row: each invocation sums the squares of a strided
// slice, then a tree reduction in workgroup memory.

struct Params {
  n: u32,    // row length
  eps: f32,  // epsilon
  rows: u32, // rows to normalise (the batch)
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

const WG: u32 = 64u;
var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let row = wid.x;
  let base = row * params.n;
  var s = 0.0;
  for (var i = lid.x; i < params.n; i += WG) {
    let v = x[base + i];
    s += v * v;
  }
  partial[lid.x] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (lid.x < k) {
      partial[lid.x] += partial[lid.x + k];
    }
    workgroupBarrier();
  }
  let scale = 1.0 / sqrt(partial[0] / f32(params.n) + params.eps);
  for (var i = lid.x; i < params.n; i += WG) {
    y[base + i] = x[base + i] * scale * w[i];
  }
}
