// The GGUF files the benchmarks write for llama.cpp hold the same model qkv runs: llama.cpp (node-llama-cpp, CPU)
// generates qkv's greedy tokens from qkv-tiny written as F32 (which needs the RoPE row permutation of q and k right),
// and the Q8_0 / Q4_0 block encoders follow llama.cpp's rounding rules (Q4_0's clamp of the other sign's end included).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { f16ToF32, generate, type CausalLM } from '../../src/index.js';
import { loadCheckpoint, streamSafetensors } from '../../src/node/checkpoint.js';
import { quantizeQ4_0, quantizeQ8_0, vocabFromTokenizerJson, writeLlamaGguf } from '../../bench/gguf.js';
import { llamaGenerate, loadGguf } from '../../bench/llama-cpp.js';
import { ROOT_DIR, rng } from '../helpers.js';

test('llama.cpp generates qkv\'s greedy tokens from the GGUF the bench writes (qkv-tiny, F32)', async () => {
  const dir = join(ROOT_DIR, 'models', 'qkv-tiny');
  const tmp = mkdtempSync(join(tmpdir(), 'qkv-gguf-'));
  try {
    const ck = loadCheckpoint(dir, { tokenizer: false, weights: 'float32', progress: () => {} });
    const tensors = new Map();
    streamSafetensors(join(dir, 'model.safetensors'), tensors);
    const vocab = vocabFromTokenizerJson(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')), 0, 0);
    const path = join(tmp, 'tiny.gguf');
    writeLlamaGguf(path, ck.config, tensors, 'F32', vocab);
    const prompt = Array.from({ length: 20 }, (_, i) => (i * 31 + 7) % 4096);
    const ours = await generate(ck.model as CausalLM, null, prompt, { greedy: true, maxTokens: 16, stopTokens: [] });
    const theirs = await llamaGenerate(await loadGguf(path), prompt, 16, 1);
    assert.deepEqual(theirs.tokens, ours.ids);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

// q is rounded against the f32 scale and decoded with the scale rounded to f16 (as llama.cpp does): half a step plus
// |q| times f16's relative rounding of the scale
test('Q8_0 and Q4_0 blocks decode to within half a step of each weight', () => {
  const r = rng(3);
  const x = Float32Array.from({ length: 32 * 8 }, () => (r() - 0.5) * 4);
  x[40] = 0; // a block with a zero still rounds the others
  const q8 = quantizeQ8_0(x);
  const q4 = quantizeQ4_0(x);
  for (let b = 0; b < 8; b++) {
    const d8 = f16ToF32(q8[b * 34] | (q8[b * 34 + 1] << 8));
    const d4 = f16ToF32(q4[b * 18] | (q4[b * 18 + 1] << 8));
    for (let j = 0; j < 32; j++) {
      const w = x[b * 32 + j];
      const v8 = d8 * ((q8[b * 34 + 2 + j] << 24) >> 24);
      const nib = j < 16 ? q4[b * 18 + 2 + j] & 15 : q4[b * 18 + 2 + j - 16] >> 4;
      const v4 = d4 * (nib - 8);
      assert.ok(Math.abs(v8 - w) <= Math.abs(d8) * (0.5 + 128 * 2 ** -11), `Q8_0 block ${b} weight ${j}: ${v8} for ${w}`);
      // Q4_0's levels are (q − 8)·d, q ∈ 0…15, d = −(the weight of largest magnitude) / 8: the other sign ends at 7d
      const within = Math.min(Math.max(w, Math.min(-8 * d4, 7 * d4)), Math.max(-8 * d4, 7 * d4));
      assert.ok(Math.abs(v4 - within) <= Math.abs(d4) * (0.5 + 9 * 2 ** -11), `Q4_0 block ${b} weight ${j}: ${v4} for ${w}`);
    }
  }
});
