// gpu.js: the thin WebGPU shim that Go (compiled to WASM) drives.
//
// Go never touches WebGPU objects directly. It holds small integer handles
// (buffers, pipelines, bind groups) and crosses into JS a handful of times per
// step: a write per input, one submit carrying the whole step's command list,
// one read back. The shim replays the command list into one command encoder
// and one queue.submit, because each crossing and each submit costs far more
// than a dispatch recorded into an open pass.
//
// Errors reach Go as thrown GPUShimError objects with a stable `code`:
//   "unavailable"   navigator.gpu is missing (WebKitGTK, old browsers)
//   "no-adapter"    requestAdapter() gave null
//   "no-device"     requestDevice() failed
//   "validation"    a WebGPU validation error (bad shader, bad binding, ...)
//   "out-of-memory" an allocation failed
//   "internal"      any other WebGPU error
//   "device-lost"   the device was lost; every later call fails with this
//   "bad-argument"  the shim was called with a handle it does not know
//   "unsupported"   the device lacks a feature the call needs
// Validation and out-of-memory errors surface asynchronously in WebGPU; the
// shim catches them with error scopes around each submit and reports the first
// one at the next synchronisation point (read), never silently.
//
// Works in browsers, in workers and under Node with Dawn (navigator.gpu from
// the `webgpu` npm package), since it only uses the WebGPU API itself.

export class GPUShimError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "GPUShimError";
    this.code = code;
  }
}

// Command-list opcodes. Keep in step with wasm/webgpu/cmdlist.go.
const OP_DISPATCH = 1; // pipeline, bindGroup, x, y, z
const OP_COPY = 2; // src, srcOffLo, srcOffHi, dst, dstOffLo, dstOffHi, sizeLo, sizeHi

// u64 joins the two 32-bit words of a command-list offset or size.
const u64 = (lo, hi) => lo + hi * 4294967296;

// Features the engine uses when present; each has a path without it.
const WANTED_FEATURES = ["shader-f16", "subgroups", "timestamp-query"];

// Limits the engine raises to the adapter's maximum: large weight tensors need
// big storage bindings, and kernels want every storage buffer slot.
const WANTED_LIMITS = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupsPerDimension",
];

function gpuObject() {
  const nav = globalThis.navigator;
  return nav && nav.gpu ? nav.gpu : null;
}

// plainLimits copies a GPUSupportedLimits into a plain object (its fields are
// prototype getters, which JSON.stringify and Go's js.Value do not enumerate).
export function plainLimits(limits) {
  const out = {};
  for (const key in limits) {
    const v = limits[key];
    if (typeof v === "number") out[key] = v;
  }
  return out;
}

export function adapterInfo(adapter) {
  const info = adapter.info || {};
  return {
    vendor: info.vendor || "",
    architecture: info.architecture || "",
    device: info.device || "",
    description: info.description || "",
    // isFallbackAdapter moved from GPUAdapter to GPUAdapterInfo; read both.
    isFallbackAdapter: Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter),
    subgroupMinSize: info.subgroupMinSize || 0,
    subgroupMaxSize: info.subgroupMaxSize || 0,
  };
}

function wrapError(err, fallbackCode) {
  if (err instanceof GPUShimError) return err;
  const msg = err && err.message ? err.message : String(err);
  if (typeof GPUOutOfMemoryError !== "undefined" && err instanceof GPUOutOfMemoryError) {
    return new GPUShimError("out-of-memory", msg);
  }
  if (typeof GPUValidationError !== "undefined" && err instanceof GPUValidationError) {
    return new GPUShimError("validation", msg);
  }
  if (err && err.name === "OperationError" && /memory/i.test(msg)) {
    return new GPUShimError("out-of-memory", msg);
  }
  return new GPUShimError(fallbackCode, msg);
}

// GPUContext owns one adapter and device and every object made on it.
// withheld: the browser gives no more adapters in this scope (tests:
// engine.debug.loseDevice({ permanent: true }), as a browser that blocks
// WebGPU after its GPU process crashed).
let withheld = false;

