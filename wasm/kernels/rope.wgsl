// rope: rotates each head of q or k in place, for T positions.
//
//   v:   (T, heads, head_dim) f32
//   cs:  (T, dims/2, 2) f32  cos and sin of each pair's angle at each
//        token's position, computed on the CPU exactly as the CPU path does
//        (GPU sin/cos are imprecise for large angles)
//
// NEOX = 0 rotates (v[2i], v[2i+1]) (llama); 1 rotates (v[i], v[i+dims/2]) (qwen2).

struct Params {
  heads: u32,
  head_dim: u32,
  dims: u32,   // rotated dimensions per head
  batch: u32,
}

@group(0) @binding(0) var<storage, read_write> v: array<f32>;
@group(0) @binding(1) var<storage, read> cs: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

override NEOX: u32 = 0u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let half = params.dims / 2u;
  let i = gid.x % half;
  let h = gid.x / half;
  let t = gid.y;
  if (h >= params.heads || t >= params.batch) {
    return;
  }
  let base = (t * params.heads + h) * params.head_dim;
  var a = base + 2u * i;
  var b = a + 1u;
  if (NEOX == 1u) {
    a = base + i;
    b = a + half;
  }
  let c = cs[(t * half + i) * 2u];
  let s = cs[(t * half + i) * 2u + 1u];
  let x0 = v[a];
  let x1 = v[b];
  v[a] = x0 * c - x1 * s;
  v[b] = x0 * s + x1 * c;
}
