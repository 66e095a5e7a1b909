// Every mask type against a brute-force definition on random shapes (L ≠ S, GQA, empty rows), on every kernel,
// plus the soundness of tile classification (a skipped tile really has no allowed entry).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { alibiSlopes, attention, masks, Tensor, type AttentionOptions } from '../../../src/index.js';
import { assertClose, bruteAttention, randint, randn, rng, type BruteSpec } from '../../helpers.js';

type Keep = NonNullable<BruteSpec['keep']>;
interface Dims { B: number; Hq: number; Hkv: number; L: number; S: number; D: number; Dv: number }

/** Random sizes; `square` forces L = S. GQA ratios 1, 2, 3 or 4. */
function randomDims(rand: () => number, square = false): Dims {
  const Hkv = randint(rand, 1, 2);
  const L = randint(rand, 1, 40);
  return { B: randint(rand, 1, 2), Hq: Hkv * [1, 2, 3, 4][randint(rand, 0, 3)], Hkv, L, S: square ? L : randint(rand, 1, 40), D: randint(rand, 1, 20), Dv: randint(rand, 1, 12) };
}

/** Runs `options` on every kernel (random tiles and splits) and compares with the brute-force definition. */
function checkAll(name: string, seed: number, make: (d: Dims, rand: () => number) => { options: AttentionOptions; spec: BruteSpec }, square = false) {
  test(name, () => {
    for (let trial = 0; trial < 6; trial++) {
      const rand = rng(seed * 100 + trial);
      const d = randomDims(rand, square);
      const q = randn([d.B, d.Hq, d.L, d.D], rand);
      const k = randn([d.B, d.Hkv, d.S, d.D], rand);
      const v = randn([d.B, d.Hkv, d.S, d.Dv], rand);
      const { options, spec } = make(d, rand);
      const want = bruteAttention(q, k, v, { ...spec, scale: options.scale });
      for (const kernel of ['reference', 'flash', 'decode'] as const) {
        const r = attention(q, k, v, {
          ...options, kernel, returnWeights: true,
          blockM: randint(rand, 1, 9), blockN: randint(rand, 1, 11), numSplits: randint(rand, 1, 5),
        });
        const what = `${name} trial ${trial} ${kernel} ${JSON.stringify(d)}`;
        assertClose(r.out, want.out, 1e-5, 1e-4, `${what} out`);
        assertClose(r.lse, want.lse, 1e-5, 1e-4, `${what} lse`);
        assertClose(r.weights!, want.weights, 1e-6, 1e-4, `${what} weights`);
      }
    }
  });
}

const pos = (d: Dims, i: number) => i + d.S - d.L; // bottom-right aligned query position

