// Continuous batching for streams (Orca, Yu et al. 2022; vLLM's engine): many generations share one model and one paged
// KV cache. Each generation is a sequence that feeds tokens — its prompt, then one token at a time — and awaits the
// next-token logits; sampling, stop strings and text stay with the caller (generateStream). The engine runs a tick
// whenever something was fed:
//   1. one decode forward for every sequence that fed a single token (each row reads its own block table; no padding);
//   2. prompts being prefilled, oldest first, up to `prefillChunk` tokens in all: many short prompts start in one tick
//      (64 clients arriving at once wait a few ticks, not 64) — on the CPU, chunks of one length in one forward — and
//      a long prompt is cut into chunks, so it never stalls the others' decoding for long (chunked prefill, Sarathi).
//      While others decode, a tick prefills only the tokens its measured speed fits in `maxStallMs`: on a large model
//      on one core a whole chunk of 256 tokens takes seconds, and every stream would stop for that long.
// Memory: the cache is a fixed pool of blocks. A sequence is admitted when the free blocks cover its prompt and its
// token budget beside what the running ones may still take, so a step never runs out and nothing is preempted; the
// others wait in a bounded line (EngineBusyError past it). Closing a sequence frees its blocks at once.
// Prefixes (vLLM's automatic prefix caching): a prompt's whole blocks stay cached after its prefill, held by a fork of
// the sequence (blocks shared by reference, copy-on-write); a later prompt that begins with the same tokens forks them
// and prefills only the rest — a shared system prompt is computed and stored once. Cached prefixes are evicted, least
// recently used first, when admission needs their blocks.
// Device: the CPU (a PagedKVCache, the model's forward), or WebGPU (`gpu`: the pool in GPU buffers, the family's forward
// over GpuOps; one readback of the rows' logits per step). Both keep the same tables, so admission, prefixes and
// copy-on-write are one code path.
import { PagedKVCache } from '../cache/paged.js';
import { GpuPagedKVCache } from '../cache/webgpu.js';
import { checkIds, checkInt, describeValue, QkvError } from '../errors.js';
import { checkModelKind, type CausalLM } from '../models/model.js';
import { isDecoder } from '../models/ops.js';
import { nextTurn } from './generate.js';
import { webgpuBatchStep } from './webgpu.js';

export interface EngineOptions {
  /** Blocks in the KV pool: the memory cap. */
  kvBlocks: number;
  /** Tokens per block (default 16). */
  blockSize?: number;
  /** Most sequences decoded together (default 16); 1 runs one generation at a time. */
  maxBatch?: number;
  /** Most generations waiting for admission (default 64). */
  maxWaiting?: number;
  /** Prompt tokens per tick at most, over all the prompts it prefills (default 256). */
  prefillChunk?: number;
  /** While sequences are decoding, how long one tick's prefill may hold their next token back, in ms (default 500):
   *  the tick prefills fewer than prefillChunk tokens when the measured speed says they would take longer (at least
   *  16). Infinity: always prefillChunk. */
  maxStallMs?: number;
  /** Cached prefixes kept at most (default 64; 0 turns prefix caching off). */
  maxPrefixes?: number;
  /** Called after each decode step with its batch size (metrics). */
  onDecode?: (batch: number) => void;
  /** Run on this WebGPU device: the KV pool in its memory, the family's WebGPU forward (default: the CPU). */
  gpu?: GPUDevice;
  /** The CPU pool's storage: float32 (default, exact), float16 (half the bytes, 2× the tokens) or int8 (a scale per
   *  token and head: ~¼ of the bytes, so ~4× the tokens in the same memory; cache/paged.ts). */
  kvDtype?: 'float32' | 'float16' | 'int8';
}

/** The waiting line is full: try again later (a server answers 503 with Retry-After). */
export class EngineBusyError extends QkvError {}

/** What the engine holds and has done (for metrics). */
export interface EngineStats {
  running: number; waiting: number; blocksUsed: number; blocksFree: number; blocksTotal: number; prefixesCached: number;
  prefixLookups: number; prefixHits: number; prefixTokensReused: number; tokensPrefilled: number; tokensDecoded: number;
  ticks: number; lastBatch: number;
  /** Prompt tokens a tick would prefill now (prefillBudget), and the prefill's measured ms a token (NaN: none yet). */
  prefillBudget: number; prefillMsPerToken: number;
}

/**
 * One generation: feed tokens (the prompt given to open() first, then one at a time: at most its maxTokens in all),
 * await the next-token logits; release at the end. A step that breaks these rules is refused alone (a QkvError).
 */
