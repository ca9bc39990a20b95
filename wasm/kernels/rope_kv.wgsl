// rope_kv: after the fused Q/K/V product, rotates the query and key heads
// and appends keys and values to the layer's cache, in one dispatch.
//
//   qkv:  (T, heads·head_dim + 2·kv_heads·head_dim) f32   q, k, v of each token
//   cs:   (T, dims/2, 2) f32   cos and sin of each pair's angle at each
//         token's position, computed on the CPU exactly as the CPU path does
//         (GPU sin/cos are imprecise for large angles)
//   q:    (T, heads, head_dim) f32                       rotated queries
//   kc, vc: (rows, kv_heads, head_dim) f32               the caches of every
//         sequence, one after another
//   spans: (T) vec2<u32>   each token's cache rows: its sequence's first
//         row, and the token's position + 1 (kernels.Span); token t goes
//         to row spans[t].x + spans[t].y − 1
//
// NEOX = 0 rotates (v[2i], v[2i+1]) (llama); 1 rotates (v[i], v[i+dims/2])
// (qwen2). Dimensions past dims are copied unrotated. One invocation per
// pair of elements of a token: heads·head_dim/2 for q, then
// kv_heads·head_dim/2 for k, then as many pairs of v.
// act is the activations' and the cache's type: f32, or f16 where the
// device has shader-f16 (package kernels rewrites this line).
alias act = f32;

struct Params {
  heads: u32,
  kv_heads: u32,
  head_dim: u32,
  dims: u32,   // rotated dimensions per head
  batch: u32,  // T
}

@group(0) @binding(0) var<storage, read> qkv: array<act>;
@group(0) @binding(1) var<storage, read> cs: array<f32>;
@group(0) @binding(2) var<storage, read_write> q: array<act>;
@group(0) @binding(3) var<storage, read_write> kc: array<act>;
@group(0) @binding(4) var<storage, read_write> vc: array<act>;
@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> spans: array<vec2<u32>>;

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
  let span = spans[t];
  let cache = (span.x + span.y - 1u) * kvdim;
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
  var a = f32(qkv[base + e.x]);
  var b = f32(qkv[base + e.y]);
  if (i < params.dims / 2u) {
    let c = cs[(t * (params.dims / 2u) + i) * 2u];
    let s = cs[(t * (params.dims / 2u) + i) * 2u + 1u];
    let a0 = a;
    a = a0 * c - b * s;
    b = a0 * s + b * c;
  }
  if (p < qn) {
    q[t * qdim + e.x] = act(a);
    q[t * qdim + e.y] = act(b);
  } else {
    kc[cache + e.x] = act(a);
    kc[cache + e.y] = act(b);
  }
}
