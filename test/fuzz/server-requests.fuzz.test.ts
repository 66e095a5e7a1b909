// qkv serve under random requests. Every field of every JSON endpoint gets values from a seeded generator — the values
// a client means (valid prompts, token ids, messages, sampling options), edge values (0, −1, 2^31, 2^53, 1e308, 1.5,
// ids past the vocabulary, empty lists, 3,000-character strings, a lone surrogate) and values of the wrong type at any
// depth (nested lists and objects, `__proto__` and `constructor` keys); fields are sometimes left out and unknown ones
// added. Requests run 8 at a time, streamed or not. Every answer must be 200 with the endpoint's object — a stream of
// `data:` events that ends with [DONE] — or a 4xx/503 in OpenAI's error shape: never a 500 (an exception validation
// missed), never a hang; and the server must still answer a plain request at the end.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT_DIR, fuzzSeed, rng } from '../helpers.js';

const CLI = join(ROOT_DIR, 'dist', 'src', 'node', 'cli', 'main.js');
const REQUESTS = 600;

let server: { proc: ChildProcess; base: string; log: string };
before(async () => {
  const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--threads', '1', '--max-batch', '8', '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
  server = await new Promise((resolve, reject) => {
    let log = '';
    proc.stdout!.on('data', (c: Buffer) => {
      log += c.toString();
      const m = /lab\s+(http:\/\/\S+\/)/.exec(log);
      if (m) resolve({ proc, base: m[1], log });
    });
    proc.stderr!.on('data', (c: Buffer) => { log += c.toString(); });
    proc.once('exit', (code) => reject(new Error(`qkv serve exited with ${code}: ${log}`)));
  });
});
after(() => { server.proc.kill(); });

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

// values of every JSON type, edge values first among them
function anyValue(rand: () => number, depth = 0): Json {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
  const kind = Math.floor(rand() * (depth > 2 ? 4 : 6));
  if (kind === 0) return pick([0, 1, -1, 2, 8, 9, 0.5, 1.5, -0.5, 2 ** 31, 2 ** 53, -(2 ** 53), 1e308, -1e308, 4095, 4096]);
  if (kind === 1) return pick(['', 'x', 'Hello', 'ï🙂 naïve café', '\ud800', 'a'.repeat(3000), '__proto__', 'constructor', '5', 'true']);
  if (kind === 2) return pick([null, true, false]);
  if (kind === 3) return pick([[], {}, [1, 2, 3], ['a', 'b']]);
  if (kind === 4) return Array.from({ length: Math.floor(rand() * 4) }, () => anyValue(rand, depth + 1));
  const o: { [k: string]: Json } = {};
  for (let i = Math.floor(rand() * 3); i > 0; i--) o[pick(['__proto__', 'constructor', 'role', 'content', 'type', 'text', 'include_usage', 'x'])] = anyValue(rand, depth + 1);
  return o;
}

// what a client means for each field: a request made of these alone should pass validation and generate
const VALID: Record<string, readonly Json[]> = {
  model: ['qkv-tiny'], prompt: ['Hello', 'The Zen of Python', ['a', 'b'], [1, 2, 3], [[1, 2], [3]], 'ï🙂 naïve'],
  max_tokens: [1, 2, 4, 8], max_completion_tokens: [1, 3], n: [1, 2], temperature: [0, 0.7, 2], top_p: [0.5, 1],
  stream: [true, false], stream_options: [{ include_usage: true }, { include_usage: false }], echo: [true, false],
  stop: ['\n', ['a', 'the'], 'e'], seed: [0, 42, 2 ** 31], presence_penalty: [0, 1, -2, 2], frequency_penalty: [0, 0.5, 2],
  user: ['u'], logit_bias: [{ 1: 100 }, { 5: -100 }, {}],
  messages: [[{ role: 'user', content: 'hi' }], [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }],
    [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
    [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'yo' }, { role: 'user', content: '?' }]],
  tokens: [[1, 2, 3], [], [72, 101, 108]], id: ['no-scaling', 'no-causal', 'no-positions', 'window', 'gqa', 'kernel-memory'],
  '/v1/completions logprobs': [0, 1, 5], '/v1/chat/completions logprobs': [true, false], '/v1/chat/completions top_logprobs': [0, 2, 5],
  '/tokenize prompt': ['Hello', 'ï🙂 naïve'], '/api/attention prompt': ['The Zen of Python'], '/api/experiment prompt': ['Once upon a time'],
};
// what a careless client sends: near misses of the valid values
const EDGE: Record<string, readonly Json[]> = {
  model: ['gpt-4', ''], prompt: ['', [], [4095], [4096], [-1], [1.5], [[]], 'word '.repeat(700)],
  max_tokens: [0, -1, 2.5, 1e9, '4'], max_completion_tokens: [0, 1e9], n: [0, 3, 9, 1.5], temperature: [-0.1, 2.1, '0'],
  top_p: [0, 1.1], stream_options: [{}, null, { include_usage: 'yes' }], logprobs: [0, 1, 5, 6, 20, true, false, -1],
  top_logprobs: [0, 2, 5, 21, -1], stop: ['', ['a', 'b', 'c', 'd', 'e'], [''], [1]], seed: [-3, 2 ** 64, 0.5],
  presence_penalty: [-2.1, 3], frequency_penalty: [2.5, -3], logit_bias: [{ abc: 1 }, { 99999: 1 }, { 1: 101 }, { '-1': 5 }],
  messages: [[], [{ role: 'user' }], [{ role: 'bogus', content: 'x' }], [{ role: 'assistant', content: null }], [{ content: 'x' }]],
  tokens: [[4096], [-1], ['a'], [0.5], 'abc'], id: ['nope', '__proto__', 'constructor', 'toString'],
};
const ENDPOINTS: Record<string, readonly string[]> = {
  '/v1/completions': ['model', 'prompt', 'max_tokens', 'n', 'temperature', 'top_p', 'stream', 'stream_options', 'logprobs', 'echo',
    'stop', 'seed', 'presence_penalty', 'frequency_penalty', 'user', 'logit_bias'],
  '/v1/chat/completions': ['model', 'messages', 'max_tokens', 'max_completion_tokens', 'n', 'temperature', 'top_p', 'stream',
    'stream_options', 'logprobs', 'top_logprobs', 'stop', 'seed', 'presence_penalty', 'frequency_penalty', 'user', 'logit_bias'],
  '/tokenize': ['model', 'prompt'], '/detokenize': ['model', 'tokens'], '/api/attention': ['prompt'], '/api/experiment': ['id', 'prompt'],
};

