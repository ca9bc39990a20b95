// rope_kv: after the fused Q/K/V product, rotates the query and key heads
// and appends keys and values to the layer's cache, in one dispatch.
//
//   qkv:  (T, heads·head_dim + 2·kv_heads·head_dim) f32   q, k, v of each token
//   cs:   (T, dims/2, 2) f32   cos and sin of each pair's angle at each
//         token's position, computed on the CPU exactly as the CPU path does
//         (GPU sin/cos are imprecise for large angles)
//   q:    (T, heads, head_dim) f32                       rotated queries
//   kc, vc: (ctx, kv_heads, head_dim) f32                the cache; token t
//         goes to position pos + t
//
// NEOX = 0 rotates (v[2i], v[2i+1]) (llama); 1 rotates (v[i], v[i+dims/2])
// (qwen2). Dimensions past dims are copied unrotated. One invocation per
// pair of elements of a token: heads·head_dim/2 for q, then
// kv_heads·head_dim/2 for k, then as many pairs of v.
struct Params {
  heads: u32,
  kv_heads: u32,
  head_dim: u32,
  dims: u32,   // rotated dimensions per head
  batch: u32,  // T
  pos: u32,    // position of token 0
}

@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> cs: array<f32>;
@group(0) @binding(2) var<storage, read_write> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> kc: array<f32>;
@group(0) @binding(4) var<storage, read_write> vc: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

override NEOX: u32 = 0u;

// pair returns the two element indices within a head that pair i rotates.
fn pair(i: u32) -> vec2<u32> {
  let half = params.dims / 2u;
  if (NEOX == 1u && i < half) {
    return vec2<u32>(i, i + half);
  }
  return vec2<u32>(2u * i, 2u * i + 1u);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.y;
  let hd = params.head_dim;
  let qdim = params.heads * hd;
  let kvdim = params.kv_heads * hd;
  let qn = qdim / 2u;
  let kn = kvdim / 2u;
  let p = gid.x;
  if (t >= params.batch || p >= qn + 2u * kn) {
    return;
  }
  let src = t * (qdim + 2u * kvdim);
  let cache = (params.pos + t) * kvdim;
  if (p >= qn + kn) { // values: copied to the cache
    let e = 2u * (p - qn - kn);
    vc[cache + e] = qkv[src + qdim + kvdim + e];
    vc[cache + e + 1u] = qkv[src + qdim + kvdim + e + 1u];
    return;
  }
  var hp = p;       // pair index over the heads of q or k
  var base = src;   // where q or k starts in qkv
  if (p >= qn) {
    hp = p - qn;
    base = src + qdim;
  }
  let head = hp / (hd / 2u);
  let i = hp % (hd / 2u);
  let e = pair(i) + vec2<u32>(head * hd);
  var a = qkv[base + e.x];
  var b = qkv[base + e.y];
  if (i < params.dims / 2u) {
    let c = cs[(t * (params.dims / 2u) + i) * 2u];
    let s = cs[(t * (params.dims / 2u) + i) * 2u + 1u];
    let a0 = a;
    a = a0 * c - b * s;
    b = a0 * s + b * c;
  }
  if (p < qn) {
    q[t * qdim + e.x] = a;
    q[t * qdim + e.y] = b;
  } else {
    kc[cache + e.x] = a;
    kc[cache + e.y] = b;
  }
}
