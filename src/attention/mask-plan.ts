// The one lowering of attention options to what the WGSL kernels read: a MaskPlan (kernels/contract.ts) — the flags
// and sizes of each mask and score modifier, and the small tables they index (aux: u32, fl: f32). The WebGPU hosts
// pack it into their uniform block; they never see AttentionOptions. (The CPU kernels read the same masks through the
// KernelMask interface, masks.ts; the backend suite checks every mask on both against the reference.)
import type { AttnDims, MaskPlan } from '../kernels/contract.js';
import { QkvError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { blockSparseTable } from './masks.js';
import type { AttentionOptions } from './options.js';

/** A mask spec (masks.*) that is one of the options, or an AND of them, becomes those options: the WGSL kernels take
 *  options. Anything else (OR of specs, mask functions, a key the call also sets) stays as it is. */
export function lowerMaskSpec<T extends AttentionOptions>(o: T): T {
  const m = o.mask;
  if (!m || m instanceof Tensor || m.kind !== 'mask-spec' || !m.asOptions) return o;
  const set = (k: string) => (o as Record<string, unknown>)[k] !== undefined;
  if (Object.keys(m.asOptions).some(set)) return o;
  const { mask: _spec, ...rest } = o;
  return { ...rest, ...m.asOptions } as T;
}

/**
 * The plan of a call's mask and score modifiers. `shift` overrides where row i sits (i + shift, for the causal limit
 * and every other mask): a KV cache passes S = its capacity and shift = length − L, so keys past its length are never
 * read. Without it every structured mask places row i at i + S − L, and a top-left causal limit at i.
 */
export function maskPlan(dims: AttnDims, o: AttentionOptions, shift?: number): MaskPlan {
  const { B, Hq, L, S, D } = dims;
  const list = (x: readonly number[] | Tensor) => (x instanceof Tensor ? x.toArray() : [...x]);
  // aux (u32) and fl (f32): the small tables the masks read, at the offsets the plan names
  const aux: number[] = o.keyLengths === undefined ? Array(B).fill(0) : list(o.keyLengths);
  const take = (values: ArrayLike<number>) => {
    const at = aux.length;
    for (let x = 0; x < values.length; x++) aux.push(values[x]);
    return at;
  };
  const global = o.globalTokens ? take(Array.from({ length: S }, (_, j) => (o.globalTokens!.includes(j) ? 1 : 0))) : null;
  const table = o.blockSparse ? blockSparseTable(o.blockSparse, S) : null;
  const blocks = table ? { offset: take(table.blocks), size: o.blockSparse!.blockSize, cols: table.cols } : null;
  const docs = o.cuSeqlens === undefined ? null : take(documentBounds(list(o.cuSeqlens), S));
  const dense = (t: Tensor) => t.broadcastTo([B, Hq, L, S]).toArray(); // a user-given dense mask or bias, expanded
  const keepT = o.mask instanceof Tensor && o.mask.dtype === 'bool' ? o.mask : null;
  const keep = keepT ? take(dense(keepT)) : null;
  if (o.mask && !(o.mask instanceof Tensor)) throw new QkvError('maskPlan: a mask spec that options cannot express has no plan');
  const biasT = o.bias ?? (o.mask instanceof Tensor && o.mask.dtype !== 'bool' ? o.mask : null);
  const fl: number[] = o.alibiSlopes ? Array.from(o.alibiSlopes) : Array(Hq).fill(0);
  const bias = biasT ? fl.length : null;
  if (biasT) fl.push(...dense(biasT));
  const [left, right] = o.window ?? [-1, -1];
  return {
    scale: o.scale ?? 1 / Math.sqrt(D), softcap: o.softcap ?? 0, causal: !!o.causal,
    shift: shift ?? S - L, causalShift: shift ?? (o.causal === 'bottom-right' ? S - L : 0),
    windowLeft: Number.isFinite(left) ? left : -1, windowRight: Number.isFinite(right) ? right : -1, dilation: o.dilation ?? 1,
    prefix: o.prefix ?? -1, keyLengths: o.keyLengths !== undefined, alibi: !!o.alibiSlopes,
    global, blocks, docs, keep, bias, aux: Uint32Array.from(aux), fl: Float32Array.from(fl),
  };
}

// packed documents (cuSeqlens): for every key, the first and one-past-last position of its document — start [S], end [S]
function documentBounds(cu: readonly number[], S: number): number[] {
  const start = new Array<number>(S).fill(0);
  const end = new Array<number>(S).fill(S);
  for (let t = 0; t + 1 < cu.length; t++) for (let x = cu[t]; x < cu[t + 1]; x++) { start[x] = cu[t]; end[x] = cu[t + 1]; }
  return [...start, ...end];
}
