// One error family for qkv. Every message names the argument, what was expected and what was given,
// e.g. `attention: k.shape[1] (Hkv=3) must divide q.shape[1] (Hq=8)`.

/** Base class of every error qkv throws on bad input. */
export class QkvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QkvError';
  }
}

/** A safetensors file is malformed; the message names the tensor (when one is at fault) and the problem. */
export class SafetensorsError extends QkvError {
  constructor(message: string) {
    super(message);
    this.name = 'SafetensorsError';
  }
}

/** Throws a QkvError with `message` unless `cond` holds. */
export function check(cond: boolean, message: string | (() => string)): asserts cond {
  if (!cond) throw new QkvError(typeof message === 'string' ? message : message());
}
