// attention: causal softmax attention of T new tokens over the KV cache.
//
//   q:      (T, heads, head_dim) f32
//   k, v:   (ctx, kv_heads, head_dim) f32   one layer's cache, rows 0..pos+T−1 filled
//   scores: (T, heads, ctx) f32             scratch
//   out:    (T, heads, head_dim) f32
//
// One workgroup per (head, token). Its WG invocations share the
// positions for the scores (query in workgroup memory, keys read four
// floats at a time); a max and a sum are reduced in workgroup memory; for
// the weighted values, the invocations split into head_dim/4 columns times
// WG/(head_dim/4) groups of positions, so neighbouring invocations read
// neighbouring values and no invocation walks every position alone; the
// groups are summed in workgroup memory. head_dim must be a multiple of 4,
// at most 4·WG. Query head h reads key/value head h / (heads / kv_heads).
struct Params {
  heads: u32,
  kv_heads: u32,
  head_dim: u32,
  ctx: u32,
  pos: u32,    // position of the first new token
  batch: u32,
  scale: f32,  // 1 / sqrt(head_dim)
}

@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> scores: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(5) var<uniform> params: Params;

// Invocations per workgroup: 256 on real GPUs; CPU adapters run small
// workgroups faster (SwiftShader takes 64).
override WG: u32 = 256u;
var<workgroup> red: array<f32, WG>;
var<workgroup> qw: array<vec4<f32>, 64>;
var<workgroup> part: array<vec4<f32>, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let h = wid.x;
  let t = wid.y;
  let hd4 = params.head_dim / 4u;
  let kvh = h / (params.heads / params.kv_heads);
  let kv4 = params.kv_heads * hd4;         // vec4s per cache row
  let qo = (t * params.heads + h) * hd4;   // in vec4s
  let so = (t * params.heads + h) * params.ctx;
  let end = params.pos + t + 1u;
  for (var i = lid.x; i < hd4; i += WG) {
    qw[i] = q[qo + i];
  }
  workgroupBarrier();
  var mx = -3.4e38;
  for (var p = lid.x; p < end; p += WG) {
    let ko = p * kv4 + kvh * hd4;
    var d = vec4<f32>(0.0);
    for (var i = 0u; i < hd4; i++) {
      d += qw[i] * k[ko + i];
    }
    let s = (d.x + d.y + d.z + d.w) * params.scale;
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
  // Each invocation exponentiates the scores it wrote itself.
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
  let groups = WG / hd4;
  let c = lid.x % hd4;
  let g = lid.x / hd4;
  var a = vec4<f32>(0.0);
  if (g < groups) {
    for (var p = g; p < end; p += groups) {
      a += scores[so + p] * v[p * kv4 + kvh * hd4 + c];
    }
  }
  part[lid.x] = a;
  workgroupBarrier();
  if (lid.x < hd4) {
    var s = vec4<f32>(0.0);
    for (var j = 0u; j < groups; j++) {
      s += part[j * hd4 + lid.x];
    }
    out[qo + lid.x] = s * inv;
  }
}
