// Scoring a sequence: the log-probability of every token given the tokens before it,
//   log p(x_t | x_<t) = l_t[x_t] − log Σ_v exp(l_t[v]),   l_t = the logits after x_0 … x_{t−1}
// and the most likely tokens at each position — what lm-evaluation-harness asks an API for (echo with logprobs) to
// compute log-likelihoods, and the next-token loss of a text, token by token. The first token has no score (nothing
// comes before it). The sequence goes through a KV cache in chunks, as a long prompt's prefill does: a chunk's logits
// are [chunk, V] at a time — never [T, V], which for 2,048 tokens of a 49,152-word vocabulary is 400 MB — and the event
// loop turns between chunks, so a server's other streams keep going while a long text is scored.
import { ContiguousKVCache } from '../cache/contiguous.js';
import { checkInt, describeValue, NumericsError, QkvError } from '../errors.js';
import { checkModelKind, type CausalLM } from '../models/model.js';
import { nextTurn } from './generate.js';
import { logprobsOf } from './sampling.js';

/** One token of a scored sequence: its log-probability given those before it and the `top` most likely there (null: the first). */
export interface TokenScore { id: number; logprob: number | null; top: { id: number; logprob: number }[] | null }

export interface ScoreOptions {
  /** How many of the most likely tokens to list at each position (0–20; default 0). */
  top?: number;
  /** Tokens per forward pass (default 256, as the batch engine prefills), or a function asked before each forward (a
   *  server passes its batch engine's prefillBudget, so scoring holds the decoding streams back no longer than a tick). */
  chunk?: number | (() => number);
  /** Stops between chunks when aborted (throws the signal's reason). */
  signal?: AbortSignal;
  /** Called after each chunk with the tokens scored so far (the first included) and the text's length. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Every token of `ids` scored by `model` (see above): log p(x_t | x_<t) and the `top` most likely tokens at t.
 * @example const [, second] = await scoreTokens(model, tokenizer.encode('A fool and his money')); // second.logprob ≤ 0
 */
export async function scoreTokens(model: CausalLM, ids: readonly number[], o: ScoreOptions = {}): Promise<TokenScore[]> {
  checkModelKind(model, 'causal-lm', 'scoreTokens');
  if (!Array.isArray(ids) || ids.length === 0) throw new QkvError('scoreTokens: ids must be a non-empty array of token ids');
  if (ids.length > model.info.maxPositions) {
    throw new QkvError(`scoreTokens: ${ids.length} tokens exceed the model's context of ${model.info.maxPositions}`);
  }
  if (typeof o !== 'object' || o === null) throw new QkvError(`scoreTokens: options must be an object, got ${describeValue(o)}`);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    throw new QkvError(`scoreTokens: signal must be an AbortSignal, got ${describeValue(o.signal)}`);
  }
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') {
    throw new QkvError(`scoreTokens: onProgress must be a function, got ${describeValue(o.onProgress)}`);
  }
  const V = model.info.vocabSize;
  ids.forEach((id, t) => checkInt(id, `scoreTokens: ids[${t}]`, 0, V - 1));
  const top = o.top ?? 0;
  checkInt(top, 'scoreTokens: top', 0, 20);
  const given = o.chunk ?? 256;
  const chunkNow = typeof given === 'function' ? given : () => given;
  if (typeof o.chunk !== 'function') checkInt(chunkNow(), 'scoreTokens: chunk', 1); // (a bad number fails before any work)
  const cache = new ContiguousKVCache(model.info.numLayers, ids.length);
  const scores: TokenScore[] = [{ id: ids[0], logprob: null, top: null }];
  try {
    for (let i = 0, n = 0; i < ids.length - 1; i += n) {
      if (i > 0) await nextTurn();
      o.signal?.throwIfAborted();
      // tokens i … i + n − 1 in; their logits score tokens i + 1 … i + n
      const chunk = chunkNow();
      checkInt(chunk, 'scoreTokens: chunk', 1);
      n = Math.min(chunk, ids.length - 1 - i);
      const logits = model.forward([ids.slice(i, i + n)], { cache }).logits.toFloat32(); // [1, n, V]
      for (let t = 0; t < n; t++) {
        const id = ids[i + t + 1];
        const s = logprobsOf(logits.subarray(t * V, (t + 1) * V), id, top);
        if (Number.isNaN(s.logprob)) { // (a NaN logit makes the log-sum NaN)
          const why = 'its weights or config.json give non-finite values';
          throw new NumericsError(`scoreTokens: the model produced NaN logits after token ${i + t}: ${why}`);
        }
        scores.push({ id, logprob: s.logprob, top: s.top });
      }
      o.onProgress?.(scores.length, ids.length);
    }
  } finally {
    cache.release();
  }
  return scores;
}
