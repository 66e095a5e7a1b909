// Autoregressive generation with a KV cache: a prefill over the prompt (in chunks of up to 512 tokens) fills the cache,
// then each decode step feeds one token and attends to the cache through the decode kernel (L = 1).
//   generateStream: an async iterator of tokens with their text, for streaming to a terminal or a socket;
//   generate:       the same, collected;   generateBatch: several prompts at once, left-padded;
//   greedy:         the argmax loop used by the conformance tests;   seq2seqGenerate: T5-style encoder-decoder.
import { ContiguousKVCache } from '../cache/contiguous.js';
import type { KVCache } from '../cache/kv-cache.js';
import { checkInt, describeValue, NumericsError, QkvError } from '../errors.js';
import { checkCache } from '../models/inputs.js';
import { checkModelKind, type CausalLM, type Seq2SeqLM } from '../models/model.js';
import { Rng } from '../nn/random.js';
import type { Tensor } from '../tensor/tensor.js';
import type { EngineSequence } from './engine.js';
import { checkSampling, logprobsOf, sampleNext, type SamplingOptions } from './sampling.js';
import { webgpuStepper } from './webgpu.js';
import { IncrementalDecoder, settledText, type Tokenizer } from './tokenizer.js';

export interface GenerateOptions extends SamplingOptions {
  /** New tokens at most (default 64). */
  maxTokens?: number;
  /** Seed of the sampling RNG (default 0): the same seed gives the same text. */
  seed?: number;
  /** Token ids that end generation (default: the model's eos ids). */
  stopTokens?: readonly number[];
  /** Strings that end generation; the text is cut before them. */
  stopStrings?: readonly string[];
  /** A cache to fill (default: a new contiguous cache). */
  cache?: KVCache;
  /** Called with each token as it is produced. */
  onToken?: (t: GeneratedToken) => void;
  /** Where the model runs (default 'cpu'); 'webgpu' keeps weights and the KV cache on the GPU (one sequence). */
  device?: 'cpu' | 'webgpu';
  /** The storage of the KV cache generate makes (default 'float32'): 'float16' halves its memory, as llama.cpp's
   *  default cache does. On the CPU the decode kernel reads it as f16 (a layer that meets a value f16 cannot hold stays
   *  f32, cache/contiguous.ts); on WebGPU it needs shader-f16 and, where the device has subgroup matrices, runs prompt
   *  attention on the tensor cores. */
  kvDtype?: 'float32' | 'float16';
  /** Run as one sequence of a BatchEngine (engine.ts, from `engine.open(prompt, maxTokens)`), batched with others;
   *  released at the end. Instead of `cache` and `device`. */
  sequence?: EngineSequence;
  /** Give each token its log-probability under the model and those of the `logprobs` most likely tokens (0 … 20). */
  logprobs?: number;
  /** Prompt tokens per forward pass on the CPU (default 512, llama.cpp's batch): a longer prompt is prefilled in
   *  chunks against the cache, so a layer's activations stay inside the kernels' work arena whatever the prompt's
   *  length, and the event loop gets a turn between chunks. Contiguous, paged and sliding-window caches show a chunk's
   *  queries the keys one pass would; an int8 cache shows them the earlier chunks' keys rounded to 8 bits, as it shows
   *  every generated token; a sink cache (positions of its own) keeps the one-pass prefill. */
  prefillChunk?: number;
  /** Called as the prompt is prefilled: after each chunk but the last with the prompt tokens fed so far, then once
   *  with (total, total) when the prefill is done — before the first token. */
  onPrefill?: (done: number, total: number) => void;
}

/** One produced token and the text it added (may be empty while a multi-byte character is incomplete); with the
 *  `logprobs` option, its log-probability and the most likely alternatives. */
export interface GeneratedToken { id: number; text: string; index: number; logprob?: number; top?: { id: number; logprob: number }[] }

