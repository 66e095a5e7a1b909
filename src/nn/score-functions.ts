// Attention over a sequence of keys with the classic score functions, seq2seq layout q [B, L, dq], k [B, S, dk],
// v [B, S, dv]. Each returns the scores [B, L, S], the weights softmax_j(scores) and the context out [B, L, dv]:
//   Bahdanau (additive, Bahdanau et al. 2015)   score_ij = vaᵀ tanh(W1 q_i + W2 k_j)
//   Luong dot (Luong et al. 2015)               score_ij = q_i · k_j
//   Luong general                                score_ij = q_iᵀ W k_j
//   cosine with temperature τ                    score_ij = cos(q_i, k_j) / τ
//   negative squared L2                          score_ij = −‖q_i − k_j‖² / √d
// Keys past keyLengths[b] are masked; a row with no key gives weights 0 and out 0.
import { QkvError } from '../errors.js';
import { fmtShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { linear } from './linear.js';

/** What every score-function attention returns. */
export interface ScoreAttentionResult { scores: Tensor; weights: Tensor; out: Tensor }

/** Shared options: key padding. */
export interface ScoreAttentionOptions { keyLengths?: readonly number[] }

function dims(q: Tensor, k: Tensor, v: Tensor, what: string, sameDim: boolean) {
  for (const [n, t] of [['q', q], ['k', k], ['v', v]] as const) {
    if (!(t instanceof Tensor) || t.rank !== 3) throw new QkvError(`${what}: ${n} must be [batch, seq, dim], got ${t instanceof Tensor ? fmtShape(t.shape) : typeof t}`);
  }
  const [B, L, Dq] = q.shape;
  const [Bk, S, Dk] = k.shape;
  if (Bk !== B || v.shape[0] !== B) throw new QkvError(`${what}: batch sizes differ: q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}`);
  if (v.shape[1] !== S) throw new QkvError(`${what}: v.shape[1] must equal k.shape[1] (S=${S}), got ${v.shape[1]}`);
  if (sameDim && Dk !== Dq) throw new QkvError(`${what}: q and k need the same dim, got q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}`);
  return { B, L, S, Dq, Dk, Dv: v.shape[2] };
}

/** weights = softmax_j(scores) (masked past keyLengths), out = weights · v. */
function softmaxContext(scores: Float32Array, v: Tensor, B: number, L: number, S: number, o: ScoreAttentionOptions): ScoreAttentionResult {
  const Dv = v.shape[2];
  const vv = v.toFloat32();
  const weights = new Float32Array(B * L * S);
  const out = new Float32Array(B * L * Dv);
  if (o.keyLengths && o.keyLengths.length !== B) throw new QkvError(`keyLengths has ${o.keyLengths.length} entries, expected B=${B}`);
  for (let b = 0; b < B; b++) {
    const n = o.keyLengths ? o.keyLengths[b] : S;
    for (let i = 0; i < L; i++) {
      const r = (b * L + i) * S;
      let m = -Infinity;
      for (let j = 0; j < n; j++) m = Math.max(m, scores[r + j]);
      if (m === -Infinity) continue; // no key: weights and out stay 0
      let l = 0;
      for (let j = 0; j < n; j++) { weights[r + j] = Math.exp(scores[r + j] - m); l += weights[r + j]; }
      for (let j = 0; j < n; j++) {
        const p = (weights[r + j] /= l);
        for (let d = 0; d < Dv; d++) out[(b * L + i) * Dv + d] += p * vv[(b * S + j) * Dv + d];
      }
    }
  }
  return { scores: Tensor.from(scores, [B, L, S]), weights: Tensor.from(weights, [B, L, S]), out: Tensor.from(out, [B, L, Dv]) };
}

/** score_ij = f(q_i, k_j) for a row-pair function f over dense rows. */
function pairScores(q: Tensor, k: Tensor, B: number, L: number, S: number, f: (qa: Float32Array, qi: number, ka: Float32Array, kj: number, D: number) => number) {
  const [qa, ka] = [q.toFloat32(), k.toFloat32()];
  const D = q.shape[2];
  const kD = k.shape[2];
  const s = new Float32Array(B * L * S);
  for (let b = 0; b < B; b++) for (let i = 0; i < L; i++) for (let j = 0; j < S; j++) {
    s[(b * L + i) * S + j] = f(qa, (b * L + i) * D, ka, (b * S + j) * kD, D);
  }
  return s;
}

const dot = (a: Float32Array, i: number, b: Float32Array, j: number, D: number) => {
  let acc = 0;
  for (let d = 0; d < D; d++) acc += a[i + d] * b[j + d];
  return acc;
};

/**
 * Bahdanau additive attention: score_ij = vaᵀ tanh(W1 q_i + W2 k_j), with W1 [h, dq], W2 [h, dk], va [h].
 * Matches the usual PyTorch module `va(tanh(W1(q).unsqueeze(2) + W2(k).unsqueeze(1))).squeeze(-1)` without biases.
 */
export function additiveAttention(q: Tensor, k: Tensor, v: Tensor, W1: Tensor, W2: Tensor, va: Tensor, o: ScoreAttentionOptions = {}): ScoreAttentionResult {
  const { B, L, S } = dims(q, k, v, 'additiveAttention', false);
  const H = W1.shape[0];
  if (W2.shape[0] !== H || va.rank !== 1 || va.shape[0] !== H) {
    throw new QkvError(`additiveAttention: W1 [h, dq], W2 [h, dk], va [h] must share h; got ${fmtShape(W1.shape)}, ${fmtShape(W2.shape)}, ${fmtShape(va.shape)}`);
  }
  const wq = linear(q, W1, null, 'additiveAttention W1').toFloat32(); // [B, L, h]
  const wk = linear(k, W2, null, 'additiveAttention W2').toFloat32(); // [B, S, h]
  const a = va.toFloat32();
  const s = new Float32Array(B * L * S);
  // score_ij = Σ_h va_h tanh(wq_ih + wk_jh)
  for (let b = 0; b < B; b++) for (let i = 0; i < L; i++) for (let j = 0; j < S; j++) {
    let acc = 0;
    for (let h = 0; h < H; h++) acc += a[h] * Math.tanh(wq[(b * L + i) * H + h] + wk[(b * S + j) * H + h]);
    s[(b * L + i) * S + j] = acc;
  }
  return softmaxContext(s, v, B, L, S, o);
}

/** Luong attention: `dot` (q·k) or `general` (qᵀ W k, W [dq, dk]). */
export function luongAttention(q: Tensor, k: Tensor, v: Tensor, kind: 'dot' | 'general', W?: Tensor, o: ScoreAttentionOptions = {}): ScoreAttentionResult {
  if (kind === 'dot') {
    const { B, L, S } = dims(q, k, v, 'luongAttention', true);
    return softmaxContext(pairScores(q, k, B, L, S, dot), v, B, L, S, o);
  }
  if (kind !== 'general') throw new QkvError(`luongAttention: kind must be 'dot' or 'general', got '${kind}'`);
  const { B, L, S, Dq, Dk } = dims(q, k, v, 'luongAttention', false);
  if (!W || W.rank !== 2 || W.shape[0] !== Dq || W.shape[1] !== Dk) {
    throw new QkvError(`luongAttention: general needs W [dq=${Dq}, dk=${Dk}], got ${W ? fmtShape(W.shape) : 'none'}`);
  }
  // qᵀ W k = (Wᵀ q)·k: project q once by Wᵀ (linear with weight Wᵀ), then dot with each key
  const qW = linear(q, W.transpose(0, 1), null, 'luongAttention');
  return softmaxContext(pairScores(qW, k, B, L, S, dot), v, B, L, S, o);
}

/** Cosine-similarity attention: score_ij = cos(q_i, k_j) / temperature. */
export function cosineAttention(q: Tensor, k: Tensor, v: Tensor, temperature = 1, o: ScoreAttentionOptions = {}): ScoreAttentionResult {
  const { B, L, S } = dims(q, k, v, 'cosineAttention', true);
  if (typeof temperature !== 'number' || !(temperature > 0)) {
    throw new QkvError(`cosineAttention: temperature must be positive, got ${String(temperature)}`);
  }
  const eps = 1e-8; // torch.nn.functional.cosine_similarity's floor on each norm
  const s = pairScores(q, k, B, L, S, (a, i, b, j, D) => {
    const na = Math.max(Math.sqrt(dot(a, i, a, i, D)), eps);
    const nb = Math.max(Math.sqrt(dot(b, j, b, j, D)), eps);
    return dot(a, i, b, j, D) / (na * nb) / temperature;
  });
  return softmaxContext(s, v, B, L, S, o);
}

/** Negative squared Euclidean distance attention: score_ij = −‖q_i − k_j‖² / √d. */
export function l2Attention(q: Tensor, k: Tensor, v: Tensor, o: ScoreAttentionOptions = {}): ScoreAttentionResult {
  const { B, L, S, Dq } = dims(q, k, v, 'l2Attention', true);
  const s = pairScores(q, k, B, L, S, (a, i, b, j, D) => {
    let acc = 0;
    for (let d = 0; d < D; d++) acc += (a[i + d] - b[j + d]) ** 2;
    return -acc / Math.sqrt(Dq);
  });
  return softmaxContext(s, v, B, L, S, o);
}
