// F16 weights for matmul.wgsl: w (rows, cols/8) vec4<u32>, eight halves in
// each (element 2i in the low half of word i, as GGUF stores them).
@group(0) @binding(0) var<storage, read> w: array<vec4<u32>>;

fn halves(p: u32, q: u32) -> vec4<f32> {
  return vec4<f32>(unpack2x16float(p), unpack2x16float(q));
}

fn unit(row: u32, u: u32) -> array<vec4<f32>, 8> {
  let b = row * (params.cols / 8u) + 4u * u;
  let p0 = w[b];
  let p1 = w[b + 1u];
  let p2 = w[b + 2u];
  let p3 = w[b + 3u];
  return array<vec4<f32>, 8>(halves(p0.x, p0.y), halves(p0.z, p0.w), halves(p1.x, p1.y), halves(p1.z, p1.w),
                             halves(p2.x, p2.y), halves(p2.z, p2.w), halves(p3.x, p3.y), halves(p3.z, p3.w));
}
