// cpupool.js: the browser CPU path's thread pool. One shared
// WebAssembly.Memory holds the weights, the activations and the results;
// every thread (this one, where the Go engine runs, and threads−1 module
// workers, cpuworker.js) instantiates the SIMD128 kernels (simd128/
// kernels.wasm) on it, and a product is one job that they all take chunks
// of rows from (kernels.c says how). Go (wasm/cpu, simd128_js.go) calls
// three functions on globalThis.__webinferCPU, which the host sets to
// pool.attach(its Go instance's memory) just before the instance runs
// (Go reads it in an init function, so each engine in a scope keeps its
// own; they share the pool):
//
//   upload(ptr, len)  copies len bytes of Go's memory at ptr into the shared
//                     memory and returns their offset (a weight, once)
//   free(off)         gives an upload's bytes back
//   matmul(args)      runs the products of one to eight weights of one type
//                     and width with the same activations (Q, K and V):
//                     args is the address in Go's memory of int32s [op,
//                     columns, tokens, weights, then per weight: its offset,
//                     row bytes and rows; per token: the address and bytes
//                     of its activations, of their scales and of their sums
//                     (0, 0 where the type has none); per weight, per token,
//                     its results' address]; the activations are copied in,
//                     the results out
//   silu(args)        gate = SiLU(gate)·up: args holds [gate's address,
//                     up's, elements]; gate is copied back
//   attend(args)      attention for several rows over their KV caches,
//                     kept in the pool's memory (alloc'd by Go, one per
//                     sequence): args holds [heads, query heads per KV
//                     head, head dim, floats per cached position, the
//                     scale's float bits, rows, the longest row's
//                     positions], then per row [its query's address, its
//                     output's, its layer's keys' and values' offsets in
//                     the pool, its positions, and the position where its
//                     own key and value go (−1: none) with their addresses
//                     in Go's memory]: those are written in first
//   copy(dst, src, len) moves bytes within the pool's memory (a KV cache
//                     that grew)
//
// so that a product costs one Go↔JS crossing and no allocation. Where the
// pool cannot run (no cross-origin isolation, so no SharedArrayBuffer; no
// WebAssembly SIMD; a worker that does not start), startCPUPool resolves to
// { ready: false, why } and the engine keeps its Go kernels.
const kernelsURL = new URL("./simd128/kernels.wasm", import.meta.url).href;
const workerURL = new URL("./cpuworker.js", import.meta.url).href;

const PAGE = 65536;
// The control words (int32 indexes from ctl): the job generation that
// wakes the workers, per job slot the workers inside it, and the threads
// in use.
// Jobs alternate between two slots (generation parity), and a slot is
// rewritten only when no worker is inside it: a worker that woke late
// for job N, while N+1 runs in the other slot, finds N done; one that
// enters as N+2 is written checks the generation after counting itself
// in and leaves (cpuworker.js).
const GEN = 0, BUSY = 2, ACTIVE = 4; // BUSY + slot
const STALL_MS = 3000;
// The job's header (int32 indexes from job), as kernels.c's job_t, and
// where its op's arguments begin.
const J = { op: 0, units: 1, chunk: 2, chunks: 3, next: 4, done: 5, args: 6 };
const PRODUCTS = new Set([1, 2, 3, 4, 5, 6]); // kernels.c's OP_*: Q8_0, Q4_0, Q4_K, Q6_K, F16, F32
const OP_SILU = 7, OP_ATTEND = 8;
const MM_HEAD = 4, PER_WEIGHT = 3, PER_TOKEN = 6; // int32s of matmul's header, of each weight's and each token's arguments
const SEG = 13; // int32s of kernels.c's seg_t
const ATTEND_HEAD = 7, PER_ROW = 8; // int32s of attend's header and of each row's

