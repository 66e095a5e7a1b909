// The batch engine under the server: concurrent generations through it give exactly the tokens each gets alone (greedy
// and seeded sampling), prompts sharing a prefix reuse its cached blocks, a small pool makes generations wait instead
// of failing, a full waiting line is refused, and releasing a generation frees its blocks at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchEngine, EngineBusyError } from '../../../src/generate/engine.js';
import { generate } from '../../../src/generate/generate.js';
import type { CausalLM } from '../../../src/models/model.js';
import { loadCheckpoint } from '../../../src/node/checkpoint.js';
import { TINY } from '../../models/helpers.js';
import { assertClose } from '../../helpers.js';

const model = loadCheckpoint(TINY, { tokenizer: false }).model as CausalLM;
const SYSTEM = Array.from({ length: 40 }, (_, t) => 100 + ((t * 37) % 3000)); // a shared "system prompt"
const prompts = Array.from({ length: 9 }, (_, i) => [...(i % 3 === 0 ? SYSTEM : []), ...Array.from({ length: 3 + ((i * 5) % 11) }, (_, t) => 10 + ((i * 131 + t * 17) % 4000))]);
const opts = (i: number) => ({ maxTokens: 5 + ((i * 7) % 9), stopTokens: [] as number[], ...(i % 2 ? { temperature: 0.9, seed: i } : { greedy: true }) });

async function alone(i: number): Promise<number[]> {
  return (await generate(model, null, prompts[i], opts(i))).ids;
}

// the first generation alone (its prompt's blocks are then cached), the others all at once
async function together(engine: BatchEngine): Promise<number[][]> {
  const one = async (p: number[], i: number) => {
    const sequence = await engine.open(p, opts(i).maxTokens);
    return (await generate(model, null, p, { ...opts(i), sequence })).ids;
  };
  const first = await one(prompts[0], 0);
  return [first, ...await Promise.all(prompts.slice(1).map((p, i) => one(p, i + 1)))];
}

test('concurrent generations through the engine: each gets exactly the tokens it gets alone, in decode batches', async () => {
  const want = await Promise.all(prompts.map((_, i) => alone(i)));
  const engine = new BatchEngine(model, { kvBlocks: 256, blockSize: 8, maxBatch: 16 });
  assert.deepEqual(await together(engine), want);
  const s = engine.stats();
  assert.equal(s.running, 0);
  assert.ok(s.ticks < want.flat().length, `batched: ${s.ticks} ticks for ${want.flat().length} tokens`);
  // prompts 3 and 6 begin with prompt 0's 40 tokens: 5 blocks of 8 are reused (the last one is computed again)
  assert.equal(s.prefixHits, 2, `the shared prefix was reused (${s.prefixHits} hits)`);
  assert.equal(s.prefixTokensReused, 80);
  // only cached prefixes hold blocks now; with prefix caching off nothing does
  const plain = new BatchEngine(model, { kvBlocks: 256, blockSize: 8, maxPrefixes: 0 });
  assert.deepEqual(await together(plain), want);
  assert.equal(plain.stats().blocksUsed, 0);
  assert.equal(plain.stats().prefixHits, 0);
});

test('a pool too small for everyone: generations wait their turn, nothing fails; batch size 1 is one at a time', async () => {
  const want = await Promise.all(prompts.map((_, i) => alone(i)));
  const small = new BatchEngine(model, { kvBlocks: 12, blockSize: 8 });
  assert.deepEqual(await together(small), want);
  const serial = new BatchEngine(model, { kvBlocks: 256, blockSize: 8, maxBatch: 1 });
  assert.deepEqual(await together(serial), want);
  assert.equal(serial.stats().lastBatch, 1);
});

test('admission: a prompt the pool can never hold is an error; a full waiting line is EngineBusyError; release frees blocks', async () => {
  const engine = new BatchEngine(model, { kvBlocks: 4, blockSize: 8, maxBatch: 1, maxWaiting: 1, maxPrefixes: 0 });
  assert.throws(() => engine.open(prompts[1], 100), /need 14 KV blocks of 8 tokens; the cache holds 4/);
  const first = await engine.open(prompts[1], 8);
  const second = engine.open(prompts[2], 8); // waits: the batch is full
  assert.throws(() => engine.open(prompts[4], 8), EngineBusyError);
  await first.step(prompts[1]);
  assert.ok(engine.stats().blocksUsed > 0);
  first.release();
  assert.equal(engine.stats().blocksUsed, 0, 'released at once');
  const s2 = await second; // admitted now
  s2.release();
  const aborted = new AbortController();
  const held = await engine.open(prompts[1], 8);
  const third = engine.open(prompts[2], 8, aborted.signal);
  aborted.abort();
  await assert.rejects(third, /withdrawn/);
  held.release();
  assert.equal(engine.stats().waiting, 0);
});

