// Command apihost is the engine of the JS API (dist/webinfer.wasm): a
// wasm/api Host bridged to the page. shim/host.js starts it in a Web
// Worker (or, with worker: false, on the page's thread) with the name of
// its port as its argument: globalThis[port] holds post (the engine's
// messages to the page, JSON strings) and ready; the engine sets receive
// there (the page's messages, JSON strings) and then calls ready.
package main