/** What a finished generation returns. */
export interface GenerateResult {
  /** The new token ids (without the prompt). */
  ids: number[];
  text: string;
  promptTokens: number;
  finishReason: 'stop' | 'length';
  /** Milliseconds: prefill (time to first token) and the decode steps. */
  timings: { prefillMs: number; decodeMs: number };
}

/**
 * Throws a NumericsError when the logits hold a NaN: sampling from them would give an arbitrary token (NaN weights,
 * or a config whose numbers make the forward overflow). One pass over V numbers per token, small next to the forward.
 */
function checkLogits(logits: Float32Array, step: number, promptTokens: number): Float32Array {
  const V = logits.length; // (a local: 1.5 against 2.1 ns a logit)
  for (let v = 0; v < V; v++) {
    if (Number.isNaN(logits[v])) {
      const where = step === 0 ? `for the prompt (${promptTokens} tokens)` : `at decode step ${step}`;
      throw new NumericsError(`generate: the model produced NaN logits ${where}: ` +
        'its weights or config.json give non-finite values');
    }
  }
  return logits;
}

// caches a long prompt is prefilled into in chunks (prefillInChunks). Contiguous and paged keep every token as given,
// and a sliding cache every token a later query's window reaches: the chunks attend as one pass does (the same logits
// on qkv-tiny). An int8 cache gives each chunk the earlier chunks' keys and values as it stores them, rounded to 8 bits,
// as it gives every generated token (one pass reads the prompt's own as computed); the cache kept for its memory, a
// prompt's activations stay a chunk's too. Not sinks: its positions are assigned inside the cache, and eviction part
// way through a prompt would make another model of it.
const CHUNKED = new Set(['contiguous', 'paged', 'sliding', 'int8']);

/**
 * The logits [1, 1, V] after feeding `ids` through the cache, `chunk` tokens a forward pass: each chunk's queries
 * attend to the cache (the chunks before it) and to themselves, causally — the same attention as one pass over all of
 * `ids`, with a layer's activations sized by the chunk, not the prompt. The chunks before the last compute one row of
 * logits they do not need (one token's output projection: small next to a chunk).
 */
async function prefillInChunks(model: CausalLM, cache: KVCache, ids: readonly number[], chunk: number,
  pause: () => Promise<void>, onPrefill?: (done: number, total: number) => void): Promise<Tensor> {
  let logits = model.forward([ids.slice(0, chunk)], { cache, lastOnly: true }).logits;
  for (let i = chunk; i < ids.length; i += chunk) {
    onPrefill?.(i, ids.length);
    await pause();
    logits = model.forward([ids.slice(i, i + chunk)], { cache, lastOnly: true }).logits;
  }
  return logits;
}

/** Logits of the last position of row `b` as a Float32Array view. */
function lastLogits(logits: Tensor, b = 0): Float32Array {
  const [, T, V] = logits.shape;
  return logits.toFloat32().subarray((b * T + T - 1) * V, (b * T + T) * V);
}

// One turn of the event loop (timers, I/O and rendering get their go) without setTimeout's ≥ 1 ms clamp, which cost
// a decode step of ~15 ms about 7%: Node's setImmediate, a MessageChannel message in browsers.
export const nextTurn: () => Promise<void> = typeof (globalThis as { setImmediate?: unknown }).setImmediate === 'function'
  ? () => new Promise((r) => (globalThis as unknown as { setImmediate(f: () => void): void }).setImmediate(r))
  : typeof MessageChannel === 'function'
    ? () => new Promise((r) => { const c = new MessageChannel(); c.port1.onmessage = () => { c.port1.close(); r(); }; c.port2.postMessage(0); })
    : () => new Promise((r) => setTimeout(r, 0));

/** Yields to the event loop now and then, so servers and UIs stay responsive during long generations. */
function yielder(): () => Promise<void> {
  let last = Date.now();
  return async () => {
    if (Date.now() - last < 15) return;
    last = Date.now();
    await nextTurn();
  };
}

