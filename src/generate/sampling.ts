// Choosing the next token from logits, in transformers' order of logits processors:
//   logit bias (OpenAI's logit_bias): logit ← logit + bias, for the tokens it names
//   repetition penalty (Keskar et al. 2019): logit ← logit / p if > 0 else logit · p, for tokens already seen
//   presence and frequency penalties (OpenAI's): logit ← logit − presence · [c > 0] − frequency · c, c = the token's
//   count in the generated text so far (not the prompt, as vLLM counts)
//   temperature: logit ← logit / T;   top-k: keep the k largest;   then p = softmax(logits)
//   top-p (nucleus, Holtzman et al. 2020): keep the most likely tokens until their mass reaches P
//   min-p (Nguyen et al. 2024): drop tokens with p < minP · max p;   then draw from what is left
import { QkvError } from '../errors.js';
import { Rng } from '../nn/random.js';

export interface SamplingOptions {
  /** Always take the most likely token (also when temperature is 0). */
  greedy?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repetitionPenalty?: number;
  /** Subtracted once from every token already generated (−2 … 2). */
  presencePenalty?: number;
  /** Subtracted per occurrence in the generated text (−2 … 2). */
  frequencyPenalty?: number;
  /** Added to the logits of the token ids it names (−100 … 100: −100 bans a token, 100 all but forces it). */
  logitBias?: ReadonlyMap<number, number>;
}

/** Throws on values that would make sampling meaningless (negative temperature, top-p outside (0, 1], …). */
export function checkSampling(o: SamplingOptions): void {
  const bad = (name: string, v: unknown, want: string) => { throw new QkvError(`generate: ${name} must be ${want}, got ${String(v)}`); };
  if (o.temperature !== undefined && !(o.temperature >= 0 && Number.isFinite(o.temperature))) bad('temperature', o.temperature, 'a number ≥ 0');
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) bad('topK', o.topK, 'an integer ≥ 0');
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) bad('topP', o.topP, 'in (0, 1]');
  if (o.minP !== undefined && !(o.minP >= 0 && o.minP <= 1)) bad('minP', o.minP, 'in [0, 1]');
  if (o.repetitionPenalty !== undefined && !(o.repetitionPenalty > 0 && Number.isFinite(o.repetitionPenalty))) bad('repetitionPenalty', o.repetitionPenalty, 'a number > 0');
  for (const k of ['presencePenalty', 'frequencyPenalty'] as const) {
    if (o[k] !== undefined && !(Math.abs(o[k]!) <= 2)) bad(k, o[k], 'a number in [−2, 2]');
  }
  for (const [id, b] of o.logitBias ?? []) {
    if (!Number.isInteger(id) || id < 0) bad('a logitBias token id', id, 'an integer ≥ 0');
    if (!(Math.abs(b) <= 100)) bad(`logitBias[${id}]`, b, 'a number in [−100, 100]');
  }
}

/**
 * log p of each token under the model (log-softmax of the raw logits), for the chosen `id` and the `top` most likely:
 *   log p_i = l_i − (m + log Σ_j exp(l_j − m)),  m = max_j l_j
 */
export function logprobsOf(logits: ArrayLike<number>, id: number, top: number):
  { logprob: number; top: { id: number; logprob: number }[] } {
  let m = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > m) m = logits[i];
  let s = 0;
  for (let i = 0; i < logits.length; i++) s += Math.exp(logits[i] - m);
  const lse = m + Math.log(s);
  const best: number[] = [];
  for (let i = 0; i < logits.length && top > 0; i++) {
    if (best.length < top || logits[i] > logits[best[best.length - 1]]) {
      best.push(i);
      best.sort((a, b) => logits[b] - logits[a] || a - b);
      if (best.length > top) best.pop();
    }
  }
  return { logprob: logits[id] - lse, top: best.map((i) => ({ id: i, logprob: logits[i] - lse })) };
}

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** The next token id given the logits of the last position, the ids so far (prompt and generated) and the generated ones. */
export function sampleNext(logits: ArrayLike<number>, history: readonly number[], o: SamplingOptions, rng: Rng = new Rng(0),
  generated: readonly number[] = []): number {
  const l = Float64Array.from(logits);
  for (const [id, b] of o.logitBias ?? []) if (id < l.length) l[id] += b;
  if (o.repetitionPenalty && o.repetitionPenalty !== 1) {
    for (const id of new Set(history)) l[id] = l[id] > 0 ? l[id] / o.repetitionPenalty : l[id] * o.repetitionPenalty;
  }
  if (o.presencePenalty || o.frequencyPenalty) {
    const counts = new Map<number, number>();
    for (const id of generated) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const [id, c] of counts) l[id] -= (o.presencePenalty ?? 0) + (o.frequencyPenalty ?? 0) * c;
  }
  const T = o.temperature ?? 1;
  if (o.greedy || T === 0) return argmax(l);
  for (let i = 0; i < l.length; i++) l[i] /= T;
  // candidates sorted by logit, most likely first
  let order = Array.from(l.keys()).sort((a, b) => l[b] - l[a]);
  if (o.topK && o.topK > 0) order = order.slice(0, o.topK);
  const m = l[order[0]];
  let p = order.map((i) => Math.exp(l[i] - m));
  let sum = p.reduce((a, b) => a + b, 0);
  p = p.map((x) => x / sum);
  if (o.topP !== undefined && o.topP < 1) {
    let mass = 0;
    let keep = 0;
    while (keep < p.length && mass < o.topP) mass += p[keep++];
    order = order.slice(0, Math.max(1, keep));
    p = p.slice(0, order.length);
  }
  if (o.minP) {
    const floor = o.minP * p[0];
    const keep = p.findIndex((x) => x < floor);
    if (keep > 0) { order = order.slice(0, keep); p = p.slice(0, keep); }
  }
  sum = p.reduce((a, b) => a + b, 0);
  let u = rng.uniform() * sum;
  for (let c = 0; c < p.length; c++) { u -= p[c]; if (u <= 0) return order[c]; }
  return order[order.length - 1];
}
