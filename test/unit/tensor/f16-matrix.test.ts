// F16Matrix (src/tensor/f16-matrix.ts): an f16 weight scaled by 2^10 in place so that the WebAssembly kernel never
// multiplies a subnormal. The scaling must be exact for every finite f16 below 64 (and undone exactly), the products
// must be the same bits as with the stored f16 on every path (decode, prefill panel, column tail, gated, TypeScript),
// and a model loaded from an f16 checkpoint must give the same logits as the same weights held as plain tensors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildModel, embedding, F16Matrix, f16ToF32, gatedLinear, linear, setKernelThreads, Tensor, Weights,
  type CausalLM, type EncoderModel, type HfConfig, type Seq2SeqLM,
} from '../../../src/index.js';
import { setResidentLimit } from '../../../src/kernels/wasm/runtime.js';
import { kernelMatrix, scaleF16 } from '../../../src/kernels/wasm/storage.js';
import { loadCheckpoint } from '../../../src/node/checkpoint.js';
import { readSafetensors, writeSafetensors } from '../../../src/node/files.js';
import { ROOT, TINY } from '../../models/helpers.js';
import { randn, rng } from '../../helpers.js';

// every finite f16 below 64 in magnitude, both signs (0x0000 … 0x53ff: exponent field ≤ 20)
function allBelow64(): Uint16Array {
  const h = new Uint16Array(2 * 0x5400);
  for (let i = 0; i < 0x5400; i++) [h[2 * i], h[2 * i + 1]] = [i, i | 0x8000];
  return h;
}

// an f16 tensor in the kernel's memory, as the checkpoint loader places a matrix
function placed(bits: Uint16Array, shape: [number, number]): Tensor {
  const room = kernelMatrix('float16', bits.length) as Uint16Array;
  room.set(bits);
  return new Tensor('float16', room, shape);
}

test('scaleInPlace: every finite f16 below 64 becomes w · 2^10 exactly, none subnormal; unscaled() and row() undo it', () => {
  // the WebAssembly job (in the kernels' memory), the loop over an aligned array (two f16 a word) and over one two bytes
  // off (one at a time), with an odd count
  const cases: [Uint16Array, boolean][] = [[allBelow64(), true], [allBelow64(), false], [allBelow64().subarray(1, 1 + 17 * 1279), false]];
  for (const [orig, inKernel] of cases) {
    const cols = orig.byteOffset ? 1279 : 64;
    const data = new Uint16Array(orig.length + 1).subarray(orig.byteOffset ? 1 : 0, orig.byteOffset ? undefined : orig.length);
    data.set(orig);
    const t = inKernel ? placed(orig, [orig.length / cols, cols]) : new Tensor('float16', data, [orig.length / cols, cols]);
    const m = F16Matrix.scaleInPlace(t, inKernel ? (h) => scaleF16(h) ?? assert.fail('the job takes a kernel matrix') : undefined)!;
    assert.ok(m instanceof F16Matrix && m.h === t.data, 'scaled where it lies');
    for (let i = 0; i < orig.length; i++) {
      const [w, s] = [f16ToF32(orig[i]), f16ToF32(m.h[i])];
      assert.ok(Object.is(s, w * 1024), `bits ${orig[i].toString(16)}: ${w} · 2^10 = ${w * 1024}, got ${s}`);
      assert.ok((m.h[i] & 0x7fff) === 0 || (m.h[i] & 0x7c00) !== 0, `bits ${orig[i].toString(16)} still subnormal`);
    }
    assert.deepEqual(m.unscaled(), orig.slice());
    const rows = m.dequantize().toFloat32();
    for (let i = 0; i < orig.length; i++) assert.ok(Object.is(rows[i], f16ToF32(orig[i])), `row value ${i}`);
  }
});

