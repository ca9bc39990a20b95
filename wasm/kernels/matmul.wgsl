// matmul: y[t] = W·x[t] for a weight matrix W kept in its GGUF type, for a
// batch of T vectors, with the neighbouring operations of a Llama block
// fused in so that a decode step makes few dispatches.
//
// One file serves every weight type and fusion. Package kernels fills in
// these substitutions (Go text/template) when it makes a variant (MatMul):
//   .Weights  the weight type's bindings 0 (and 1) and its function
//             unit(row, u) -> array<vec4<f32>, 8>: the 32 weights
//             W[row, 32u .. 32u+31] dequantized (weights_<type>.wgsl)
//   .Norm   x is RMS-normalised and scaled by nw first: the norm before a
//           product, fused
//   .Gated  W holds 2·rows rows, gate then up: y = silu(gate·x)·(up·x),
//           SwiGLU fused
//   .Bias   y += b: Q/K/V biases (qwen2)
//   .Acc    y += the result: a residual add, fused
//   .Subgroups  main_wg reduces each row with subgroupAdd: only where
//           subgroups have exactly 32 invocations (LANES), laid out along
//           the local invocation index
//   .HalfX .HalfY  x, or y, is stored as f16 (activations in half
//           precision, where the device has shader-f16); sums stay f32
//   .X .Y .P .NW .B  binding numbers: the bindings are numbered densely in
//           the order weights (1 or 2 buffers), x, y, params, nw, b
//
//   x:  (T, cols) f32 (f16) from element x_off        nw: (cols) f32
//   y:  (T, ·) f32 (f16), y[t][row] at y_off + t·y_stride + row
//   b:  (rows) f32
//
// Entry points:
//   main_row  one invocation per (row, t): the form for batches (prefill)
//             and for CPU adapters. Dispatch (ceil(rows/64), T).
//   main_wg   one workgroup per 8 rows, 32 invocations per row taking
//             every 32nd unit of 32 weights (neighbouring invocations read
//             neighbouring memory: coalesced on a real GPU), x staged in
//             workgroup memory, reduced in workgroup memory or by
//             subgroupAdd. Dispatch MatMulWorkgroups(rows, T).
//   main_wgb  main_wg for 2 to 8 tokens at once: each weight unit is read
//             once and dotted with every token's x. Dispatch
//             MatMulWorkgroups(rows, 1).
//   main_tile 64×64 tiles for batches. Dispatch MatMulTiles.

{{if or .HalfX .HalfY}}enable f16;
{{end}}{{if .Subgroups}}enable subgroups;
{{end}}struct Params {
  rows: u32,      // output rows
  cols: u32,      // inner length, a multiple of 32 (256 for K-quants)
  batch: u32,     // T
  x_off: u32,     // element of x where x[0] starts, a multiple of 4
  y_stride: u32,  // elements from y[t] to y[t+1]
  y_off: u32,     // element of y where y[0] starts
  eps: f32,       // RMS norm epsilon (.Norm)
}

{{.Weights}}

@group(0) @binding({{.X}}) var<storage, read> x: array<vec4<{{if .HalfX}}f16{{else}}f32{{end}}>>;
@group(0) @binding({{.Y}}) var<storage, read_write> y: array<{{if .HalfY}}f16{{else}}f32{{end}}>;

// xload is x's i-th vec4, in f32.
fn xload(i: u32) -> vec4<f32> {
  return vec4<f32>(x[i]);
}
@group(0) @binding({{.P}}) var<uniform> params: Params;
{{if .Norm}}@group(0) @binding({{.NW}}) var<storage, read> nw: array<vec4<f32>>;{{end}}
{{if .Bias}}@group(0) @binding({{.B}}) var<storage, read> bias: array<f32>;{{end}}

// xin is elements 4i..4i+3 of x[t] as the product reads them (scaled by
// the norm's weights; the 1/rms factor is applied once, to the sum).
fn xin(t: u32, i: u32) -> vec4<f32> {
  let v = xload((params.x_off + t * params.cols) / 4u + i);
{{if .Norm}}  return v * nw[i];{{else}}  return v;{{end}}
}

