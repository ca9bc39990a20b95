// Q4_K weights for matmul.wgsl: the GGUF blocks as they are (144 bytes per
// 256 weights, word- and 16-byte-aligned), 9 vec4<u32> each:
//   [0]     d and dmin (an f16 pair), then the 12 bytes of 6-bit scales
//           and mins (ggml's get_scale_min_k4 packing)
//   [1..8]  128 bytes of 4-bit quants: sub-block j (32 weights) is the low
//           (j even) or high (j odd) nibbles of bytes 32·(j/2) ..
// value = d·scale(j)·q − dmin·min(j).
@group(0) @binding(0) var<storage, read> blocks: array<vec4<u32>>;

// sbyte is byte i (0..11) of the scales, in words h.y, h.z, h.w.
fn sbyte(h: vec4<u32>, i: u32) -> u32 {
  var w = h.y;
  if (i >= 8u) {
    w = h.w;
  } else if (i >= 4u) {
    w = h.z;
  }
  return (w >> (8u * (i % 4u))) & 0xffu;
}

// scale_min is sub-block j's 6-bit scale and min.
fn scale_min(h: vec4<u32>, j: u32) -> vec2<f32> {
  if (j < 4u) {
    return vec2<f32>(f32(sbyte(h, j) & 63u), f32(sbyte(h, j + 4u) & 63u));
  }
  let sc = (sbyte(h, j + 4u) & 0xfu) | ((sbyte(h, j - 4u) >> 6u) << 4u);
  let m = (sbyte(h, j + 4u) >> 4u) | ((sbyte(h, j) >> 6u) << 4u);
  return vec2<f32>(f32(sc), f32(m));
}

fn nib4(w: u32, shift: u32) -> vec4<f32> {
  return vec4<f32>((vec4<u32>(w) >> (vec4<u32>(0u, 8u, 16u, 24u) + shift)) & vec4<u32>(15u));
}

fn unit(row: u32, u: u32) -> array<vec4<f32>, 8> {
  let sb = 9u * (row * (params.cols / 256u) + u / 8u);
  let j = u % 8u;
  let h = blocks[sb];
  let dm = unpack2x16float(h.x);
  let sm = scale_min(h, j);
  let s = dm.x * sm.x;
  let m = vec4<f32>(dm.y * sm.y);
  let shift = 4u * (j % 2u);
  let q0 = blocks[sb + 1u + 2u * (j / 2u)];
  let q1 = blocks[sb + 2u + 2u * (j / 2u)];
  return array<vec4<f32>, 8>(nib4(q0.x, shift) * s - m, nib4(q0.y, shift) * s - m, nib4(q0.z, shift) * s - m, nib4(q0.w, shift) * s - m,
                             nib4(q1.x, shift) * s - m, nib4(q1.y, shift) * s - m, nib4(q1.z, shift) * s - m, nib4(q1.w, shift) * s - m);
}
