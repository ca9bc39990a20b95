// get_rows: the embedding lookup, on the GPU: x[t] = the row of token
// ids[t] of the token-embedding matrix, dequantized to f32. Reading the
// same buffers as the output product (the embedding is often tied to it),
// so the matrix is on the GPU once, and a step writes token ids, not rows.
//
// A template like matmul.wgsl (package kernels fills it in, GetRows):
//   .Weights  the weight type's bindings 0 (and 1) and unit(row, u), the
//             32 weights W[row, 32u .. 32u+31] dequantized
//             (weights_<type>.wgsl): every type the products read
//   .IDS .X .P  binding numbers, after the weights'
//
//   ids:  (T) u32
//   x:    (T, cols) f32
//
// One invocation per unit (32 elements) of a token. Dispatch
// (ceil(cols/32/64), T).

struct Params {
  cols: u32,
  batch: u32,
}

{{.Weights}}

@group(0) @binding({{.IDS}}) var<storage, read> ids: array<u32>;
@group(0) @binding({{.X}}) var<storage, read_write> x: array<vec4<f32>>;
@group(0) @binding({{.P}}) var<uniform> params: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let u = gid.x;
  let t = gid.y;
  if (u >= params.cols / 32u || t >= params.batch) {
    return;
  }
  let w = unit(ids[t], u);
  let o = (t * params.cols) / 4u + 8u * u;
  for (var i = 0u; i < 8u; i++) {
    x[o + i] = w[i];
  }
}
