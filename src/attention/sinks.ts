// Learned attention sinks (gpt-oss): one logit σ_h per query head joins every row's softmax, and its probability is
// dropped — the row may put mass "nowhere" instead of on some key. StreamingLLM (Xiao et al. 2023,
// https://arxiv.org/abs/2309.17453) found that models learn to dump attention on the first tokens for this; keeping
// those tokens is what the sinks KV cache does (cache/sinks.ts). gpt-oss makes the sink a parameter instead:
//   p_ij = exp(s_ij − lse′_i),   lse′_i = log(Σ_j exp(s_ij) + exp(σ_h)) = logaddexp(lse_i, σ_h)
// Every kernel already returns lse, so the sink is a rescale of its results by c_i = exp(lse_i − lse′_i) = Σ_j p_ij:
//   o′ = c · o,   p′ = c · p,   H′ = c·H − c log c − p_σ log p_σ  (the sink's own probability p_σ = 1 − c counted),
//   E_p′[|i − j|] = c · E_p[|i − j|]  (the sink has no position).
// Backward: given o′ and lse′ a kernel's backward computes exactly the sink-softmax gradients of q, k, v (its
// D_i = dout_i · o′_i and P′ = exp(S − lse′)), and ∂L/∂σ_h = −Σ_i p_σ,i D_i.
import { QkvError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { floatList } from './validate.js';

/** The sink logits as float32 [Hq], checked: one finite number per query head. */
export function sinkLogits(sinks: ArrayLike<number> | Tensor, Hq: number, fn = 'attention'): Float32Array {
  const s = floatList(sinks, 'sinks', fn);
  if (s.length !== Hq) throw new QkvError(`${fn}: sinks must have one logit per query head (${Hq}), got ${s.length}`);
  const bad = s.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) throw new QkvError(`${fn}: sinks[${bad}] must be a finite number, got ${s[bad]}`);
  return s;
}

/** What a kernel returned, rescaled in place for the sinks: out [B, Hq, L, Dv], lse, and weights/statistics if present. */
export interface SinkRescaled {
  out: Float32Array; lse: Float32Array; weights?: Float32Array; entropy?: Float32Array; meanDistance?: Float32Array;
}

/** Applies the sinks σ [Hq] to rows of `Hq` heads × L queries (out rows of Dv, weights rows of S), in place. */
export function applySinks(r: SinkRescaled, sinks: Float32Array, L: number, Dv: number, S: number): void {
  const Hq = sinks.length;
  for (let row = 0; row < r.lse.length; row++) {
    const sigma = sinks[Math.floor(row / L) % Hq];
    const lse = r.lse[row];
    // lse′ = logaddexp(lse, σ); c = exp(lse − lse′): the mass the keys keep
    const hi = Math.max(lse, sigma);
    const lseNew = hi + Math.log(Math.exp(lse - hi) + Math.exp(sigma - hi));
    const c = Math.exp(lse - lseNew);
    r.lse[row] = lseNew;
    for (let d = 0; d < Dv; d++) r.out[row * Dv + d] *= c;
    if (r.weights) for (let j = 0; j < S; j++) r.weights[row * S + j] *= c;
    if (r.entropy) {
      const ps = 1 - c;
      r.entropy[row] = c * r.entropy[row] - (c > 0 ? c * Math.log(c) : 0) - (ps > 0 ? ps * Math.log(ps) : 0);
    }
    if (r.meanDistance) r.meanDistance[row] *= c;
  }
}

/** ∂L/∂σ_h = −Σ_{b,i} p_σ · (dout_i · o′_i), p_σ = exp(σ_h − lse′_i), from the rescaled out and lse. */
export function sinkGradient(out: Float32Array, lse: Float32Array, dout: Float32Array, sinks: Float32Array, L: number, Dv: number):
  Float32Array {
  const Hq = sinks.length;
  const grad = new Float64Array(Hq);
  for (let row = 0; row < lse.length; row++) {
    const h = Math.floor(row / L) % Hq;
    let dI = 0;
    for (let d = 0; d < Dv; d++) dI += dout[row * Dv + d] * out[row * Dv + d];
    grad[h] -= Math.exp(sinks[h] - lse[row]) * dI;
  }
  return Float32Array.from(grad);
}
