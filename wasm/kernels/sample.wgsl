// sample: picks each column's next token from its logits on the GPU, as
// package sample's Pick does on the CPU (penalties, top-k, top-p, min-p,
// temperature, a draw in token-id order with the counter-based uniform
// number), so a decode step reads back a token id, not the logits.
//
//   logits: (T, vocab) f32           penalties are applied in place
//   out:    (T) u32                  the picked tokens
//   cols:   (T) Column               each column's parameters
//   recent: (rows, 1 + params.ring) u32  per sequence: how many tokens
//           were ever appended, then a ring of the last ring tokens; column
//           t's row is cols[t].row: its penalties see the row's last last_n
//           tokens, and its pick is appended
//
// One workgroup per column. Greedy (temperature ≤ 0) is the argmax of the
// penalized logits (the lowest id among equals). With top-k or top-p, the
// K = min(top_k, MAX_CAND, vocab) likeliest tokens are found by a radix
// select on order-preserving keys (four passes of 8-bit digits, counted in
// workgroup memory, of the keys above a floor taken from each invocation's
// four largest), gathered in id order, sorted by (logit desc, id asc)
// with a bitonic sort, cut by top-p and min-p by invocation 0 walking them
// in order, sorted by id, and drawn from. Otherwise (temperature and
// min-p alone) every token is a candidate: each invocation sums the
// weights of a contiguous slice of ids, and invocation 0 walks the
// slices, then the slice where the draw falls.

struct Params {
  vocab: u32,
  ring: u32,   // ring entries per column
}

struct Column {
  temp: f32,
  top_k: u32,     // 0: off
  top_p: f32,     // ≤ 0 or ≥ 1: off
  min_p: f32,     // ≤ 0: off
  repeat: f32,    // 0 or 1: off
  freq: f32,
  presence: f32,
  last_n: u32,    // ≤ params.ring
  seed_lo: u32,
  seed_hi: u32,
  draw: u32,      // the draw's counter
  row: u32,       // the column's row of recent
}

@group(0) @binding(0) var<storage, read_write> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read> cols: array<Column>;
@group(0) @binding(3) var<storage, read_write> recent: array<u32>;
@group(0) @binding(4) var<uniform> params: Params;

const WG: u32 = 256u;
const MAX_CAND: u32 = 1024u;
const NONE: u32 = 0xffffffffu;

var<workgroup> cand_key: array<u32, MAX_CAND>;
var<workgroup> cand_id: array<u32, MAX_CAND>;
var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> red_v: array<f32, WG>;
var<workgroup> red_i: array<u32, WG>;
var<workgroup> count_gt: array<u32, WG>;
var<workgroup> count_eq: array<u32, WG>;
var<workgroup> shared_u: u32;
var<workgroup> shared_v: u32;

// fetch8 loads the column's logits i0, i0 + stride, …, i0 + 7·stride
// (clamped to end − 1: callers skip those past end) before any is used:
// a GPU thread stalls at the first use of a load, and one load per turn of
// a loop over the vocabulary would pay the memory's latency each time.
fn fetch8(base: u32, i0: u32, stride: u32, end: u32) -> array<f32, 8> {
  var xs: array<f32, 8>;
  for (var k = 0u; k < 8u; k++) {
    xs[k] = logits[base + min(i0 + k * stride, end - 1u)];
  }
  return xs;
}

