// Continuous batching (Yu et al. 2022, Orca; vLLM's scheduler) over a paged KV cache. Requests join the running batch
// between decode steps and leave as soon as they finish, so a long request never holds short ones back. Each step:
//   1. admit waiting requests while blocks remain (their prompts are prefilled, one forward each);
//   2. make room for one more token per running sequence — when blocks run out, preempt the most recently admitted
//      sequence (its blocks are freed; it re-enters the queue with its tokens so far and is recomputed later);
//   3. one decode forward for the whole running batch (each row reads its own block table; no padding);
//   4. retire sequences that hit eos or their token limit, returning their blocks to the free list.
import { OutOfBlocksError } from '../cache/block-allocator.js';
import { PagedKVCache } from '../cache/paged.js';
import { checkIds, checkInt, describeValue, QkvError } from '../errors.js';
import { checkModelKind, type CausalLM } from '../models/model.js';
import { Rng } from '../nn/random.js';
import { checkSampling, sampleNext, type SamplingOptions } from './sampling.js';

/** One request: prompt ids, a token budget, sampling options. */
export interface BatchRequest extends SamplingOptions { id: number; prompt: readonly number[]; maxTokens: number; seed?: number; stopTokens?: readonly number[] }

/** A finished request. */
export interface BatchResult { id: number; ids: number[]; finishReason: 'stop' | 'length'; preemptions: number; admittedStep: number; finishedStep: number }

interface Running { req: BatchRequest; ids: number[]; rng: Rng; admittedStep: number; preemptions: number }

export interface SchedulerOptions {
  blockSize?: number;
  /** Size of the block pool: the memory cap. */
  maxBlocks: number;
  /** Most sequences decoded together (default 64). */
  maxBatch?: number;
}

export class ContinuousBatcher {
  readonly cache: PagedKVCache;
  private readonly waiting: { req: BatchRequest; ids: number[]; rng: Rng; preemptions: number }[] = [];
  private running: Running[] = [];
  readonly finished: BatchResult[] = [];
  stepCount = 0;
  /** Per step: (allocated − used) / allocated bytes of the paged pool, for the waste figure. */
  readonly wasteSamples: number[] = [];
  peakBlocks = 0;

  constructor(readonly model: CausalLM, readonly o: SchedulerOptions) {
    checkModelKind(model, 'causal-lm', 'ContinuousBatcher');
    if (typeof o !== 'object' || o === null) {
      throw new QkvError(`ContinuousBatcher: options must be an object ({ maxBlocks, … }), got ${describeValue(o)}`);
    }
    this.cache = new PagedKVCache(model.info.numLayers, { blockSize: o.blockSize ?? 16, numBlocks: o.maxBlocks, maxBlocks: o.maxBlocks });
  }

  /** Queues a request; it joins the batch at a later step. */
  submit(req: BatchRequest): void {
    if (typeof req !== 'object' || req === null) {
      throw new QkvError(`ContinuousBatcher.submit: the request must be an object, got ${describeValue(req)}`);
    }
    checkSampling(req);
    checkInt(req.id, 'ContinuousBatcher.submit: id');
    checkIds(req.prompt, `ContinuousBatcher.submit: request ${req.id}'s prompt`, this.model.info.vocabSize);
    checkInt(req.maxTokens, `ContinuousBatcher.submit: request ${req.id}'s maxTokens`, 1);
    if (req.stopTokens !== undefined) checkIds(req.stopTokens, `ContinuousBatcher.submit: request ${req.id}'s stopTokens`);
    if (req.seed !== undefined) checkInt(req.seed, `ContinuousBatcher.submit: request ${req.id}'s seed`, Number.MIN_SAFE_INTEGER);
    if (req.prompt.length === 0) throw new QkvError(`scheduler: request ${req.id} has an empty prompt`);
    if (this.cache.blocksFor(req.prompt.length + req.maxTokens) > this.o.maxBlocks) {
      throw new QkvError(`scheduler: request ${req.id} needs ${this.cache.blocksFor(req.prompt.length + req.maxTokens)} blocks, the pool has ${this.o.maxBlocks}`);
    }
    this.waiting.push({ req, ids: [], rng: new Rng(req.seed ?? req.id), preemptions: 0 });
  }

