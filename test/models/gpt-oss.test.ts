// gpt-oss as OpenAI publishes it keeps its experts in MXFP4 (…experts.gate_up_proj_blocks / _scales): qkv reads bf16,
// f16 or f32 experts only, and says so by name instead of "missing tensor". And the stacked expert tensors leave the
// checkpoint's weights once transposed, so they are not held twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildModel, Weights, type HfConfig, type Tensor } from '../../src/index.js';
import { streamSafetensors } from '../../src/node/checkpoint.js';
import { ROOT_DIR } from '../helpers.js';

const DIR = join(ROOT_DIR, 'test', 'golden-frontier', 'models', 'gpt_oss');
const config = JSON.parse(readFileSync(join(DIR, 'config.json'), 'utf8')) as HfConfig;
const STACKED = 'model.layers.0.mlp.experts.gate_up_proj';

function raw(): Map<string, Tensor> {
  const tensors = new Map<string, Tensor>();
  streamSafetensors(join(DIR, 'model.safetensors'), tensors);
  return tensors;
}

test('gpt-oss: the stacked experts leave the weights once transposed (held once, not twice)', () => {
  const w = new Weights(raw(), 'gpt_oss');
  assert.ok(w.has(STACKED));
  buildModel(config, w);
  assert.ok(!w.has(STACKED) && !w.has('model.layers.0.mlp.experts.down_proj'));
});

test('gpt-oss with MXFP4 experts (as published): a clear error that names the quantized tensors', () => {
  const published = raw();
  published.set(`${STACKED}_blocks`, published.get(STACKED)!);
  published.delete(STACKED);
  assert.throws(() => buildModel(config, new Weights(published, 'gpt_oss')),
    /the experts are MXFP4-quantized \(model\.layers\.0\.mlp\.experts\.gate_up_proj_blocks and _scales/);
});
