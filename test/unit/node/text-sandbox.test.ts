// The text sandbox (node/text-sandbox.ts): the checkpoint's tokenizer in a worker thread gives the same ids as in this
// thread, for prompts and chats; a checkpoint built without a tokenizer.json is served in this thread; closing fails
// what is still waiting. (Its heap cap and deadline: test/unit/node/server-hardening.test.ts, through qkv serve.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCheckpoint } from '../../../src/node/checkpoint.js';
import { TextSandbox } from '../../../src/node/text-sandbox.js';
import { ROOT_DIR } from '../../helpers.js';

const { dir, tokenizer } = loadCheckpoint(join(ROOT_DIR, 'models', 'qkv-tiny'));

test('the worker\'s ids are the tokenizer\'s: prompts (special tokens as the post-processor adds them) and chats', async () => {
  const sandbox = new TextSandbox(dir, tokenizer!);
  try {
    for (const text of ['hello world', 'naïve café 🙂', ' '.repeat(50), '']) {
      assert.deepEqual(await sandbox.encode(text), tokenizer!.encode(text), JSON.stringify(text));
    }
    const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'What is attention?' }];
    assert.deepEqual(await sandbox.chat(messages), tokenizer!.chat(messages).ids);
    // many at once come back in order, each its own
    const texts = Array.from({ length: 20 }, (_, i) => `prompt number ${i}`);
    assert.deepEqual(await Promise.all(texts.map((t) => sandbox.encode(t))), texts.map((t) => tokenizer!.encode(t)));
  } finally {
    sandbox.close();
  }
});

test('a directory without tokenizer.json is served by the tokenizer given, in this thread; close() fails what waits', async () => {
  const empty = mkdtempSync(join(tmpdir(), 'qkv-sandbox-'));
  try {
    const here = new TextSandbox(empty, tokenizer!);
    assert.deepEqual(await here.encode('hello'), tokenizer!.encode('hello'));
    const messages = [{ role: 'user', content: 'hi' }];
    assert.deepEqual(await here.chat(messages), tokenizer!.chat(messages).ids);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
  const sandbox = new TextSandbox(dir, tokenizer!);
  const waiting = sandbox.encode('hello');
  sandbox.close();
  await assert.rejects(waiting, /the text sandbox was closed/);
  assert.deepEqual(await sandbox.encode('hello'), tokenizer!.encode('hello'), 'a later request starts another worker');
  sandbox.close();
});
