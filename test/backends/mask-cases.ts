// Random attention calls with every mask and score modifier the WGSL kernels take as data, one per trial (0–11),
// for the f16 and tensor-core tests: GQA/MQA, odd head dims, key lengths, dense masks and biases, documents,
// prefix-LM, global tokens and block-sparse patterns (the last four self-attention: S = L).
import { alibiSlopes, Tensor, type AttentionOptions } from '../../src/index.js';
import { randint, randn } from '../helpers.js';

export const MASK_CASES = 12;

/** Trial `trial`'s f32 q [B, Hq, L, D], k [B, Hkv, S, D], v [B, Hkv, S, Dv] and its options. */
export function maskCase(trial: number, rand: () => number): { q: Tensor; k: Tensor; v: Tensor; options: AttentionOptions } {
  const Hkv = randint(rand, 1, 2);
  const Hq = Hkv * [1, 2, 4][trial % 3];
  const [B, L, D, Dv] = [randint(rand, 1, 2), randint(rand, 9, 70), randint(rand, 1, 40), randint(rand, 1, 24)];
  const S = trial >= 8 ? L : randint(rand, L, 90);
  const [q, k, v] = [randn([B, Hq, L, D], rand), randn([B, Hkv, S, D], rand), randn([B, Hkv, S, Dv], rand)];
  const options = [
    {}, { causal: 'bottom-right' }, { causal: 'top-left' }, { window: [5, 2] },
    { window: [9, 0], dilation: 2, softcap: 2 }, { keyLengths: Array.from({ length: B }, (_, b) => (b ? 3 : S)) },
    { causal: 'bottom-right', alibiSlopes: alibiSlopes(Hq), bias: randn([1, Hq, 1, S], rand) },
    { mask: Tensor.from(Array.from({ length: L * S }, (_, x) => ((x * 7) % 3 ? 1 : 0)), [L, S], 'bool') },
    { causal: true, cuSeqlens: [0, Math.floor(S / 3), S] }, { prefix: Math.floor(S / 2) },
    { window: [2, 2], globalTokens: [0, S - 1] }, { blockSparse: { blockSize: 4, windowBlocks: 1, globalBlocks: [0], randomBlocks: [2, 1] } },
  ][trial] as AttentionOptions;
  return { q, k, v, options };
}
