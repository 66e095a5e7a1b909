// The server as a new user meets it: through the official `openai` npm client (a dev dependency), against qkv-tiny.
// models.list/retrieve, completions and chat completions, streamed and not, stop strings, and errors in OpenAI's shape.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import type { CausalLM } from '../../../src/models/model.js';
import { logprobsOf } from '../../../src/generate/sampling.js';
import { loadCheckpoint } from '../../../src/node/checkpoint.js';
import { createQkvServer, listen } from '../../../src/node/server/server.js';
import { assertClose } from '../../helpers.js';
import { TINY } from '../../models/helpers.js';

const server = createQkvServer(loadCheckpoint(TINY));
let client: OpenAI;
before(async () => { client = new OpenAI({ baseURL: `${await listen(server, { port: 0 })}v1`, apiKey: 'unused', maxRetries: 0 }); });
after(() => server.close());

test('models.list and models.retrieve', async () => {
  const list = await client.models.list();
  assert.deepEqual(list.data.map((m) => m.id), ['qkv-tiny']);
  assert.equal((await client.models.retrieve('qkv-tiny')).id, 'qkv-tiny');
  await assert.rejects(client.models.retrieve('gpt-4'), (e: unknown) => e instanceof OpenAI.NotFoundError);
});

test('completions.create, whole and streamed, with a stop string', async () => {
  const c = await client.completions.create({ model: 'qkv-tiny', prompt: 'A fool and his money', max_tokens: 24, temperature: 0, stop: ['Bierce'] });
  assert.equal(c.choices[0].text, '.\n\t\t-- Ambrose ');
  assert.equal(c.choices[0].finish_reason, 'stop');
  const stream = await client.completions.create({ model: 'qkv-tiny', prompt: 'A fool and his money', max_tokens: 24, temperature: 0, stop: ['Bierce'], stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0].text;
  assert.equal(text, c.choices[0].text);
});

test('chat.completions.create, whole and streamed', async () => {
  const messages = [{ role: 'user' as const, content: 'Tell me a fortune.' }];
  const c = await client.chat.completions.create({ model: 'qkv-tiny', messages, max_tokens: 16, temperature: 0 });
  assert.equal(c.choices[0].message.role, 'assistant');
  const stream = await client.chat.completions.create({ model: 'qkv-tiny', messages, max_tokens: 16, temperature: 0, stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
  assert.equal(text, c.choices[0].message.content);
});

test('bad requests are OpenAI errors with the field at fault', async () => {
  await assert.rejects(client.completions.create({ model: 'qkv-tiny', prompt: 'x', temperature: 5 }), (e: unknown) => {
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.equal((e as { param?: string }).param, 'temperature');
    return true;
  });
  // response_format: text (a client's default) is what every answer is; JSON would need constrained decoding: refused, named
  const messages = [{ role: 'user' as const, content: 'Hi' }];
  const text = await client.chat.completions.create({ model: 'qkv-tiny', messages, max_tokens: 2, response_format: { type: 'text' } });
  assert.equal(text.choices.length, 1);
  await assert.rejects(client.chat.completions.create({ model: 'qkv-tiny', messages, max_tokens: 2, response_format: { type: 'json_object' } }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && (e as { param?: string }).param === 'response_format' && /constrained decoding/.test((e as Error).message));
  // tools: an empty list is no tools; one to call is refused by name
  assert.equal((await client.chat.completions.create({ model: 'qkv-tiny', messages, max_tokens: 2, tools: [], tool_choice: 'none' })).choices.length, 1);
  const tools = [{ type: 'function' as const, function: { name: 'weather', parameters: { type: 'object', properties: {} } } }];
  await assert.rejects(client.chat.completions.create({ model: 'qkv-tiny', messages, max_tokens: 2, tools }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && (e as { param?: string }).param === 'tools' && /does not call tools/.test((e as Error).message));
});

test('n choices, echo, a list of prompts and token-id prompts, usage in the stream (official client)', async () => {
  const two = await client.completions.create({ model: 'qkv-tiny', prompt: 'Once upon a time', max_tokens: 8, temperature: 1, seed: 5, n: 2 });
  assert.deepEqual(two.choices.map((c) => c.index), [0, 1]);
  assert.notEqual(two.choices[0].text, two.choices[1].text, 'n samples differ (each its own seed)');
  assert.equal(two.usage?.completion_tokens, 16);
  const greedy = await client.completions.create({ model: 'qkv-tiny', prompt: 'A fool and his money', max_tokens: 6, temperature: 0 });
  const echoed = await client.completions.create({ model: 'qkv-tiny', prompt: 'A fool and his money', max_tokens: 6, temperature: 0, echo: true });
  assert.equal(echoed.choices[0].text, `A fool and his money${greedy.choices[0].text}`);
  const { tokens } = await (await fetch(`${client.baseURL.replace(/v1$/, '')}tokenize`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'A fool and his money' }) })).json() as { tokens: number[] };
  const many = await client.completions.create({ model: 'qkv-tiny', prompt: ['A fool and his money', 'def'], max_tokens: 6, temperature: 0 });
  const ids = await client.completions.create({ model: 'qkv-tiny', prompt: tokens, max_tokens: 6, temperature: 0 });
  assert.deepEqual([many.choices[0].text, ids.choices[0].text], [greedy.choices[0].text, greedy.choices[0].text]);
  assert.equal(many.choices[1].index, 1);
  const stream = await client.completions.create({ model: 'qkv-tiny', prompt: 'def', max_tokens: 5, temperature: 0, stream: true,
    stream_options: { include_usage: true }, n: 2 });
  const texts = ['', ''];
  let usage: { completion_tokens: number } | null | undefined = null;
  for await (const chunk of stream) {
    for (const c of chunk.choices) texts[c.index] += c.text;
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(texts[0], texts[1], 'greedy choices agree');
  assert.equal(usage?.completion_tokens, 10, 'the last event carries the usage');
});

test('logprobs: completions (top alternatives, offsets) and chat (content entries); logit_bias bans and forces tokens', async () => {
  const c = await client.completions.create({ model: 'qkv-tiny', prompt: 'A fool and his money', max_tokens: 4, temperature: 0, logprobs: 3 });
  const lp = c.choices[0].logprobs!;
  assert.equal(lp.tokens!.length, 4);
  assert.equal(lp.tokens!.join(''), c.choices[0].text);
  lp.token_logprobs!.forEach((x, i) => {
    assert.ok(x! <= 0, 'a log-probability');
    const top = Object.values(lp.top_logprobs![i]!);
    assert.equal(top.length, 3);
    assert.ok(Math.abs(Math.max(...top) - x!) < 1e-9, 'greedy: the chosen token is the most likely');
  });
  assert.deepEqual(lp.text_offset, [0, 1, 2, 3].map((i) => lp.tokens!.slice(0, i).join('').length));
  const chat = await client.chat.completions.create({ model: 'qkv-tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3,
    temperature: 0, logprobs: true, top_logprobs: 2 });
  const entries = chat.choices[0].logprobs!.content!;
  assert.equal(entries.length, chat.usage!.completion_tokens);
  assert.ok(entries.every((e) => e.top_logprobs.length === 2 && e.logprob <= 0 && Array.isArray(e.bytes)));
  // ban the greedy first token: the answer changes; force a token: it comes out
  const first = lp.tokens![0];
  const { tokens: banned } = await (await fetch(`${client.baseURL.replace(/v1$/, '')}tokenize`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: `A fool and his money${first}` }) })).json() as { tokens: number[] };
  const id = banned[banned.length - 1];
  const other = await client.completions.create({ model: 'qkv-tiny', prompt: 'A fool and his money', max_tokens: 1, temperature: 0, logit_bias: { [id]: -100 } });
  assert.notEqual(other.choices[0].text, first);
  const forced = await client.completions.create({ model: 'qkv-tiny', prompt: 'def', max_tokens: 3, temperature: 0, logit_bias: { 65: 100 } });
  const { prompt: a } = await (await fetch(`${client.baseURL.replace(/v1$/, '')}detokenize`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tokens: [65, 65, 65] }) })).json() as { prompt: string };
  assert.equal(forced.choices[0].text, a);
});

