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

/** A computation produced a non-finite value it must not (NaN logits from NaN weights or a bad config). */
export class NumericsError extends QkvError {
  constructor(message: string) {
    super(message);
    this.name = 'NumericsError';
  }
}

/**
 * A short description of any value for an error message. It never recurses into the value: untrusted JSON may nest
 * arrays 10⁵ deep, and JSON.stringify of that overflows the stack. Small flat arrays are shown in full.
 */
export function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' || v === null || v === undefined) return String(v);
  if (Array.isArray(v)) {
    const flat = v.length <= 8 && v.every((x) => x === null || ['number', 'boolean'].includes(typeof x));
    return flat ? `[${v.map(String).join(', ')}]` : `an array of ${v.length} items`;
  }
  return typeof v === 'object' ? 'an object' : typeof v;
}

/** Throws a QkvError with `message` unless `cond` holds. */
export function check(cond: boolean, message: string | (() => string)): asserts cond {
  if (!cond) throw new QkvError(typeof message === 'string' ? message : message());
}

/** An integer in [min, max], else a QkvError naming `what` (JavaScript callers are not type-checked). */
export function checkInt(x: unknown, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof x !== 'number' || !Number.isInteger(x) || x < min || x > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `in [${min}, ${max}]`;
    throw new QkvError(`${what} must be an integer ${range}, got ${describeValue(x)}`);
  }
  return x;
}

/** An object with the method `name` (a module with `forward`, say), else a QkvError naming `what`. */
export function checkHasMethod(x: unknown, name: string, what: string): void {
  if (typeof x !== 'object' || x === null || typeof (x as Record<string, unknown>)[name] !== 'function') {
    throw new QkvError(`${what} must be an object with a ${name}() method, got ${describeValue(x)}`);
  }
}

/** A list of token ids (integers ≥ 0, below `vocabSize` when given), else a QkvError naming `what`. */
export function checkIds(ids: unknown, what: string, vocabSize = Number.MAX_SAFE_INTEGER): readonly number[] {
  if (!Array.isArray(ids) || !ids.every((id) => Number.isInteger(id) && id >= 0 && id < vocabSize)) {
    const range = vocabSize === Number.MAX_SAFE_INTEGER ? 'integers ≥ 0' : `integers in [0, ${vocabSize})`;
    throw new QkvError(`${what} must be a list of token ids (${range}), got ${describeValue(ids)}`);
  }
  return ids;
}

/** An options object (undefined allowed: the defaults), else a QkvError naming `what`. */
export function checkOptions(o: unknown, what: string): void {
  if (o !== undefined && (typeof o !== 'object' || o === null)) throw new QkvError(`${what} must be an object, got ${describeValue(o)}`);
}

/** Throws the QkvError of a scalar helper `fn` given something other than a number (a symbol, a BigInt, a string). */
export function notANumber(fn: string, x: unknown): never {
  throw new QkvError(`${fn}: the argument must be a number, got ${describeValue(x)}`);
}
