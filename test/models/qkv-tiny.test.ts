// The embedded default model: logits, every layer's attention and the greedy generations of reference.safetensors,
// and the CLI printing samples.json's greedy continuation.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generate } from '../../src/generate/generate.js';
import type { CausalLM } from '../../src/models/model.js';
import { loadCheckpoint } from '../../src/node/checkpoint.js';
import { readSafetensors } from '../../src/node/files.js';
import { assertClose } from '../helpers.js';
import { ROOT, TINY } from './helpers.js';

const ckpt = loadCheckpoint(TINY);
const model = ckpt.model as CausalLM;
const ref = readSafetensors(join(TINY, 'reference.safetensors'));
const prompts = JSON.parse(ref.metadata.prompts) as string[];
const samples = JSON.parse(readFileSync(join(TINY, 'samples.json'), 'utf8')) as { prompt: string; greedy: string }[];

describe('qkv-tiny against its reference outputs', () => {
  prompts.forEach((prompt, n) => {
    test(`prompt ${n}: tokens, logits and every layer's attention`, () => {
      const ids = ckpt.tokenizer!.encode(prompt);
      assert.deepEqual(ids, ref.tensors.get(`prompt${n}.input_ids`)!.toArray());
      const r = model.forward([ids], { outputAttentions: true });
      assertClose(r.logits, ref.tensors.get(`prompt${n}.logits`)!, 1e-4, 1e-3, `prompt ${n} logits`);
      r.attentions!.forEach((a, l) => assertClose(a, ref.tensors.get(`prompt${n}.attentions.${l}`)!, 1e-4, 1e-3, `prompt ${n} layer ${l}`));
    });

    test(`prompt ${n}: greedy generation with the KV cache gives the reference tokens and text`, async () => {
      const want = ref.tensors.get(`prompt${n}.generated`)!.toArray();
      const r = await generate(model, ckpt.tokenizer, prompt, { greedy: true, maxTokens: 24 });
      const ids = ckpt.tokenizer!.encode(prompt);
      assert.deepEqual([...ids, ...r.ids, ...(r.finishReason === 'stop' ? [0] : [])], want);
      assert.equal(prompt + r.text, samples[n].greedy);
    });
  });

  test('npx qkv generate --greedy prints the recorded continuation', () => {
    const s = samples.find((x) => x.prompt === 'A fool and his money')!;
    const r = spawnSync(process.execPath, [join(ROOT, 'dist/src/node/cli/main.js'), 'generate', '--greedy', '--max-tokens', '24', s.prompt], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, s.greedy);
  });

  test('the weights were bfloat16 on disk: linear matrices and the embedding stay bfloat16, norms are widened once', () => {
    const { dtypes, parameters } = ckpt.weights.summary();
    assert.deepEqual(dtypes.sort(), ['bfloat16', 'float32']);
    assert.equal(ckpt.weights.tensors.get('model.layers.0.mlp.up_proj.weight')!.dtype, 'bfloat16');
    assert.equal(ckpt.weights.tensors.get('model.norm.weight')!.dtype, 'float32');
    assert.equal(parameters, 4_065_536);
  });
});
