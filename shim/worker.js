// worker.js: the dedicated Web Worker the JS API's engine runs in by
// default (a module worker; shim/webinfer.js starts it). It starts the
// engine and relays messages both ways, JSON strings as they are; those
// that arrive before the engine is up wait for it.
import { startHost } from "./host.js";

const early = [];
let host = null;
self.onmessage = (e) => {
  if (host) host.receive(e.data);
  else early.push(e.data);
};
startHost((msg) => self.postMessage(msg)).then((h) => {
  host = h;
  for (const m of early.splice(0)) host.receive(m);
}, (err) => {
  self.postMessage(JSON.stringify({ ev: "error", code: "internal", message: `the engine did not start in its worker: ${err && err.message ? err.message : err}` }));
});
