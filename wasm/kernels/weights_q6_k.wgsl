// Q6_K weights for matmul.wgsl, split at upload (SplitQ6_K) because a
// 210-byte GGUF block is not word-aligned:
//   qs: (rows, cols/256, 13) vec4<u32>   each block less its f16 scale:
//       ql (128 bytes, low 4 bits), qh (64 bytes, high 2 bits), 16 int8
//       scales
//   d:  (rows, cols/256) f32
// In half h (128 weights), weight 32k+l (k = 0..3) takes nibble k/2 of
// ql[64h + 32(k%2) + l] and bits 2k..2k+1 of qh[32h + l];
// value = d·scale[8h + 2k + l/16]·(q − 32).
@group(0) @binding(0) var<storage, read> qs: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> d: array<f32>;

// q6 is four weights' 6-bit values − 32, from a word of ql and one of qh.
fn q6(ql: u32, qh: u32, k: u32) -> vec4<f32> {
  let shifts = vec4<u32>(0u, 8u, 16u, 24u);
  let lo = (vec4<u32>(ql) >> (shifts + 4u * (k / 2u))) & vec4<u32>(15u);
  let hi = (vec4<u32>(qh) >> (shifts + 2u * k)) & vec4<u32>(3u);
  return vec4<f32>(lo | (hi << vec4<u32>(4u))) - 32.0;
}

// scale8 is signed byte i of the scales word group s.
fn scale8(s: vec4<u32>, i: u32) -> f32 {
  return f32(bitcast<i32>(s[i / 4u] << (24u - 8u * (i % 4u))) >> 24u);
}

fn unit(row: u32, u: u32) -> array<vec4<f32>, 8> {
  let blk = row * (params.cols / 256u) + u / 8u;
  let sb = 13u * blk;
  let j = u % 8u;
  let h = j / 4u;
  let k = j % 4u;
  let l0 = qs[sb + 4u * h + 2u * (k % 2u)];
  let l1 = qs[sb + 4u * h + 2u * (k % 2u) + 1u];
  let h0 = qs[sb + 8u + 2u * h];
  let h1 = qs[sb + 9u + 2u * h];
  let sc = qs[sb + 12u];
  let s0 = d[blk] * scale8(sc, 8u * h + 2u * k);
  let s1 = d[blk] * scale8(sc, 8u * h + 2u * k + 1u);
  return array<vec4<f32>, 8>(q6(l0.x, h0.x, k) * s0, q6(l0.y, h0.y, k) * s0, q6(l0.z, h0.z, k) * s0, q6(l0.w, h0.w, k) * s0,
                             q6(l1.x, h1.x, k) * s1, q6(l1.y, h1.y, k) * s1, q6(l1.z, h1.z, k) * s1, q6(l1.w, h1.w, k) * s1);
}
