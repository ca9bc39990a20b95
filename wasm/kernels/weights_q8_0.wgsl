// Q8_0 weights for matmul.wgsl, split at upload (SplitQ8_0) because a
// 34-byte GGUF block is not word-aligned; they stay 8-bit on the GPU.
//   qs: (rows, cols/32, 2) vec4<u32>   each block's 32 int8 quants
//   d:  (rows, cols/32) f32            each block's scale
// Element j of a block is d·qs byte j.
@group(0) @binding(0) var<storage, read> qs: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> d: array<f32>;

// i8x4 sign-extends the four bytes of w, lowest first.
fn i8x4(w: u32) -> vec4<f32> {
  return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(w) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u));
}

fn unit(row: u32, u: u32) -> array<vec4<f32>, 8> {
  let b = row * (params.cols / 32u) + u;
  let s = d[b];
  let a = qs[2u * b];
  let c = qs[2u * b + 1u];
  return array<vec4<f32>, 8>(i8x4(a.x) * s, i8x4(a.y) * s, i8x4(a.z) * s, i8x4(a.w) * s,
                             i8x4(c.x) * s, i8x4(c.y) * s, i8x4(c.z) * s, i8x4(c.w) * s);
}