/**
 * Streams a continuation of `prompt` (text, with a tokenizer, or token ids).
 * @example for await (const t of generateStream(model, tok, 'Once', { maxTokens: 8 })) process.stdout.write(t.text);
 */
export async function* generateStream(model: CausalLM, tokenizer: Tokenizer | null, prompt: string | readonly number[],
  o: GenerateOptions = {}): AsyncGenerator<GeneratedToken, GenerateResult> {
  checkModelKind(model, 'causal-lm', 'generate');
  checkSampling(o);
  checkGenerate(o, prompt);
  const maxTokens = o.maxTokens ?? 64;
  if (!Number.isInteger(maxTokens) || maxTokens < 0) {
    throw new QkvError(`generate: maxTokens must be an integer ≥ 0, got ${String(maxTokens)}`);
  }
  if (typeof prompt === 'string' && !tokenizer) throw new QkvError('generate: a text prompt needs a tokenizer (or pass token ids)');
  const promptIds = typeof prompt === 'string' ? tokenizer!.encode(prompt) : [...prompt];
  if (promptIds.length === 0) throw new QkvError('generate: the prompt is empty (no tokens)');
  if (promptIds.length + maxTokens > model.info.maxPositions && !o.cache?.unboundedContext) {
    throw new QkvError(`generate: prompt (${promptIds.length} tokens) + maxTokens (${maxTokens}) exceeds the model's context of ${model.info.maxPositions}`);
  }
  const stop = new Set(o.stopTokens ?? model.info.eosTokenIds);
  const rng = new Rng(o.seed ?? 0);
  if (o.device !== undefined && o.device !== 'cpu' && o.device !== 'webgpu') throw new QkvError(`generate: device must be 'cpu' or 'webgpu', got ${describeValue(o.device)}`);
  if (o.device === 'webgpu' && o.cache) throw new QkvError("generate: device 'webgpu' keeps its own KV cache on the GPU; leave out `cache`");
  if (o.kvDtype !== undefined && o.kvDtype !== 'float32' && o.kvDtype !== 'float16') throw new QkvError(`generate: kvDtype must be 'float32' or 'float16', got ${describeValue(o.kvDtype)}`);
  if (o.kvDtype !== undefined && (o.cache || o.sequence)) {
    throw new QkvError('generate: kvDtype is the storage of the cache generate makes; a given cache or batch sequence has its own');
  }
  if (o.logprobs !== undefined && !(Number.isInteger(o.logprobs) && o.logprobs >= 0 && o.logprobs <= 20)) {
    throw new QkvError(`generate: logprobs must be an integer in [0, 20], got ${String(o.logprobs)}`);
  }
  if (o.sequence && (o.cache || o.device)) {
    throw new QkvError('generate: a batch sequence has its own cache and device; leave out `cache` and `device`');
  }
  const gpu = o.device === 'webgpu' ? await webgpuStepper(model, o.kvDtype) : null;
  // released at the end; sized for the whole request at once (growing by doubling would leave the outgrown buffers in
  // the kernels' memory, which never shrinks: ~2.8× the cache's bytes at peak for a 512-token prompt)
  const own = o.cache || o.sequence ? null : new ContiguousKVCache(model.info.numLayers, promptIds.length + maxTokens, null, o.kvDtype);
  const cache = o.cache ?? own!;
  // the next-token logits of the last position, after feeding `next` (CPU: through the cache; GPU: all on the GPU;
  // a batch sequence: in the engine's next tick, with the others)
  const pause = o.sequence ? async () => {} : yielder(); // the engine's ticks yield already
  const chunk = !o.sequence && CHUNKED.has(cache.kind) ? o.prefillChunk ?? 512 : Infinity;
  const forward = o.sequence ? (next: readonly number[]) => o.sequence!.step(next) : gpu?.step ??
    (async (next: readonly number[]) => lastLogits(await prefillInChunks(model, cache, next, chunk, pause, o.onPrefill)));
  let steps = 0;
  const step = async (next: readonly number[]) => checkLogits(await forward(next), steps++, promptIds.length);
  try {
    const ids: number[] = [];
    const history = [...promptIds]; // prompt and generated ids, for the repetition penalty
    const decoder = tokenizer ? new IncrementalDecoder(tokenizer) : null;
    let text = '';
    let finishReason: 'stop' | 'length' = 'length';
    let cutAtStopString = false;
    const t0 = performance.now();
    // 1. prefill: the prompt in chunks of up to `prefillChunk` tokens; 2. decode: one token at a time against the cache
    let logits = await step(promptIds);
    o.onPrefill?.(promptIds.length, promptIds.length);
    let prefillMs = performance.now() - t0; // and the first token's sampling, below (maxTokens 0: the prefill alone)
    // text is released only when it cannot be the start of a stop string ("…Ambrose Bier" is held until "ce" decides):
    // a token whose text is held waits (pending) and is yielded with the text that follows it
    let emitted = 0;
    let pending: Omit<GeneratedToken, 'text'>[] = [];
    const release = function* (upTo: number): Generator<GeneratedToken> {
      const out = pending.map((p, i) => ({ ...p, text: i === 0 ? text.slice(emitted, upTo) : '' }));
      [emitted, pending] = [Math.max(emitted, upTo), []];
      for (const t of out) { o.onToken?.(t); yield t; }
    };
    for (let n = 0; n < maxTokens; n++) {
      const id = sampleNext(logits, history, o, rng, ids);
      if (n === 0) prefillMs = performance.now() - t0;
      if (stop.has(id)) { finishReason = 'stop'; break; }
      ids.push(id);
      history.push(id);
      pending.push({ id, index: n, ...(o.logprobs !== undefined ? logprobsOf(logits, id, o.logprobs) : {}) });
      if (!tokenizer) { yield* release(0); } else {
        const full = decoder!.decode(ids);
        const settled = settledText(full);
        const grown = text.length; // a stop string ending in the text added now begins after grown − its length
        text = settled.length > text.length ? settled : text;
        const hit = o.stopStrings?.map((x) => text.indexOf(x, Math.max(0, grown - x.length)))
          .filter((i) => i >= 0).sort((a, b) => a - b)[0];
        if (hit !== undefined) {
          text = text.slice(0, hit);
          yield* release(hit);
          finishReason = 'stop';
          cutAtStopString = true;
          break;
        }
        const held = stopPrefix(text, o.stopStrings ?? [], emitted);
        if (held === 0) yield* release(text.length); // else the token waits with its text
      }
      await pause();
      if (n + 1 < maxTokens) logits = await step([id]);
    }
    if (tokenizer && !cutAtStopString) text = tokenizer.decode(ids); // includes a trailing partial character, if any
    yield* release(text.length); // what was held: no stop string came after all
    return { ids, text, promptTokens: promptIds.length, finishReason, timings: { prefillMs, decodeMs: performance.now() - t0 - prefillMs } };
  } finally {
    gpu?.release();
    own?.release();
    o.sequence?.release();
  }
}

