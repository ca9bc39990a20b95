// remote.js: the remote backend of the JS API (backend: "remote"): the
// engine is a `webinfer serve` (or anything speaking its protocols), text
// generation streams over its WebSocket /v1/stream and chat completions
// over its OpenAI endpoint /v1/chat/completions (server-sent events). It
// is a transport like the worker's: it takes the engine messages of
// wasm/api (JSON strings: {op, id, ...}) and answers with the same
// messages ({ev, id, ...}), so webinfer.js drives it as it drives a local
// engine: the same chunks, stats and coded errors.

// The JS API's option names and the server's (OpenAI's).
const SNAKE = {
  maxTokens: "max_tokens", temperature: "temperature", topK: "top_k", topP: "top_p", minP: "min_p",
  repeatPenalty: "repeat_penalty", frequencyPenalty: "frequency_penalty", presencePenalty: "presence_penalty",
  seed: "seed", stop: "stop",
};
const CAMEL = Object.fromEntries(Object.entries(SNAKE).map(([c, s]) => [s, c]));

// camelMessage names the options in a server's message as the JS API's
// caller wrote them.
function camelMessage(msg) {
  return msg.replace(/^([a-z_]+):/, (all, name) => (CAMEL[name] ? CAMEL[name] + ":" : all));
}

