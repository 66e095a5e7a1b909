// The HTTP API: happy paths, streaming, every validation error, queuing, disconnects, static files.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCheckpoint } from '../../../src/node/checkpoint.js';
import { createQkvServer, listen } from '../../../src/node/server/server.js';
import { TINY } from '../../models/helpers.js';
import { ROOT_DIR } from '../../helpers.js';

const server = createQkvServer(loadCheckpoint(TINY), { limits: { maxBodyBytes: 4096 } });
let base = '';
before(async () => { base = await listen(server, { port: 0 }); });
after(() => server.close());

const samples = JSON.parse(readFileSync(join(TINY, 'samples.json'), 'utf8')) as { prompt: string; greedy: string }[];
const post = (path: string, body: unknown, raw = false) => fetch(base + path.slice(1), { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw ? (body as string) : JSON.stringify(body) });

describe('API happy paths', () => {
  test('GET /v1/models lists the loaded model', async () => {
    const r = await fetch(`${base}v1/models`);
    assert.deepEqual(await r.json(), { object: 'list', data: [{ id: 'qkv-tiny', object: 'model', created: 0, owned_by: 'qkv' }] });
  });

  test('POST /v1/completions: greedy text, finish reason and usage', async () => {
    const s = samples.find((x) => x.prompt === 'A fool and his money')!;
    const r = await post('/v1/completions', { prompt: s.prompt, max_tokens: 24, temperature: 0 });
    assert.equal(r.status, 200);
    const j = await r.json() as { object: string; choices: { text: string; finish_reason: string }[]; usage: Record<string, number> };
    assert.equal(j.object, 'text_completion');
    assert.equal(s.prompt + j.choices[0].text, s.greedy);
    assert.equal(j.choices[0].finish_reason, 'stop'); // the model ended with <|endoftext|>
    assert.deepEqual(j.usage, { prompt_tokens: 6, completion_tokens: 12, total_tokens: 18 });
  });

  test('stream: server-sent events add up to the same text and end with [DONE]', async () => {
    const r = await post('/v1/completions', { prompt: 'A fool and his money', max_tokens: 24, temperature: 0, stream: true });
    assert.equal(r.headers.get('content-type'), 'text/event-stream');
    const events = (await r.text()).split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
    assert.equal(events.pop(), '[DONE]');
    const chunks = events.map((e) => JSON.parse(e) as { choices: { text: string; finish_reason: string | null }[] });
    assert.ok(chunks.length > 5);
    assert.equal(chunks.map((c) => c.choices[0].text).join(''), '.\n\t\t-- Ambrose Bierce\n');
    assert.equal(chunks[chunks.length - 1].choices[0].finish_reason, 'stop');
  });

  test('a streamed stop string never shows its start (the non-streamed text ends the same way)', async () => {
    const r = await post('/v1/completions', { prompt: 'A fool and his money', max_tokens: 24, temperature: 0, stream: true, stop: ['Bierce'] });
    const events = (await r.text()).split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
    assert.equal(events.pop(), '[DONE]');
    const text = events.map((e) => (JSON.parse(e) as { choices: { text: string }[] }).choices[0].text).join('');
    assert.equal(text, '.\n\t\t-- Ambrose ');
  });

  test('without a seed, sampled completions differ from request to request; penalties are applied', async () => {
    const texts = await Promise.all([0, 1, 2].map(async () => ((await (await post('/v1/completions', { prompt: 'The Zen', max_tokens: 16, temperature: 1 })).json()) as { choices: { text: string }[] }).choices[0].text));
    assert.ok(new Set(texts).size > 1, `three unseeded completions were identical: ${JSON.stringify(texts[0])}`);
    const run = async (penalty: number) => ((await (await post('/v1/completions', { prompt: 'The Zen', max_tokens: 24, temperature: 0, frequency_penalty: penalty })).json()) as { choices: { text: string }[] }).choices[0].text;
    assert.notEqual(await run(2), await run(0), 'frequency_penalty changes the greedy text');
    assert.equal((await post('/v1/completions', { prompt: 'x', presence_penalty: 5 })).status, 400);
  });

  test('POST /v1/chat/completions: messages through the chat template, a chat.completion, streamed as deltas; GET /v1/models/{id}', async () => {
    const messages = [{ role: 'system', content: 'You tell fortunes.' }, { role: 'user', content: 'A fool and his money' }];
    const r = await post('/v1/chat/completions', { messages, max_tokens: 16, temperature: 0 });
    assert.equal(r.status, 200);
    const j = await r.json() as { object: string; choices: { message: { role: string; content: string }; finish_reason: string }[]; usage: Record<string, number> };
    assert.equal(j.object, 'chat.completion');
    assert.equal(j.choices[0].message.role, 'assistant');
    assert.ok(j.choices[0].message.content.length > 0);
    assert.ok(j.usage.prompt_tokens > 10 && j.usage.completion_tokens > 0);
    const s = await post('/v1/chat/completions', { messages, max_tokens: 16, temperature: 0, stream: true });
    const events = (await s.text()).split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
    assert.equal(events.pop(), '[DONE]');
    const chunks = events.map((e) => JSON.parse(e) as { object: string; choices: { delta: { role?: string; content?: string }; finish_reason: string | null }[] });
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk'));
    assert.equal(chunks.map((c) => c.choices[0].delta.content ?? '').join(''), j.choices[0].message.content);
    for (const bad of [{ messages: [] }, { messages: [{ role: 'user' }] }, { messages: 'hi' }, { messages, prompt: 'x' }]) {
      const e = await post('/v1/chat/completions', bad);
      assert.equal(e.status, 400, JSON.stringify(bad));
    }
    const m = await (await fetch(`${base}v1/models`)).json() as { data: { id: string }[] };
    assert.equal((await fetch(`${base}v1/models/${m.data[0].id}`)).status, 200);
    assert.equal((await fetch(`${base}v1/models/nope`)).status, 404);
  });

  test('stop strings, seeds and sampling', async () => {
    const j = await (await post('/v1/completions', { prompt: 'A fool and his money', max_tokens: 24, temperature: 0, stop: ['Ambrose'] })).json() as { choices: { text: string }[] };
    assert.equal(j.choices[0].text, '.\n\t\t-- ');
    const a = await (await post('/v1/completions', { prompt: 'The Zen', max_tokens: 10, temperature: 0.9, top_p: 0.9, seed: 7 })).json();
    const b = await (await post('/v1/completions', { prompt: 'The Zen', max_tokens: 10, temperature: 0.9, top_p: 0.9, seed: 7 })).json();
    assert.deepEqual((a as { choices: unknown }).choices, (b as { choices: unknown }).choices);
  });

  test('concurrent requests queue and all complete', async () => {
    const rs = await Promise.all([1, 2, 3].map(() => post('/v1/completions', { prompt: 'def', max_tokens: 5, temperature: 0 })));
    const texts = await Promise.all(rs.map(async (r) => ((await r.json()) as { choices: { text: string }[] }).choices[0].text));
    assert.equal(new Set(texts).size, 1);
  });

  test('POST /api/attention: maps of every layer and head, rows summing to 1, head metrics', async () => {
    const j = await (await post('/api/attention', { prompt: 'The Zen of Python' })).json() as { tokens: string[]; layers: number; heads: number; maps: number[][][][]; metrics: unknown[] };
    assert.deepEqual([j.layers, j.heads, j.tokens.length], [4, 8, 5]);
    for (const row of j.maps[3][7]) assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-3);
    assert.equal(j.maps[0][0][0][1], 0); // causal
    assert.equal(j.metrics.length, 32);
  });

  test('POST /api/attention labels characters split over byte-level tokens whole (never U+FFFD)', async () => {
    const j = await (await post('/api/attention', { prompt: 'naïve café 🙂' })).json() as { tokens: string[] };
    assert.equal(j.tokens.join(''), 'naïve café 🙂');
    assert.ok(j.tokens.every((t) => !t.includes('\uFFFD')), JSON.stringify(j.tokens));
    assert.deepEqual(j.tokens.filter((t) => /[ïé🙂]/u.test(t)), ['ï', 'é', '🙂']);
  });

  test('POST /api/experiment runs an experiment on the model', async () => {
    const j = await (await post('/api/experiment', { id: 'no-scaling', prompt: 'The Zen of Python, by Tim Peters.' })).json() as { metrics: { label: string; value: number }[] };
    const e = (label: string) => j.metrics.find((m) => m.label.startsWith(label))!.value;
    assert.ok(e('attention entropy, without') < e('attention entropy, with'));
  });
});