test('prefill: short prompts arriving together start in one tick; a long one is cut into prefillChunk-token chunks', async () => {
  const forwards: number[][] = []; // the rows' lengths of each forward
  const spy = Object.create(model) as CausalLM;
  spy.forward = (ids, o) => { forwards.push(ids.map((r) => r.length)); return model.forward(ids, o); };
  const engine = new BatchEngine(spy, { kvBlocks: 256, blockSize: 8, maxBatch: 16, prefillChunk: 64, maxPrefixes: 0 });
  const short = prompts.map((p) => p.slice(-9)); // 9 prompts of ≤ 9 tokens: 81 tokens at most
  const seqs = await Promise.all(short.map((p) => engine.open(p, 4)));
  const first = seqs.slice(0, 7); // 7 · 9 = 63 tokens ≤ 64: all in the first tick
  const logits = await Promise.all(first.map((s, i) => s.step(short[i])));
  assert.equal(engine.stats().ticks, 1, `${first.length} prompts in ${engine.stats().ticks} ticks`);
  assert.equal(engine.stats().tokensPrefilled, short.slice(0, 7).reduce((n, p) => n + p.length, 0));
  // the logits of each prompt alone in an engine — to rounding: prompts of one length share a forward, whose paged
  // attention cuts their keys into fewer splits than one prompt's (split-K merges in another order)
  for (const [i, p] of short.slice(0, 7).entries()) {
    const alone = new BatchEngine(model, { kvBlocks: 8, blockSize: 8 });
    assertClose(logits[i], await (await alone.open(p, 4)).step(p), 1e-5, 1e-5, `prompt ${i}`);
    alone.release();
  }
  // one forward per prompt length, a row per prompt
  const lengths = short.slice(0, 7).map((p) => p.length);
  assert.deepEqual(forwards.map((f) => f[0]).sort(), [...new Set(lengths)].sort());
  for (const f of forwards) assert.equal(f.length, lengths.filter((n) => n === f[0]).length, `rows of length ${f[0]}`);
  seqs.forEach((s) => s.release());
  const long = Array.from({ length: 150 }, (_, t) => 10 + ((t * 71) % 4000));
  const s = await engine.open(long, 4);
  const before = engine.stats().ticks;
  await s.step(long);
  assert.equal(engine.stats().ticks - before, 3, '150 tokens in chunks of 64, 64, 22');
  s.release();
});

test('while a generation decodes, a long prompt is prefilled in pieces that fit maxStallMs (≥ 16 tokens); alone, whole chunks', async () => {
  const forwards: number[] = []; // each prefill forward's length
  let msPerToken = 0; // a slower model: each prefill forward takes at least this long a token
  const spy = Object.create(model) as CausalLM;
  spy.forward = (ids, o) => {
    if (ids[0].length > 1) forwards.push(ids[0].length);
    for (const end = performance.now() + msPerToken * ids[0].length; performance.now() < end;) { /* busy */ }
    return model.forward(ids, o);
  };
  const long = Array.from({ length: 150 }, (_, t) => 10 + ((t * 71) % 4000));
  const argmax = (l: Float32Array) => l.reduce((best, x, i) => (x > l[best] ? i : best), 0);
  // a generation decoding while `long` is prefilled: the prompt's pieces, and its logits
  async function beside(maxStallMs: number): Promise<{ pieces: number[]; logits: Float32Array }> {
    const engine = new BatchEngine(spy, { kvBlocks: 64, blockSize: 8, prefillChunk: 64, maxPrefixes: 0, maxStallMs });
    assert.equal(engine.prefillBudget(), 64, 'nobody decodes: a whole chunk');
    const a = await engine.open(prompts[1], 40);
    let next = argmax(await a.step(prompts[1]));
    forwards.length = 0;
    const b = await engine.open(long, 4);
    let done = false;
    const logits = b.step(long).finally(() => { done = true; });
    while (!done) next = argmax(await a.step([next]));
    const pieces = [...forwards];
    a.release();
    b.release();
    assert.equal(engine.prefillBudget(), 64, 'nobody decodes any more');
    return { pieces, logits: await logits };
  }
  // a budget no piece fits: the fewest, 16 tokens a tick, so the decoding generation gets a token every 16
  const short = await beside(1e-9);
  assert.deepEqual(short.pieces, [16, 16, 16, 16, 16, 16, 16, 16, 16, 6]);
  const whole = await beside(Infinity);
  assert.deepEqual(whole.pieces, [64, 64, 22]);
  assertClose(short.logits, whole.logits, 1e-5, 1e-5, 'the same logits, to rounding, in any pieces');
  // ≥ 1 ms a token and 40 ms: 16 tokens first (nothing timed yet), then at most 40 — however slow the machine, not below 16
  msPerToken = 1;
  const timed = await beside(40);
  assert.equal(timed.pieces[0], 16);
  assert.ok(timed.pieces.slice(0, -1).every((n) => n >= 16 && n <= 40) && timed.pieces.at(-1)! <= 40, `pieces ${timed.pieces.join(', ')}`);
  assert.equal(timed.pieces.reduce((a, b) => a + b), 150);
  for (const maxStallMs of [0, -1, NaN, '5']) {
    assert.throws(() => new BatchEngine(model, { kvBlocks: 8, maxStallMs: maxStallMs as number }), /BatchEngine: maxStallMs must be a number > 0/);
  }
  assert.throws(() => new BatchEngine(model, { kvBlocks: 8, prefillChunk: 0 }), /BatchEngine: prefillChunk must be an integer ≥ 1, got 0/);
});