// dot_unit is W[row, 32u..32u+31] · xin(t)[32u..32u+31].
fn dot_unit(row: u32, u: u32, t: u32) -> f32 {
  var w = unit(row, u);
  var s = vec4<f32>(0.0);
  for (var i = 0u; i < 8u; i++) {
    s += w[i] * xin(t, 8u * u + i);
  }
  return (s.x + s.y) + (s.z + s.w);
}

// inv_rms is 1/sqrt(mean(x[t]²) + eps), one invocation alone.
fn inv_rms(t: u32) -> f32 {
  var ss = 0.0;
  for (var i = 0u; i < params.cols / 4u; i++) {
    let v = xload((params.x_off + t * params.cols) / 4u + i);
    ss += dot(v, v);
  }
  return 1.0 / sqrt(ss / f32(params.cols) + params.eps);
}

// finish applies the fused epilogue to row's sums (gate and up when
// .Gated) and stores the result.
fn finish(row: u32, t: u32, a: f32, b: f32, scale: f32) {
  var r = a * scale;
{{if .Gated}}  r = r / (1.0 + exp(-r)) * (b * scale);
{{end}}{{if .Bias}}  r += bias[row];
{{end}}  let i = params.y_off + t * params.y_stride + row;
{{if .Acc}}  y[i] += r;{{else if .HalfY}}  y[i] = f16(r);{{else}}  y[i] = r;{{end}}
}

@compute @workgroup_size(64)
fn main_row(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x;
  let t = gid.y;
  if (row >= params.rows || t >= params.batch) {
    return;
  }
  var scale = 1.0;
{{if .Norm}}  scale = inv_rms(t);
{{end}}  var a = 0.0;
  var b = 0.0;
  for (var u = 0u; u < params.cols / 32u; u++) {
    a += dot_unit(row, u, t);
{{if .Gated}}    b += dot_unit(row + params.rows, u, t);
{{end}}  }
  finish(row, t, a, b, scale);
}

const LANES: u32 = 32u;  // invocations per row in main_wg
const ROWS: u32 = 8u;    // rows per workgroup in main_wg
const CHUNK: u32 = 512u; // vec4s of x held in workgroup memory at a time

var<workgroup> red: array<f32, 256>;
{{if .Gated}}var<workgroup> red_up: array<f32, 256>;{{end}}
// A chunk of xin(t), read from memory once per workgroup rather than once
// per row: x is reread for every row, and would otherwise cost as much
// cache traffic as the weights themselves. Units are held swizzled (see
// swz).
var<workgroup> xs: array<vec4<f32>, CHUNK>;

// swz is where vec4 i (0..7) of unit u sits in a workgroup array of
// units: 8u + (i xor u mod 8). Neighbouring invocations read the same i
// of neighbouring units; unswizzled, 128 bytes apart, they would all hit
// the same memory banks and be served one after another.
fn swz(u: u32, i: u32) -> u32 {
  return 8u * u + (i ^ (u & 7u));
}

// dot_chunk is W[row, 32(u0+u) .. +31] · the chunk's units u.
// Unrolled (as main_wgb's products are): w indexed by constants only stays
// in registers.
fn dot_chunk(row: u32, u0: u32, u: u32) -> f32 {
  let w = unit(row, u0 + u);
  var s = vec4<f32>(0.0);
{{range $.K}}  s += w[{{.}}] * xs[swz(u, {{.}}u)];
{{end}}  return (s.x + s.y) + (s.z + s.w);
}

// wg_inv_rms is 1/sqrt(mean(x[t]²) + eps), the 256 invocations of a
// workgroup sharing the columns. Every invocation must call it.
fn wg_inv_rms(t: u32, lid: u32) -> f32 {
  var ss = 0.0;
  for (var i = lid; i < params.cols / 4u; i += 256u) {
    let v = xload((params.x_off + t * params.cols) / 4u + i);
    ss += dot(v, v);
  }
  red[lid] = ss;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) {
    if (lid < k) {
      red[lid] += red[lid + k];
    }
    workgroupBarrier();
  }
  let r = 1.0 / sqrt(red[0] / f32(params.cols) + params.eps);
  workgroupBarrier(); // red is free again
  return r;
}