export { settledText } from './tokenizer.js';

// what generateStream reads besides the sampling options (checkSampling): a JavaScript caller may pass anything
function checkGenerate(o: GenerateOptions, prompt: unknown, fn = 'generate'): void {
  const bad = (name: string, v: unknown, want: string) => new QkvError(`${fn}: ${name} must be ${want}, got ${describeValue(v)}`);
  if (typeof prompt !== 'string' && !Array.isArray(prompt)) throw bad('the prompt', prompt, 'a string or a list of token ids');
  if (Array.isArray(prompt) && !prompt.every((id) => Number.isInteger(id))) throw bad('the prompt', prompt, 'a list of integer token ids');
  if (o.maxTokens !== undefined && !(Number.isSafeInteger(o.maxTokens) && o.maxTokens >= 0)) throw bad('maxTokens', o.maxTokens, 'an integer ≥ 0');
  const list = (name: string, v: unknown, of: (x: unknown) => boolean, want: string) => {
    if (v !== undefined && (!Array.isArray(v) || !v.every(of))) throw bad(name, v, want);
  };
  list('stopTokens', o.stopTokens, (x) => Number.isInteger(x), 'a list of integer token ids');
  list('stopStrings', o.stopStrings, (x) => typeof x === 'string' && x.length > 0, 'a list of non-empty strings');
  if (o.seed !== undefined && !Number.isSafeInteger(o.seed)) throw bad('seed', o.seed, 'an integer');
  if (o.onToken !== undefined && typeof o.onToken !== 'function') throw bad('onToken', o.onToken, 'a function');
  if (o.onPrefill !== undefined && typeof o.onPrefill !== 'function') throw bad('onPrefill', o.onPrefill, 'a function');
  checkCache(o.cache, fn);
  const isSequence = typeof o.sequence === 'object' && o.sequence !== null &&
    typeof o.sequence.step === 'function' && typeof o.sequence.release === 'function';
  if (o.sequence !== undefined && !isSequence) throw bad('sequence', o.sequence, 'a BatchEngine sequence');
  if (o.prefillChunk !== undefined && !(Number.isSafeInteger(o.prefillChunk) && o.prefillChunk >= 1)) {
    throw bad('prefillChunk', o.prefillChunk, 'an integer ≥ 1');
  }
}