describe('masks against their definitions', () => {
  checkAll('no mask', 1, () => ({ options: {}, spec: {} }));
  checkAll('explicit scale', 2, () => ({ options: { scale: 0.7 }, spec: {} }));
  checkAll('causal top-left', 3, () => ({ options: { causal: 'top-left' }, spec: { keep: (_b, _h, i, j) => j <= i } }));
  checkAll('causal true = top-left', 4, () => ({ options: { causal: true }, spec: { keep: (_b, _h, i, j) => j <= i } }));
  checkAll('causal bottom-right', 5, (d) => ({ options: { causal: 'bottom-right' }, spec: { keep: (_b, _h, i, j) => j <= pos(d, i) } }));
  checkAll('bool mask broadcast over heads', 6, (d, rand) => {
    const keep = Tensor.from(Array.from({ length: d.B * d.L * d.S }, () => (rand() < 0.6 ? 1 : 0)), [d.B, 1, d.L, d.S], 'bool');
    for (let j = 0; j < d.S; j++) keep.set(0, 0, 0, d.L - 1, j); // one fully masked row
    return { options: { mask: keep }, spec: { keep: (b, _h, i, j) => keep.get(b, 0, i, j) === 1 } };
  });
  checkAll('additive float mask broadcast over batch', 7, (d, rand) => {
    const bias = randn([1, d.Hq, d.L, d.S], rand, 3);
    return { options: { mask: bias }, spec: { mod: (s, _b, h, i, j) => s + bias.get(0, h, i, j) } };
  });
  checkAll('bias [L, S] broadcast', 8, (d, rand) => {
    const bias = randn([d.L, d.S], rand, 2);
    return { options: { bias }, spec: { mod: (s, _b, _h, i, j) => s + bias.get(i, j) } };
  });
  checkAll('key padding with an empty batch row', 9, (d, rand) => {
    const lengths = Array.from({ length: d.B }, (_, b) => (b === 0 ? 0 : randint(rand, 0, d.S)));
    return { options: { keyLengths: lengths }, spec: { keep: (b, _h, _i, j) => j < lengths[b] } };
  });
  checkAll('sliding window', 10, (d, rand) => {
    const [l, r] = [randint(rand, 0, 8), randint(rand, 0, 8)];
    return { options: { window: [l, r] }, spec: { keep: (_b, _h, i, j) => j >= pos(d, i) - l && j <= pos(d, i) + r } };
  });
  checkAll('dilated window', 11, (d, rand) => {
    const [l, dil] = [randint(rand, 0, 12), randint(rand, 1, 3)];
    return {
      options: { window: [l, 0], dilation: dil },
      spec: { keep: (_b, _h, i, j) => j >= pos(d, i) - l && j <= pos(d, i) && (pos(d, i) - j) % dil === 0 },
    };
  });
  checkAll('global tokens OR window', 12, (d, rand) => {
    const g = [...new Set([0, randint(rand, 0, d.S - 1)])];
    const w = randint(rand, 0, 3);
    const isG = (x: number) => g.includes(x);
    return {
      options: { window: [w, w], globalTokens: g },
      spec: { keep: (_b, _h, i, j) => Math.abs(pos(d, i) - j) <= w || isG(pos(d, i)) || isG(j) },
    };
  }, true);
  checkAll('block-sparse (BigBird)', 13, (d, rand) => {
    const bs = randint(rand, 1, 6);
    const nb = Math.ceil(d.S / bs);
    const random = Array.from({ length: nb }, () => randint(rand, 0, nb - 1));
    const keep: Keep = (_b, _h, i, j) => {
      const [qb, kb] = [Math.floor(pos(d, i) / bs), Math.floor(j / bs)];
      return Math.abs(qb - kb) <= 1 || qb === 0 || kb === 0 || random[qb] === kb;
    };
    return { options: { blockSparse: { blockSize: bs, windowBlocks: 1, globalBlocks: [0], randomBlocks: random } }, spec: { keep } };
  }, true);
  checkAll('packed documents (cu_seqlens) + causal', 14, (d, rand) => {
    const cuts = [...new Set([0, randint(rand, 0, d.S), randint(rand, 0, d.S), d.S])].sort((a, b) => a - b);
    const doc = (x: number) => cuts.filter((c) => c <= x).length;
    return { options: { cuSeqlens: cuts, causal: true }, spec: { keep: (_b, _h, i, j) => doc(i) === doc(j) && j <= i } };
  }, true);
  checkAll('prefix-LM', 15, (d, rand) => {
    const P = randint(rand, 0, d.S);
    return { options: { prefix: P }, spec: { keep: (_b, _h, i, j) => j < P || j <= pos(d, i) } };
  });
  checkAll('maskMod and scoreMod functions', 16, () => {
    const keep: Keep = (b, h, i, j) => (b + h + i * 3 + j) % 4 !== 0;
    const mod = (s: number, _b: number, h: number, i: number, j: number) => s * 0.5 + 0.1 * ((h + i + j) % 3);
    return { options: { maskMod: keep, scoreMod: mod }, spec: { keep, mod } };
  });
  checkAll('soft-capping + ALiBi + causal', 17, (d, rand) => {
    const c = 1 + rand() * 4;
    const slopes = alibiSlopes(d.Hq);
    return {
      options: { softcap: c, alibiSlopes: slopes, causal: 'bottom-right', scale: 2 },
      spec: {
        mod: (s, _b, h, i, j) => c * Math.tanh(s / c) - slopes[h] * Math.abs(pos(d, i) - j),
        keep: (_b, _h, i, j) => j <= pos(d, i),
      },
    };
  });
  checkAll('composition: causal AND window AND padding', 18, (d, rand) => {
    const w = randint(rand, 0, 6);
    const lengths = Array.from({ length: d.B }, () => randint(rand, 0, d.S));
    return {
      options: { causal: 'bottom-right', window: [w, 3], keyLengths: lengths },
      spec: { keep: (b, _h, i, j) => j <= pos(d, i) && j >= pos(d, i) - w && j < lengths[b] },
    };
  });
  checkAll('composition: masks.or / masks.and specs', 19, (d) => ({
    options: { mask: masks.and(masks.or(masks.causal('bottom-right'), masks.prefixLM(Math.min(3, d.S))), masks.maskMod((_b, h) => h % 2 === 0)) },
    spec: { keep: (_b, h, i, j) => (j <= pos(d, i) || j < Math.min(3, d.S)) && h % 2 === 0 },
  }));
});

describe('tile classification is sound', () => {
  test('TILE_NONE tiles hold no allowed entry, TILE_ALL tiles hold only allowed ones', () => {
    const rand = rng(77);
    const dims = { B: 2, Hq: 2, L: 37, S: 41 };
    const specs = [
      masks.causal('top-left'), masks.causal('bottom-right'), masks.slidingWindow(5, 2), masks.slidingWindow(9, 0, 2),
      masks.globalTokens([0, 20]), masks.blockSparse({ blockSize: 4, windowBlocks: 1, globalBlocks: [1], randomBlocks: [3, 0, 7] }),
      masks.prefixLM(6), masks.keyPadding([41, 13]),
      masks.or(masks.slidingWindow(3, 3), masks.globalTokens([5])), masks.and(masks.causal('bottom-right'), masks.slidingWindow(8, 0)),
    ];
    for (const spec of specs) {
      const m = spec.build(dims);
      for (let t = 0; t < 400; t++) {
        const [b, h] = [randint(rand, 0, 1), randint(rand, 0, 1)];
        const i0 = randint(rand, 0, dims.L - 1);
        const i1 = randint(rand, i0 + 1, dims.L);
        const j0 = randint(rand, 0, dims.S - 1);
        const j1 = randint(rand, j0 + 1, dims.S);
        const state = m.tile(b, h, i0, i1, j0, j1);
        let any = false;
        let all = true;
        for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) { const a = m.allows(b, h, i, j); any ||= a; all &&= a; }
        if (state === masks.TILE_NONE) assert.ok(!any, `${m.name}: tile [${i0},${i1})×[${j0},${j1}) said none`);
        if (state === masks.TILE_ALL) assert.ok(all, `${m.name}: tile [${i0},${i1})×[${j0},${j1}) said all`);
      }
    }
  });

  test('documents: tiles inside one document are ALL, across documents NONE', () => {
    const m = masks.documents([0, 8, 8, 20]).build({ B: 1, Hq: 1, L: 20, S: 20 });
    assert.equal(m.tile(0, 0, 0, 8, 0, 8), masks.TILE_ALL);
    assert.equal(m.tile(0, 0, 8, 20, 0, 8), masks.TILE_NONE);
    assert.equal(m.tile(0, 0, 4, 12, 0, 8), masks.TILE_SOME);
  });
});
