// The server on the batch engine: 64 concurrent streaming clients all finish with [DONE] and get the text they get
// alone, decode steps batch them (seen in /metrics), a client that leaves mid-stream frees its KV blocks at once
// (seen in /metrics), a full waiting line is 503 with Retry-After, the API key guards the API, every request logs one
// JSON line, /health and /ready answer, and shutdown turns /ready to 503 and refuses new generations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { ContiguousKVCache } from '../../../src/cache/contiguous.js';
import type { CausalLM } from '../../../src/models/model.js';
import { loadCheckpoint } from '../../../src/node/checkpoint.js';
import { createQkvServer, kvBlocksFor, listen, ModelQueue } from '../../../src/node/server/server.js';
import { TINY } from '../../models/helpers.js';

const ckpt = loadCheckpoint(TINY);
const post = (base: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
const metric = (text: string, name: string) => Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);

async function streamText(base: string, prompt: string, maxTokens: number): Promise<{ text: string; done: boolean }> {
  const r = await post(base, 'v1/completions', { prompt, max_tokens: maxTokens, temperature: 0, stream: true });
  assert.equal(r.status, 200, await r.clone().text());
  const events = (await r.text()).split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
  const done = events.pop() === '[DONE]';
  return { text: events.map((e) => (JSON.parse(e) as { choices: { text: string }[] }).choices[0].text).join(''), done };
}

test('64 concurrent streaming clients: every stream complete and equal to its own answer, decode steps batched', async () => {
  const lines: string[] = [];
  const server = createQkvServer(ckpt, { maxBatch: 16, limits: { maxQueue: 64 }, log: (l) => lines.push(l) });
  const base = await listen(server, { port: 0 });
  try {
    const prompts = Array.from({ length: 64 }, (_, i) => ['A fool and his money', 'The Zen of Python', 'def', 'Once upon a time'][i % 4] + ' '.repeat(i % 3));
    const alone = new Map<string, string>();
    for (const p of new Set(prompts)) alone.set(p, (await streamText(base, p, 16)).text);
    const all = await Promise.all(prompts.map((p) => streamText(base, p, 16)));
    all.forEach((s, i) => {
      assert.ok(s.done, `stream ${i} ended with [DONE]`);
      assert.equal(s.text, alone.get(prompts[i]), `stream ${i}: the text it gets alone`);
    });
    const m = await (await fetch(`${base}metrics`)).text();
    assert.ok(metric(m, 'qkv_requests_total{endpoint="/v1/completions",status="200"}') >= 64 + 12);
    assert.ok(metric(m, 'qkv_generation_tokens_total') > 64);
    const batched = metric(m, 'qkv_batch_size_count') - metric(m, 'qkv_batch_size_bucket{le="1"}');
    assert.ok(batched > 0, 'some decode steps ran several sequences');
    assert.ok(metric(m, 'qkv_time_to_first_token_seconds_count') >= 64);
    assert.equal(metric(m, 'qkv_running'), 0);
    const line = JSON.parse(lines.find((l) => l.includes('/v1/completions'))!) as Record<string, unknown>;
    assert.equal(line.status, 200);
    assert.ok(typeof line.ms === 'number' && typeof line.ttft_ms === 'number' && (line.completion_tokens as number) > 0, JSON.stringify(line));
  } finally {
    await server.shutdown(0);
  }
});