// A first-fit allocator over [start, ∞) in 64-byte units, growing the
// memory when nothing free fits. Weights are uploaded once and freed with
// their model, so the free list stays short.
class Allocator {
  constructor(memory, start) {
    this.memory = memory;
    this.top = align(start);
    this.free = []; // {off, size}, by offset
    this.sizes = new Map(); // off → size of each live block
  }
  alloc(n) {
    n = align(Math.max(n, 1));
    for (let i = 0; i < this.free.length; i++) {
      const f = this.free[i];
      if (f.size >= n) {
        const off = f.off;
        if (f.size === n) this.free.splice(i, 1);
        else { f.off += n; f.size -= n; }
        this.sizes.set(off, n);
        return off;
      }
    }
    const off = this.top;
    const end = off + n;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      try {
        this.memory.grow(Math.ceil((end - have) / PAGE));
      } catch (err) {
        throw Object.assign(new Error(`the CPU pool's memory cannot grow to ${end} bytes: ${err.message}`), { code: "out-of-memory" });
      }
    }
    this.top = end;
    this.sizes.set(off, n);
    return off;
  }
  release(off) {
    const n = this.sizes.get(off);
    if (n === undefined) return;
    this.sizes.delete(off);
    let i = 0;
    while (i < this.free.length && this.free[i].off < off) i++;
    this.free.splice(i, 0, { off, size: n });
    // Merge with the neighbours; a block that ends at top gives it back.
    for (let k = Math.max(0, i - 1); k < this.free.length - 1;) {
      const a = this.free[k], b = this.free[k + 1];
      if (a.off + a.size === b.off) { a.size += b.size; this.free.splice(k + 1, 1); } else k++;
    }
    const last = this.free[this.free.length - 1];
    if (last && last.off + last.size === this.top) { this.top = last.off; this.free.pop(); }
  }
}

const align = (n) => (n + 63) & ~63;

// The largest shared memory this browser lets us reserve: 4 GiB where it
// can, less where address space is short.
function sharedMemory() {
  let err;
  for (const pages of [65536, 32768, 16384]) {
    try {
      return new WebAssembly.Memory({ initial: 64, maximum: pages, shared: true });
    } catch (e) {
      err = e;
    }
  }
  throw err;
}

let started = null;

// startCPUPool starts this scope's pool, once: threads is how many threads
// compute (this one included), by default navigator.hardwareConcurrency,
// at most 8. It resolves to the pool, or to { ready: false, why, attach }
// where it cannot run; it never rejects.
export function startCPUPool(opts = {}) {
  if (!started) started = start(opts);
  return started;
}

async function start({ threads } = {}) {
  const off = (why) => ({ ready: false, why, attach: () => ({ ready: false, why }) });
  if (typeof SharedArrayBuffer !== "function" || !globalThis.crossOriginIsolated) {
    return off("the page is not cross-origin isolated (COOP/COEP), so there is no SharedArrayBuffer for a thread pool");
  }
  if (typeof Atomics !== "object" || typeof Worker !== "function") return off("no Atomics or Worker");
  const hw = (globalThis.navigator && navigator.hardwareConcurrency) || 1;
  const n = Math.max(1, Math.min(threads || hw, 8));
  try {
    const resp = await fetch(kernelsURL);
    if (!resp.ok) throw new Error(`${kernelsURL}: HTTP ${resp.status}`);
    const bytes = await resp.arrayBuffer();
    if (!WebAssembly.validate(bytes)) return off("this browser has no WebAssembly SIMD128 (or threads) for the CPU kernels");
    const module = await WebAssembly.compile(bytes);
    const memory = sharedMemory();
    const { exports } = await WebAssembly.instantiate(module, { env: { memory } });
    exports.wi_init();
    const heap = new Allocator(memory, exports.__heap_base.value);
    const ctl = heap.alloc(64) >> 2;
    const jobs = [heap.alloc(128) >> 2, heap.alloc(128) >> 2];
    Atomics.store(new Int32Array(memory.buffer), ctl + ACTIVE, n);
    const workers = await Promise.all(Array.from({ length: n - 1 }, (_, i) => startWorker(module, memory, ctl, jobs, i + 1)));
    return new Pool({ memory, exports, heap, ctl, jobs, workers, threads: n });
  } catch (err) {
    return off(`the CPU pool did not start: ${err && err.message ? err.message : err}`);
  }
}

