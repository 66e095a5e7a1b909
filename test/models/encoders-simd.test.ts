// The golden encoder and encoder-decoder models on the WebAssembly SIMD attention kernels. The conformance runner asks
// every model for its attention weights, which only the TypeScript kernels return; without them BERT (a padding mask),
// ViT (no mask) and T5 (its relative-position bias, a padding mask, a causal decoder and cross-attention) run the
// SIMD kernels, and their outputs must match PyTorch's all the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { EncoderModel, Seq2SeqLM } from '../../src/models/model.js';
import { getSdpaKernel } from '../../src/kernels/registry.js';
import { loadCheckpoint } from '../../src/node/checkpoint.js';
import { readSafetensors } from '../../src/node/files.js';
import { useWasmFeatures } from '../../src/node/wasm-features.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../helpers.js';
import { GOLDEN_MODELS } from './helpers.js';

useWasmFeatures();
const calls = new Map<string, number>();
for (const name of ['reference', 'flash', 'decode', 'flash-wasm'] as const) {
  const kernel = getSdpaKernel(name);
  const forward = kernel.forward.bind(kernel);
  kernel.forward = (p, r) => { calls.set(name, (calls.get(name) ?? 0) + 1); return forward(p, r); };
}

const golden = (name: string) => readSafetensors(join(GOLDEN_MODELS, `${name}.safetensors`)).tensors;
const rows = (t: Tensor | undefined) => {
  if (!t) return undefined;
  const [B, T] = t.shape;
  const flat = t.toArray() as number[];
  return Array.from({ length: B }, (_, b) => flat.slice(b * T, (b + 1) * T));
};

for (const name of ['bert', 'vit', 't5']) {
  test(`${name}: the outputs on the SIMD kernels match the golden ones (atol 1e-4, rtol 1e-3, as the conformance case)`, () => {
    const t = golden(name);
    const model = loadCheckpoint(join(GOLDEN_MODELS, name), { tokenizer: false }).model as EncoderModel | Seq2SeqLM;
    calls.clear();
    const [ids, mask] = [rows(t.get('input_ids')), rows(t.get('attention_mask'))];
    if (model.kind === 'seq2seq') {
      const enc = model.encode(ids!, mask);
      const logits = model.decode(rows(t.get('decoder_input_ids'))!, enc.hidden, { attentionMask: mask }).logits;
      assertClose(logits, t.get('logits')!, 1e-4, 1e-3, `${name} logits`);
    } else {
      const tokenTypeIds = rows(t.get('token_type_ids'));
      const r = model.forward({ inputIds: ids, attentionMask: mask, tokenTypeIds, pixelValues: t.get('pixel_values') });
      assertClose(r.lastHiddenState, t.get('last_hidden_state')!, 1e-4, 1e-3, `${name} last_hidden_state`);
    }
    assert.deepEqual([...calls.keys()], ['flash-wasm'], `${name} ran ${JSON.stringify([...calls])}`);
  });
}
