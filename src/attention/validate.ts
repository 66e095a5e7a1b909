// Argument checks for attention: every error names the argument, the expected and the actual shape/dtype/value.
import type { AttnDims } from '../kernels/contract.js';
import { describeValue, QkvError } from '../errors.js';
import { isFloat } from '../tensor/dtype.js';
import { fmtShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';

/** The sizes of an attention call: q [B, Hq, L, D], k [B, Hkv, S, D], v [B, Hkv, S, Dv] (the contract's AttnDims). */
export type AttnShape = AttnDims;

const OPTION_KEYS = new Set([
  'scale', 'causal', 'mask', 'bias', 'keyLengths', 'window', 'dilation', 'globalTokens', 'blockSparse', 'cuSeqlens',
  'prefix', 'maskMod', 'scoreMod', 'softcap', 'alibiSlopes', 'sinks', 'kernel', 'blockM', 'blockN', 'numSplits',
  'returnWeights', 'returnStats', 'out', 'lse',
]);

/**
 * Checks q, k, v (rank 4, float, one dtype — or float32 q with 16-bit k and v, as a half-precision KV cache holds them —
 * matching sizes, Hkv | Hq) and returns their sizes.
 */
export function checkQkv(q: unknown, k: unknown, v: unknown, fn = 'attention'): AttnShape {
  const ts = { q, k, v } as Record<string, unknown>;
  for (const [name, t] of Object.entries(ts)) {
    if (!(t instanceof Tensor)) throw new QkvError(`${fn}: ${name} must be a Tensor, got ${t === null ? 'null' : typeof t}`);
    if (t.rank !== 4) throw new QkvError(`${fn}: ${name} must have rank 4 [batch, heads, seq, head_dim], got shape ${fmtShape(t.shape)}`);
    if (!isFloat(t.dtype)) throw new QkvError(`${fn}: ${name}.dtype must be float32, float16 or bfloat16, got ${t.dtype}`);
  }
  const [Q, K, V] = [q, k, v] as Tensor[];
  if (K.dtype !== V.dtype || (Q.dtype !== K.dtype && Q.dtype !== 'float32')) {
    const got = `got q ${Q.dtype}, k ${K.dtype}, v ${V.dtype}`;
    throw new QkvError(`${fn}: q, k, v must share one dtype (or q float32 with k, v of one 16-bit dtype), ${got}`);
  }
  return checkQkvShapes(Q.shape, K.shape, V.shape, fn);
}

/** Checks the shapes of q, k, v (rank 4, matching sizes, Hkv | Hq) — tensors wherever they live — and returns the sizes. */
export function checkQkvShapes(qs: readonly number[], ks: readonly number[], vs: readonly number[], fn = 'attention'): AttnShape {
  for (const [name, s] of [['q', qs], ['k', ks], ['v', vs]] as const) {
    if (s.length !== 4) throw new QkvError(`${fn}: ${name} must have rank 4 [batch, heads, seq, head_dim], got shape ${fmtShape(s)}`);
  }
  const [B, Hq, L, D] = qs;
  const [Bk, Hkv, S, Dk] = ks;
  const [Bv, Hv, Sv, Dv] = vs;
  const Q = { shape: qs }, K = { shape: ks }, V = { shape: vs };
  const same = (a: number, b: number, what: string) => {
    if (a !== b) throw new QkvError(`${fn}: ${what} (${a} vs ${b}); shapes q ${fmtShape(Q.shape)}, k ${fmtShape(K.shape)}, v ${fmtShape(V.shape)}`);
  };
  same(Bk, B, 'k.shape[0] (batch) must equal q.shape[0]');
  same(Bv, B, 'v.shape[0] (batch) must equal q.shape[0]');
  same(Hv, Hkv, 'v.shape[1] (Hkv) must equal k.shape[1]');
  same(Sv, S, 'v.shape[2] (S) must equal k.shape[2]');
  same(Dk, D, 'k.shape[3] (head_dim) must equal q.shape[3]');
  if (D < 1) throw new QkvError(`${fn}: head_dim q.shape[3] must be at least 1, got ${D}`);
  if (Hkv < 1 || Hq % Hkv !== 0) {
    throw new QkvError(`${fn}: k.shape[1] (Hkv=${Hkv}) must divide q.shape[1] (Hq=${Hq}); shapes q ${fmtShape(Q.shape)}, k ${fmtShape(K.shape)}`);
  }
  return { B, Hq, Hkv, L, S, D, Dv };
}

/** Rejects option names attention does not know (a typo like `casual` would otherwise be silently ignored). */
export function checkOptionKeys(options: object, fn = 'attention'): void {
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new QkvError(`${fn}: unknown option '${key}' (known: ${[...OPTION_KEYS].join(', ')})`);
  }
}

/** A finite number, else an error naming the option. */
export function checkFinite(x: unknown, what: string, positive = false): number {
  if (typeof x !== 'number' || !Number.isFinite(x) || (positive && x <= 0)) {
    throw new QkvError(`attention: ${what} must be a finite${positive ? ' positive' : ''} number, got ${String(x)}`);
  }
  return x;
}

/** A positive integer, else an error naming the option. */
export function checkPositiveInt(x: unknown, what: string): number {
  if (typeof x !== 'number' || !Number.isInteger(x) || x < 1) throw new QkvError(`attention: ${what} must be a positive integer, got ${String(x)}`);
  return x;
}

/** A list of numbers given as an array, a typed array or (where allowed) a Tensor; anything else is a QkvError. */
export function floatList(x: ArrayLike<number> | Tensor, what: string, fn = 'attention'): Float32Array {
  if (x instanceof Tensor) return x.toFloat32();
  if (!Array.isArray(x) && !ArrayBuffer.isView(x)) throw new QkvError(`${fn}: ${what} must be a list of numbers, got ${describeValue(x)}`);
  if ((x as unknown[]).some((v) => typeof v !== 'number')) throw new QkvError(`${fn}: ${what} must hold numbers only`);
  return Float32Array.from(x);
}

/** Throws unless `p` is a paged-attention problem object with a pool (before a kernel reads its fields). */
export function checkPagedProblem(p: unknown, fn: string): void {
  const pool = typeof p === 'object' && p !== null ? (p as { pool?: unknown }).pool : undefined;
  if (typeof pool !== 'object' || pool === null) {
    throw new QkvError(`${fn}: the problem must be an object with q, its sizes, block tables and a pool, got ${describeValue(p)}`);
  }
}

/** A list of integers given as an array or an integer tensor (e.g. int64 key lengths from a file). */
export function intList(x: readonly number[] | Tensor, what: string): number[] {
  if (!(x instanceof Tensor) && !Array.isArray(x) && !ArrayBuffer.isView(x)) {
    throw new QkvError(`attention: ${what} must be a list of integers or a Tensor, got ${describeValue(x)}`);
  }
  const list = x instanceof Tensor ? x.toArray() : [...x as readonly number[]];
  for (const n of list) if (!Number.isInteger(n)) throw new QkvError(`attention: ${what} must hold integers, got ${String(n)}`);
  return list;
}

/** Checks the upstream gradient of a backward call: dout must have the output's shape [B, Hq, L, Dv]. */
export function checkDout(dout: unknown, dims: AttnShape, fn: string): asserts dout is Tensor {
  const want = [dims.B, dims.Hq, dims.L, dims.Dv];
  if (!(dout instanceof Tensor) || dout.shape.join() !== want.join()) {
    throw new QkvError(`${fn}: dout must have the output's shape [${want.join(', ')}], got ${dout instanceof Tensor ? `[${dout.shape.join(', ')}]` : typeof dout}`);
  }
}