test('a client that leaves mid-stream frees its KV blocks at once (seen in /metrics)', async () => {
  const server = createQkvServer(ckpt, {});
  const base = await listen(server, { port: 0 });
  const used = async () => metric(await (await fetch(`${base}metrics`)).text(), 'qkv_kv_blocks{state="used"}');
  try {
    // a prompt shorter than a block: no prefix is cached, so every used block belongs to the stream
    const body = JSON.stringify({ prompt: 'Once', max_tokens: 512, temperature: 0, stream: true });
    await new Promise<void>((resolve, reject) => {
      const req = request(`${base}v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        res.once('data', () => {
          try {
            assert.ok(server.engine.stats().blocksUsed > 0, 'blocks in use while streaming');
          } catch (e) {
            reject(e);
          }
          req.destroy(); // the client goes away
          resolve();
        });
      });
      req.on('error', () => {});
      req.end(body);
    });
    for (let i = 0; i < 50 && (await used()) > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await used(), 0, 'no block held after the disconnect');
    assert.ok(metric(await (await fetch(`${base}metrics`)).text(), 'qkv_aborted_total') >= 1);
  } finally {
    await server.shutdown(0);
  }
});

test('a full waiting line is 503 with Retry-After; the API key guards /v1 and /api; /health, /ready; shutdown', async () => {
  const server = createQkvServer(ckpt, { maxBatch: 1, limits: { maxQueue: 1 }, apiKey: 'sk-test-key-1' });
  const base = await listen(server, { port: 0 });
  const auth = { authorization: 'Bearer sk-test-key-1' };
  try {
    assert.equal((await post(base, 'v1/completions', { prompt: 'def', max_tokens: 2 })).status, 401);
    const wrong = await post(base, 'v1/completions', { prompt: 'def', max_tokens: 2 }, { authorization: 'Bearer sk-wrong-key-9' });
    assert.equal(((await wrong.json()) as { error: { code: string } }).error.code, 'invalid_api_key');
    assert.equal((await fetch(`${base}v1/models`, { headers: auth })).status, 200);
    assert.deepEqual(await (await fetch(`${base}health`)).json(), { status: 'ok' });
    assert.equal((await fetch(`${base}ready`)).status, 200);
    // one running, one waiting: the third is refused with a hint when to come back
    const long = { prompt: 'Once upon a time', max_tokens: 512, temperature: 0, stream: true }; // greedy runs the whole 512
    const until = async (ok: () => boolean) => { while (!ok()) await new Promise((r) => setTimeout(r, 5)); };
    const running = post(base, 'v1/completions', long, auth);
    await until(() => server.engine.stats().running === 1);
    const waiting = post(base, 'v1/completions', long, auth);
    await until(() => server.engine.stats().waiting === 1);
    const refused = await post(base, 'v1/completions', long, auth);
    assert.equal(refused.status, 503);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1, 'Retry-After');
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'server_busy');
    const closing = server.shutdown(5000);
    assert.equal((await fetch(`${base}ready`).catch(() => null))?.status ?? 503, 503);
    await closing;
    for (const r of [await running, await waiting]) await r.text().catch(() => '');
  } finally {
    await server.shutdown(0);
  }
});

test('kvDtype int8: the same --kv-memory holds ~3.6× the blocks (qkv-tiny: 36 bytes a head row against 128), and serves', async () => {
  const MiB = 2 ** 20;
  const model = ckpt.model as Parameters<typeof kvBlocksFor>[0];
  // a block: 16 tokens × 4 layers × 2 kv heads × (k, v) × a row of head_dim 32 — 128 bytes in f32, 32 + a 4-byte scale in int8
  assert.equal(kvBlocksFor(model, 4 * MiB), 128);
  assert.equal(kvBlocksFor(model, 4 * MiB, 16, 'int8'), 455);
  const server = createQkvServer(ckpt, { kvMemoryBytes: 4 * MiB, kvDtype: 'int8' });
  const base = await listen(server, { port: 0 });
  try {
    assert.equal(server.engine.o.kvBlocks, 455);
    const r = await fetch(`${base}v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 8, temperature: 0 }) });
    assert.equal(r.status, 200);
    const text = ((await r.json()) as { choices: { text: string }[] }).choices[0].text;
    assert.ok(text.length > 0, 'a completion over the int8 pool');
  } finally {
    await server.shutdown(0);
  }
});

