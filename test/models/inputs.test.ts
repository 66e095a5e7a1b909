// A model's forward pass checks what its caller gives it before using any of it (models/inputs.ts): a ragged batch,
// an empty row, ids that are not rows, NaN or negative positions, a mask of the wrong length and options that are not
// an object are QkvErrors naming the argument — not a reshape error deep in a layer, a raw TypeError, NaN logits or
// (short positions, a short mask) a silent default.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ContiguousKVCache } from '../../src/cache/contiguous.js';
import type { CausalLM, EncoderModel, Seq2SeqLM } from '../../src/models/model.js';
import { loadCheckpoint } from '../../src/node/checkpoint.js';
import { randn, rng } from '../helpers.js';
import { GOLDEN_MODELS, TINY } from './helpers.js';

const bad = (f: () => unknown, re: RegExp) => assert.throws(f, (e: Error) => e.name === 'QkvError' && re.test(e.message), String(re));

test('a causal LM\'s forward: ids, positions, masks and options are checked first, each error naming the argument', () => {
  for (const [dir, what] of [[TINY, 'forward'], [join(GOLDEN_MODELS, 'gpt2'), 'GPT-2 forward']] as const) {
    const m = loadCheckpoint(dir, { tokenizer: false }).model as CausalLM;
    const f = (ids: unknown, o?: unknown) => () => m.forward(ids as number[][], o as {});
    bad(f([[1, 2], [3]]), new RegExp(`^${what}: ids: every row must hold the same number of tokens \\(at least 1\\), got rows of 2, 1$`));
    bad(f([[]]), /ids: every row must hold the same number of tokens \(at least 1\), got rows of 0/);
    bad(f([]), /ids must be a non-empty list of rows of token ids \(\[\[id, …\], …\]\), got \[\]/);
    bad(f('hi'), /ids must be a non-empty list of rows of token ids/);
    bad(f([[1, m.info.vocabSize]]), new RegExp(`ids row 0 must be a list of token ids \\(integers in \\[0, ${m.info.vocabSize}\\)\\)`));
    bad(f([[1, 2, 3]], null), /options must be an object, got null/);
    bad(f([[1, 2, 3]], { positionIds: [[0]] }), /positionIds must be 1 row\(s\) of 3 integers ≥ 0 \(one per new token\): row 0 holds 1/);
    bad(f([[1, 2, 3]], { positionIds: [[0, NaN, 2]] }), /positionIds .*: row 0\[1\] is NaN/);
    bad(f([[1, 2, 3]], { attentionMask: [[1]] }),
      /attentionMask must be 1 row\(s\) of 3 values 0 or 1 \(one per key: 0 cached \+ 3 new\): row 0 holds 1/);
    bad(f([[1, 2, 3]], { attentionMask: 'x' }), /attentionMask .*: got "x"/);
    bad(f([[1, 2, 3]], { cache: {} }), /cache must be a KV cache/);
    if (what === 'forward') { // the lab's ablations (Llama family)
      bad(f([[1, 2, 3]], { ablate: { heads: 'x' } }), /forward: ablate.heads must be a list of \{ layer, head \} integers, got "x"/);
      bad(f([[1, 2, 3]], { ablate: { slidingWindow: -3 } }), /forward: ablate.slidingWindow must be an integer ≥ 1, got -3/);
      bad(f([[1, 2, 3]], { ablate: { patch: { layer: 0, head: 0, weights: [1], size: 1 } } }), /forward: ablate.patch must be/);
    }
    // with a cache, the mask covers the cached keys too
    const cache = new ContiguousKVCache(m.info.numLayers);
    m.forward([[1, 2, 3]], { cache });
    bad(f([[4]], { cache, attentionMask: [[1]] }), /one per key: 3 cached \+ 1 new\): row 0 holds 1/);
    assert.equal(m.forward([[4]], { cache, attentionMask: [[1, 1, 1, 1]] }).logits.shape.join(), `1,1,${m.info.vocabSize}`);
  }
});

