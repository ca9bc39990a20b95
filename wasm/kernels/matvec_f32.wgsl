// matvec_f32: y = W·x for a row-major f32 matrix.
//
//   w: (rows, cols) f32, row-major
//   x: (cols) f32
//   y: (rows) f32
//
// One invocation per row. The workgroup stages x in tiles of TILE floats in
// workgroup memory, so each x element is read from storage once per
// workgroup instead of once per row. One row per invocation (rather than a
// workgroup-wide reduction per row) is ~3x faster on the CPU WebGPU adapters
// we test on (SwiftShader, lavapipe; see ARCHITECTURE.md); the GPU-tuned,
// quantized products belong to the model kernels.
//
// Rows are spread over a 2-D grid of workgroups, since one dimension holds at
// most maxComputeWorkgroupsPerDimension (65535) workgroups.

struct Params {
  rows: u32, // number of rows of w and elements of y
  cols: u32, // number of columns of w and elements of x
}

@group(0) @binding(0) var<storage, read> w: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

// Invocations per workgroup; set by the engine within the adapter's limits.
override WORKGROUP_SIZE: u32 = 64u;
const TILE: u32 = 256u;

var<workgroup> x_tile: array<f32, TILE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = (wid.y * nwg.x + wid.x) * WORKGROUP_SIZE + lid.x;
  let cols = params.cols;
  var acc = 0.0;
  for (var t = 0u; t < cols; t += TILE) {
    // Stage x[t .. t+TILE) (zero past the end), every invocation helping.
    for (var i = lid.x; i < TILE; i += WORKGROUP_SIZE) {
      var v = 0.0;
      if (t + i < cols) {
        v = x[t + i];
      }
      x_tile[i] = v;
    }
    workgroupBarrier();
    if (row < params.rows) {
      let n = min(TILE, cols - t);
      let base = row * cols + t;
      for (var i = 0u; i < n; i++) {
        acc += w[base + i] * x_tile[i];
      }
    }
    workgroupBarrier();
  }
  if (row < params.rows) {
    y[row] = acc;
  }
}
