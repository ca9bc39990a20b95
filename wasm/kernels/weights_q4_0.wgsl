// Q4_0 weights for matmul.wgsl, split at upload (SplitQ4_0): 18-byte GGUF
// blocks are not word-aligned; they stay 4-bit on the GPU.
//   qs: (rows, cols/32) vec4<u32>   each block's 16 bytes of nibbles
//   d:  (rows, cols/32) f32         each block's scale
// Byte j's low nibble is element j, its high nibble element j+16;
// value = d·(nibble − 8).
@group(0) @binding(0) var<storage, read> qs: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> d: array<f32>;

// nibbles4 is nibble `shift/4` of each byte of w, lowest byte first, − 8.
fn nibbles4(w: u32, shift: u32) -> vec4<f32> {
  return vec4<f32>((vec4<u32>(w) >> (vec4<u32>(0u, 8u, 16u, 24u) + shift)) & vec4<u32>(15u)) - 8.0;
}

fn unit(row: u32, u: u32) -> array<vec4<f32>, 8> {
  let b = row * (params.cols / 32u) + u;
  let s = d[b];
  let q = qs[b];
  return array<vec4<f32>, 8>(nibbles4(q.x, 0u) * s, nibbles4(q.y, 0u) * s, nibbles4(q.z, 0u) * s, nibbles4(q.w, 0u) * s,
                             nibbles4(q.x, 4u) * s, nibbles4(q.y, 4u) * s, nibbles4(q.z, 4u) * s, nibbles4(q.w, 4u) * s);
}