describe('API validation errors are 4xx JSON naming the field', () => {
  const cases: [string, unknown, number, RegExp, string | null][] = [
    ['not JSON', '{"prompt": ', 400, /not valid JSON/, null],
    ['not an object', '[1]', 400, /must be a JSON object/, null],
    ['missing prompt', {}, 400, /'prompt' must be a string, a list of token ids, or a list of up to 16 of either, got undefined/, 'prompt'],
    ['prompt not a string', { prompt: 5 }, 400, /'prompt' must be a string, a list of token ids.*got 5/, 'prompt'],
    ['token ids out of range', { prompt: [1, 99999] }, 400, /token ids are integers in \[0, 4096\)/, 'prompt'],
    ['too many prompts', { prompt: Array(17).fill('x') }, 400, /up to 16/, 'prompt'],
    ['logit_bias key not a token id', { prompt: 'x', logit_bias: { abc: 1 } }, 400, /'logit_bias' keys must be token ids/, 'logit_bias'],
    ['logit_bias value out of range', { prompt: 'x', logit_bias: { 5: 101 } }, 400, /values must be numbers in \[-100, 100\]/, 'logit_bias'],
    ['stream_options without stream', { prompt: 'x', stream_options: { include_usage: true } }, 400, /needs 'stream': true/, 'stream_options'],
    ['logprobs over 5', { prompt: 'x', logprobs: 6 }, 400, /'logprobs' must be an integer in \[0, 5\]/, 'logprobs'],
    ['empty prompt', { prompt: '' }, 400, /must not be empty/, 'prompt'],
    ['max_tokens 0', { prompt: 'x', max_tokens: 0 }, 400, /'max_tokens' must be an integer in \[1, 512\], got 0/, 'max_tokens'],
    ['max_tokens too big', { prompt: 'x', max_tokens: 100000 }, 400, /'max_tokens' must be an integer in \[1, 512\]/, 'max_tokens'],
    ['max_tokens not an integer', { prompt: 'x', max_tokens: 2.5 }, 400, /must be an integer/, 'max_tokens'],
    ['temperature negative', { prompt: 'x', temperature: -1 }, 400, /'temperature' must be a number in \[0, 2\], got -1/, 'temperature'],
    ['temperature a string', { prompt: 'x', temperature: 'hot' }, 400, /'temperature' must be a number/, 'temperature'],
    ['top_p 0', { prompt: 'x', top_p: 0 }, 400, /'top_p' must be a number in \(0, 1\]/, 'top_p'],
    ['stop: too many', { prompt: 'x', stop: ['a', 'b', 'c', 'd', 'e'] }, 400, /'stop' must be/, 'stop'],
    ['stop: empty string', { prompt: 'x', stop: '' }, 400, /'stop' must be/, 'stop'],
    ['seed negative', { prompt: 'x', seed: -3 }, 400, /'seed' must be an integer/, 'seed'],
    ['stream not boolean', { prompt: 'x', stream: 'yes' }, 400, /'stream' must be a boolean/, 'stream'],
    ['n = 9', { prompt: 'x', n: 9 }, 400, /'n' must be an integer in \[1, 8\]/, 'n'],
    ['unknown field', { prompt: 'x', temprature: 1 }, 400, /unknown field 'temprature'/, 'temprature'],
    ['past the context', { prompt: 'word '.repeat(600), max_tokens: 512 }, 400, /exceeds the model's context of 1024/, 'max_tokens'],
  ];
  for (const [name, body, status, message, param] of cases) {
    test(`/v1/completions: ${name}`, async () => {
      const r = await post('/v1/completions', body, typeof body === 'string');
      assert.equal(r.status, status);
      const j = await r.json() as { error: { message: string; type: string; param: string | null } };
      assert.match(j.error.message, message);
      assert.equal(j.error.param, param);
      assert.equal(j.error.type, 'invalid_request_error');
    });
  }

  test('a body over the limit is 413', async () => {
    const r = await post('/v1/completions', { prompt: 'x'.repeat(5000) });
    assert.equal(r.status, 413);
    assert.match(((await r.json()) as { error: { message: string } }).error.message, /limit is 4096/);
  });

  test('attention and experiment requests are checked too', async () => {
    assert.equal((await post('/api/attention', { prompt: 'word '.repeat(300) })).status, 400);
    const r = await post('/api/experiment', { id: 'nope', prompt: 'x' });
    assert.equal(r.status, 400);
    assert.match(((await r.json()) as { error: { message: string } }).error.message, /'id' must be one of no-scaling/);
  });

  test('unknown routes are 404, wrong methods 405', async () => {
    assert.equal((await fetch(`${base}v2/nothing`)).status, 404);
    assert.equal((await fetch(`${base}v1/completions`)).status, 405);
  });
});

describe('disconnects and static files', () => {
  test('a client that disconnects stops its generation; the server carries on', async () => {
    const before = { ...server.stats };
    await new Promise<void>((resolve) => {
      const req = request(`${base}v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        res.once('data', () => { req.destroy(); setTimeout(resolve, 300); }); // hang up after the first event
      });
      req.on('error', () => {});
      req.end(JSON.stringify({ prompt: 'The Zen of Python', max_tokens: 400, temperature: 0.8, stream: true }));
    });
    assert.equal(server.stats.aborted, before.aborted + 1);
    assert.ok(server.stats.tokensGenerated - before.tokensGenerated < 100, `generated ${server.stats.tokensGenerated - before.tokensGenerated} tokens after the hang-up`);
    assert.equal((await post('/v1/completions', { prompt: 'def', max_tokens: 2 })).status, 200);
  });

  test('the lab and its files are served with a strict content policy; nothing else is', async () => {
    const r = await fetch(base);
    assert.match(await r.text(), /Attention Lab/);
    assert.match(r.headers.get('content-security-policy')!, /default-src 'self'/);
    assert.equal((await fetch(`${base}qkv/index.js`)).status, 200);
    assert.match(await (await fetch(`${base}qkv/generate/tokenizer.js`)).text(), /from '\/vendor\/tokenizers\.mjs'/);
    assert.equal((await fetch(`${base}vendor/tokenizers.mjs`)).status, 200);
    assert.match(await (await fetch(`${base}qkv/generate/chat.js`)).text(), /from '\/vendor\/jinja\.mjs'/);
    assert.equal((await fetch(`${base}vendor/jinja.mjs`)).status, 200);
    assert.equal((await fetch(`${base}model/model.safetensors`)).status, 200);
    for (const bad of ['qkv/node/checkpoint.js', 'model/../package.json', 'model/reference.safetensors', 'lab/../package.json', 'qkv/../../package.json']) {
      assert.equal((await fetch(base + bad)).status, 404, bad);
    }
    // the lab's modules (built from lab/*.ts) and its views
    assert.match(await (await fetch(`${base}lab/main.js`)).text(), /from '\.\/views\/heads\.js'/);
    assert.equal((await fetch(`${base}lab/views/step.js`)).status, 200);
  });

  test('qkv\'s source as a page of numbered lines, the line a formula points at marked; nothing outside src/', async () => {
    const r = await fetch(`${base}source/src/kernels/cpu/sdpa-naive.ts?find=${encodeURIComponent('2. o_i = Σ_j P_ij v_j')}`);
    assert.equal(r.status, 200);
    const html = await r.text();
    const line = readFileSync(join(ROOT_DIR, 'src/kernels/cpu/sdpa-naive.ts'), 'utf8').split('\n').findIndex((l) => l.includes('2. o_i')) + 1;
    assert.ok(html.includes(`<span id="L${line}" class="match"><a id="match" href="#L${line}">${line}</a>`), `line ${line} marked`);
    assert.match(html, /&lt;|&gt;|&amp;/, 'source text is escaped');
    for (const bad of ['source/package.json', 'source/src/../package.json', 'source/test/helpers.ts', 'source/src/nope.ts']) {
      assert.equal((await fetch(base + bad)).status, 404, bad);
    }
  });
});