test('BERT, T5 and ViT: input ids, masks, token types, the encoder\'s output and pixels are checked the same way', () => {
  const bert = loadCheckpoint(join(GOLDEN_MODELS, 'bert'), { tokenizer: false }).model as EncoderModel;
  bad(() => bert.forward(null as never), /BERT forward: inputs must be an object \{ inputIds, … \}, got null/);
  bad(() => bert.forward({ inputIds: [[1, 2], [3]] }), /BERT forward: inputIds: every row must hold the same number of tokens/);
  bad(() => bert.forward({ inputIds: [[1, 2]], attentionMask: [[1, 2]] }), /BERT forward: attentionMask .*: row 0\[1\] is 2/);
  bad(() => bert.forward({ inputIds: [[1, 2]], tokenTypeIds: [[0]] }), /BERT forward: tokenTypeIds .*: row 0 holds 1/);
  const t5 = loadCheckpoint(join(GOLDEN_MODELS, 't5'), { tokenizer: false }).model as Seq2SeqLM;
  bad(() => t5.encode([[]]), /T5 encode: ids: every row must hold the same number of tokens/);
  bad(() => t5.encode([[1, 2]], [[1]]), /T5 encode: attentionMask must be 1 row\(s\) of 2 values 0 or 1/);
  const { hidden } = t5.encode([[1, 2, 3]]);
  bad(() => t5.decode([[0]], randn([1, 3, 5], rng(1))), /T5 decode: hidden must be the encoder's output \[1, S, \d+\], got \[1, 3, 5\]/);
  bad(() => t5.decode([[0]], hidden, { attentionMask: [[1, 1]] }),
    /T5 decode: attentionMask must be 1 row\(s\) of 3 .*one per encoder token/);
  bad(() => t5.decode([[0]], hidden, { cache: {} as never }), /T5 decode: cache must be a KV cache \(cache\/\*\.ts\), got /);
  assert.equal(t5.decode([[0]], hidden, { attentionMask: [[1, 1, 0]] }).logits.shape[1], 1);
  const vit = loadCheckpoint(join(GOLDEN_MODELS, 'vit'), { tokenizer: false }).model as EncoderModel;
  bad(() => vit.forward(null as never), /ViT: inputs must be an object \{ pixelValues \}, got null/);
  bad(() => vit.forward({ pixelValues: [1, 2] as never }), /ViT: pixelValues must be a Tensor, got \[1, 2\]/);
  const px = randn([1, 3, 32, 32], rng(2));
  (px.data as Float32Array)[5] = NaN;
  bad(() => vit.forward({ pixelValues: px }), /ViT: pixelValues hold a NaN or ±∞/);
});

test('600 forward calls with ids and options of any type: a result or a QkvError, never a raw TypeError or NaN logits', () => {
  const m = loadCheckpoint(TINY, { tokenizer: false }).model as CausalLM;
  const rand = rng(2031);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const values: unknown[] = [0, -1, 1.5, NaN, Infinity, 3, 1e9, 'x', '', null, undefined, true, false, [], [[]], [[1]], [[1, 2]],
    [[1], [2]], [[1, 2], [3]], [[NaN]], [[1e9]], [['a']], [[1, 0]], [[0, 1, 1]], [[-2, 0]], [1, 2], {}, () => 0, Symbol('s'), 10n,
    new ContiguousKVCache(m.info.numLayers), { store: () => 0, length: () => 0 }, { noScale: true }, { kvHeads: 'x' },
    { slidingWindow: -3 }, { kvHeads: 3 }, { noCausal: 1, noPositions: 'y' }, { heads: 'x' }, { heads: [{ layer: 0, head: 9 }] },
    { patch: { layer: 0, head: 0, weights: 'w', size: 2 } }];
  const keys = ['cache', 'positionIds', 'attentionMask', 'outputAttentions', 'outputQkv', 'lastOnly', 'ablate'];
  const findings = new Set<string>();
  for (let c = 0; c < 600; c++) {
    const ids = rand() < 0.5 ? pick(values) : [Array.from({ length: 1 + Math.floor(rand() * 3) }, () => Math.floor(rand() * 50))];
    const o = rand() < 0.2 ? pick(values) : Object.fromEntries(keys.filter(() => rand() < 0.3).map((k) => [k, pick(values)]));
    try {
      const { logits } = m.forward(ids as number[][], o as {});
      if (!logits.toFloat32().every(Number.isFinite)) findings.add(`NaN logits: ${String(ids)} ${JSON.stringify(o)}`);
    } catch (e) {
      if ((e as Error).name !== 'QkvError') findings.add(`${(e as Error).constructor.name}: ${(e as Error).message}`);
    }
  }
  assert.deepEqual([...findings].slice(0, 8), [], `${findings.size} raw errors`);
});