test('kvDtype float16: the same --kv-memory holds 2× the blocks, and serves the text of the f32 pool (greedy)', async () => {
  const MiB = 2 ** 20;
  const model = ckpt.model as Parameters<typeof kvBlocksFor>[0];
  assert.equal(kvBlocksFor(model, 4 * MiB, 16, 'float16'), 256);
  const texts: string[] = [];
  for (const kvDtype of ['float16', 'float32'] as const) {
    const server = createQkvServer(ckpt, { kvMemoryBytes: 4 * MiB, kvDtype });
    const base = await listen(server, { port: 0 });
    try {
      assert.equal(server.engine.o.kvBlocks, kvDtype === 'float16' ? 256 : 128);
      const r = await fetch(`${base}v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 16, temperature: 0 }) });
      assert.equal(r.status, 200);
      texts.push(((await r.json()) as { choices: { text: string }[] }).choices[0].text);
    } finally {
      await server.shutdown(0);
    }
  }
  assert.ok(texts[0].length > 0);
  assert.equal(texts[0], texts[1]);
});

test('model work outside the batch takes turns: one job at a time in arrival order, a full waiting line 503 with Retry-After', async () => {
  const queue = new ModelQueue(1);
  const order: string[] = [];
  let finish!: () => void;
  const first = queue.run(async () => { order.push('first starts'); await new Promise<void>((r) => { finish = r; }); order.push('first ends'); });
  assert.deepEqual([queue.running, queue.waiting], [0, 1], 'the first waits for its turn a microtask');
  await new Promise((r) => setImmediate(r));
  const second = queue.run(async () => { order.push('second starts'); });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual([queue.running, queue.waiting], [1, 1], 'one running, one waiting');
  await assert.rejects(queue.run(async () => {}), (e: Error & { status?: number; code?: string; retryAfter?: number }) =>
    e.status === 503 && e.code === 'server_busy' && e.retryAfter === 1 && /1 requests are already waiting/.test(e.message));
  finish();
  await Promise.all([first, second]);
  assert.deepEqual(order, ['first starts', 'first ends', 'second starts']);
  assert.deepEqual([queue.running, queue.waiting], [0, 0]);
  await assert.rejects(queue.run(async () => { throw new Error('job failed'); }), /job failed/);
  await queue.run(async () => { order.push('after a failure'); }); // a failed job passes its turn on
  assert.equal(order.at(-1), 'after a failure');
});

test('echoed prompts are scored in that queue: two at once both answered as if alone, the metrics count them', async () => {
  const server = createQkvServer(ckpt);
  const base = await listen(server, { port: 0 });
  try {
    const ids = Array.from({ length: 600 }, (_, i) => (i * 31 + 7) % 4096);
    const score = () => post(base, 'v1/completions', { prompt: ids, max_tokens: 0, echo: true, logprobs: 1 });
    const answers = await Promise.all([score(), score()]);
    assert.deepEqual(answers.map((r) => r.status), [200, 200]);
    const scored = await Promise.all(answers.map(async (r) =>
      ((await r.json()) as { choices: { logprobs: { token_logprobs: (number | null)[] } }[] }).choices[0].logprobs.token_logprobs));
    assert.equal(scored[0].length, 600);
    assert.deepEqual(scored[0], scored[1], 'the second, which waited its turn, scored as the first');
    const m = await (await fetch(`${base}metrics`)).text();
    assert.equal(metric(m, 'qkv_prompt_tokens_scored_total'), 1200);
    assert.equal(metric(m, 'qkv_outside_batch_running') + metric(m, 'qkv_outside_batch_waiting'), 0);
  } finally {
    await server.shutdown(0);
  }
});

test('an echoed prompt scored while a stream decodes goes in pieces of the engine\'s prefill budget, scored as whole', async () => {
  const pieces: number[] = []; // the scoring's forwards (through a contiguous cache of its own; the batch's is paged)
  const model = Object.create(ckpt.model) as CausalLM;
  model.forward = (ids, o) => {
    if (o?.cache instanceof ContiguousKVCache) pieces.push(ids[0].length);
    return (ckpt.model as CausalLM).forward(ids, o);
  };
  const server = createQkvServer({ ...ckpt, model }, { maxStallMs: 1e-9 }); // nothing fits: 16 tokens a piece
  const base = await listen(server, { port: 0 });
  try {
    const ids = Array.from({ length: 100 }, (_, i) => (i * 31 + 7) % 4096);
    const score = async () => (await (await post(base, 'v1/completions', { prompt: ids, max_tokens: 0, echo: true, logprobs: 1 })).json()) as
      { choices: { logprobs: { token_logprobs: (number | null)[] } }[] };
    const alone = (await score()).choices[0].logprobs.token_logprobs;
    assert.deepEqual(pieces, [99], 'nobody decodes: one piece');
    // a stream that keeps decoding (end of text forbidden, 512 tokens, the most a request may ask), its first token read: then the same prompt scored
    const stream = await post(base, 'v1/completions', { prompt: 'Once', max_tokens: 512, temperature: 0, stream: true, logit_bias: { 0: -100 } });
    assert.equal(stream.status, 200);
    const reader = stream.body!.getReader();
    await reader.read();
    pieces.length = 0;
    const beside = (await score()).choices[0].logprobs.token_logprobs;
    const m = await (await fetch(`${base}metrics`)).text(); // the stream still decoding
    await reader.cancel();
    assert.equal(pieces[0], 16, `pieces ${pieces.join(', ')}`);
    assert.equal(metric(m, 'qkv_prefill_budget_tokens'), 16, 'what a step would prefill now');
    assert.match(m, /^qkv_prefill_seconds_per_token (NaN|\d)/m);
    assert.equal(pieces.reduce((a, b) => a + b), 99);
    beside.forEach((lp, t) => assert.ok(lp === alone[t] || Math.abs(lp! - alone[t]!) <= 1e-5, `token ${t}: ${lp} against ${alone[t]}`));
  } finally {
    await server.shutdown(0);
  }
});