/** The length of the longest end of text[from…] that begins some stop string (0: nothing to hold back). */
function stopPrefix(text: string, stops: readonly string[], from: number): number {
  const longest = Math.min(text.length - from, Math.max(0, ...stops.map((x) => x.length - 1)));
  for (let k = longest; k > 0; k--) {
    const end = text.slice(text.length - k);
    if (stops.some((x) => x.startsWith(end))) return k;
  }
  return 0;
}

/** Generates and collects the whole continuation. */
export async function generate(model: CausalLM, tokenizer: Tokenizer | null, prompt: string | readonly number[], o: GenerateOptions = {}): Promise<GenerateResult> {
  const it = generateStream(model, tokenizer, prompt, o);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}

/** Greedy decoding with a KV cache (contiguous unless given), synchronously: prompt rows followed by `n` new ids (stops
 *  at eos). The cache is released at the end. */
export function greedy(model: CausalLM, prompt: readonly (readonly number[])[], n: number, given?: KVCache): number[] {
  checkModelKind(model, 'causal-lm', 'greedy');
  if (!Array.isArray(prompt) || !Array.isArray(prompt[0])) {
    throw new QkvError(`greedy: prompt must be a list of rows of token ids, got ${describeValue(prompt)}`);
  }
  checkInt(n, 'greedy: n', 0);
  checkCache(given, 'greedy');
  const cache = given ?? new ContiguousKVCache(model.info.numLayers);
  try {
    const ids = [...prompt[0]];
    const eos = new Set(model.info.eosTokenIds);
    let logits = model.forward([ids], { cache, lastOnly: true }).logits;
    for (let s = 0; s < n; s++) {
      const last = lastLogits(logits);
      let best = 0;
      for (let v = 1; v < last.length; v++) if (last[v] > last[best]) best = v;
      ids.push(best);
      if (eos.has(best)) break;
      if (s + 1 < n) logits = model.forward([[best]], { cache, lastOnly: true }).logits;
    }
    return ids;
  } finally {
    cache.release?.();
  }
}

/**
 * Several prompts at once: left-padded to one length, attention masks hide the padding and position ids count real
 * tokens only, so each row continues exactly as it would alone. Returns the new ids of each row.
 */