// key maps a logit to a u32 that orders as the logits do (−0 as +0).
fn key(l: f32) -> u32 {
  let b = select(bitcast<u32>(l), 0u, l == 0.0);
  return select(b ^ 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn unkey(k: u32) -> f32 {
  return bitcast<f32>(select(~k, k ^ 0x80000000u, (k & 0x80000000u) != 0u));
}

// kept is min-p over the whole vocabulary: exp(l − m) ≥ min_p, and the
// largest logits always.
fn kept(l: f32, m: f32, min_p: f32) -> bool {
  return min_p <= 0.0 || l >= m || exp(l - m) >= min_p;
}

fn hash32(v: u32) -> u32 {
  var x = v;
  x ^= x >> 16u;
  x *= 0x7feb352du;
  x ^= x >> 15u;
  x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}

// uniform01 is package sample's Uniform(seed, n).
fn uniform01(seed_lo: u32, seed_hi: u32, n: u32) -> f32 {
  let h = hash32(seed_lo ^ hash32(seed_hi ^ hash32(n ^ 0x9e3779b9u)));
  return f32(h >> 8u) / 16777216.0;
}

// before says whether candidate a comes before b: larger logit, then
// smaller id (by id alone when by_id).
fn before(ka: u32, ia: u32, kb: u32, ib: u32, by_id: bool) -> bool {
  if (by_id) {
    return ia < ib;
  }
  return ka > kb || (ka == kb && ia < ib);
}

// sort_cand sorts cand[0, n) (n ≤ MAX_CAND); slots from n up to the next
// power of two are filled with entries that sort last.
fn sort_cand(lid: u32, n: u32, by_id: bool) {
  var size = 1u;
  while (size < n) {
    size <<= 1u;
  }
  for (var i = n + lid; i < size; i += WG) {
    cand_key[i] = 0u;
    cand_id[i] = NONE;
  }
  workgroupBarrier();
  for (var k = 2u; k <= size; k <<= 1u) {
    for (var j = k >> 1u; j > 0u; j >>= 1u) {
      for (var i = lid; i < size; i += WG) {
        let o = i ^ j;
        if (o > i) {
          let up = (i & k) == 0u;
          let ki = cand_key[i];
          let ii = cand_id[i];
          let ko = cand_key[o];
          let io = cand_id[o];
          // In an "up" run, i must come before o.
          if (before(ko, io, ki, ii, by_id) == up) {
            cand_key[i] = ko;
            cand_id[i] = io;
            cand_key[o] = ki;
            cand_id[o] = ii;
          }
        }
      }
      workgroupBarrier();
    }
  }
}

// exclusive_scan turns count_gt and count_eq into their exclusive prefix
// sums, and returns the totals (in shared_u, shared_v).
fn exclusive_scan(lid: u32) {
  workgroupBarrier();
  if (lid == 0u) {
    var a = 0u;
    var b = 0u;
    for (var i = 0u; i < WG; i++) {
      let x = count_gt[i];
      let y = count_eq[i];
      count_gt[i] = a;
      count_eq[i] = b;
      a += x;
      b += y;
    }
    shared_u = a;
    shared_v = b;
  }
  workgroupBarrier();
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let lid = lid3.x;
  let col = wid.x;
  let c = cols[col];
  let V = params.vocab;
  let base = col * V;
  let rbase = c.row * (1u + params.ring);

  // Penalties, in place: each distinct recent token once, by the
  // invocation holding its newest occurrence.
  let penalized = (c.repeat != 0.0 && c.repeat != 1.0) || c.freq != 0.0 || c.presence != 0.0;
  if (penalized && c.last_n > 0u) {
    let total = recent[rbase];
    let n = min(total, c.last_n);
    for (var j = lid; j < n; j += WG) {
      let id = recent[rbase + 1u + (total - 1u - j) % params.ring];
      var count = 0u;
      var first = true;
      for (var i = 0u; i < n; i++) {
        if (recent[rbase + 1u + (total - 1u - i) % params.ring] == id) {
          count++;
          if (i < j) {
            first = false;
          }
        }
      }
      if (first && id < V) {
        var l = logits[base + id];
        if (c.repeat != 0.0 && c.repeat != 1.0) {
          l = select(l * c.repeat, l / c.repeat, l > 0.0);
        }
        logits[base + id] = l - (f32(count) * c.freq + c.presence);
      }
    }
    storageBarrier();
    workgroupBarrier();
  }

  // The largest logit and its lowest id.
  var v = -3.4e38;
  var vi = NONE;
  for (var i0 = lid; i0 < V; i0 += 8u * WG) {
    let xs = fetch8(base, i0, WG, V);
    for (var k = 0u; k < 8u; k++) {
      let i = i0 + k * WG;
      if (i < V && (xs[k] > v || vi == NONE)) {
        v = xs[k];
        vi = i;
      }
    }
  }
  red_v[lid] = v;
  red_i[lid] = vi;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      let ov = red_v[lid + s];
      let oi = red_i[lid + s];
      if (oi != NONE && (red_i[lid] == NONE || ov > red_v[lid] || (ov == red_v[lid] && oi < red_i[lid]))) {
        red_v[lid] = ov;
        red_i[lid] = oi;
      }
    }
    workgroupBarrier();
  }
  let m = red_v[0];
  let best = red_i[0];
  workgroupBarrier();

  var tok = best;
  let u = uniform01(c.seed_lo, c.seed_hi, c.draw);
  // Contiguous slices of ids, one per invocation, for the passes that
  // must see tokens in id order.
  let chunk = (V + WG - 1u) / WG;
  let lo = min(lid * chunk, V);
  let hi = min(lo + chunk, V);
  if (c.temp <= 0.0) {
    // Greedy: tok is the argmax.
  } else if (c.top_k > 0u || (c.top_p > 0.0 && c.top_p < 1.0)) {
    var K = min(MAX_CAND, V);
    if (c.top_k > 0u) {
      K = min(K, c.top_k);
    }
    // A floor under the K-th largest key, so that the radix passes count
    // (with workgroup atomics, contended when many keys share a bin) only
    // the few keys that can be among the K largest: each invocation's four
    // largest keys are 1,024 distinct logits (or 0, below every key), so
    // the K-th largest of them has at least K logits at or above it.
    var top = vec4<u32>(0u);
    for (var i0 = lid; i0 < V; i0 += 8u * WG) {
      let xs = fetch8(base, i0, WG, V);
      for (var j = 0u; j < 8u; j++) {
        let k = key(xs[j]);
        if (i0 + j * WG < V && k > top.w) {
          if (k > top.x) {
            top = vec4<u32>(k, top.x, top.y, top.z);
          } else if (k > top.y) {
            top = vec4<u32>(top.x, k, top.y, top.z);
          } else if (k > top.z) {
            top = vec4<u32>(top.x, top.y, k, top.z);
          } else {
            top.w = k;
          }
        }
      }
    }
    for (var j = 0u; j < 4u; j++) {
      cand_key[4u * lid + j] = top[j];
      cand_id[4u * lid + j] = 4u * lid + j;
    }
    workgroupBarrier();
    sort_cand(lid, MAX_CAND, false);
    let floor_key = cand_key[K - 1u];
    workgroupBarrier();
    // Radix select of the K-th largest key.
    var prefix = 0u;
    var mask = 0u;
    var remaining = K;
    for (var round = 0u; round < 4u; round++) {
      let shift = 24u - 8u * round;
      atomicStore(&hist[lid], 0u);
      workgroupBarrier();
      for (var i0 = lid; i0 < V; i0 += 8u * WG) {
        let xs = fetch8(base, i0, WG, V);
        for (var j = 0u; j < 8u; j++) {
          let k = key(xs[j]);
          if (i0 + j * WG < V && k >= floor_key && (k & mask) == prefix) {
            atomicAdd(&hist[(k >> shift) & 255u], 1u);
          }
        }
      }
      workgroupBarrier();
      if (lid == 0u) {
        var r = remaining;
        var digit = 0u;
        for (var b = 255i; b >= 0i; b--) {
          let n = atomicLoad(&hist[u32(b)]);
          if (n >= r) {
            digit = u32(b);
            break;
          }
          r -= n;
        }
        shared_u = digit;
        shared_v = r;
      }
      let digit = workgroupUniformLoad(&shared_u);
      remaining = workgroupUniformLoad(&shared_v);
      prefix |= digit << shift;
      mask |= 255u << shift;
    }
    let kth = prefix;
    let above = K - remaining; // keys > kth; `remaining` ties are taken
    // Gather, in id order: every key > kth, and the first `remaining`
    // keys equal to it.
    var gt = 0u;
    var eq = 0u;
    for (var i0 = lo; i0 < hi; i0 += 8u) {
      let xs = fetch8(base, i0, 1u, hi);
      for (var j = 0u; j < 8u; j++) {
        let k = key(xs[j]);
        let inside = i0 + j < hi;
        gt += select(0u, 1u, inside && k > kth);
        eq += select(0u, 1u, inside && k == kth);
      }
    }
    count_gt[lid] = gt;
    count_eq[lid] = eq;
    exclusive_scan(lid);
    var og = count_gt[lid];
    var oe = count_eq[lid];
    // Most slices hold no candidate: only the others are read again.
    let mine = select(lo, hi, gt + eq == 0u);
    for (var i = mine; i < hi; i++) {
      let k = key(logits[base + i]);
      if (k > kth) {
        cand_key[og] = k;
        cand_id[og] = i;
        og++;
      } else if (k == kth) {
        if (oe < remaining) {
          cand_key[above + oe] = k;
          cand_id[above + oe] = i;
        }
        oe++;
      }
    }
    workgroupBarrier();
    sort_cand(lid, K, false);
    // Top-p and min-p cut the sorted list (softmax at temperature 1).
    if (lid == 0u) {
      let top = unkey(cand_key[0]);
      var z = 0.0;
      for (var i = 0u; i < K; i++) {
        z += exp(unkey(cand_key[i]) - top);
      }
      var n = K;
      if (c.top_p > 0.0 && c.top_p < 1.0) {
        var cum = 0.0;
        for (var i = 0u; i < K; i++) {
          cum += exp(unkey(cand_key[i]) - top) / z;
          if (cum >= c.top_p) {
            n = i + 1u;
            break;
          }
        }
      }
      if (c.min_p > 0.0) {
        let floor = c.min_p / z;
        var j = 1u;
        while (j < n && exp(unkey(cand_key[j]) - top) / z >= floor) {
          j++;
        }
        n = j;
      }
      shared_u = n;
    }
    let n = workgroupUniformLoad(&shared_u);
    sort_cand(lid, n, true);
    if (lid == 0u) {
      // The draw, in id order.
      var z = 0.0;
      for (var i = 0u; i < n; i++) {
        z += exp((unkey(cand_key[i]) - m) / c.temp);
      }
      let goal = u * z;
      var cum = 0.0;
      var pick = cand_id[n - 1u];
      for (var i = 0u; i < n; i++) {
        cum += exp((unkey(cand_key[i]) - m) / c.temp);
        if (goal < cum) {
          pick = cand_id[i];
          break;
        }
      }
      shared_u = pick;
    }
    tok = workgroupUniformLoad(&shared_u);
  } else {
    // Every token with exp(l − m) ≥ min_p is a candidate; the draw walks
    // them in id order, slice by slice.
    var s = 0.0;
    for (var i0 = lo; i0 < hi; i0 += 8u) {
      let xs = fetch8(base, i0, 1u, hi);
      for (var j = 0u; j < 8u; j++) {
        if (i0 + j < hi && kept(xs[j], m, c.min_p)) {
          s += exp((xs[j] - m) / c.temp);
        }
      }
    }
    red_v[lid] = s;
    workgroupBarrier();
    if (lid == 0u) {
      var z = 0.0;
      var last = 0u;
      for (var t = 0u; t < WG; t++) {
        z += red_v[t];
        if (red_v[t] > 0.0) {
          last = t;
        }
      }
      let goal = u * z;
      // The slice where the cumulative weight passes goal.
      var cum = 0.0;
      var slice = last;
      for (var t = 0u; t < WG; t++) {
        if (goal < cum + red_v[t]) {
          slice = t;
          break;
        }
        cum += red_v[t];
      }
      let a = min(slice * chunk, V);
      let b = min(a + chunk, V);
      var pick = NONE;
      for (var i = a; i < b; i++) {
        let l = logits[base + i];
        if (kept(l, m, c.min_p)) {
          pick = i;
          cum += exp((l - m) / c.temp);
          if (goal < cum) {
            break;
          }
        }
      }
      shared_u = select(pick, best, pick == NONE);
    }
    tok = workgroupUniformLoad(&shared_u);
  }
  if (lid == 0u) {
    out[col] = tok;
    if (params.ring > 0u) {
      let total = recent[rbase];
      recent[rbase + 1u + total % params.ring] = tok;
      recent[rbase] = total + 1u;
    }
  }
}
