// features.js: what this browser can do, detected directly (never from the
// user-agent string). The engine (Go, wasm/features) reads this report and
// picks its code path from it; the page shows it and sends it with its report.

import { adapterInfo, plainLimits } from "./gpu.js";

// Tiny WebAssembly modules that validate only where a feature is supported.
// Each is the smallest module using one instruction of the feature.
const WASM_PROBES = {
  // (func (result v128) i32.const 0 i8x16.splat i8x16.popcnt)
  simd: [0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11],
  // (func (result v128) i32.const 1 i8x16.splat i32.const 2 i8x16.splat i8x16.relaxed_swizzle)
  relaxedSimd: [0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0, 65, 1, 253, 15, 65, 2, 253, 15, 253, 128, 2, 11],
  // (memory 1 1 shared) (func i32.const 0 i32.atomic.load drop)
  threads: [0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 5, 4, 1, 3, 1, 1, 10, 11, 1, 9, 0, 65, 0, 254, 16, 2, 0, 26, 11],
  // (memory i64 1)
  memory64: [0, 97, 115, 109, 1, 0, 0, 0, 5, 3, 1, 4, 1],
};

function wasmValidates(bytes) {
  try {
    return typeof WebAssembly === "object" && WebAssembly.validate(new Uint8Array(bytes));
  } catch {
    return false;
  }
}

export function detectWasm() {
  const present = typeof WebAssembly === "object";
  return {
    present,
    simd: present && wasmValidates(WASM_PROBES.simd),
    relaxedSimd: present && wasmValidates(WASM_PROBES.relaxedSimd),
    // Threads need the instructions and a SharedArrayBuffer, which browsers
    // only expose to cross-origin-isolated pages.
    threads: present && wasmValidates(WASM_PROBES.threads) && typeof SharedArrayBuffer === "function",
    memory64: present && wasmValidates(WASM_PROBES.memory64),
    jspi: present && typeof WebAssembly.Suspending === "function",
  };
}

async function withTimeout(promise, ms, fallback) {
  let timer;
  const t = new Promise((resolve) => { timer = setTimeout(() => resolve(fallback), ms); });
  try {
    return await Promise.race([promise, t]);
  } finally {
    clearTimeout(timer);
  }
}

export async function detectWebGPU() {
  const gpu = globalThis.navigator && globalThis.navigator.gpu;
  const out = { present: Boolean(gpu), adapter: null, features: [], limits: {}, wgslLanguageFeatures: [], error: "" };
  if (!gpu) return out;
  out.wgslLanguageFeatures = gpu.wgslLanguageFeatures ? Array.from(gpu.wgslLanguageFeatures).sort() : [];
  try {
    const adapter = await withTimeout(gpu.requestAdapter({ powerPreference: "high-performance" }), 10000, null);
    if (!adapter) {
      out.error = "requestAdapter() returned no adapter";
      return out;
    }
    out.adapter = adapterInfo(adapter);
    out.features = Array.from(adapter.features).sort();
    out.limits = plainLimits(adapter.limits);
  } catch (err) {
    out.error = String(err && err.message ? err.message : err);
  }
  return out;
}

// detectWorkerWebGPU asks a dedicated worker whether it sees navigator.gpu
// and gets an adapter there (the engine runs in a worker by default).
export function detectWorkerWebGPU() {
  if (typeof Worker !== "function" || typeof Blob !== "function" || typeof URL.createObjectURL !== "function") {
    return Promise.resolve({ worker: false, webgpu: false, adapter: false });
  }
  const src = `self.onmessage = async () => {
    const gpu = self.navigator && self.navigator.gpu;
    let adapter = false;
    if (gpu) { try { adapter = Boolean(await gpu.requestAdapter()); } catch (e) {} }
    self.postMessage({ webgpu: Boolean(gpu), adapter });
  };`;
  return new Promise((resolve) => {
    let url, w;
    const done = (v) => {
      try { w && w.terminate(); } catch {}
      try { url && URL.revokeObjectURL(url); } catch {}
      resolve(v);
    };
    try {
      url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
      w = new Worker(url);
      w.onmessage = (e) => done({ worker: true, webgpu: e.data.webgpu, adapter: e.data.adapter });
      w.onerror = () => done({ worker: false, webgpu: false, adapter: false });
      w.postMessage(null);
      setTimeout(() => done({ worker: true, webgpu: false, adapter: false, error: "timeout" }), 10000);
    } catch {
      done({ worker: false, webgpu: false, adapter: false });
    }
  });
}

async function detectStorage() {
  // OPFS with writable files: where the JS API keeps models.
  const opfs = Boolean(globalThis.navigator && navigator.storage && navigator.storage.getDirectory &&
    globalThis.FileSystemFileHandle && "createWritable" in FileSystemFileHandle.prototype);
  try {
    if (navigator.storage && navigator.storage.estimate) {
      const e = await withTimeout(navigator.storage.estimate(), 5000, null);
      if (e) return { quota: e.quota || 0, usage: e.usage || 0, opfs };
    }
  } catch {}
  return { quota: 0, usage: 0, opfs };
}

// collectFeatures gathers the raw facts. The code path chosen from them is
// added by the engine (wasm/features.Choose) so that one piece of code decides.
export async function collectFeatures() {
  const nav = globalThis.navigator || {};
  // In a worker (the engine's), this scope's WebGPU is the worker's.
  const inWorker = typeof WorkerGlobalScope === "function" && globalThis instanceof WorkerGlobalScope;
  const [webgpu, workerWebGPU, storage] = await Promise.all([detectWebGPU(), inWorker ? null : detectWorkerWebGPU(), detectStorage()]);
  return {
    userAgent: nav.userAgent || "",
    webgpu,
    wasm: detectWasm(),
    crossOriginIsolated: Boolean(globalThis.crossOriginIsolated),
    hardwareConcurrency: nav.hardwareConcurrency || 0,
    deviceMemoryGiB: nav.deviceMemory || 0,
    storage,
    workerWebGPU: workerWebGPU || { worker: true, webgpu: webgpu.present, adapter: Boolean(webgpu.adapter) },
  };
}

globalThis.webinferFeatures = { collect: collectFeatures };