export interface EngineSequence { step(next: readonly number[]): Promise<Float32Array>; release(): void }

interface Fed { ids: readonly number[]; done: number; resolve: (logits: Float32Array) => void; reject: (e: unknown) => void }
// room: the tokens it may still be fed (its prompt and maxTokens, as open() was given them)
interface Seq {
  id: number; prompt: readonly number[]; maxBlocks: number; reused: number; fed: Fed | null; started: boolean; room: number;
}
interface Waiter { prompt: readonly number[]; maxTokens: number; resolve: (s: EngineSequence) => void; reject: (e: unknown) => void }
interface Prefix { id: number; ids: readonly number[]; used: number }

// the fewest prompt tokens a tick prefills (while others decode: progress however slow the model), and the fewest in a
// forward whose time per token is learned from (below it, a forward's fixed cost would pass for the tokens')
const MIN_PREFILL = 16;
/** How long a tick's prefill may hold the decoding sequences back when EngineOptions.maxStallMs is not given, in ms. */
export const DEFAULT_MAX_STALL_MS = 500;


export class BatchEngine {
  readonly cache: PagedKVCache | GpuPagedKVCache;
  readonly blockSize: number;
  private readonly running: Seq[] = [];
  private readonly waiting: Waiter[] = [];
  private readonly prefixes: Prefix[] = [];
  private nextId = 1;
  private scheduled = false;
  #msPerToken: number | null = null; // the prefill's time per token, a moving average over the forwards timed
  private readonly counts = {
    prefixLookups: 0, prefixHits: 0, prefixTokensReused: 0, tokensPrefilled: 0, tokensDecoded: 0, ticks: 0, lastBatch: 0,
  };

  constructor(readonly model: CausalLM, readonly o: EngineOptions) {
    checkModelKind(model, 'causal-lm', 'BatchEngine');
    if (typeof o !== 'object' || o === null) {
      throw new QkvError(`BatchEngine: options must be an object ({ kvBlocks, … }), got ${describeValue(o)}`);
    }
    this.blockSize = o.blockSize ?? 16;
    const ints = { kvBlocks: o.kvBlocks, blockSize: this.blockSize, maxBatch: o.maxBatch ?? 16, prefillChunk: o.prefillChunk ?? 256 };
    for (const [name, v] of Object.entries(ints)) {
      if (!Number.isInteger(v) || v < 1) throw new QkvError(`BatchEngine: ${name} must be an integer ≥ 1, got ${String(v)}`);
    }
    const stall = o.maxStallMs ?? DEFAULT_MAX_STALL_MS;
    if (typeof stall !== 'number' || !(stall > 0)) {
      throw new QkvError(`BatchEngine: maxStallMs must be a number > 0 (Infinity: no limit), got ${describeValue(o.maxStallMs)}`);
    }
    const [L, blockSize, numBlocks] = [model.info.numLayers, this.blockSize, o.kvBlocks];
    if (o.gpu && !isDecoder(model)) {
      throw new QkvError(`BatchEngine: ${model.info.architecture} has no WebGPU forward (the families written over DecoderOps do)`);
    }
    if (o.kvDtype !== undefined && o.kvDtype !== 'float32' && ((o.kvDtype !== 'int8' && o.kvDtype !== 'float16') || o.gpu)) {
      throw new QkvError(`BatchEngine: kvDtype must be 'float32' or (on the CPU) 'float16' or 'int8', got ${describeValue(o.kvDtype)}`);
    }
    this.cache = o.gpu ? new GpuPagedKVCache(o.gpu, L, { blockSize, numBlocks })
      : new PagedKVCache(L, { blockSize, numBlocks, maxBlocks: numBlocks, dtype: o.kvDtype });
  }

  /** The device the engine runs on. */
  get device(): 'cpu' | 'webgpu' { return this.cache instanceof GpuPagedKVCache ? 'webgpu' : 'cpu'; }

  /** Gives the KV pool back (the engine must not be used after). */
  release(): void { this.cache.release(); }