test('scaleInPlace leaves the tensor as it was when some |w| ≥ 64 (or ±∞, NaN) would not fit', () => {
  const normal = Uint16Array.from({ length: 64 }, (_, i) => 0x3c00 + i); // 1 … 1.06, none subnormal
  for (const [bad, at] of [[0x5400 /* 64 */, 8], [0xd7ff, 9], [0x7c00, 63], [0x7e00, 30]]) {
    const bits = Uint16Array.from(normal, (v, i) => (i === 1 ? 0x0001 : i === at ? bad : v));
    for (const t of [new Tensor('float16', bits.slice(), [4, 16]), placed(bits, [4, 16])]) {
      assert.equal(F16Matrix.scaleInPlace(t, scaleF16), null, `with ${bad.toString(16)}`);
      assert.deepEqual(t.data, bits);
    }
  }
  assert.throws(() => F16Matrix.scaleInPlace(Tensor.from(new Float32Array(4), [2, 2])),
    /needs a contiguous 2-D float16 tensor, got float32 \[2, 2\]/);
});

test('products with f16 weights scaled or not are the same bits: decode, prefill, column tail, gated (even mixed), TypeScript', () => {
  const rand = rng(21);
  for (const threads of [1, 2]) {
    setKernelThreads(threads);
    for (const [M, K, N] of [[1, 64, 40], [1, 576, 38], [3, 64, 41], [8, 128, 36], [1, 12, 9], [2, 20, 7]]) {
      // weights of about 2^−9 so that a good share are subnormal (< 2^−14) in f16
      const bits = () => randn([N, K], rand, 0.002).to('float16').data as Uint16Array;
      const [wBits, gBits] = [bits(), bits()];
      const stored = (bits: Uint16Array) => new Tensor('float16', bits.slice(), [N, K]);
      const scaled = (bits: Uint16Array) => F16Matrix.scaleInPlace(stored(bits))!;
      const x = randn([M, K], rand);
      const what = `M=${M} K=${K} N=${N} threads ${threads}`;
      // the resident limit at 0: every weight is copied in for its call, a stored f16 as it is (shift 0), an F16Matrix
      // scaled (shift 10) — one product with each, a gated job with both scaled, neither, and one of each
      const limit = setResidentLimit(0);
      let asStored: Float32Array, gated: Float32Array;
      try {
        asStored = linear(x, stored(wBits)).toFloat32();
        assert.deepEqual(linear(x, scaled(wBits)).toFloat32(), asStored, what);
        gated = gatedLinear(x, stored(gBits), stored(wBits), 'silu').toFloat32();
        assert.deepEqual(gatedLinear(x, scaled(gBits), scaled(wBits), 'silu').toFloat32(), gated, `gated ${what}`);
        assert.deepEqual(gatedLinear(x, stored(gBits), scaled(wBits), 'silu').toFloat32(), gated, `mixed gated ${what}`);
      } finally {
        setResidentLimit(limit);
      }
      // resident: a stored f16's copy in the kernels' memory is scaled there
      assert.deepEqual(linear(x, stored(wBits)).toFloat32(), asStored, `resident ${what}`);
      assert.deepEqual(gatedLinear(x, stored(gBits), scaled(wBits), 'silu').toFloat32(), gated, `resident gated ${what}`);
    }
  }
  setKernelThreads(1);
});

test('Weights: an f16 matrix in the kernel\'s memory becomes an F16Matrix once; plain arrays stay tensors', () => {
  const rand = rng(22);
  const w = randn([48, 64], rand, 0.002).to('float16');
  const bits = w.data as Uint16Array;
  const weights = new Weights(new Map([['a.weight', placed(bits, [48, 64])], ['e.weight', placed(bits, [48, 64])],
    ['b.weight', w]]), 'test');
  const a = weights.matrix('a.weight', [48, 64]);
  assert.ok(a instanceof F16Matrix);
  assert.equal(weights.has('a.weight'), false, 'the stored tensor left the map: its storage is the F16Matrix\'s');
  assert.ok(weights.matrix('b.weight', [48, 64]) instanceof Tensor, 'an array the loader did not place is never rewritten');
  assert.deepEqual(w.data, bits);
  // a tied table: the output projection and the lookup share one F16Matrix, scaled once
  const table = weights.table('e.weight', [48, 64]);
  const head = weights.asFormat(table);
  assert.equal(weights.asFormat(table), head, 'asked again: the same form, not scaled twice');
  assert.equal(weights.embeddingTable('e.weight', table), head);
  assert.deepEqual(embedding(head, [5, 0]).toFloat32(), embedding(w, [5, 0]).toFloat32());
});

