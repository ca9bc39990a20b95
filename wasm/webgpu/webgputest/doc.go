// Package webgputest gives js/wasm tests a WebGPU device: the browser's in
// tests/browser, Dawn's under Node (scripts/node-gpu.mjs). A host without
// WebGPU (WebKitGTK here) skips the test. It has no native code: natively
// there is no WebGPU to open.
package webgputest
