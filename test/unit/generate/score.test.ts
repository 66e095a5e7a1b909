// scoreTokens: log p(x_t | x_<t) for every token, in chunks through a KV cache, against a log-softmax of one forward
// pass's logits over the whole text; the event loop turns between chunks; a signal stops it; bad arguments are named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scoreTokens } from '../../../src/generate/score.js';
import { logprobsOf } from '../../../src/generate/sampling.js';
import { NumericsError } from '../../../src/errors.js';
import { Tensor } from '../../../src/tensor/tensor.js';
import type { CausalLM } from '../../../src/models/model.js';
import { loadCheckpoint } from '../../../src/node/checkpoint.js';
import { TINY } from '../../models/helpers.js';
import { assertClose } from '../../helpers.js';

const ck = loadCheckpoint(TINY);
const model = ck.model as CausalLM;
const ids = ck.tokenizer!.encode('A fool and his money are soon parted. Beautiful is better than ugly. Explicit is better than implicit.');

test('every token scored against one forward pass over the whole text, in chunks of any size; the first has no score', async () => {
  const logits = model.forward([ids]).logits.toFloat32(), V = model.info.vocabSize;
  const want = ids.slice(1).map((id, t) => logprobsOf(logits.subarray(t * V, (t + 1) * V), id, 3));
  assert.ok(ids.length > 20, `${ids.length} tokens`);
  for (const chunk of [1, 7, 16, 256]) {
    const got = await scoreTokens(model, ids, { top: 3, chunk });
    assert.equal(got.length, ids.length);
    assert.deepEqual(got[0], { id: ids[0], logprob: null, top: null });
    assert.deepEqual(got.map((s) => s.id), ids);
    assertClose(got.slice(1).map((s) => s.logprob!), want.map((w) => w.logprob), 1e-5, 1e-5, `chunk ${chunk}: log-probabilities`);
    got.slice(1).forEach((s, t) => {
      assert.deepEqual(s.top!.map((x) => x.id), want[t].top.map((x) => x.id), `chunk ${chunk}, token ${t + 1}: the three most likely`);
      assert.ok(s.top![0].logprob >= s.logprob!, 'the most likely is at least as likely as the token');
    });
  }
  // a function sizes each chunk as it comes (a server's batch engine: short while streams decode)
  const sizes = [3, 1, 9, 2];
  let asked = 0;
  const done: number[] = [];
  const varied = await scoreTokens(model, ids, { top: 3, chunk: () => sizes[asked++ % 4], onProgress: (d) => done.push(d) });
  const steps = done.map((d, k) => d - (k > 0 ? done[k - 1] : 1)); // tokens each forward scored
  assert.equal(asked, steps.length, 'asked once before each forward');
  assert.deepEqual(steps.slice(0, -1), steps.slice(0, -1).map((_, k) => sizes[k % 4]));
  assert.ok(steps.at(-1)! <= sizes[(steps.length - 1) % 4], 'the last chunk: what is left');
  assertClose(varied.slice(1).map((s) => s.logprob!), want.map((w) => w.logprob), 1e-5, 1e-5, 'chunks 3, 1, 9, 2, …');
  assert.deepEqual((await scoreTokens(model, ids.slice(0, 1))), [{ id: ids[0], logprob: null, top: null }], 'one token: nothing to score');
  assert.deepEqual((await scoreTokens(model, ids.slice(0, 3)))[2].top, [], 'top 0: no list');
});

test('progress after each chunk: the tokens scored so far, the first included, up to the whole text', async () => {
  const seen: [number, number][] = [];
  await scoreTokens(model, ids.slice(0, 21), { chunk: 8, onProgress: (done, total) => seen.push([done, total]) });
  assert.deepEqual(seen, [[9, 21], [17, 21], [21, 21]]);
  await assert.rejects(scoreTokens(model, ids, { onProgress: 5 as never }), /scoreTokens: onProgress must be a function, got 5/);
});

test('the event loop turns between chunks, and an aborted signal stops the scoring', async () => {
  let turns = 0;
  const tick = setInterval(() => turns++, 0);
  await scoreTokens(model, ids, { chunk: 4 });
  clearInterval(tick);
  assert.ok(turns > 0, 'a timer ran while the text was scored');
  const abort = new AbortController();
  setImmediate(() => abort.abort(new Error('client gone')));
  await assert.rejects(scoreTokens(model, ids, { chunk: 4, signal: abort.signal }), /client gone/);
});

test('bad arguments are refused by name', async () => {
  const V = model.info.vocabSize;
  await assert.rejects(scoreTokens(model, []), /scoreTokens: ids must be a non-empty array of token ids/);
  await assert.rejects(scoreTokens(model, [1, V]), new RegExp(`scoreTokens: ids\\[1\\] must be an integer in \\[0, ${V - 1}\\], got ${V}`));
  await assert.rejects(scoreTokens(model, [1, 2.5]), /scoreTokens: ids\[1\] must be an integer/);
  await assert.rejects(scoreTokens(model, ids, { top: 21 }), /scoreTokens: top must be an integer in \[0, 20\], got 21/);
  await assert.rejects(scoreTokens(model, ids, { chunk: 0 }), /scoreTokens: chunk must be an integer ≥ 1, got 0/);
  await assert.rejects(scoreTokens(model, ids, { chunk: () => 2.5 }), /scoreTokens: chunk must be an integer ≥ 1, got 2.5/);
  const long = new Array(model.info.maxPositions + 1).fill(1);
  await assert.rejects(scoreTokens(model, long), /scoreTokens: 1025 tokens exceed the model's context of 1024/);
  await assert.rejects(scoreTokens(model, ids, null as never), /scoreTokens: options must be an object, got null/);
  await assert.rejects(scoreTokens(model, ids, { signal: {} as never }), /scoreTokens: signal must be an AbortSignal, got an object/);
  await assert.rejects(scoreTokens({ kind: 'encoder' } as never, ids), /scoreTokens/);
});

test('NaN logits are a NumericsError naming the position, not a null log-probability', async () => {
  const V = model.info.vocabSize;
  const nan = { kind: 'causal-lm', info: model.info, forward: (rows: number[][]) => {
    const logits = new Float32Array(rows[0].length * V).fill(0.5);
    logits[V + 7] = NaN; // the second position's logits
    return { logits: Tensor.from(logits, [1, rows[0].length, V]) };
  } } as unknown as CausalLM;
  await assert.rejects(scoreTokens(nan, ids.slice(0, 5)), (e: Error) => e instanceof NumericsError && /NaN logits after token 1:/.test(e.message));
});