  /** True while anything is waiting or running. */
  get busy(): boolean { return this.waiting.length > 0 || this.running.length > 0; }
  get runningCount(): number { return this.running.length; }

  /** One scheduler step: admit, make room (preempting if needed), decode, retire. */
  step(): void {
    this.stepCount++;
    this.#admit();
    this.#makeRoom();
    if (this.running.length > 0) this.#decode();
    const { allocatedBytes, usedBytes } = this.cache.usage();
    if (allocatedBytes > 0) this.wasteSamples.push((allocatedBytes - usedBytes) / allocatedBytes);
    this.peakBlocks = Math.max(this.peakBlocks, this.cache.allocator.usedBlocks);
  }

  /** Runs until every submitted request has finished. */
  runToCompletion(): BatchResult[] {
    while (this.busy) this.step();
    return this.finished;
  }

  #admit(): void {
    const maxBatch = this.o.maxBatch ?? 64;
    while (this.waiting.length > 0 && this.running.length < maxBatch) {
      const w = this.waiting[0];
      const tokens = [...w.req.prompt, ...w.ids]; // a preempted request recomputes what it had generated
      // admit only with room for the prompt plus one block of growth for everyone running
      if (this.cache.blocksFor(tokens.length + 1) + this.running.length > this.cache.allocator.freeBlocks) break;
      this.waiting.shift();
      this.cache.batch = [w.req.id];
      const logits = this.model.forward([tokens], { cache: this.cache, positionIds: [tokens.map((_, t) => t)], lastOnly: true }).logits.toFloat32();
      const r: Running = { req: w.req, ids: w.ids, rng: w.rng, admittedStep: this.stepCount, preemptions: w.preemptions };
      this.running.push(r);
      this.#accept(r, sampleNext(logits, tokens, r.req, r.rng));
    }
  }

  /** Every running sequence will write one token: free blocks by preempting the newest until that fits. */
  #makeRoom(): void {
    const needs = () => this.running.filter((r) => this.cache.seqLength(r.req.id) % this.cache.blockSize === 0).length;
    while (this.running.length > 0 && needs() > this.cache.allocator.freeBlocks) {
      const victim = this.running.pop()!;
      this.cache.free(victim.req.id);
      this.waiting.unshift({ req: victim.req, ids: victim.ids, rng: victim.rng, preemptions: victim.preemptions + 1 });
    }
  }

  #decode(): void {
    const rows = this.running;
    this.cache.batch = rows.map((r) => r.req.id);
    const last = rows.map((r) => [r.ids[r.ids.length - 1]]);
    const positions = rows.map((r) => [this.cache.seqLength(r.req.id)]);
    let logits: Float32Array;
    try {
      logits = this.model.forward(last, { cache: this.cache, positionIds: positions, lastOnly: true }).logits.toFloat32();
    } catch (e) {
      if (e instanceof OutOfBlocksError) throw new QkvError(`scheduler: the pool ran out of blocks mid-step (${e.message}); this is a bug in makeRoom`);
      throw e;
    }
    const V = this.model.info.vocabSize;
    rows.slice().forEach((r, b) => this.#accept(r, sampleNext(logits.subarray(b * V, (b + 1) * V), [...r.req.prompt, ...r.ids], r.req, r.rng)));
  }

  /** Appends a sampled token, or retires the sequence at eos / its token budget. */
  #accept(r: Running, id: number): void {
    const stop = new Set(r.req.stopTokens ?? this.model.info.eosTokenIds);
    const finish = (reason: 'stop' | 'length') => {
      this.running = this.running.filter((x) => x !== r);
      this.cache.free(r.req.id);
      this.finished.push({ id: r.req.id, ids: r.ids, finishReason: reason, preemptions: r.preemptions, admittedStep: r.admittedStep, finishedStep: this.stepCount });
    };
    if (stop.has(id)) return finish('stop');
    r.ids.push(id);
    if (r.ids.length >= r.req.maxTokens) finish('length');
  }
}