export function remoteTransport(url, onMessage, onFail) {
  let ws = null;
  // The server keeps request ids a while (to resume them): ours are this
  // transport's own, a random prefix and the engine's number.
  const prefix = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
  const wireID = (id) => `${prefix}-${id}`;
  const engineID = (s) => (typeof s === "string" && s.startsWith(prefix + "-") ? Number(s.slice(prefix.length + 1)) : 0);
  const pending = new Map(); // id → { start, first, last, tokens, promptTokens, gaps }
  let last = null; // the last finished request's figures, for stats
  const post = (o) => queueMicrotask(() => onMessage(JSON.stringify(o)));
  const fail = (id, code, message, recoverable = true) => post({ ev: "error", id, code, message, recoverable });
  const httpBase = () => {
    const u = new URL(url);
    u.protocol = u.protocol === "wss:" ? "https:" : "http:";
    u.pathname = "/";
    u.search = "";
    return u.href;
  };
  const stats = () => ({
    backend: "remote", precision: "", why: `streaming from ${url}`, model: "",
    ttftMs: last ? last.ttftMs : 0,
    ttftBreakdownMs: { fetch: 0, upload: 0, compile: 0, prefill: last ? last.ttftMs : 0 },
    prefillTokS: 0, decodeTokS: last ? last.decodeTokS : 0,
    itlMs: last ? last.itlMs : { p50: 0, p90: 0, p99: 0 },
    batchSize: pending.size, waiting: 0, tokens: 0, kvBytes: 0, gpuBytes: 0,
    backends: [{ name: "remote", health: ws && ws.readyState === 1 ? "ready" : "failed", why: url }],
  });
  const finish = (id, p, reason, usage) => {
    const gaps = p.gaps.slice().sort((a, b) => a - b);
    const at = (q) => (gaps.length ? gaps[Math.min(gaps.length - 1, Math.floor(q * gaps.length))] : 0);
    const span = p.last - p.first;
    last = {
      ttftMs: p.first ? p.first - p.start : 0,
      decodeTokS: p.tokens > 1 && span > 0 ? ((p.tokens - 1) * 1000) / span : 0,
      itlMs: { p50: at(0.5), p90: at(0.9), p99: at(0.99) },
    };
    const result = {
      finishReason: reason, ttftMs: last.ttftMs, prefillTokS: 0, decodeTokS: last.decodeTokS, itlMs: last.itlMs,
      usage: { promptTokens: usage.prompt_tokens || 0, completionTokens: usage.completion_tokens || 0, totalTokens: (usage.prompt_tokens || 0) + (usage.completion_tokens || 0) },
    };
    pending.delete(id);
    post({ ev: "done", id, result });
    post({ ev: "stats", stats: stats() });
  };
  const onFrame = (e) => {
    let f;
    try {
      f = JSON.parse(e.data);
    } catch {
      return;
    }
    const id = engineID(f.id);
    const p = pending.get(id);
    if (!p) return;
    if (f.type === "token") {
      const now = performance.now();
      if (p.last) p.gaps.push(now - p.last);
      if (!p.first) p.first = now;
      p.last = now;
      if (f.token >= 0) p.tokens++;
      post({ ev: "token", id, token: f.token, text: f.text || "", index: f.index || 0, atMs: now - p.start });
    } else if (f.type === "done") {
      if (f.reason === "abort") {
        pending.delete(id);
        fail(id, "aborted", "aborted");
      } else finish(id, p, f.reason, f.usage || {});
    } else if (f.type === "error") {
      pending.delete(id);
      fail(id, f.code === "too-many" ? "remote" : f.code, camelMessage(f.message || "the server failed the request"));
    }
  };
  const generate = (m) => {
    const frame = { type: "generate", id: wireID(m.id), prompt: m.prompt };
    for (const [k, v] of Object.entries(m.options || {})) {
      if (!SNAKE[k]) return fail(m.id, "bad-option", `${k}: not an option; the options are ${Object.keys(SNAKE).sort().join(", ")}`);
      frame[SNAKE[k]] = v;
    }
    if (!ws || ws.readyState !== 1) return fail(m.id, "network", `the connection to ${url} is closed`);
    pending.set(m.id, { start: performance.now(), first: 0, last: 0, tokens: 0, gaps: [] });
    ws.send(JSON.stringify(frame));
  };
  const chat = async (m) => {
    const body = { ...m.request };
    let resp;
    try {
      resp = await fetch(new URL("v1/chat/completions", httpBase()), { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    } catch (err) {
      return fail(m.id, "network", `${httpBase()}: ${err && err.message ? err.message : err}`);
    }
    if (!resp.ok) {
      let e = {};
      try {
        e = (await resp.json()).error || {};
      } catch {}
      return fail(m.id, e.code || "remote", e.message || `HTTP ${resp.status}`);
    }
    if (!body.stream) {
      post({ ev: "completion", id: m.id, completion: await resp.json() });
      return post({ ev: "done", id: m.id });
    }
    // Server-sent events: "data: {...}" lines, then "data: [DONE]".
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      let r;
      try {
        r = await reader.read();
      } catch (err) {
        return fail(m.id, "network", `the stream from ${httpBase()} broke: ${err && err.message ? err.message : err}`);
      }
      if (r.done) return fail(m.id, "remote", "the server ended the stream early");
      buf += r.value;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return post({ ev: "done", id: m.id });
        const c = JSON.parse(data);
        if (c.error) return fail(m.id, c.error.code || "remote", c.error.message || "the server failed");
        post({ ev: "chunk", id: m.id, chunk: c });
      }
    }
  };
  const receive = (s) => {
    const m = JSON.parse(s);
    switch (m.op) {
      case "load":
        try {
          ws = new WebSocket(url);
        } catch (err) {
          return fail(m.id, "network", `${url}: ${err && err.message ? err.message : err}`, false);
        }
        let opened = false;
        let settled = false;
        const refused = (why) => {
          if (opened || settled) return;
          settled = true;
          clearTimeout(timer);
          fail(m.id, "network", `could not connect to ${url} (${why})`, false);
        };
        // Some browsers (WebKitGTK) never close a socket whose connection
        // was refused: a bound on the wait, and the error event too.
        const timer = setTimeout(() => {
          refused("no answer in 15 s");
          try { ws.close(); } catch {}
        }, 15000);
        ws.onopen = () => {
          opened = true;
          clearTimeout(timer);
          post({ ev: "ready", id: m.id, stats: stats() });
        };
        ws.onmessage = onFrame;
        ws.onerror = () => refused("connection failed");
        ws.onclose = () => {
          refused("connection closed");
          for (const id of pending.keys()) fail(id, "network", `the connection to ${url} closed`);
          pending.clear();
        };
        return;
      case "generate":
        return generate(m);
      case "chat":
        return chat(m);
      case "abort":
        if (ws && ws.readyState === 1) ws.send(JSON.stringify({ type: "abort", id: wireID(m.id) }));
        return;
      case "unload":
        if (ws) ws.close();
        return post({ ev: "reply", id: m.id, value: true });
      case "loseDevice":
        return post({ ev: "reply", id: m.id, value: false });
      default:
        return fail(m.id, "bad-option", `${m.op}: not available on the remote backend`);
    }
  };
  return { send: receive, close: () => ws && ws.close(), worker: false, remote: true };
}