@compute @workgroup_size(256)
fn main_wg(@builtin(local_invocation_id) lid: vec3<u32>,
           @builtin(workgroup_id) wid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = lid.x / LANES;
  let lane = lid.x % LANES;
  let row = (wid.y * nwg.x + wid.x) * ROWS + g;
  let t = wid.z;
  let cols4 = params.cols / 4u;
  var scale = 1.0;
{{if .Norm}}  scale = wg_inv_rms(t, lid.x);
{{end}}  var a = 0.0;
  var b = 0.0;
  for (var c0 = 0u; c0 < cols4; c0 += CHUNK) {
    let n = min(CHUNK, cols4 - c0);
    workgroupBarrier(); // the previous chunk is used up
    for (var i = lid.x; i < n; i += 256u) {
      xs[swz(i / 8u, i % 8u)] = xin(t, c0 + i);
    }
    workgroupBarrier();
    if (row < params.rows) {
      for (var u = lane; u < n / 8u; u += LANES) {
        a += dot_chunk(row, c0 / 8u, u);
{{if .Gated}}        b += dot_chunk(row + params.rows, c0 / 8u, u);
{{end}}      }
    }
  }
  reduce_finish(lid.x, row, t, a, b, scale);
}

// reduce_finish sums each row's LANES partial sums a (and b, the up
// projection's, with .Gated) and finishes the row's output for token t.
// Every invocation of the workgroup must call it.
fn reduce_finish(lid: u32, row: u32, t: u32, a: f32, b: f32, scale: f32) {
  let lane = lid % LANES;
{{if .Subgroups}}  // Subgroups of exactly LANES invocations: one row each.
  let sa = subgroupAdd(a);
{{if .Gated}}  let sb = subgroupAdd(b);
{{else}}  let sb = 0.0;
{{end}}  if (lane == 0u && row < params.rows) {
    finish(row, t, sa, sb, scale);
  }
{{else}}  red[lid] = a;
{{if .Gated}}  red_up[lid] = b;
{{end}}  workgroupBarrier();
  for (var k = LANES / 2u; k > 0u; k >>= 1u) {
    if (lane < k) {
      red[lid] += red[lid + k];
{{if .Gated}}      red_up[lid] += red_up[lid + k];
{{end}}    }
    workgroupBarrier();
  }
  if (lane == 0u && row < params.rows) {
{{if .Gated}}    finish(row, t, red[lid], red_up[lid], scale);{{else}}    finish(row, t, red[lid], 0.0, scale);{{end}}
  }
  workgroupBarrier(); // red is free again
{{end}}}

// main_wgb: the workgroup form for a few tokens at once (batched decode,
// short prompts: 2 ≤ T ≤ BT), laid out as main_wg (8 rows of 32 lanes,
// lane l taking units l, l+32, …), each lane dequantizing each of its
// units once and dotting it with every token's x, so a step reads the
// weights once, not T times. x goes through workgroup memory as in
// main_wg, a chunk of 32 units (one per lane) for G tokens at a time
// (G = .StageTokens, as many as the device's workgroup memory holds): read
// from memory by every lane instead, at 32 cache lines per load
// instruction, x cost more than the weights. A token's sums are made in
// the order main_wg makes them (each lane's units in order, the same
// reductions), so batched tokens get exactly their solo sums. Dispatch
// MatMulWorkgroups(rows, 1).
//
// The loops over tokens, staged groups and a unit's vec4s are unrolled by
// the template (.Stages: each group's tokens; .K: 0..7), so that every
// index into the per-token sums and into w is a constant: an array
// indexed at run time lives in memory, not in registers, and costs a load
// and a store per use.
const BT: u32 = 8u; // most tokens of main_wgb
const G: u32 = {{.StageTokens}}u;  // tokens of x staged at a time
const CU: u32 = LANES * 8u;  // vec4s of one token's chunk: a unit per lane
// G tokens' chunks, each swizzled (swz); with .Norm, after the products,
// the tokens' Σx² partial sums (vec4 q of invocation i holds those of
// tokens 4q..4q+3 at 256q + i).
var<workgroup> xb: array<vec4<f32>, G * CU>;

