// F32 weights for matmul.wgsl: w (rows, cols) f32, read four at a time.
@group(0) @binding(0) var<storage, read> w: array<vec4<f32>>;

fn unit(row: u32, u: u32) -> array<vec4<f32>, 8> {
  let b = row * (params.cols / 4u) + 8u * u;
  return array<vec4<f32>, 8>(w[b], w[b + 1u], w[b + 2u], w[b + 3u],
                             w[b + 4u], w[b + 5u], w[b + 6u], w[b + 7u]);
}
