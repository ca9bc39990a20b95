// errors.js: WebInferError, the error every call of the JS API throws or
// rejects with (re-exported by webinfer.js).

/** The error every call of this API throws or rejects with. */
export class WebInferError extends Error {
  constructor(code, message, recoverable = false) {
    super(message);
    this.name = "WebInferError";
    this.code = code;
    this.recoverable = recoverable;
  }
}
