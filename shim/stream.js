// stream.js: progressive loading, shared by the JS API (webinfer.js, on
// the page's side) and the engine's host (host.js, for a page that asks
// the engine to fetch the model itself).
import * as cache from "./cache.js";

let streams = 0;

// streamer lets the engine load a model while it downloads: its tap
// (cache.js) sends the bytes to the engine's side as Blob parts of about
// 1 MiB (sendPart: host.js's growing source) and, once the size is known,
// starts the load on them (load(model): a promise of the load's end), so
// that the engine reads the header, compiles and checks its kernels and
// uploads each tensor as its bytes arrive. A load that fails aborts the
// download (signal); finish and fail end the source.
export function streamer(sendPart, load) {
  const id = `${++streams}-${Math.random().toString(36).slice(2, 10)}`;
  const ac = new AbortController();
  const st = { loading: null, loadError: null, signal: ac.signal, model: `webinfer-growing:${id}` };
  let buf = [];
  let bufBytes = 0;
  let bufAt = 0;
  let timer = 0;
  const flush = () => {
    clearTimeout(timer);
    timer = 0;
    if (bufBytes === 0) return;
    sendPart({ growing: id, offset: bufAt, blob: new Blob(buf) });
    bufAt += bufBytes;
    buf = [];
    bufBytes = 0;
  };
  st.tap = {
    start(total, prefix) {
      sendPart({ growing: id, total });
      if (prefix) {
        sendPart({ growing: id, offset: 0, blob: prefix });
        bufAt = prefix.size;
      }
      st.loading = load(st.model);
      st.loading.catch((err) => {
        st.loadError = err;
        ac.abort();
      });
    },
    write(offset, chunk) {
      if (offset !== bufAt + bufBytes) {
        flush(); // a download that went back: the engine's side refuses it
        bufAt = offset;
      }
      buf.push(chunk);
      bufBytes += chunk.byteLength;
      if (bufBytes >= 1 << 20) flush();
      else if (!timer) timer = setTimeout(flush, 50); // a slow download still reaches the engine
    },
  };
  st.finish = (file) => {
    flush();
    sendPart({ growing: id, file });
  };
  st.fail = (message) => {
    flush();
    sendPart({ growing: id, error: message });
  };
  st.drop = () => sendPart({ growing: id, drop: true });
  return st;
}


/**
 * loadDownloading downloads url (through the model cache, or into memory
 * with cacheOption false; cacheOption.maxBytes bounds the cache) and has
 * the engine load it as it arrives: load(model, readPhase, fetchMs) starts
 * the engine's load of a model URL and resolves to its ready message (or
 * rejects with its error). sendPart carries the growing source's parts;
 * progress gets the download's progress. Resolves to the ready message;
 * rejects with the error to tell (the load's, when it failed first and
 * so stopped the download). beforeFail(err) runs when the download fails
 * during the load, before the engine's side learns of it. A kept file
 * that proves no model is forgotten: the next load fetches it.
 */
export async function loadDownloading(url, { cacheOption, progress, sendPart, load, beforeFail = () => {} }) {
  const keep = cacheOption !== false;
  const stream = streamer(sendPart, (model) => load(model, "", 0));
  const text = (p) => progress({ ...p, text: p.phase === "cache" ? "reading the model from the cache" : "downloading the model" });
  const t0 = performance.now();
  try {
    let got;
    try {
      const opts = { progress: text, tap: stream.tap, signal: stream.signal };
      got = keep
        ? await cache.open(url, { ...opts, maxBytes: (cacheOption && cacheOption.maxBytes) || Infinity })
        : { file: await cache.fetchBlob(url, opts), fromCache: false };
    } catch (err) {
      if (!stream.loading) throw err;
      beforeFail(err);
      stream.fail(err.message || String(err));
      throw await stream.loading.then(() => err, (loadErr) => (stream.loadError && err.code === "aborted" ? loadErr : err));
    }
    if (stream.loading) {
      // Loaded while it downloaded: the engine reads the kept file from now on.
      stream.finish(got.file);
      try {
        return await stream.loading;
      } finally {
        stream.drop(); // the engine holds the source itself
      }
    }
    // Downloaded whole first (no size known) or kept: the engine reads the
    // file, which is phase cache.
    const blobURL = URL.createObjectURL(got.file);
    try {
      return await load(blobURL, "cache", performance.now() - t0);
    } finally {
      URL.revokeObjectURL(blobURL); // the engine holds the Blob itself
    }
  } catch (err) {
    if (keep && err && err.code === "bad-model") await cache.forget(url);
    throw err;
  }
}
