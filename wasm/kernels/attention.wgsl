// attention: causal softmax attention of T new tokens over the KV cache.
//
//   q:      (T, heads, head_dim) f32
//   k, v:   (rows, kv_heads, head_dim) f32   one layer's caches, of every
//           sequence, one after another
//   scores: (T, heads, ctx) f32              scratch
//   out:    (T, heads, head_dim) f32
//   spans:  (T) vec2<u32>   token t attends to cache rows spans[t].x …
//           spans[t].x + spans[t].y − 1 (its sequence's positions 0 … its
//           own; kernels.Span): the tokens of one step may belong to
//           different sequences, at different positions
//   part:   (T, heads, chunks) Partial   split form only
//   qkv, cs: with params.fused, the Q/K/V product's output (T, heads·hd +
//           2·kv_heads·hd) and the RoPE table (T, rope_dims/2, 2), as
//           rope_kv.wgsl takes them: the kernel does rope_kv's work itself
//           (one dispatch fewer per block in decode). It rotates its query
//           head from qkv, takes its token's own key and value from qkv
//           (rotating the key), and one workgroup per key/value head (its
//           group's first query head, the chunk holding the token) appends
//           them to the cache. Only for steps whose tokens are each their
//           sequence's only new token (decode, batched decode): no
//           workgroup reads a cache row another writes in the same step.
//
// Entry points:
//   main      one workgroup per (head, token) walks all its positions.
//             Dispatch (heads, T).
//   split     one workgroup per (head, token, chunk of CHUNK positions)
//             (flash-decoding: a long context is read by many workgroups
//             at once, not by heads·T alone); each writes its chunk's
//             maximum score, sum of exponentials and unnormalised weighted
//             values. Dispatch (heads, T, chunks).
//   combine   one workgroup per (head, token) rescales and sums its
//             chunks' partials into out. Dispatch (heads, T).
//
// Within a workgroup, WG invocations share the positions for the scores
// (query in workgroup memory, keys read four floats at a time); a max and
// a sum are reduced in workgroup memory; for the weighted values, the
// invocations split into head_dim/4 columns times WG/(head_dim/4) groups
// of positions, so neighbouring invocations read neighbouring values; the
// groups are summed in workgroup memory. head_dim must be a multiple of 4,
// at most 4·WG (and at most 256 for split). Query head h reads key/value
// head h / (heads / kv_heads).
// act is the type of q, the caches and out: f32, or f16 where the device
// has shader-f16 (package kernels rewrites this line); sums stay f32.
alias act = f32;

struct Params {
  heads: u32,
  kv_heads: u32,
  head_dim: u32,
  ctx: u32,    // the scores' row length: no span is longer
  batch: u32,
  scale: f32,  // 1 / sqrt(head_dim)
  chunks: u32, // split and combine: chunks per (head, token)
  fused: u32,  // 1: RoPE and the cache append here (see qkv, cs)
  rope_dims: u32,
  neox: u32,   // 1: NeoX pairs (i, i + rope_dims/2), else (2i, 2i+1)
}

// Partial is one chunk's result: its maximum score m, the sum l of
// exp(score − m), and Σ exp(score − m)·v (head_dim/4 vec4s, up to 64).
struct Partial {
  m: f32,
  l: f32,
  _pad: vec2<f32>,
  o: array<vec4<f32>, 64>,
}

@group(0) @binding(0) var<storage, read> q: array<vec4<act>>;
@group(0) @binding(1) var<storage, read_write> k: array<vec4<act>>;
@group(0) @binding(2) var<storage, read_write> v: array<vec4<act>>;
@group(0) @binding(3) var<storage, read_write> scores: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<act>>;
@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<storage, read> spans: array<vec2<u32>>;
@group(0) @binding(7) var<storage, read_write> partials: array<Partial>;
@group(0) @binding(8) var<storage, read> qkv: array<act>;
@group(0) @binding(9) var<storage, read> cs: array<f32>;

// Invocations per workgroup: 256 on real GPUs; CPU adapters run small
// workgroups faster (SwiftShader takes 64).
override WG: u32 = 256u;
// Positions per chunk in the split form.
override CHUNK: u32 = 256u;
var<workgroup> red: array<f32, WG>;
var<workgroup> qw: array<vec4<f32>, 64>;
var<workgroup> part: array<vec4<f32>, WG>;
// With params.fused: the rotated query, and the token's own rotated key
// and value, as scalars while they are assembled.
var<workgroup> qf: array<f32, 256>;
var<workgroup> kf: array<f32, 256>;
var<workgroup> vf: array<f32, 256>;
var<workgroup> kw: array<vec4<f32>, 64>;
var<workgroup> vw: array<vec4<f32>, 64>;