// a request: its fields from VALID (a third of requests), VALID with one field from EDGE or any value (a third), or
// each field from any of the three
function request(rand: () => number): { path: string; body: Json } {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
  const path = pick(Object.keys(ENDPOINTS));
  const fields = ENDPOINTS[path];
  const mode = pick(['valid', 'one', 'any'] as const);
  const wrong = pick(fields);
  const body: { [k: string]: Json } = {};
  for (const field of fields) {
    const [valid, edge] = [VALID[`${path} ${field}`] ?? VALID[field] ?? [], EDGE[field] ?? []];
    const needed = field === 'prompt' || field === 'messages' || field === 'tokens' || field === 'id';
    // needed fields nearly always, the wrong one always, the others half the time
    const skip = mode === 'any' ? rand() < (needed ? 0.05 : 0.5) : field !== wrong && !needed && rand() < 0.5;
    if (skip) continue;
    const bad = mode === 'any' ? rand() < 0.5 : mode === 'one' && field === wrong;
    body[field] = !bad && valid.length ? pick(valid) : edge.length && rand() < 0.6 ? pick(edge) : anyValue(rand);
  }
  // options that need another one: only with it, when the request is meant to pass
  if (mode === 'valid' && body.stream !== true) delete body.stream_options;
  if (mode === 'valid' && body.logprobs !== true) delete body.top_logprobs;
  if (mode === 'any' && rand() < 0.1) body[rand() < 0.5 ? 'temprature' : '__proto__'] = anyValue(rand);
  // a top-level value that is not an object now and then
  return { path, body: mode === 'any' && rand() < 0.05 ? anyValue(rand) : body };
}

// the answer: its status and whether it is well formed for what was asked
async function send(path: string, body: Json): Promise<{ status: number; problem: string | null }> {
  const r = await fetch(server.base + path.slice(1), {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(60_000),
  });
  const text = await r.text();
  if (r.status >= 500 && r.status !== 503) return { status: r.status, problem: `status ${r.status}: ${text.slice(0, 300)}` };
  if (r.status !== 200) {
    const j = JSON.parse(text) as { error?: { message?: unknown; type?: unknown } };
    return { status: r.status, problem: typeof j.error?.message === 'string' && typeof j.error.type === 'string' ? null : `error not in OpenAI's shape: ${text.slice(0, 200)}` };
  }
  if ((r.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    const events = text.split('\n\n').filter(Boolean);
    if (events.at(-1) !== 'data: [DONE]') return { status: 200, problem: `stream does not end with [DONE]: …${text.slice(-200)}` };
    for (const e of events.slice(0, -1)) {
      const j = JSON.parse(e.replace(/^data: /, '')) as { error?: unknown; choices?: unknown };
      if (j.error || (!Array.isArray(j.choices))) return { status: 200, problem: `stream event: ${e.slice(0, 200)}` };
    }
    return { status: 200, problem: null };
  }
  JSON.parse(text);
  return { status: 200, problem: null };
}

test(`${REQUESTS} random requests: each a 200 or an OpenAI error, none a 500 or a hang; the server answers after`, async () => {
  const rand = rng(fuzzSeed(20261130));
  const requests = Array.from({ length: REQUESTS }, () => request(rand));
  const statuses = new Map<number, number>();
  const problems: string[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < requests.length) {
      const { path, body } = requests[next++];
      const { status, problem } = await send(path, body);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (problem) problems.push(`${path} ${JSON.stringify(body).slice(0, 300)} → ${problem}`);
    }
  }));
  console.log(`statuses: ${[...statuses].sort().map(([k, n]) => `${k} × ${n}`).join(', ')}`);
  assert.deepEqual(problems, [], `${problems.length} bad answers`);
  assert.ok((statuses.get(200) ?? 0) > REQUESTS / 3, `a third or more should get through validation: ${[...statuses]}`);
  assert.ok((statuses.get(400) ?? 0) > REQUESTS / 10, `and many should be refused: ${[...statuses]}`);
  const r = await send('/v1/completions', { prompt: 'Hello', max_tokens: 4 });
  assert.equal(r.status, 200, 'a plain request after all of them');
  assert.equal(server.proc.exitCode, null, 'the server is alive');
});
