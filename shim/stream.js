// stream.js: progressive loading, shared by the JS API (webinfer.js, on
// the page's side) and the engine's host (host.js, for a page that asks
// the engine to fetch the model itself).
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