// bind_all refers to every binding, under a condition that never holds,
// so that each entry point's "auto" layout has all eight and one bind
// group serves the three.
fn bind_all() {
  if (params.chunks == 0xffffffffu) {
    out[0] = vec4<act>(vec4<f32>(q[0]) + vec4<f32>(k[0]) + vec4<f32>(v[0]) + partials[0].o[0] + vec4<f32>(scores[0] + f32(spans[0].x) + f32(qkv[0]) + cs[0]));
  }
}

// attend computes, for query head h of token t over its positions p0 …
// p1−1 (p1 > p0), the maximum score m and the sum l of exp(score − m),
// both returned, and leaves Σ exp(score − m)·v in part[0 … head_dim/4).
// Every invocation of the workgroup must call it.
fn attend(h: u32, t: u32, p0: u32, p1: u32, lid: u32) -> vec2<f32> {
  let hd = params.head_dim;
  let hd4 = hd / 4u;
  let group = params.heads / params.kv_heads;
  let kvh = h / group;
  let kv4 = params.kv_heads * hd4;         // vec4s per cache row
  let qo = (t * params.heads + h) * hd4;   // in vec4s
  let so = (t * params.heads + h) * params.ctx;
  let k0 = spans[t].x * kv4 + kvh * hd4;   // row 0 of the head, in vec4s
  // own: the token's own position is in [p0, p1) and, fused, its key and
  // value come from qkv (kw, vw), not the cache.
  let last = spans[t].y - 1u;
  let own = params.fused == 1u && last >= p0 && last < p1;
  if (params.fused == 1u) {
    let qdim = params.heads * hd;
    let kvdim = params.kv_heads * hd;
    let row = t * (qdim + 2u * kvdim);
    let half = params.rope_dims / 2u;
    for (var i = lid; i < hd / 2u; i += WG) {
      var e = vec2<u32>(2u * i, 2u * i + 1u);
      if (params.neox == 1u && i < half) {
        e = vec2<u32>(i, i + half);
      }
      var c = 1.0;
      var s = 0.0;
      if (i < half) {
        c = cs[(t * half + i) * 2u];
        s = cs[(t * half + i) * 2u + 1u];
      }
      let qa = f32(qkv[row + h * hd + e.x]);
      let qb = f32(qkv[row + h * hd + e.y]);
      qf[e.x] = qa * c - qb * s;
      qf[e.y] = qa * s + qb * c;
      if (own) {
        let ka = f32(qkv[row + qdim + kvh * hd + e.x]);
        let kb = f32(qkv[row + qdim + kvh * hd + e.y]);
        kf[e.x] = ka * c - kb * s;
        kf[e.y] = ka * s + kb * c;
      }
    }
    if (own) {
      for (var i = lid; i < hd; i += WG) {
        vf[i] = f32(qkv[row + qdim + kvdim + kvh * hd + i]);
      }
    }
    workgroupBarrier();
    for (var i = lid; i < hd4; i += WG) {
      qw[i] = vec4<f32>(qf[4u * i], qf[4u * i + 1u], qf[4u * i + 2u], qf[4u * i + 3u]);
      if (own) {
        kw[i] = vec4<f32>(kf[4u * i], kf[4u * i + 1u], kf[4u * i + 2u], kf[4u * i + 3u]);
        vw[i] = vec4<f32>(vf[4u * i], vf[4u * i + 1u], vf[4u * i + 2u], vf[4u * i + 3u]);
        // The group's first query head appends the row for the others'
        // later steps (this step's read it from qkv).
        if (h % group == 0u) {
          k[k0 + last * kv4 + i] = vec4<act>(kw[i]);
          v[k0 + last * kv4 + i] = vec4<act>(vw[i]);
        }
      }
    }
  } else {
    for (var i = lid; i < hd4; i += WG) {
      qw[i] = vec4<f32>(q[qo + i]);
    }
  }
  workgroupBarrier();
  var mx = -3.4e38;
  for (var p = p0 + lid; p < p1; p += WG) {
    let ko = k0 + p * kv4;
    var d = vec4<f32>(0.0);
    if (own && p == last) {
      for (var i = 0u; i < hd4; i++) {
        d += qw[i] * kw[i];
      }
    } else {
      for (var i = 0u; i < hd4; i++) {
        d += qw[i] * vec4<f32>(k[ko + i]);
      }
    }
    let s = (d.x + d.y + d.z + d.w) * params.scale;
    scores[so + p] = s;
    mx = max(mx, s);
  }
  red[lid] = mx;
  workgroupBarrier();
  for (var r = WG / 2u; r > 0u; r >>= 1u) {
    if (lid < r) {
      red[lid] = max(red[lid], red[lid + r]);
    }
    workgroupBarrier();
  }
  let m = red[0];
  workgroupBarrier();
  // Each invocation exponentiates the scores it wrote itself.
  var sum = 0.0;
  for (var p = p0 + lid; p < p1; p += WG) {
    let e = exp(scores[so + p] - m);
    scores[so + p] = e;
    sum += e;
  }
  red[lid] = sum;
  workgroupBarrier();
  for (var r = WG / 2u; r > 0u; r >>= 1u) {
    if (lid < r) {
      red[lid] += red[lid + r];
    }
    workgroupBarrier();
  }
  let l = red[0];
  // The other invocations' scores must be visible before the weighted sum.
  storageBarrier();
  workgroupBarrier();
  let groups = WG / hd4;
  let c = lid % hd4;
  let g = lid / hd4;
  var a = vec4<f32>(0.0);
  if (g < groups) {
    for (var p = p0 + g; p < p1; p += groups) {
      if (own && p == last) {
        a += scores[so + p] * vw[c];
      } else {
        a += scores[so + p] * vec4<f32>(v[k0 + p * kv4 + c]);
      }
    }
  }
  part[lid] = a;
  workgroupBarrier();
  var s = vec4<f32>(0.0);
  if (lid < hd4) {
    for (var j = 0u; j < groups; j++) {
      s += part[j * hd4 + lid];
    }
  }
  workgroupBarrier();
  if (lid < hd4) {
    part[lid] = s;
  }
  workgroupBarrier();
  return vec2<f32>(m, l);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  bind_all();
  let h = wid.x;
  let t = wid.y;
  let ml = attend(h, t, 0u, spans[t].y, lid.x);
  let hd4 = params.head_dim / 4u;
  if (lid.x < hd4) {
    out[(t * params.heads + h) * hd4 + lid.x] = vec4<act>(part[lid.x] / ml.y);
  }
}