test('echo with logprobs scores the prompt (max_tokens 0: the prompt alone, as lm-evaluation-harness asks)', async () => {
  const prompt = 'A fool and his money';
  const { tokens } = await (await fetch(`${client.baseURL.replace(/v1$/, '')}tokenize`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt }) })).json() as { tokens: number[] };
  // each prompt token's log-probability given those before it, from the model's own logits
  const model = loadCheckpoint(TINY).model as CausalLM;
  const logits = model.forward([tokens]).logits.toFloat32(), V = model.info.vocabSize;
  const want = tokens.slice(1).map((id, t) => logprobsOf(logits.subarray(t * V, (t + 1) * V), id, 0).logprob);
  const scored = await client.completions.create({ model: 'qkv-tiny', prompt, max_tokens: 0, echo: true, logprobs: 2, temperature: 0 });
  const lp = scored.choices[0].logprobs!;
  assert.equal(scored.choices[0].text, prompt);
  assert.equal(lp.tokens!.length, tokens.length);
  assert.equal(lp.token_logprobs![0], null, 'the first token has no log-probability');
  assert.equal(lp.top_logprobs![0], null);
  assertClose(lp.token_logprobs!.slice(1) as number[], want, 1e-5, 1e-5, 'prompt log-probabilities');
  assert.ok(lp.top_logprobs!.slice(1).every((top) => Object.keys(top!).length >= 1), 'two most likely (fewer where pieces coincide)');
  assert.deepEqual(lp.text_offset!.slice(0, 2), [0, lp.tokens![0].length]);
  // with tokens generated too: the prompt's entries, then the new ones, offsets continuing after the echoed text
  const both = await client.completions.create({ model: 'qkv-tiny', prompt, max_tokens: 3, echo: true, logprobs: 1, temperature: 0 });
  const lb = both.choices[0].logprobs!;
  assert.equal(lb.tokens!.length, tokens.length + 3);
  assertClose(lb.token_logprobs!.slice(1, tokens.length) as number[], want, 1e-5, 1e-5, 'prompt part');
  assert.equal(lb.text_offset![tokens.length], prompt.length);
  // streamed: the echo chunk carries the prompt's log-probabilities; max_tokens 0 ends the stream after it
  const stream = await client.completions.create({ model: 'qkv-tiny', prompt, max_tokens: 0, echo: true, logprobs: 1, stream: true });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk.choices[0]);
  assert.equal(chunks[0].text, prompt);
  assert.equal(chunks[0].logprobs!.tokens!.length, tokens.length);
  assert.equal(chunks[chunks.length - 1].finish_reason, 'length');
  // max_tokens 0 without echo is still refused
  await assert.rejects(client.completions.create({ model: 'qkv-tiny', prompt, max_tokens: 0 }), (e: unknown) => e instanceof OpenAI.BadRequestError);
  // concurrent requests (one of whose clients leaves at once) all get their answer, each as if alone: prompts are scored
  // one request at a time, and a request that fails or is abandoned passes its turn on
  const gone = new AbortController();
  const left = client.completions.create({ model: 'qkv-tiny', prompt: [prompt, prompt], max_tokens: 0, echo: true, logprobs: 1 },
    { signal: gone.signal }).catch(() => 'left');
  gone.abort();
  const together = await Promise.all(Array.from({ length: 4 }, () =>
    client.completions.create({ model: 'qkv-tiny', prompt: [prompt, 'Beautiful is better'], max_tokens: 0, echo: true, logprobs: 1 })));
  assert.equal(await left, 'left');
  for (const t of together) assertClose(t.choices[0].logprobs!.token_logprobs!.slice(1) as number[], want, 1e-5, 1e-5, 'scored in turn');
  assert.equal(new Set(together.map((t) => JSON.stringify(t.choices[1].logprobs))).size, 1, 'the same answer each time');
});