function startWorker(module, memory, ctl, jobs, index) {
  return new Promise((resolve, reject) => {
    const w = new Worker(workerURL, { type: "module", name: "webinfer-cpu" });
    const timer = setTimeout(() => reject(new Error("a CPU worker did not start in 20 s")), 20000);
    w.onmessage = (e) => {
      clearTimeout(timer);
      if (e.data && e.data.ready) resolve(w);
      else reject(new Error(e.data && e.data.error ? e.data.error : "a CPU worker failed"));
    };
    w.onerror = (e) => {
      clearTimeout(timer);
      reject(new Error(`a CPU worker failed: ${e.message || e}`));
    };
    w.postMessage({ module, memory, ctl, jobs, index });
  });
}

class Pool {
  constructor({ memory, exports, heap, ctl, jobs, workers, threads }) {
    Object.assign(this, { memory, exports, heap, ctl, jobs, workers, threads, ready: true, why: "" });
    this.isa = "wasm-simd128";
    this.scratch = { off: 0, size: 0 };
    this.views();
  }
  get active() {
    return Atomics.load(this.i32, this.ctl + ACTIVE);
  }
  // setThreads uses the first n threads (1 to the pool's size) from the
  // next product on; the others sleep.
  setThreads(n) {
    n = Math.max(1, Math.min(this.threads, Math.floor(n)));
    Atomics.store(this.i32, this.ctl + ACTIVE, n);
    Atomics.add(this.i32, this.ctl + GEN, 2); // same slot parity: no job runs
    Atomics.notify(this.i32, this.ctl + GEN);
    return n;
  }
  views() {
    this.u8 = new Uint8Array(this.memory.buffer);
    this.i32 = new Int32Array(this.memory.buffer);
  }
  // attach is the face one Go instance sees (globalThis.__webinferCPU):
  // the pool's functions reading that instance's memory.
  attach(goMemory) {
    const pool = this;
    return {
      ready: true, isa: this.isa, goMemory,
      get threads() { return pool.active; },
      get size() { return pool.threads; },
      get why() { return pool.why; },
      debugStall: () => this.debugStall(),
      setThreads: (n) => this.setThreads(n),
      upload: (ptr, len) => this.upload(goMemory, ptr, len),
      // alloc, write and read: a weight read into the pool a piece at a
      // time (Go's MaterializeOutside), and read back (a GPU upload).
      alloc: (len) => this.heap.alloc(len),
      write: (off, ptr, len) => this.copyIn(goMemory, off, ptr, len),
      read: (off, ptr, len) => new Uint8Array(goMemory.buffer).set(this.bytes(off, len), ptr),
      free: (off) => this.free(off),
      copy: (dst, src, len) => { this.fresh(); this.u8.copyWithin(dst, src, src + len); },
      matmul: (args) => this.matmul(goMemory, args),
      silu: (args) => this.silu(goMemory, args),
      attend: (args) => this.attend(goMemory, args),
    };
  }
  // fresh renews the views after the memory grew.
  fresh() {
    if (this.u8.length < this.memory.buffer.byteLength) this.views();
  }
  copyIn(goMemory, off, ptr, len) {
    this.fresh();
    this.u8.set(new Uint8Array(goMemory.buffer, ptr, len), off);
  }
  bytes(off, len) {
    this.fresh();
    return this.u8.subarray(off, off + len);
  }
  upload(goMemory, ptr, len) {
    const off = this.heap.alloc(len);
    this.copyIn(goMemory, off, ptr, len);
    return off;
  }
  free(off) {
    this.heap.release(off);
  }
  // room returns n bytes of scratch, reused from call to call.
  room(n) {
    if (this.scratch.size < n) {
      if (this.scratch.size) this.heap.release(this.scratch.off);
      const size = Math.max(n, 2 * this.scratch.size);
      this.scratch = { off: this.heap.alloc(size), size };
    }
    this.fresh();
    return this.scratch.off;
  }
  matmul(goMemory, argsPtr) {
    const goBuf = goMemory.buffer;
    const [op, cols, ntok, nw] = new Int32Array(goBuf, argsPtr, MM_HEAD);
    if (!PRODUCTS.has(op) || ntok < 1 || nw < 1 || nw > 8 || cols < 1) throw new Error(`cpupool: bad product op=${op} cols=${cols} tokens=${ntok} weights=${nw}`);
    const a = new Int32Array(goBuf, argsPtr + 4 * MM_HEAD, PER_WEIGHT * nw + PER_TOKEN * ntok + nw * ntok);
    const tok = PER_WEIGHT * nw, yAddr = tok + PER_TOKEN * ntok; // where the tokens' and the results' addresses start
    // Each token's activations, scales and sums at the same strides; each
    // weight's results, per token at that weight's stride.
    const xs = align(a[tok + 1]), ds = align(a[tok + 3]), ss = align(a[tok + 5]);
    let units = 0, yBytes = 0;
    for (let i = 0; i < nw; i++) {
      const rows = a[PER_WEIGHT * i + 2];
      if (rows < 1) throw new Error(`cpupool: bad product: weight ${i} has ${rows} rows`);
      units += rows;
      yBytes += ntok * align(4 * rows);
    }
    const x = this.room(ntok * (xs + ds + ss) + yBytes + align(4 * SEG * nw));
    const d = x + ntok * xs, sums = d + ntok * ds, y = sums + ntok * ss, desc = y + yBytes;
    const go8 = new Uint8Array(goBuf);
    const u8 = this.u8, i32 = this.i32;
    for (let t = 0; t < ntok; t++) {
      const k = tok + PER_TOKEN * t;
      u8.set(go8.subarray(a[k], a[k] + a[k + 1]), x + t * xs);
      if (a[k + 3]) u8.set(go8.subarray(a[k + 2], a[k + 2] + a[k + 3]), d + t * ds);
      if (a[k + 5]) u8.set(go8.subarray(a[k + 4], a[k + 4] + a[k + 5]), sums + t * ss);
    }
    // The segments (kernels.c's seg_t): rows, then a product_t.
    for (let i = 0, yi = y; i < nw; i++) {
      const w = PER_WEIGHT * i, rows = a[w + 2], ys = align(4 * rows), e = (desc >> 2) + SEG * i;
      i32[e] = rows; i32[e + 1] = a[w]; i32[e + 2] = a[w + 1]; i32[e + 3] = cols; i32[e + 4] = ntok;
      i32[e + 5] = x; i32[e + 6] = xs; i32[e + 7] = d; i32[e + 8] = ds; i32[e + 9] = sums; i32[e + 10] = ss;
      i32[e + 11] = yi; i32[e + 12] = ys;
      yi += ntok * ys;
    }
    // Chunks: a few per thread, so that a thread slowed down by the
    // browser takes fewer; at least 4 rows each.
    this.runJob(op, units, Math.max(4, Math.ceil(units / (this.active * 4))), [nw, desc]);
    for (let i = 0, yi = y; i < nw; i++) {
      const rows = a[PER_WEIGHT * i + 2], ys = align(4 * rows);
      for (let t = 0; t < ntok; t++) go8.set(u8.subarray(yi + t * ys, yi + t * ys + 4 * rows), a[yAddr + ntok * i + t]);
      yi += ntok * ys;
    }
  }
  silu(goMemory, argsPtr) {
    const [gate, up, n] = new Int32Array(goMemory.buffer, argsPtr, 3);
    if (n < 1) return;
    const bytes = 4 * n, g = this.room(3 * align(bytes)), u = g + align(bytes), out = u + align(bytes);
    const go8 = new Uint8Array(goMemory.buffer);
    this.u8.set(go8.subarray(gate, gate + bytes), g);
    this.u8.set(go8.subarray(up, up + bytes), u);
    this.runJob(OP_SILU, n, Math.max(256, Math.ceil(n / (this.active * 4))), [g, u, out]);
    go8.set(this.u8.subarray(out, out + bytes), gate);
  }
  attend(goMemory, argsPtr) {
    const goBuf = goMemory.buffer;
    const [heads, group, headDim, stride, scaleBits, rows, span] = new Int32Array(goBuf, argsPtr, ATTEND_HEAD);
    if (heads < 1 || group < 1 || headDim < 1 || rows < 1 || span < 1 || stride < headDim) {
      throw new Error(`cpupool: bad attention heads=${heads} group=${group} head_dim=${headDim} rows=${rows} span=${span}`);
    }
    const a = new Int32Array(goBuf, argsPtr + 4 * ATTEND_HEAD, PER_ROW * rows);
    const qBytes = 4 * heads * headDim, items = rows * heads;
    const q = this.room(2 * rows * align(qBytes) + align(20 * rows) + 4 * items * span);
    const out = q + rows * align(qBytes), desc = out + rows * align(qBytes), scores = desc + align(20 * rows);
    const go8 = new Uint8Array(goBuf);
    const u8 = this.u8, i32 = this.i32, rowBytes = 4 * stride;
    for (let r = 0; r < rows; r++) {
      const [gq, , kOff, vOff, end, pos, newK, newV] = a.subarray(PER_ROW * r, PER_ROW * (r + 1));
      if (end < 1 || end > span) throw new Error(`cpupool: bad attention row: ${end} positions`);
      if (pos >= 0) { // the row's own key and value, into its cache
        u8.set(go8.subarray(newK, newK + rowBytes), kOff + pos * rowBytes);
        u8.set(go8.subarray(newV, newV + rowBytes), vOff + pos * rowBytes);
      }
      u8.set(go8.subarray(gq, gq + qBytes), q + r * align(qBytes));
      const d = (desc >> 2) + 5 * r;
      i32[d] = q + r * align(qBytes); i32[d + 1] = out + r * align(qBytes);
      i32[d + 2] = kOff; i32[d + 3] = vOff; i32[d + 4] = end;
    }
    this.runJob(OP_ATTEND, items, Math.max(1, Math.ceil(items / (this.active * 4))),
      [desc, heads, group, headDim, stride, scaleBits, scores, span]);
    for (let r = 0; r < rows; r++) {
      const o = out + r * align(qBytes);
      go8.set(u8.subarray(o, o + qBytes), a[PER_ROW * r + 1]);
    }
  }
  // runJob announces one job, of units in chunks of chunk with the op's
  // arguments args (as kernels.c's job_t has them), takes its share, and
  // returns when every chunk is done.
  runJob(op, units, chunk, args) {
    const chunks = Math.ceil(units / chunk);
    const i32 = this.i32;
    const gen = (Atomics.load(i32, this.ctl + GEN) + 1) | 0;
    const slot = gen & 1, j = this.jobs[slot];
    while (Atomics.load(i32, this.ctl + BUSY + slot) !== 0); // a late worker leaves
    i32[j + J.op] = op; i32[j + J.units] = units; i32[j + J.chunk] = chunk; i32[j + J.chunks] = chunks;
    for (let k = 0; k < args.length; k++) i32[j + J.args + k] = args[k];
    Atomics.store(i32, j + J.next, this.stallNext ? 1 : 0); // debugStall: chunk 0 "claimed" by no one
    this.stallNext = false;
    Atomics.store(i32, j + J.done, 0);
    Atomics.store(i32, this.ctl + GEN, gen);
    if (this.active > 1) Atomics.notify(i32, this.ctl + GEN);
    this.exports.wi_work(4 * j);
    // The workers finish their last chunks: spin (a job's tail is
    // microseconds; Atomics.wait is not allowed on a page's main thread).
    // A worker that stops making progress for STALL_MS (the browser
    // killed or froze it) would hold its chunk forever: then the pool is
    // given up and this thread computes the whole job itself.
    let seen = Atomics.load(i32, j + J.done);
    for (let spins = 0, since = 0; seen < chunks; spins++) {
      const now = Atomics.load(i32, j + J.done);
      if (now !== seen) {
        seen = now;
        since = 0;
      } else if ((spins & 4095) === 4095) {
        const t = performance.now();
        if (!since) since = t;
        else if (t - since > STALL_MS) {
          this.giveUp("a CPU worker stopped responding: the pool runs on this thread only");
          this.exports.wi_run(4 * j, 0, units);
          break;
        }
      }
    }
  }
  // giveUp ends the workers and leaves this thread alone computing; why
  // is what stats().cpu says from then on.
  giveUp(why) {
    this.why = why;
    this.setThreads(1);
    for (const w of this.workers) w.terminate();
    this.workers = [];
    this.threads = 1;
  }
  // debugStall has the next product start as if a worker had claimed its
  // first chunk and frozen (tests: the pool must notice, give up its
  // workers and finish the product alone).
  debugStall() {
    this.stallNext = true;
  }
}