// sum_squares adds up the invocations' shares ss of each token's Σx² in
// wg_inv_rms's tree, four tokens to a vec4: token t's sum is left in
// xb[(t / 4)·CU][t mod 4]. Every invocation must call it, after the
// products (it overwrites xb).
fn sum_squares(lid: u32, ss: array<f32, BT>) {
  workgroupBarrier(); // xb is free again
  xb[lid] = vec4<f32>(ss[0], ss[1], ss[2], ss[3]);
  xb[CU + lid] = vec4<f32>(ss[4], ss[5], ss[6], ss[7]);
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) {
    if (lid < k) {
      xb[lid] += xb[lid + k];
      xb[CU + lid] += xb[CU + lid + k];
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(256)
fn main_wgb(@builtin(local_invocation_id) lid: vec3<u32>,
            @builtin(workgroup_id) wid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = lid.x / LANES;
  let lane = lid.x % LANES;
  let row = (wid.y * nwg.x + wid.x) * ROWS + g;
  let T = min(params.batch, BT);
  let cols4 = params.cols / 4u;
  var a: array<f32, BT>;
  var b: array<f32, BT>;
  var ss: array<f32, BT>; // this invocation's share of Σx[t]², as wg_inv_rms
  for (var c0 = 0u; c0 < cols4; c0 += CU) {
    let u = c0 / 8u + lane;
    let live = row < params.rows && u < params.cols / 32u;
    var w: array<vec4<f32>, 8>;
{{if .Gated}}    var wu: array<vec4<f32>, 8>;
{{end}}    if (live) {
      w = unit(row, u);
{{if .Gated}}      wu = unit(row + params.rows, u);
{{end}}    }
    let i = c0 + lid.x;
{{range $st := .Stages}}    if ({{index $st 0}}u < T) {
      workgroupBarrier(); // the previous tokens' chunks are used up
      if (i < cols4) {
{{range $j, $t := $st}}        if ({{$t}}u < T) {
          let v = xload((params.x_off + {{$t}}u * params.cols) / 4u + i);
{{if $.Norm}}          ss[{{$t}}] += dot(v, v);
          xb[{{$j}}u * CU + swz(lid.x / 8u, lid.x % 8u)] = v * nw[i];
{{else}}          xb[{{$j}}u * CU + swz(lid.x / 8u, lid.x % 8u)] = v;
{{end}}        }
{{end}}      }
      workgroupBarrier();
      if (live) {
{{range $j, $t := $st}}        if ({{$t}}u < T) {
          var s = vec4<f32>(0.0);
{{if $.Gated}}          var su = vec4<f32>(0.0);
{{end}}{{range $.K}}          s += w[{{.}}] * xb[{{$j}}u * CU + swz(lane, {{.}}u)];
{{if $.Gated}}          su += wu[{{.}}] * xb[{{$j}}u * CU + swz(lane, {{.}}u)];
{{end}}{{end}}          a[{{$t}}] += (s.x + s.y) + (s.z + s.w);
{{if $.Gated}}          b[{{$t}}] += (su.x + su.y) + (su.z + su.w);
{{end}}        }
{{end}}      }
    }
{{end}}  }
{{if .Norm}}  // Each token's 1/rms, from the invocations' shares of Σx².
  sum_squares(lid.x, ss);
{{end}}{{range $t := .Tokens}}  if ({{$t}}u < T) {
{{if $.Norm}}    let scale = 1.0 / sqrt(xb[{{div4 $t}}u * CU][{{mod4 $t}}u] / f32(params.cols) + params.eps);
{{else}}    let scale = 1.0;
{{end}}    reduce_finish(lid.x, row, {{$t}}u, a[{{$t}}], b[{{$t}}], scale);
  }
{{end}}}

// main_wgt: the few-tokens form with the roles of lanes and units
// swapped, for weights of many rows. A workgroup takes 32 weight rows
// (with .Gated: 16 outputs, lanes 0-15 their gate rows, lanes 16-31
// their up rows), lane l of each subgroup-sized group g (0..7) taking row
// l, and group g taking units g, g+8, g+16 and g+24 of each chunk of 32
// units. All 32 lanes of a group read the same x from workgroup memory at
// once (one broadcast read serves 32 rows, where main_wgb's lanes each
// read their own unit's: four times the traffic for one row), and x is
// staged once for 32 rows instead of 8.
//
// The sums are main_wg's, bit for bit: main_wg's lane l adds units l,
// l+32, … of its row in order, then the lanes' 32 partial sums are
// reduced. Here unit u is added to the partial sum of class u mod 32,
// kept by the group that takes u (group c mod 8, slot c / 8), in the same
// order; at the end the 32 partial sums of a row go through workgroup
// memory to 32 lanes of one group, lane l holding class l, and are
// reduced as main_wg reduces them. Dispatch MatMulTransposedWorkgroups.
const TROWS: u32 = 32u; // weight rows per workgroup in main_wgt
const TPAD: u32 = 33u;  // floats per row of the partial sums' transpose (33: no bank conflicts)
{{if .Subgroups}}
// sum32 is the sum of v over the 32 lanes of a subgroup, as main_wg's
// reduce_finish makes it. Every invocation must call it.
fn sum32(v: f32, lid: u32) -> f32 {
  return subgroupAdd(v);
}
{{else}}
// sum32 is the sum of v over lanes lid - lid mod 32 … +31, as main_wg's
// reduce_finish makes it (in lane 0). Every invocation must call it.
fn sum32(v: f32, lid: u32) -> f32 {
  let lane = lid % LANES;
  red[lid] = v;
  workgroupBarrier();
  for (var k = LANES / 2u; k > 0u; k >>= 1u) {
    if (lane < k) {
      red[lid] += red[lid + k];
    }
    workgroupBarrier();
  }
  let r = red[lid];
  workgroupBarrier(); // red is free again
  return r;
}
{{end}}
// tr_put and tr_get are element e of the transposed partial sums, kept in
// xb (after the products: xb is free then).
fn tr_put(e: u32, v: f32) {
  xb[e / 4u][e % 4u] = v;
}
fn tr_get(e: u32) -> f32 {
  return xb[e / 4u][e % 4u];
}

@compute @workgroup_size(256)
fn main_wgt(@builtin(local_invocation_id) lid: vec3<u32>,
            @builtin(workgroup_id) wid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = lid.x / LANES;
  let lane = lid.x % LANES;
  let wg = wid.y * nwg.x + wid.x;
{{if .Gated}}  let o0 = wg * (TROWS / 2u); // outputs o0 … o0+15
  let oi = o0 + lane % 16u;
  let prow = oi + select(0u, params.rows, lane >= 16u);
  let live = oi < params.rows;
{{else}}  let o0 = wg * TROWS; // outputs o0 … o0+31
  let prow = o0 + lane;
  let live = prow < params.rows;
{{end}}  let T = min(params.batch, BT);
  let cols4 = params.cols / 4u;
  let units = params.cols / 32u;
  // acc[8q + t]: the partial sum of class g + 8q of this lane's row, token t.
  var acc: array<f32, 32>;
  var ss: array<f32, BT>; // this invocation's share of Σx[t]², as wg_inv_rms
  for (var c0 = 0u; c0 < cols4; c0 += CU) {
    let i = c0 + lid.x;
{{range $st := .Stages}}    if ({{index $st 0}}u < T) {
      workgroupBarrier(); // the previous tokens' chunks are used up
      if (i < cols4) {
{{range $j, $t := $st}}        if ({{$t}}u < T) {
          let v = xload((params.x_off + {{$t}}u * params.cols) / 4u + i);
{{if $.Norm}}          ss[{{$t}}] += dot(v, v);
          xb[{{$j}}u * CU + lid.x] = v * nw[i];
{{else}}          xb[{{$j}}u * CU + lid.x] = v;
{{end}}        }
{{end}}      }
      workgroupBarrier();
{{range $q := $.Q}}      {
        let uc = g + {{mul8 $q}}u; // the unit within the chunk
        let u = c0 / 8u + uc;
        if (live && u < units) {
          let w = unit(prow, u);
{{range $j, $t := $st}}          if ({{$t}}u < T) {
            var s = vec4<f32>(0.0);
{{range $.K}}            s += w[{{.}}] * xb[{{$j}}u * CU + 8u * uc + {{.}}u];
{{end}}            acc[{{add (mul8 $q) $t}}] += (s.x + s.y) + (s.z + s.w);
          }
{{end}}        }
      }
{{end}}    }
{{end}}  }
  var scale: array<f32, BT>;
{{if .Norm}}  // Each token's 1/rms, from the invocations' shares of Σx².
  sum_squares(lid.x, ss);
{{range $t := .Tokens}}  scale[{{$t}}] = 1.0 / sqrt(xb[{{div4 $t}}u * CU][{{mod4 $t}}u] / f32(params.cols) + params.eps);
{{end}}{{else}}{{range $t := .Tokens}}  scale[{{$t}}] = 1.0;
{{end}}{{end}}  // Two tokens at a time, each row's 32 partial sums through xb to the
  // lanes of one group: element ((t mod 2)·32 + row)·TPAD + class.
{{range $tp := .TokenPairs}}  if ({{index $tp 0}}u < T) {
    workgroupBarrier(); // xb is free again
{{range $j, $t := $tp}}{{range $q := $.Q}}    tr_put(({{$j}}u * TROWS + lane) * TPAD + g + {{mul8 $q}}u, acc[{{add (mul8 $q) $t}}]);
{{end}}{{end}}    workgroupBarrier();
{{range $j, $t := $tp}}    if ({{$t}}u < T) {
{{if $.Gated}}{{range $r := $.Pair}}      {
        let o = g + {{mul8 $r}}u; // output o0 + o: gate row o, up row o + 16
        let sa = sum32(tr_get(({{$j}}u * TROWS + o) * TPAD + lane), lid.x);
        let sb = sum32(tr_get(({{$j}}u * TROWS + o + 16u) * TPAD + lane), lid.x);
        if (lane == 0u && o0 + o < params.rows) {
          finish(o0 + o, {{$t}}u, sa, sb, scale[{{$t}}]);
        }
      }
{{end}}{{else}}{{range $q := $.Q}}      {
        let o = g + {{mul8 $q}}u;
        let sa = sum32(tr_get(({{$j}}u * TROWS + o) * TPAD + lane), lid.x);
        if (lane == 0u && o0 + o < params.rows) {
          finish(o0 + o, {{$t}}u, sa, 0.0, scale[{{$t}}]);
        }
      }
{{end}}{{end}}    }
{{end}}  }
{{end}}}

// main_tile: the form for batches on real GPUs. A workgroup computes a
// tile of 64 weight rows × 64 tokens (with .Gated: 32 gate rows and the
// 32 up rows of the same outputs). Step by step, one unit (32 weights) of
// the 64 rows is dequantized into workgroup memory with the matching 32
// elements of the 64 tokens, and serves all of them: each weight is read
// from memory ceil(T/64) times instead of T times. Each invocation keeps
// 4 rows × 4 tokens of sums (16 multiply-adds per 8 loads from workgroup
// memory), and loads the next step's weights and x while it computes.
// With .Norm, Σx² is gathered while x is staged. Dispatch MatMulTiles.
const TR: u32 = 64u; // weight rows per tile
const TT: u32 = 64u; // tokens per tile
// (TR, 8): one unit of each row, swizzled (swz): the rows an invocation
// group reads at once fall in different memory banks.
var<workgroup> wt: array<vec4<f32>, 512>;
var<workgroup> xt: array<vec4<f32>, 512>; // (TT, 8)

// tile_row is the weight row that tile row j (0..TR-1) of row tile rt
// holds, and whether it exists.
fn tile_row(rt: u32, j: u32) -> vec2<u32> {
{{if .Gated}}  let o = rt * (TR / 2u) + j % (TR / 2u);
  return vec2<u32>(o + select(0u, params.rows, j >= TR / 2u), u32(o < params.rows));
{{else}}  let o = rt * TR + j;
  return vec2<u32>(o, u32(o < params.rows));
{{end}}}

// tile_x is element group c (0..7) of unit u of tile token tt.
fn tile_x(t0: u32, tt: u32, u: u32, c: u32) -> vec4<f32> {
  if (t0 + tt >= params.batch) {
    return vec4<f32>(0.0);
  }
  return xload((params.x_off + (t0 + tt) * params.cols) / 4u + u * 8u + c);
}

@compute @workgroup_size(256)
fn main_tile(@builtin(local_invocation_id) lid: vec3<u32>,
             @builtin(workgroup_id) wid: vec3<u32>) {
  let units = params.cols / 32u;
  let ri = lid.x % 16u; // tile rows ri + 16k, k = 0..3
  let ti = lid.x / 16u; // tile tokens ti + 16m, m = 0..3
  let t0 = wid.y * TT;
  var s: array<vec4<f32>, 4>; // s[k][m]: row ri+16k, token ti+16m
  var ss0 = 0.0; // Σx² of token lid.x/8, then of token 32 + lid.x/8
  var ss1 = 0.0;
  // Invocation l stages weight row l (l < 64) and x elements l and l+256
  // (token idx/8, group idx%8).
  let r = tile_row(wid.x, lid.x % TR);
  var w: array<vec4<f32>, 8>;
  if (lid.x < TR && r.y == 1u) {
    w = unit(r.x, 0u);
  }
  var xa = tile_x(t0, lid.x / 8u, 0u, lid.x % 8u);
  var xb = tile_x(t0, 32u + lid.x / 8u, 0u, lid.x % 8u);
  for (var u = 0u; u < units; u++) {
    workgroupBarrier(); // the previous step's tiles are used up
    if (lid.x < TR) {
      for (var i = 0u; i < 8u; i++) {
        wt[swz(lid.x, i)] = w[i];
      }
    }
{{if .Norm}}    ss0 += dot(xa, xa);
    ss1 += dot(xb, xb);
    let g = nw[u * 8u + lid.x % 8u];
    xt[lid.x] = xa * g;
    xt[lid.x + 256u] = xb * g;
{{else}}    xt[lid.x] = xa;
    xt[lid.x + 256u] = xb;
{{end}}    workgroupBarrier();
    // The next step's loads, in flight during this step's sums.
    if (u + 1u < units) {
      if (lid.x < TR && r.y == 1u) {
        w = unit(r.x, u + 1u);
      }
      xa = tile_x(t0, lid.x / 8u, u + 1u, lid.x % 8u);
      xb = tile_x(t0, 32u + lid.x / 8u, u + 1u, lid.x % 8u);
    }
    for (var c = 0u; c < 8u; c++) {
      let w0 = wt[swz(ri, c)];
      let w1 = wt[swz(ri + 16u, c)];
      let w2 = wt[swz(ri + 32u, c)];
      let w3 = wt[swz(ri + 48u, c)];
      for (var m = 0u; m < 4u; m++) {
        let xv = xt[(ti + 16u * m) * 8u + c];
        s[m] += vec4<f32>(dot(w0, xv), dot(w1, xv), dot(w2, xv), dot(w3, xv));
      }
    }
  }
  var scale = vec4<f32>(1.0);
{{if .Norm}}  // Each token's Σx²: 8 invocations staged a share of it.
  workgroupBarrier();
  wt[lid.x] = vec4<f32>(ss0, ss1, 0.0, 0.0);
  workgroupBarrier();
  if (lid.x < TT) {
    var sum = 0.0;
    for (var j = 0u; j < 8u; j++) {
      let p = wt[(lid.x % 32u) * 8u + j];
      sum += select(p.x, p.y, lid.x >= 32u);
    }
    xt[lid.x] = vec4<f32>(1.0 / sqrt(sum / f32(params.cols) + params.eps));
  }
  workgroupBarrier();
  scale = vec4<f32>(xt[ti].x, xt[ti + 16u].x, xt[ti + 32u].x, xt[ti + 48u].x);
{{end}}  for (var m = 0u; m < 4u; m++) {
    let t = t0 + ti + 16u * m;
    if (t >= params.batch) {
      continue;
    }
{{if .Gated}}    // Tile rows ri and ri+16 are gates, ri+32 and ri+48 their ups.
    for (var k = 0u; k < 2u; k++) {
      let o = wid.x * (TR / 2u) + ri + 16u * k;
      if (o < params.rows) {
        finish(o, t, s[m][k], s[m][k + 2u], scale[m]);
      }
    }
{{else}}    for (var k = 0u; k < 4u; k++) {
      let o = wid.x * TR + ri + 16u * k;
      if (o < params.rows) {
        finish(o, t, s[m][k], 0.0, scale[m]);
      }
    }
{{end}}  }
}
