// Checks shared by the f16 and the tensor-core tests. checkF16Cache: a float16 GpuKVCache against the definition — steps of new tokens
// (a prompt, then decode steps; the cache grows by copies on the way) attend through the cache, and each step's
// output must equal attention on the CPU over every key so far, with q, k and v rounded to f16 as the cache rounds
// them (then computed in f32), to `bound` (absolute, given the values' scale) plus half an f16 step of the output.
import assert from 'node:assert/strict';
import { attention, Tensor } from '../../src/index.js';
import { GpuKVCache } from '../../src/cache/webgpu.js';
import { attentionOverGpuCache } from '../../src/attention/webgpu.js';
import { GpuTensor } from '../../src/kernels/webgpu/gpu-tensor.js';
import { readIndex, runConformanceWebGPU } from '../../src/node/conformance.js';
import { assertClose, GOLDEN, randn, rng } from '../helpers.js';

const HALF_STEP = 2 ** -11;
const toF16 = (t: Tensor) => t.to('float16').to('float32');

// [H, A, D] and [H, B, D] → [H, A + B, D]
function catRows(a: Tensor, b: Tensor): Tensor {
  const [H, A, D] = a.shape;
  const B = b.shape[1];
  const out = new Float32Array(H * (A + B) * D);
  const [x, y] = [a.toFloat32(), b.toFloat32()];
  for (let h = 0; h < H; h++) {
    out.set(x.subarray(h * A * D, (h + 1) * A * D), h * (A + B) * D);
    out.set(y.subarray(h * B * D, (h + 1) * B * D), (h * (A + B) + A) * D);
  }
  return Tensor.from(out, [H, A + B, D]);
}

/** Runs the steps; `bound(maxAbsV)` is the absolute tolerance of an output element before its own f16 rounding. */
export async function checkF16Cache(device: GPUDevice, bound: (maxAbsV: number) => number, seed: number): Promise<void> {
  const rand = rng(seed);
  for (const { Hq, Hkv, D, window, softcap, steps } of [
    { Hq: 4, Hkv: 2, D: 32, window: null, softcap: 0, steps: [40, 1, 1, 12, 1] },
    { Hq: 2, Hkv: 2, D: 64, window: 20, softcap: 4, steps: [70, 1, 30] },
  ]) {
    const cache = new GpuKVCache(device, 1, 16, 'float16');
    let keys: Tensor | null = null;
    let values: Tensor | null = null;
    const scale = 1 / Math.sqrt(D);
    for (const T of steps) {
      const [q, k, v] = [randn([T, Hq, D], rand), randn([T, Hkv, D], rand), randn([T, Hkv, D], rand)];
      const up = (t: Tensor) => GpuTensor.upload(device, t.toFloat32(), t.shape);
      const [gq, gk, gv] = [up(q), up(k), up(v)];
      const out = await attentionOverGpuCache(cache, 0, { q: gq, k: gk, v: gv, scale, slidingWindow: window, softcap });
      const got = Tensor.from(await out.read(), [T, Hq * D]);
      for (const t of [gq, gk, gv, out]) t.release();
      // the definition: [1, H, positions, D] layouts, every key so far, bottom-right causal (+ the window)
      const heads = (t: Tensor) => toF16(t).permute([1, 0, 2]).contiguous(); // [H, T, D]
      keys = keys ? catRows(keys, heads(k)) : heads(k);
      values = values ? catRows(values, heads(v)) : heads(v);
      const batch = (t: Tensor) => t.reshape([1, ...t.shape]);
      const ref = attention(batch(heads(q)), batch(keys), batch(values), { causal: 'bottom-right', scale, window: window ? [window - 1, 0] : undefined, softcap: softcap || undefined, kernel: 'reference' });
      const expected = ref.out.reshape([Hq, T, D]).permute([1, 0, 2]).contiguous().reshape([T, Hq * D]);
      const maxV = values.toFloat32().reduce((a, x) => Math.max(a, Math.abs(x)), 0);
      assertClose(got, expected, bound(maxV) + 1e-4, HALF_STEP, `f16 cache, Hq ${Hq} D ${D} window ${window}, step of ${T} (${cache.length(0)} cached)`);
    }
    assert.equal(cache.length(0), steps.reduce((a, b) => a + b, 0));
    cache.release();
  }
}

/** Every golden forward sdpa case passes `conformance --device webgpu --dtype f16`; the skip reason without golden data. */
export async function checkGoldenF16(): Promise<string | null> {
  const results = await runConformanceWebGPU(GOLDEN, undefined, 'float16');
  const forward = readIndex(GOLDEN).cases.filter((c) => c.op === 'sdpa').map((c) => c.file);
  assert.ok(forward.length >= 23);
  for (const f of forward) { const r = results.find((x) => x.file === f); assert.equal(r?.status, 'pass', `${f}: ${r?.detail}`); }
  return null;
}