export class GPUContext {
  // open requests an adapter and a device with the engine's features and
  // limits. opts: {powerPreference, forceFallbackAdapter, disableFeatures: []}.
  static async open(opts = {}) {
    const gpu = gpuObject();
    if (!gpu) throw new GPUShimError("unavailable", "navigator.gpu is not available in this browser");
    if (withheld) throw new GPUShimError("no-adapter", "navigator.gpu.requestAdapter() returned null: the browser withholds WebGPU after the device was lost");
    let adapter;
    try {
      adapter = await gpu.requestAdapter({
        powerPreference: opts.powerPreference || "high-performance",
        forceFallbackAdapter: Boolean(opts.forceFallbackAdapter),
      });
    } catch (err) {
      throw wrapError(err, "no-adapter");
    }
    if (!adapter) throw new GPUShimError("no-adapter", "navigator.gpu.requestAdapter() returned null");

    const disabled = new Set(opts.disableFeatures || []);
    const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f) && !disabled.has(f));
    const requiredLimits = {};
    for (const name of WANTED_LIMITS) {
      if (typeof adapter.limits[name] === "number") requiredLimits[name] = adapter.limits[name];
    }
    let device;
    try {
      device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
    } catch (err) {
      throw wrapError(err, "no-device");
    }
    return new GPUContext(adapter, device);
  }

  constructor(adapter, device) {
    this.adapter = adapter;
    this.device = device;
    this.lost = null; // {reason, message} once the device is lost
    this.buffers = [null]; // handle 0 is never valid
    this.pipelines = [null];
    this.bindGroups = [null];
    this.pipelineCache = new Map(); // key: code + entry point + constants
    this.staging = []; // MAP_READ buffers for read(), reused
    this.pendingScopes = []; // error-scope promises of submits not yet checked
    this.stats = { submits: 0, dispatches: 0, copies: 0, reads: 0, writes: 0, pipelinesCompiled: 0, bufferBytes: 0 };
    device.lost.then((info) => {
      this.lost = { reason: info.reason || "unknown", message: info.message || "" };
    });
  }

  // info describes the adapter and the device actually obtained.
  info() {
    return {
      adapter: adapterInfo(this.adapter),
      features: Array.from(this.device.features).sort(),
      adapterFeatures: Array.from(this.adapter.features).sort(),
      limits: plainLimits(this.device.limits),
      wgslLanguageFeatures: gpuObject() && gpuObject().wgslLanguageFeatures
        ? Array.from(gpuObject().wgslLanguageFeatures).sort() : [],
    };
  }

  checkLost() {
    if (this.lost) {
      throw new GPUShimError("device-lost", `GPU device lost (${this.lost.reason}): ${this.lost.message}`);
    }
  }

  handle(table, id, what) {
    const obj = table[id];
    if (!obj) throw new GPUShimError("bad-argument", `unknown ${what} handle ${id}`);
    return obj;
  }

  // createBuffer makes a storage buffer (usage flags from Go: 1 storage,
  // 2 uniform, 4 copy-src, 8 copy-dst) of size bytes and returns its handle.
  createBuffer(size, flags, label) {
    this.checkLost();
    let usage = 0;
    if (flags & 1) usage |= GPUBufferUsage.STORAGE;
    if (flags & 2) usage |= GPUBufferUsage.UNIFORM;
    if (flags & 4) usage |= GPUBufferUsage.COPY_SRC;
    if (flags & 8) usage |= GPUBufferUsage.COPY_DST;
    // Sizes must be multiples of 4 for writes and copies.
    const padded = Math.max(4, Math.ceil(size / 4) * 4);
    let buf;
    try {
      buf = this.device.createBuffer({ size: padded, usage, label: label || "" });
    } catch (err) {
      throw wrapError(err, "out-of-memory");
    }
    this.buffers.push(buf);
    this.stats.bufferBytes += padded;
    return this.buffers.length - 1;
  }

  destroyBuffer(id) {
    const buf = this.buffers[id];
    if (buf) {
      this.stats.bufferBytes -= buf.size;
      buf.destroy();
      this.buffers[id] = null;
    }
  }

  // writeBuffer copies bytes (a Uint8Array) into the buffer at offset.
  writeBuffer(id, offset, bytes) {
    this.checkLost();
    const buf = this.handle(this.buffers, id, "buffer");
    this.device.queue.writeBuffer(buf, offset, bytes, 0, bytes.length);
    this.stats.writes++;
  }

  // createPipeline compiles a compute pipeline once per (code, entry,
  // constants) and returns its handle; later calls with the same key return
  // the cached handle without compiling.
  async createPipeline(code, entryPoint, constants) {
    this.checkLost();
    const consts = constants || {};
    const key = entryPoint + "\u0000" + JSON.stringify(consts) + "\u0000" + code;
    const cached = this.pipelineCache.get(key);
    if (cached) return cached;
    const device = this.device;
    device.pushErrorScope("validation");
    const module = device.createShaderModule({ code });
    const scopeErr = await device.popErrorScope();
    if (scopeErr) {
      let detail = "";
      if (module.getCompilationInfo) {
        const ci = await module.getCompilationInfo();
        detail = ci.messages.map((m) => `${m.lineNum}:${m.linePos} ${m.type}: ${m.message}`).join("; ");
      }
      throw new GPUShimError("validation", `shader ${entryPoint}: ${scopeErr.message}${detail ? " (" + detail + ")" : ""}`);
    }
    let pipeline;
    try {
      pipeline = await device.createComputePipelineAsync({
        layout: "auto",
        compute: { module, entryPoint, constants: consts },
      });
    } catch (err) {
      throw wrapError(err, "validation");
    }
    this.checkLost();
    this.stats.pipelinesCompiled++;
    this.pipelines.push(pipeline);
    const id = this.pipelines.length - 1;
    this.pipelineCache.set(key, id);
    return id;
  }

  // createBindGroup binds buffers, in binding order 0..n-1, to group 0 of the
  // pipeline. Each entry is a buffer handle, or [handle, offset, size] for a
  // range of a buffer (offsets in multiples of the adapter's alignment,
  // 256 bytes). Bind groups are made once and reused every step.
  createBindGroup(pipelineId, bufferIds) {
    this.checkLost();
    const pipeline = this.handle(this.pipelines, pipelineId, "pipeline");
    const entries = [];
    for (let i = 0; i < bufferIds.length; i++) {
      const e = bufferIds[i];
      if (Array.isArray(e)) {
        entries.push({ binding: i, resource: { buffer: this.handle(this.buffers, e[0], "buffer"), offset: e[1], size: e[2] } });
      } else {
        entries.push({ binding: i, resource: { buffer: this.handle(this.buffers, e, "buffer") } });
      }
    }
    this.device.pushErrorScope("validation");
    const bg = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    this.pendingScopes.push(this.device.popErrorScope());
    this.bindGroups.push(bg);
    return this.bindGroups.length - 1;
  }

  // submit replays a command list (a Uint32Array, see wasm/webgpu/cmdlist.go)
  // into one command encoder and one queue.submit. Consecutive dispatches
  // share one compute pass. Returns the number of commands replayed.
  submit(words) {
    this.checkLost();
    const device = this.device;
    device.pushErrorScope("out-of-memory");
    device.pushErrorScope("validation");
    const enc = device.createCommandEncoder();
    let pass = null;
    let n = 0;
    for (let i = 0; i < words.length;) {
      const op = words[i];
      if (op === OP_DISPATCH) {
        if (!pass) pass = enc.beginComputePass();
        this.encodeDispatch(pass, words, i);
        i += 6;
      } else if (op === OP_COPY) {
        if (pass) { pass.end(); pass = null; }
        this.encodeCopy(enc, words, i);
        i += 9;
      } else {
        if (pass) pass.end();
        throw new GPUShimError("bad-argument", `command list: unknown opcode ${op} at word ${i}`);
      }
      n++;
    }
    if (pass) pass.end();
    device.queue.submit([enc.finish()]);
    this.stats.submits++;
    const validation = device.popErrorScope();
    const oom = device.popErrorScope();
    this.pendingScopes.push(validation, oom);
    return n;
  }

  // encodeDispatch records the dispatch at words[i] into pass.
  encodeDispatch(pass, words, i) {
    pass.setPipeline(this.handle(this.pipelines, words[i + 1], "pipeline"));
    pass.setBindGroup(0, this.handle(this.bindGroups, words[i + 2], "bind group"));
    pass.dispatchWorkgroups(words[i + 3], words[i + 4], words[i + 5]);
    this.stats.dispatches++;
  }

  // encodeCopy records the buffer copy at words[i] into enc (offsets and
  // sizes are 64-bit, as two 32-bit words).
  encodeCopy(enc, words, i) {
    enc.copyBufferToBuffer(
      this.handle(this.buffers, words[i + 1], "buffer"), u64(words[i + 2], words[i + 3]),
      this.handle(this.buffers, words[i + 4], "buffer"), u64(words[i + 5], words[i + 6]),
      u64(words[i + 7], words[i + 8]));
    this.stats.copies++;
  }

  // submitProfiled replays a command list like submit, but gives each
  // dispatch its own compute pass with timestamp writes (the
  // "timestamp-query" feature), and resolves to a Float64Array of each
  // command's GPU time in nanoseconds (0 for copies). For profiling: the
  // passes add their own small cost.
  async submitProfiled(words) {
    this.checkLost();
    const device = this.device;
    if (!device.features.has("timestamp-query")) {
      throw new GPUShimError("unsupported", "the device has no timestamp-query feature");
    }
    const cmds = [];
    for (let i = 0; i < words.length;) {
      cmds.push(i);
      if (words[i] === OP_DISPATCH) i += 6;
      else if (words[i] === OP_COPY) i += 9;
      else throw new GPUShimError("bad-argument", `command list: unknown opcode ${words[i]} at word ${i}`);
    }
    const n = cmds.length;
    const querySet = device.createQuerySet({ type: "timestamp", count: 2 * n });
    const resolve = device.createBuffer({ size: 16 * n, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const staging = device.createBuffer({ size: 16 * n, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    device.pushErrorScope("validation");
    const enc = device.createCommandEncoder();
    const isDispatch = [];
    for (let c = 0; c < n; c++) {
      const i = cmds[c];
      if (words[i] === OP_DISPATCH) {
        const pass = enc.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * c, endOfPassWriteIndex: 2 * c + 1 } });
        this.encodeDispatch(pass, words, i);
        pass.end();
        isDispatch.push(true);
      } else {
        this.encodeCopy(enc, words, i);
        isDispatch.push(false);
      }
    }
    enc.resolveQuerySet(querySet, 0, 2 * n, resolve, 0);
    enc.copyBufferToBuffer(resolve, 0, staging, 0, 16 * n);
    device.queue.submit([enc.finish()]);
    const err = await device.popErrorScope();
    if (err) throw wrapError(err, "validation");
    await staging.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(staging.getMappedRange().slice(0));
    staging.unmap();
    staging.destroy();
    resolve.destroy();
    querySet.destroy();
    const out = new Float64Array(n);
    for (let c = 0; c < n; c++) {
      if (isDispatch[c] && t[2 * c + 1] >= t[2 * c]) out[c] = Number(t[2 * c + 1] - t[2 * c]);
    }
    this.stats.submits++;
    return out;
  }

  // takePendingError awaits the error scopes of earlier submits and bind
  // groups and throws the first error found.
  async takePendingError() {
    if (this.pendingScopes.length === 0) return;
    const scopes = this.pendingScopes;
    this.pendingScopes = [];
    for (const err of await Promise.all(scopes)) {
      if (err) throw wrapError(err, "internal");
    }
  }

  // read copies size bytes at offset out of a buffer (which needs the
  // copy-src flag) and resolves to a Uint8Array. It waits for all work
  // submitted before it, and reports any error those submits raised.
  async read(id, offset, size) {
    this.checkLost();
    const src = this.handle(this.buffers, id, "buffer");
    const padded = Math.max(4, Math.ceil(size / 4) * 4);
    let staging = this.takeStaging(padded);
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(src, offset, staging, 0, padded);
    this.device.queue.submit([enc.finish()]);
    let mapped;
    try {
      await staging.mapAsync(GPUMapMode.READ, 0, padded);
      // A device destroyed between the map and here unmaps the buffer
      // (Firefox): getMappedRange throws, a loss like the one above.
      mapped = staging.getMappedRange(0, padded);
    } catch (err) {
      // A lost device rejects mapAsync before device.lost has resolved; give
      // device.lost a moment so the error is classified as a loss.
      if (!this.lost) await Promise.race([this.device.lost, new Promise((r) => setTimeout(r, 1000))]);
      this.checkLost();
      await this.takePendingError();
      throw wrapError(err, "internal");
    }
    const out = new Uint8Array(size);
    out.set(new Uint8Array(mapped, 0, size));
    staging.unmap();
    this.staging.push(staging);
    this.stats.reads++;
    await this.takePendingError();
    this.checkLost();
    return out;
  }

  takeStaging(size) {
    for (let i = 0; i < this.staging.length; i++) {
      if (this.staging[i].size >= size) return this.staging.splice(i, 1)[0];
    }
    // Round up to a power of two so a few staging buffers serve every size.
    let cap = 256;
    while (cap < size) cap *= 2;
    return this.device.createBuffer({ size: cap, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  // destroy releases the device; the device.lost promise then resolves with
  // reason "destroyed" and every later call fails with "device-lost".
  destroy() {
    this.lost = this.lost || { reason: "destroyed", message: "destroy() was called" };
    this.device.destroy();
  }
}

// The Go side finds the shim here (wasm/webgpu/device_js.go).
globalThis.webinferGPU = {
  open: (opts) => GPUContext.open(opts),
  withholdAdapters: () => { withheld = true; },
  GPUShimError,
};
