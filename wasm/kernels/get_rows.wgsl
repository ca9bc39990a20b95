// get_rows: the embedding lookup, on the GPU: x[t] = the row of token
// ids[t] of the token-embedding matrix, dequantized to f32. Reading the
// same buffers as the output product (the embedding is often tied to it),
// so the matrix is on the GPU once, and a step writes token ids, not rows.
//
//   ids:  (T) u32
//   rows: the matrix in its product layout (see matmul_*.wgsl):
//         Q8_0 and Q4_0 split into quants `qs` and f32 scales `d`;
//         F32 and F16 as they are (`qs`, with `d` unused)
//   x:    (T, cols) f32
//
// TYPE: 0 F32, 1 F16, 8 Q8_0, 2 Q4_0 (ggml's numbers). One invocation per
// element.

struct Params {
  cols: u32,
  batch: u32,
}

@group(0) @binding(0) var<storage, read> ids: array<u32>;
@group(0) @binding(1) var<storage, read> qs: array<u32>;
@group(0) @binding(2) var<storage, read> d: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

override TYPE: u32 = 8u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let e = gid.x;
  let t = gid.y;
  if (e >= params.cols || t >= params.batch) {
    return;
  }
  let row = ids[t];
  let i = row * params.cols + e; // element index in the matrix
  var v = 0.0;
  if (TYPE == 0u) {
    v = bitcast<f32>(qs[i]);
  } else if (TYPE == 1u) {
    let h = unpack2x16float(qs[i / 2u]);
    v = select(h.x, h.y, (i & 1u) == 1u);
  } else if (TYPE == 8u) {
    let w = qs[i / 4u];
    v = f32(bitcast<i32>(w << (24u - 8u * (i % 4u))) >> 24u) * d[i / 32u];
  } else {
    // Q4_0: byte j of a block holds element j (low nibble) and j+16 (high).
    let j = i % 32u;
    let byte_index = (i / 32u) * 16u + (j % 16u);
    let byte = (qs[byte_index / 4u] >> (8u * (byte_index % 4u))) & 0xffu;
    let nib = select(byte & 0xfu, byte >> 4u, j >= 16u);
    v = (f32(nib) - 8.0) * d[i / 32u];
  }
  x[t * params.cols + e] = v;
}
