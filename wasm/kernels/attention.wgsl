// attention: causal softmax attention of T new tokens over the KV cache.
//
//   q:      (T, heads, head_dim) f32
//   k, v:   (ctx, kv_heads, head_dim) f32   one layer's cache, rows 0..pos+T−1 filled
//   scores: (T, heads, ctx) f32             scratch
//   out:    (T, heads, head_dim) f32
//
// One workgroup per (token, head): scores over the positions it may see,
// a max and a sum reduced in workgroup memory, then the weighted values.
// Query head h reads key/value head h / (heads / kv_heads).

struct Params {
  heads: u32,
  kv_heads: u32,
  head_dim: u32,
  ctx: u32,
  pos: u32,    // position of the first new token
  batch: u32,
  scale: f32,  // 1 / sqrt(head_dim)
}

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> scores: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;

const WG: u32 = 64u;
var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let h = wid.x;
  let t = wid.y;
  let hd = params.head_dim;
  let kvh = h / (params.heads / params.kv_heads);
  let kv_stride = params.kv_heads * hd;
  let qo = (t * params.heads + h) * hd;
  let so = (t * params.heads + h) * params.ctx;
  let end = params.pos + t + 1u;

  var mx = -3.4e38;
  for (var p = lid.x; p < end; p += WG) {
    let ko = p * kv_stride + kvh * hd;
    var dot = 0.0;
    for (var e = 0u; e < hd; e++) {
      dot += q[qo + e] * k[ko + e];
    }
    let s = dot * params.scale;
    scores[so + p] = s;
    mx = max(mx, s);
  }
  red[lid.x] = mx;
  workgroupBarrier();
  for (var r = WG / 2u; r > 0u; r >>= 1u) {
    if (lid.x < r) {
      red[lid.x] = max(red[lid.x], red[lid.x + r]);
    }
    workgroupBarrier();
  }
  let m = red[0];
  workgroupBarrier();

  var sum = 0.0;
  for (var p = lid.x; p < end; p += WG) {
    let e = exp(scores[so + p] - m);
    scores[so + p] = e;
    sum += e;
  }
  red[lid.x] = sum;
  workgroupBarrier();
  for (var r = WG / 2u; r > 0u; r >>= 1u) {
    if (lid.x < r) {
      red[lid.x] += red[lid.x + r];
    }
    workgroupBarrier();
  }
  let inv = 1.0 / red[0];
  // The other invocations' scores must be visible before the weighted sum.
  storageBarrier();
  workgroupBarrier();

  for (var e = lid.x; e < hd; e += WG) {
    var acc = 0.0;
    for (var p = 0u; p < end; p++) {
      acc += scores[so + p] * v[p * kv_stride + kvh * hd + e];
    }
    out[qo + e] = acc * inv;
  }
}
