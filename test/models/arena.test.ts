// A decoder layer's activations live in an arena in the kernels' memory (tensor/arena.ts, CpuOps.scoped), emptied when
// the next layer begins, and its result in one of two small ones, taken in turn. With setArenaPoison every array of an arena turns NaN when it is emptied, so a tensor
// used past its time — the residual stream read from an emptied arena, a KV cache keeping a view instead of a copy —
// would change the logits. Prefill, decode through the KV cache, and a batch through the paged cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchEngine } from '../../src/generate/engine.js';
import { generate } from '../../src/generate/generate.js';
import type { RowKernels } from '../../src/kernels/contract.js';
import { rowsWasm } from '../../src/kernels/wasm/rows-wasm.js';
import { kernelArenas, setArenaPoison } from '../../src/kernels/wasm/storage.js';
import type { CausalLM } from '../../src/models/model.js';
import { loadCheckpoint } from '../../src/node/checkpoint.js';
import { TINY } from './helpers.js';
import { assertClose } from '../helpers.js';

const model = loadCheckpoint(TINY, { tokenizer: false }).model as CausalLM;
const prompts = [40, 7, 19].map((n, i) => Array.from({ length: n }, (_, t) => 10 + ((i * 131 + t * 17) % 4000)));

async function run(): Promise<{ logits: Float32Array; ids: number[][]; batch: Float32Array[] }> {
  const logits = model.forward([prompts[0]]).logits.toFloat32().slice(); // [1, T, V]: every layer's rows kept to the end
  const ids = await Promise.all(prompts.map((p) => generate(model, null, p, { greedy: true, maxTokens: 12, stopTokens: [] }).then((g) => g.ids)));
  const engine = new BatchEngine(model, { kvBlocks: 64, blockSize: 8, maxBatch: 4 });
  const batch = await Promise.all(prompts.map(async (p) => {
    const s = await engine.open(p, 4);
    const out: number[] = [];
    let l = await s.step(p);
    for (let t = 0; t < 3; t++) { out.push(...l.slice(0, 64)); l = await s.step([l.indexOf(Math.max(...l))]); }
    s.release();
    return Float32Array.from(out);
  }));
  engine.release();
  return { logits, ids, batch };
}

test('activations in per-layer arenas: poisoning each arena as it is emptied changes no logit (prefill, decode, batch)', async () => {
  const arenas = kernelArenas();
  assert.ok(arenas, 'Node\'s kernel memory is shared: decoder layers write into the arenas');
  const clean = await run();
  assert.ok(arenas.every((a) => a.bytes > 0), 'the work arena held a layer, both result arenas a result');
  assert.ok(arenas[1].bytes < arenas[0].bytes / 4, 'a result is a small part of a layer\'s activations');
  assert.ok(clean.logits.every(Number.isFinite));
  setArenaPoison(true);
  try {
    const poisoned = await run();
    assertClose(poisoned.logits, clean.logits, 0, 0, 'prefill logits');
    assert.deepEqual(poisoned.ids, clean.ids, 'greedy tokens through the KV cache');
    poisoned.batch.forEach((b, i) => assertClose(b, clean.batch[i], 0, 0, `batched sequence ${i}`));
  } finally {
    setArenaPoison(false);
  }
});

test('every layer\'s residual adds and norms run as SIMD jobs over the kernels\' memory: layer 0\'s input (the embeddings) too', () => {
  const rows = rowsWasm as { add: RowKernels['add']; rmsNorm: RowKernels['rmsNorm'] };
  const [add, rmsNorm] = [rows.add, rows.rmsNorm];
  const took: string[] = [];
  rows.add = (...a) => { const ok = add.apply(rowsWasm, a); took.push(`add ${ok}`); return ok; };
  rows.rmsNorm = (...a) => { const ok = rmsNorm.apply(rowsWasm, a); took.push(`norm ${ok}`); return ok; };
  try {
    model.forward([prompts[0]], { lastOnly: true });
  } finally {
    Object.assign(rows, { add, rmsNorm });
  }
  const L = model.info.numLayers;
  assert.equal(took.filter((t) => t === 'add true').length, 2 * L, `two residual adds a layer, each a SIMD job: ${took.join(', ')}`);
  assert.equal(took.filter((t) => t === 'norm true').length, 2 * L, 'two norms a layer in the kernels\' memory (the final norm is outside)');
  assert.ok(!took.includes('add false'), 'no residual add fell back to a JavaScript loop');
});