test('kvDtype int8: the pool holds int8 keys and values, and each generation gets the tokens it gets alone over an int8 cache', async () => {
  const { Int8KVCache } = await import('../../../src/cache/index.js');
  const int8 = (i: number) => generate(model, null, prompts[i], { ...opts(i), cache: new Int8KVCache(model.info.numLayers, { blockSize: 8 }) });
  const want = (await Promise.all(prompts.map((_, i) => int8(i)))).map((r) => r.ids);
  const engine = new BatchEngine(model, { kvBlocks: 256, blockSize: 8, maxBatch: 16, kvDtype: 'int8' });
  assert.equal((engine.cache as { dtype?: string }).dtype, 'int8');
  assert.deepEqual(await together(engine), want);
  assert.throws(() => new BatchEngine(model, { kvBlocks: 4, kvDtype: 'int4' as never }),
    /kvDtype must be 'float32' or \(on the CPU\) 'float16' or 'int8', got "int4"/);
});

test('kvDtype float16: an f16 pool, and each generation gets the tokens it gets alone over an f16 cache', async () => {
  const f16 = (i: number) => generate(model, null, prompts[i], { ...opts(i), kvDtype: 'float16' });
  const want = (await Promise.all(prompts.map((_, i) => f16(i)))).map((r) => r.ids);
  const engine = new BatchEngine(model, { kvBlocks: 256, blockSize: 8, maxBatch: 16, kvDtype: 'float16' });
  assert.equal((engine.cache as { dtype?: string }).dtype, 'float16');
  assert.deepEqual(await together(engine), want);
});

test('a step of ids that are not tokens, not the prompt first, or past maxTokens is refused alone: the batch goes on', async () => {
  const engine = new BatchEngine(model, { kvBlocks: 32, blockSize: 8, maxBatch: 4 });
  const refused = async (next: unknown, re: RegExp, prompt = [1, 2]) => {
    const s = await engine.open(prompt, 2);
    try {
      if (!re.source.includes('prompt')) await s.step(prompt);
      await assert.rejects(s.step(next as number[]), (e: Error) => e.name === 'QkvError' && re.test(e.message), String(re));
    } finally {
      s.release();
    }
  };
  const notTokens = /^BatchEngine: step takes a non-empty list of token ids \(integers in \[0, 4096\)\), got /;
  for (const next of [[4096], [-1], [1.5], 'x', null, [], [[1]]]) await refused(next, notTokens);
  await refused([5], /^BatchEngine: step feeds the prompt given to open\(\) first \(2 tokens\), got \[5\]/);
  const s = await engine.open([1, 2], 1); // room for the prompt and one token
  await s.step([1, 2]);
  await s.step([3]);
  await assert.rejects(s.step([4]), /BatchEngine: step feeds 1 token\(s\), past the room open\(\) made \(0 left\)/);
  s.release();
  // a bad step refused while another sequence's step is in the same tick: that one is answered
  const [a, b] = [await engine.open([1, 2, 3], 4), await engine.open([4, 5], 4)];
  const [ra, rb] = await Promise.allSettled([a.step([1, 2, 3]), b.step([4, 99999])]);
  assert.equal(ra.status === 'fulfilled' && ra.value.length, 4096);
  assert.ok(rb.status === 'rejected' && /got \[4, 99999\]/.test((rb.reason as Error).message));
  a.release(); b.release();
  assert.equal(engine.stats().running, 0);
  engine.release();
});