  /**
   * A sequence for a generation of `prompt` and at most `maxTokens` new tokens, once admitted (it waits while the
   * batch is full or the cache has no room for it). Throws EngineBusyError when the waiting line is full, and a
   * QkvError when the cache could never hold it. Aborting `signal` while it waits takes it out of the line.
   */
  open(prompt: readonly number[], maxTokens: number, signal?: AbortSignal): Promise<EngineSequence> {
    checkIds(prompt, 'BatchEngine.open: prompt', this.model.info.vocabSize);
    checkInt(maxTokens, 'BatchEngine.open: maxTokens', 1);
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new QkvError(`BatchEngine.open: signal must be an AbortSignal, got ${describeValue(signal)}`);
    }
    const need = this.cache.blocksFor(prompt.length + maxTokens);
    if (prompt.length === 0) throw new QkvError('BatchEngine: the prompt is empty');
    if (need > this.o.kvBlocks) {
      throw new QkvError(`prompt (${prompt.length} tokens) + max tokens (${maxTokens}) need ${need} KV blocks of ` +
        `${this.blockSize} tokens; the cache holds ${this.o.kvBlocks}`);
    }
    if (this.waiting.length >= (this.o.maxWaiting ?? 64)) {
      throw new EngineBusyError(`the server is busy: ${this.waiting.length} requests are waiting`);
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = { prompt, maxTokens, resolve, reject };
      this.waiting.push(w);
      signal?.addEventListener('abort', () => {
        const i = this.waiting.indexOf(w);
        if (i >= 0) { this.waiting.splice(i, 1); reject(new QkvError('the generation was withdrawn before it started')); }
      }, { once: true });
      this.#admit();
    });
  }

  /**
   * Prompt tokens a tick would prefill now: prefillChunk, or while sequences are decoding, those the measured
   * prefill speed fits in maxStallMs (at least 16; 16 until a prefill has been timed). A caller that runs its own
   * forwards between ticks (a server scoring a prompt) sizes its chunks by it, so it holds the streams back no longer.
   */
  prefillBudget(): number {
    const chunk = this.o.prefillChunk ?? 256, stall = this.o.maxStallMs ?? DEFAULT_MAX_STALL_MS;
    if (stall === Infinity || !this.running.some((s) => s.started && (!s.fed || s.fed.ids.length === 1))) return chunk; // nobody decodes
    const fits = this.#msPerToken === null ? 0 : Math.floor(stall / this.#msPerToken);
    return Math.min(chunk, Math.max(MIN_PREFILL, fits));
  }

  stats(): EngineStats {
    const a = this.cache.allocator;
    return {
      running: this.running.length, waiting: this.waiting.length,
      blocksUsed: a.usedBlocks, blocksFree: a.freeBlocks, blocksTotal: this.o.kvBlocks,
      prefixesCached: this.prefixes.length, ...this.counts, prefillBudget: this.prefillBudget(), prefillMsPerToken: this.#msPerToken ?? NaN,
    };
  }

  // ---- admission ----------------------------------------------------------------------------------------------

  // blocks the running sequences may still take
  #promised(): number {
    return this.running.reduce((n, s) => n + Math.max(0, s.maxBlocks - this.cache.blockTable(s.id).length), 0);
  }

  #admit(): void {
    while (this.waiting.length > 0 && this.running.length < (this.o.maxBatch ?? 16)) {
      const w = this.waiting[0];
      const { hit, reused } = this.#lookup(w.prompt);
      const maxBlocks = this.cache.blocksFor(w.prompt.length + w.maxTokens);
      const need = maxBlocks - reused / this.blockSize;
      while (this.cache.allocator.freeBlocks - this.#promised() < need && this.#evictOne(hit)) { /* evicting */ }
      if (this.cache.allocator.freeBlocks - this.#promised() < need) return; // wait for a sequence to finish
      this.waiting.shift();
      const room = w.prompt.length + w.maxTokens;
      const s: Seq = { id: this.nextId++, prompt: w.prompt, maxBlocks, reused, fed: null, started: false, room };
      this.counts.prefixLookups++;
      if (hit && reused > 0) {
        this.cache.fork(hit.id, s.id);
        this.cache.truncate(s.id, reused);
        hit.used = this.counts.ticks;
        this.counts.prefixHits++;
        this.counts.prefixTokensReused += reused;
      }
      this.running.push(s);
      w.resolve({ step: (next) => this.#feed(s, next), release: () => this.#close(s) });
    }
  }

  // tokens of `prompt` a cached prefix covers, in whole blocks, leaving at least the last prompt token to compute
  #shared(cached: readonly number[], prompt: readonly number[]): number {
    let n = 0;
    while (n < cached.length && n < prompt.length - 1 && cached[n] === prompt[n]) n++;
    return Math.floor(n / this.blockSize) * this.blockSize;
  }

  // the cached prefix that covers the most of `prompt`, and how many tokens
  #lookup(prompt: readonly number[]): { hit: Prefix | null; reused: number } {
    let [hit, reused] = [null as Prefix | null, 0];
    for (const p of this.prefixes) {
      const n = this.#shared(p.ids, prompt);
      if (n > reused) [hit, reused] = [p, n];
    }
    return { hit, reused };
  }

  #evictOne(keep: Prefix | null): boolean {
    const victims = this.prefixes.filter((p) => p !== keep).sort((a, b) => a.used - b.used);
    if (victims.length === 0) return false;
    this.#dropPrefix(victims[0]);
    return true;
  }

  #dropPrefix(p: Prefix): void {
    this.prefixes.splice(this.prefixes.indexOf(p), 1);
    this.cache.free(p.id);
  }

  // after its prefill, a prompt's whole blocks are kept as a prefix (unless a cached one already covers them)
  #remember(s: Seq): void {
    const max = this.o.maxPrefixes ?? 64;
    const whole = Math.floor(s.prompt.length / this.blockSize) * this.blockSize;
    if (max === 0 || whole === 0 || this.prefixes.some((p) => p.ids.length >= whole && this.#startsWith(p.ids, s.prompt, whole))) return;
    const p: Prefix = { id: this.nextId++, ids: s.prompt.slice(0, whole), used: this.counts.ticks };
    this.cache.fork(s.id, p.id);
    this.cache.truncate(p.id, whole);
    // a longer prefix makes the ones it extends redundant
    const shorter = this.prefixes.filter((q) => q.ids.length < whole && this.#startsWith(s.prompt, q.ids, q.ids.length));
    for (const q of shorter) this.#dropPrefix(q);
    this.prefixes.push(p);
    if (this.prefixes.length > max) this.#evictOne(p);
  }

  #startsWith(a: readonly number[], b: readonly number[], n: number): boolean {
    for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  #close(s: Seq): void {
    const i = this.running.indexOf(s);
    if (i < 0) return;
    this.running.splice(i, 1);
    this.cache.free(s.id);
    s.fed?.reject(new QkvError('the sequence was released'));
    s.fed = null;
    this.#admit();
  }

  // ---- ticks --------------------------------------------------------------------------------------------------

  #feed(s: Seq, next: readonly number[]): Promise<Float32Array> {
    if (!this.running.includes(s)) return Promise.reject(new QkvError('BatchEngine: the sequence was released'));
    if (s.fed) return Promise.reject(new QkvError('BatchEngine: step() called again before the last one resolved'));
    const bad = this.#badFeed(s, next);
    if (bad) return Promise.reject(new QkvError(`BatchEngine: step ${bad}`));
    // the first feed is the prompt: what a cached prefix holds is not computed again
    const ids = s.started ? next : next.slice(s.reused);
    s.started = true;
    s.room -= next.length;
    return new Promise((resolve, reject) => {
      s.fed = { ids, done: 0, resolve, reject };
      this.#schedule();
    });
  }

  // what is wrong with feeding `next` to s, or null: token ids of the vocabulary, the prompt first (as open() was given
  // it: the cache and a shared prefix were set up for it), then no more than open()'s maxTokens made room for. A bad
  // feed is refused here, before it joins a batch (in the batch's forward it failed the other sequences' step too).
  #badFeed(s: Seq, next: unknown): string | null {
    const V = this.model.info.vocabSize;
    if (!Array.isArray(next) || next.length === 0 || !next.every((id) => Number.isInteger(id) && id >= 0 && id < V)) {
      return `takes a non-empty list of token ids (integers in [0, ${V})), got ${describeValue(next)}`;
    }
    if (!s.started && (next.length !== s.prompt.length || next.some((id, i) => id !== s.prompt[i]))) {
      return `feeds the prompt given to open() first (${s.prompt.length} tokens), got ${describeValue(next)}`;
    }
    if (next.length > s.room) return `feeds ${next.length} token(s), past the room open() made (${s.room} left)`;
    return null;
  }

  // the next tick, one turn of the event loop away: everything the last tick resolved has fed its next token by then
  #schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    void nextTurn().then(() => this.#tick());  // tick never throws: run() turns a failed forward into failed generations
  }

  // one tick at a time: the next is scheduled when this one is done (a GPU step awaits its logits)
  async #tick(): Promise<void> {
    this.counts.ticks++;
    const decoding = this.running.filter((s) => s.fed?.ids.length === 1);
    if (decoding.length > 0) await this.#run(decoding, () => this.#decode(decoding));
    for (const { rows, n } of this.#prefillGroups()) await this.#run(rows, () => this.#prefill(rows, n));
    this.scheduled = false;
    if (this.running.some((s) => s.fed)) this.#schedule();
  }

  // a forward that throws fails the generations it served (each is released), not the engine
  async #run(rows: Seq[], f: () => Promise<void>): Promise<void> {
    try {
      await f();
    } catch (e) {
      for (const s of rows) { const fed = s.fed; s.fed = null; this.#close(s); fed?.reject(e); }
    }
  }

  // the last position's logits of each row [B · V]: the forward on the engine's device, rows = the sequences `ids`
  async #forward(seqs: Seq[], ids: number[][], positions: number[][]): Promise<Float32Array> {
    this.cache.batch = seqs.map((s) => s.id);
    const cache = this.cache;
    if (cache instanceof GpuPagedKVCache) return webgpuBatchStep(this.model, cache, ids, positions.flat());
    return this.model.forward(ids, { cache, positionIds: positions, lastOnly: true }).logits.toFloat32();
  }

  async #decode(rows: Seq[]): Promise<void> {
    const feds = rows.map((s) => s.fed!);
    const positions = rows.map((s) => [this.cache.seqLength(s.id)]);
    const logits = await this.#forward(rows, feds.map((f) => [f.ids[0]]), positions);
    const V = this.model.info.vocabSize;
    this.counts.tokensDecoded += rows.length;
    this.counts.lastBatch = rows.length;
    this.o.onDecode?.(rows.length);
    rows.forEach((s, b) => this.#settle(s, feds[b], logits.subarray(b * V, (b + 1) * V))); // each row its own part, no copy
  }

  // this tick's prefill: the prompts being fed, oldest first, n tokens each while the budget lasts
  #prefillChunks(): { s: Seq; n: number }[] {
    let budget = this.prefillBudget();
    const chunks: { s: Seq; n: number }[] = [];
    for (const s of this.running.filter((s) => s.fed && s.fed.ids.length > 1)) {
      if (budget <= 0) break;
      const n = Math.min(budget, s.fed!.ids.length - s.fed!.done);
      budget -= n;
      chunks.push({ s, n });
    }
    return chunks;
  }

  // this tick's prefill chunks as forwards: one per length, a row per prompt (the WebGPU forward takes one row of T)
  #prefillGroups(): { rows: Seq[]; n: number }[] {
    const chunks = this.#prefillChunks();
    if (this.device === 'webgpu') return chunks.map(({ s, n }) => ({ rows: [s], n }));
    return [...new Set(chunks.map((c) => c.n))].map((n) => ({ rows: chunks.filter((c) => c.n === n).map((c) => c.s), n }));
  }

  // the next n tokens of each row's prompt, in one forward; a row's logits go to its caller after its last chunk
  async #prefill(rows: Seq[], n: number): Promise<void> {
    const live = rows.filter((s) => s.fed); // (one released while an earlier forward of this tick ran is gone)
    if (live.length === 0) return;
    const feds = live.map((s) => s.fed!);
    const ids = feds.map((f) => f.ids.slice(f.done, f.done + n));
    const positions = live.map((s) => ids[0].map((_, t) => this.cache.seqLength(s.id) + t));
    const t0 = performance.now();
    const logits = await this.#forward(live, ids, positions);
    this.#timed(n * live.length, performance.now() - t0);
    const V = this.model.info.vocabSize;
    this.counts.tokensPrefilled += n * live.length;
    live.forEach((s, b) => {
      const fed = feds[b];
      fed.done += n;
      if (fed.done < fed.ids.length || s.fed !== fed) return;
      this.#remember(s);
      this.#settle(s, fed, logits.subarray(b * V, (b + 1) * V));
    });
  }

  // a prefill forward's time per token joins the average (a longer context's chunks cost more: it follows them)
  #timed(tokens: number, ms: number): void {
    if (tokens < MIN_PREFILL) return;
    const perToken = ms / tokens;
    this.#msPerToken = this.#msPerToken === null ? perToken : 0.7 * this.#msPerToken + 0.3 * perToken;
  }

  // hands a sequence its logits, unless it was released while its step ran (a GPU step awaits its readback)
  #settle(s: Seq, fed: Fed, logits: Float32Array): void {
    if (s.fed !== fed) return;
    s.fed = null;
    fed.resolve(logits);
  }
}
