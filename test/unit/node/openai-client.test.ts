// The server as a new user meets it: through the official `openai` npm client (a dev dependency), against qkv-tiny.
// models.list/retrieve, completions and chat completions, streamed and not, stop strings, and errors in OpenAI's shape.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { loadCheckpoint } from '../../../src/node/checkpoint.js';
import { createQkvServer, listen } from '../../../src/node/server/server.js';
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
});
