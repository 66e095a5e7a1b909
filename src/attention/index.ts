// attention(q, k, v, options): scaled dot-product attention with every mask and score modifier qkv knows,
//   o_i = Σ_j softmax_j(s_ij) v_j,   s_ij = mods(scale · q_i·k_j) and −∞ where the mask forbids j,
// in layout [batch, heads, seq, head_dim]; query head h reads kv head ⌊h / (Hq/Hkv)⌋ (GQA/MQA).
// This file is the short, torch-shaped front: validation lives in validate.ts, option binding in dispatch.ts,
// the arithmetic in src/kernels/cpu (reference, flash, decode).
import { QkvError } from '../errors.js';
import { getSdpaKernel } from '../kernels/registry.js';
import { Tensor } from '../tensor/tensor.js';
import { chooseKernel, kernelFor, problemOf, tileRequest } from './dispatch.js';
import type { AttentionOptions, AttentionResult } from './options.js';
import { applySinks, sinkGradient, sinkLogits } from './sinks.js';
import { checkDout, checkOptionKeys, checkQkv } from './validate.js';

/** A float32 result in the dtype of the inputs (float32 stays as is; f16/bf16 round to nearest even). */
function asDtype(data: Float32Array, shape: number[], like: Tensor): Tensor {
  const t = Tensor.from(data, shape);
  return like.dtype === 'float32' ? t : t.to(like.dtype);
}

/**
 * Scaled dot-product attention. Returns the output [B, Hq, L, Dv], the log-sum-exp [B, Hq, L] and, on request,
 * the weights [B, Hq, L, S] and per-row statistics (entropy, mean attention distance).
 * @example
 * const q = Tensor.from([1, 0, 0, 1], [1, 1, 2, 2]);
 * const { out } = attention(q, q, q, { causal: true }); // row 0 sees only key 0: out[0] = [1, 0]
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): AttentionResult & { kernel: string } {
  checkOptionKeys(options);
  const dims = checkQkv(q, k, v);
  const name = chooseKernel(options, dims);
  const p = problemOf(q, k, v, options, dims);
  const req = { weights: options.returnWeights, stats: options.returnStats, ...tileRequest(options, dims) };
  const kernel = kernelFor(name, p, req); // the one place a kernel is chosen; the result names it
  const { B, Hq, L, S, Dv } = dims;
  if (B * Hq * L === 0) { // no query row: nothing to compute, however many empty rows the shapes name
    const empty = (shape: number[]) => Tensor.zeros(shape);
    const stats = options.returnStats ? { stats: { entropy: empty([B, Hq, L]), meanDistance: empty([B, Hq, L]) } } : {};
    const weights = options.returnWeights ? { weights: empty([B, Hq, L, S]) } : {};
    return { out: Tensor.zeros([B, Hq, L, Dv], q.dtype), lse: empty([B, Hq, L]), kernel: kernel.name, ...weights, ...stats };
  }
  const r = kernel.forward(p, req);
  if (options.sinks !== undefined) applySinks(r, sinkLogits(options.sinks, Hq), L, Dv, S); // the sink's share of every row
  const result: AttentionResult & { kernel: string } = {
    out: asDtype(r.out, [B, Hq, L, Dv], q),
    lse: Tensor.from(r.lse, [B, Hq, L]),
    kernel: kernel.name,
  };
  if (r.weights) result.weights = Tensor.from(r.weights, [B, Hq, L, S]);
  if (r.entropy && r.meanDistance) {
    result.stats = { entropy: Tensor.from(r.entropy, [B, Hq, L]), meanDistance: Tensor.from(r.meanDistance, [B, Hq, L]) };
  }
  return result;
}

/** Options of `attentionBackward`: the forward's options, plus its out and lse if you have them (else recomputed). */
export interface AttentionBackwardOptions extends AttentionOptions {
  out?: Tensor;
  lse?: Tensor;
}

/**
 * Gradients of attention: given the upstream gradient dout = ∂loss/∂o [B, Hq, L, Dv], returns dq, dk, dv.
 * The flash kernel (default) recomputes the probabilities tile by tile from lse; 'reference' materialises them.
 * @example const { dq, dk, dv } = attentionBackward(q, k, v, dout, { causal: true });
 */
export function attentionBackward(q: Tensor, k: Tensor, v: Tensor, dout: Tensor, options: AttentionBackwardOptions = {}): {
  dq: Tensor; dk: Tensor; dv: Tensor; dsinks?: Tensor;
} {
  checkOptionKeys(options, 'attentionBackward');
  const dims = checkQkv(q, k, v, 'attentionBackward');
  const { B, Hq, Hkv, L, S, D, Dv } = dims;
  checkDout(dout, dims, 'attentionBackward');
  if (options.scoreMod) throw new QkvError('attentionBackward: a scoreMod function cannot be differentiated; express it as bias, alibiSlopes or softcap');
  const kernelName = chooseKernel({ ...options, kernel: options.kernel === 'reference' ? 'reference' : 'flash', returnStats: false }, dims);
  const kernel = getSdpaKernel(kernelName);
  if (B * Hq * L === 0) { // no query row, no gradient
    const sinkGrad = options.sinks === undefined ? {} : { dsinks: Tensor.zeros([Hq]) };
    return { dq: Tensor.zeros(q.shape, q.dtype), dk: Tensor.zeros(k.shape, k.dtype), dv: Tensor.zeros(v.shape, v.dtype), ...sinkGrad };
  }
  const p = problemOf(q, k, v, options, dims);
  const { blockM, blockN } = tileRequest(options, dims);
  const req = { blockM, blockN };
  let out = options.out?.toFloat32();
  let lse = options.lse?.toFloat32();
  if (out && out.length !== B * Hq * L * Dv) throw new QkvError(`attentionBackward: out must be [${B}, ${Hq}, ${L}, ${Dv}]`);
  if (lse && lse.length !== B * Hq * L) throw new QkvError(`attentionBackward: lse must be [${B}, ${Hq}, ${L}]`);
  const sinks = options.sinks === undefined ? null : sinkLogits(options.sinks, Hq, 'attentionBackward');
  if (!out || !lse) {
    ({ out, lse } = kernel.forward(p, req));
    if (sinks) applySinks({ out, lse }, sinks, L, Dv, S); // with sinks: the kernel's backward reads o′ and lse′
  }
  const g = kernel.backward!(p, out, lse, dout.toFloat32(), req);
  return {
    dq: asDtype(g.dq, [B, Hq, L, D], q),
    dk: asDtype(g.dk, [B, Hkv, S, D], k),
    dv: asDtype(g.dv, [B, Hkv, S, Dv], v),
    ...(sinks ? { dsinks: Tensor.from(sinkGradient(out, lse, dout.toFloat32(), sinks, L, Dv), [Hq]) } : {}),
  };
}

export type { AttentionOptions, AttentionResult, AttentionStats, KernelName } from './options.js';