export function generateBatch(model: CausalLM, prompts: readonly (readonly number[])[], o: GenerateOptions = {}): number[][] {
  checkModelKind(model, 'causal-lm', 'generateBatch');
  if (!Array.isArray(prompts) || !prompts.every((p) => Array.isArray(p))) {
    throw new QkvError(`generateBatch: prompts must be a list of lists of token ids, got ${describeValue(prompts)}`);
  }
  checkSampling(o);
  checkGenerate(o, prompts.flat(), 'generateBatch');
  const maxTokens = o.maxTokens ?? 64;
  const B = prompts.length;
  const T = Math.max(...prompts.map((p) => p.length));
  if (prompts.some((p) => p.length === 0)) throw new QkvError('generateBatch: every prompt needs at least one token');
  // padding is masked out, so any id in the vocabulary will do: pad, else eos, else 0
  const pad = [model.info.padTokenId, model.info.eosTokenIds[0]].find((x) => x !== null && x !== undefined && x < model.info.vocabSize) ?? 0;
  const mask = prompts.map((p) => [...Array(T - p.length).fill(0), ...p.map(() => 1)]);
  const ids = prompts.map((p) => [...Array(T - p.length).fill(pad), ...p]);
  const positions = mask.map((row) => { let c = -1; return row.map((m) => (m ? ++c : 0)); });
  const stop = new Set(o.stopTokens ?? model.info.eosTokenIds);
  const rngs = prompts.map((_, b) => new Rng((o.seed ?? 0) + b));
  const own = o.cache ? null : new ContiguousKVCache(model.info.numLayers, T + maxTokens); // released at the end
  const cache = o.cache ?? own!;
  const out: number[][] = prompts.map(() => []);
  const done = prompts.map(() => false);
  try {
    let logits = model.forward(ids, { cache, attentionMask: mask, positionIds: positions, lastOnly: true }).logits;
    for (let n = 0; n < maxTokens && done.includes(false); n++) {
      const next = prompts.map((p, b) => sampleNext(lastLogits(logits, b), [...p, ...out[b]], o, rngs[b]));
      next.forEach((id, b) => {
        if (done[b]) return;
        if (stop.has(id)) done[b] = true;
        else out[b].push(id);
      });
      mask.forEach((row) => row.push(1));
      const pos = positions.map((row) => [row[row.length - 1] + 1]);
      positions.forEach((row, b) => row.push(pos[b][0]));
      logits = model.forward(next.map((id) => [id]), { cache, attentionMask: mask, positionIds: pos, lastOnly: true }).logits;
    }
    return out;
  } finally {
    own?.release();
  }
}

/** Encoder-decoder generation (T5): encode once, then decode from the decoder start token with a cache. */
export function seq2seqGenerate(model: Seq2SeqLM, inputIds: readonly number[], o: GenerateOptions = {}): number[] {
  checkModelKind(model, 'seq2seq', 'seq2seqGenerate');
  if (!Array.isArray(inputIds)) throw new QkvError(`seq2seqGenerate: inputIds must be a list of token ids, got ${describeValue(inputIds)}`);
  checkSampling(o);
  checkGenerate(o, inputIds, 'seq2seqGenerate');
  const rng = new Rng(o.seed ?? 0);
  const stop = new Set(o.stopTokens ?? model.info.eosTokenIds);
  const { hidden } = model.encode([inputIds]);
  const cache = new ContiguousKVCache(model.info.numLayers);
  const out: number[] = [];
  let token = model.info.decoderStartTokenId;
  try {
    for (let n = 0; n < (o.maxTokens ?? 64); n++) {
      const { logits } = model.decode([[token]], hidden, { cache, lastOnly: true });
      token = sampleNext(lastLogits(logits), out, o, rng);
      if (stop.has(token)) break;
      out.push(token);
    }
    return out;
  } finally {
    cache.release();
  }
}
