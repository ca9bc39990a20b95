// Package api is the JS API's engine side, in pure Go: the closed set of
// messages between shim/webinfer.js (the page's side) and the engine (in a
// Web Worker, or on the page's thread with worker: false), the checking of
// a generation's options (shared with the server's OpenAI endpoints, so a
// wrong option gets the same bad-option message everywhere), the OpenAI
// chunk shapes, and Host, which runs the messages against a session.
//
// In: messages from the page (JSON, one per Receive). Out: messages to the
// page (JSON, through the post callback), in the order their events
// happened; each generation's messages carry its id.
package api