test('an f16 checkpoint loads as F16Matrix weights and gives the same logits as its tensors held as plain arrays', () => {
  // qkv-tiny's trained weights rounded to f16 (about 0.1% of them subnormal)
  const stored = readSafetensors(join(TINY, 'model.safetensors')).tensors;
  const tensors = new Map([...stored].map(([name, t]) => [name, t.to('float16')] as const));
  const dir = mkdtempSync(join(tmpdir(), 'qkv-f16-'));
  try {
    const config = JSON.parse(readFileSync(join(TINY, 'config.json'), 'utf8')) as HfConfig;
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    writeSafetensors(join(dir, 'model.safetensors'), tensors);
    const loaded = loadCheckpoint(dir, { tokenizer: false }).model as CausalLM;
    const plain = buildModel(config, new Weights(tensors, 'plain')) as CausalLM;
    assert.ok((loaded as unknown as { lmHead: unknown }).lmHead instanceof F16Matrix, 'the loaded model holds F16Matrix weights');
    const ids = [[1, 17, 300, 42, 9, 77, 5]];
    assert.deepEqual(loaded.forward(ids).logits.toFloat32(), plain.forward(ids).logits.toFloat32());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every golden family in f16: loaded (F16Matrix) and held as plain tensors give the same outputs', () => {
  // the golden checkpoints' weights rounded to f16, written as a checkpoint: the loader's kernel-memory path (weights
  // scaled in place, tied tables shared, stored tensors dropped) against the same tensors built from memory
  const dirs = ['golden', 'golden-frontier'].flatMap((set) => {
    const root = join(ROOT, 'test', set, 'models');
    return readdirSync(root).filter((d) => existsSync(join(root, d, 'config.json'))).map((d) => join(root, d));
  });
  assert.ok(dirs.length >= 15, `golden families found: ${dirs.length}`);
  let scaled = 0;
  for (const src of dirs) {
    const config = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8')) as HfConfig;
    const f16 = (t: Tensor) => (t.dtype === 'float32' || t.dtype === 'bfloat16' ? t.to('float16') : t);
    const tensors = new Map([...readSafetensors(join(src, 'model.safetensors')).tensors].map(([n, t]) => [n, f16(t)] as const));
    const dir = mkdtempSync(join(tmpdir(), 'qkv-f16-family-'));
    try {
      writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
      writeSafetensors(join(dir, 'model.safetensors'), tensors);
      const ck = loadCheckpoint(dir, { tokenizer: false });
      const plain = buildModel(config, new Weights(new Map(tensors), 'plain'));
      if ((ck.model as unknown as { lmHead?: unknown }).lmHead instanceof F16Matrix) scaled++;
      const ids = [[1, 7, 3, 12, 5]];
      const what = src.slice(ROOT.length);
      if (ck.model.kind === 'causal-lm') {
        assert.deepEqual(ck.model.forward(ids).logits.toFloat32(), (plain as CausalLM).forward(ids).logits.toFloat32(), what);
      } else if (ck.model.kind === 'seq2seq') {
        const [a, b] = [ck.model, plain as Seq2SeqLM];
        const start = [[a.info.decoderStartTokenId, 4]];
        const logits = (m: Seq2SeqLM) => m.decode(start, m.encode(ids).hidden).logits.toFloat32();
        assert.deepEqual(logits(a), logits(b), what);
      } else if (config.model_type !== 'vit') {
        const out = (m: EncoderModel) => m.forward({ inputIds: ids }).lastHiddenState.toFloat32();
        assert.deepEqual(out(ck.model), out(plain as EncoderModel), what);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  assert.ok(scaled >= 12, `families whose output projection is an F16Matrix: ${scaled} of ${dirs.length}`);
});