@compute @workgroup_size(WG)
fn split(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  bind_all();
  let h = wid.x;
  let t = wid.y;
  let chunk = wid.z;
  let p0 = chunk * CHUNK;
  let p1 = min(p0 + CHUNK, spans[t].y);
  let pi = (t * params.heads + h) * params.chunks + chunk;
  let hd4 = params.head_dim / 4u;
  if (p0 >= p1) {
    // Past this token's positions: an empty chunk.
    if (lid.x == 0u) {
      partials[pi].m = -3.4e38;
      partials[pi].l = 0.0;
    }
    if (lid.x < hd4) {
      partials[pi].o[lid.x] = vec4<f32>(0.0);
    }
    return;
  }
  let ml = attend(h, t, p0, p1, lid.x);
  if (lid.x == 0u) {
    partials[pi].m = ml.x;
    partials[pi].l = ml.y;
  }
  if (lid.x < hd4) {
    partials[pi].o[lid.x] = part[lid.x];
  }
}

@compute @workgroup_size(WG)
fn combine(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  bind_all();
  let h = wid.x;
  let t = wid.y;
  let hd4 = params.head_dim / 4u;
  let base = (t * params.heads + h) * params.chunks;
  let n = (spans[t].y + CHUNK - 1u) / CHUNK;
  if (lid.x >= hd4) {
    return;
  }
  var m = -3.4e38;
  for (var c = 0u; c < n; c++) {
    m = max(m, partials[base + c].m);
  }
  var l = 0.0;
  var o = vec4<f32>(0.0);
  for (var c = 0u; c < n; c++) {
    let w = exp(partials[base + c].m - m);
    l += partials[base + c].l * w;
    o += partials[base + c].o[lid.x] * w;
  }
  out[(t * params.heads + h) * hd4 + lid.x] = vec4<act>(o / l);
}
