// The tensor-core FlashAttention kernel (sdpa-flash-matrix.wgsl: Q·Kᵀ and P·V on subgroup matrices, f16 × f16 → f32)
// against exact attention on the same f16 values, with every mask and score modifier, GQA, odd head dims and calls
// that cross many tiles. Needs an adapter with chromium-experimental-subgroup-matrix: a GPU, or — on a machine without
// one — Mesa ≥ 25.1's lavapipe (VK_KHR_cooperative_matrix, 8×8×8 on the CPU), which scripts/vulkan-sysroot.sh
// unpacks with the glibc it needs (.ci/run does); this file then runs itself again under that sysroot's loader.
// Skips with the reason when there is neither.
//
// Tolerance, from the algorithm: S = q·k is exact in f32 (f16 products are exact, sums in f32), but P is rounded to
// f16 (relative 2^−11) before P·V, and l sums those rounded values — so o is an exact weighted mean of v whose weights
// moved by at most 2·2^−11 relative: |Δo| ≤ 2^−10 · max|v|; then o is rounded to f16 once more (2^−11 relative), and
// lse = m + log l moves by at most 2^−11.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { attention, attentionWebGPU, Tensor, type AttentionOptions } from '../../src/index.js';
import { gpuDevice, matrixConfig } from '../../src/kernels/webgpu/device.js';
import { matrixPlan, matrixShader, planBytes } from '../../src/kernels/webgpu/sdpa-flash-matrix.js';
import { tensorCorePlan } from '../../src/kernels/webgpu/sdpa-flash.js';
import { useDawn } from '../../src/node/webgpu.js';
import { assertClose, randn, rng } from '../helpers.js';
import { checkF16Cache, checkGoldenF16 } from './f16-checks.js';
import { MASK_CASES, maskCase } from './mask-cases.js';
import { assertSame, poisonCases } from '../differential/non-finite-cases.js';

const HALF_STEP = 2 ** -11;
const here = fileURLToPath(import.meta.url);
const repo = join(here, '..', '..', '..', '..'); // dist/test/backends/x.js → the repository
const sysroot = process.env.QKV_VULKAN_SYSROOT ?? join(repo, '.cache', 'vulkan-sysroot');
const inSysroot = process.env.QKV_IN_VULKAN_SYSROOT === '1';

// the plan is plain arithmetic: checked everywhere
test('the tile plan fits the device: workgroup memory and invocations within its limits, whole matrices', () => {
  const h100 = { M: 16, N: 16, K: 16, lanes: 32 };
  for (const [D, Dv] of [[64, 64], [128, 128], [256, 256], [80, 40], [1, 3]]) {
    for (const limits of [{ maxComputeWorkgroupStorageSize: 49152, maxComputeInvocationsPerWorkgroup: 1024 }, { maxComputeWorkgroupStorageSize: 16384, maxComputeInvocationsPerWorkgroup: 64 }]) {
      const p = matrixPlan(h100, D, Dv, limits);
      if (!p) { assert.ok(planBytes({ cfg: h100, subgroups: 1, blockN: 16, DP: Math.ceil(D / 16) * 16, DVP: Math.ceil(Dv / 16) * 16 }) > limits.maxComputeWorkgroupStorageSize, `D ${D}: no plan though the smallest fits`); continue; }
      assert.ok(planBytes(p) <= limits.maxComputeWorkgroupStorageSize, `D ${D}: ${planBytes(p)} bytes`);
      assert.ok(p.subgroups * 32 <= limits.maxComputeInvocationsPerWorkgroup);
      assert.ok(p.blockN % 16 === 0 && p.blockN >= 16 && p.DP % 16 === 0 && p.DP >= D && p.DVP >= Dv);
    }
  }
  assert.equal(matrixPlan(h100, 256, 256, { maxComputeWorkgroupStorageSize: 8192, maxComputeInvocationsPerWorkgroup: 1024 }), null);
  // other shapes: Intel-like 8×16×16 on 16 lanes (key tiles whole in both SN and SK); rows > lanes has no plan
  const intel = matrixPlan({ M: 8, N: 16, K: 16, lanes: 16 }, 128, 128, { maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 1024 });
  assert.ok(intel && intel.blockN % 16 === 0 && planBytes(intel) <= 32768);
  assert.equal(matrixPlan({ M: 16, N: 16, K: 16, lanes: 8 }, 64, 64, { maxComputeWorkgroupStorageSize: 65536, maxComputeInvocationsPerWorkgroup: 1024 }), null);
  // tiles asked for (blockM × blockN): taken when they fit, refused with the reason when they do not
  const big = { maxComputeWorkgroupStorageSize: 49152, maxComputeInvocationsPerWorkgroup: 1024 };
  const p = matrixPlan(h100, 128, 128, big, { blockM: 32, blockN: 32 });
  assert.deepEqual([p?.subgroups, p?.blockN], [2, 32]);
  assert.equal(matrixPlan(h100, 64, 64, big, { blockN: 64 })?.blockN, 64);
  assert.throws(() => matrixPlan(h100, 64, 64, big, { blockM: 24 }), /multiple of their 16 rows/);
  assert.throws(() => matrixPlan(h100, 64, 64, big, { blockN: 20 }), /multiple of 16/);
  assert.throws(() => matrixPlan(h100, 256, 256, big, { blockM: 64, blockN: 64 }), /do not fit/);
});

let device: GPUDevice | null = null;
if (await useDawn('vulkan')) device = await gpuDevice();
const cfg = device ? matrixConfig(device) : null;

if (!cfg && !inSysroot && existsSync(join(sysroot, 'lvp_icd.json'))) {
  // no matrix units in this process's Vulkan: run this file again under the sysroot's loader, with its lavapipe
  test('the tensor-core tests, run under Mesa lavapipe with cooperative matrices (scripts/vulkan-sysroot.sh)', () => {
    const lib = join(sysroot, 'usr', 'lib', 'x86_64-linux-gnu');
    const { NODE_TEST_CONTEXT: _runner, ...env } = process.env; // the child reports in TAP on its stdout, not to this runner
    const r = spawnSync(join(lib, 'ld-linux-x86-64.so.2'), ['--library-path', lib, process.execPath, '--test-reporter=tap', here], {
      env: { ...env, QKV_IN_VULKAN_SYSROOT: '1', VK_DRIVER_FILES: join(sysroot, 'lvp_icd.json') }, encoding: 'utf8', timeout: 20 * 60_000,
    });
    const output = `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').filter((x) => !x.includes('artificially reduced')).join('\n');
    assert.equal(r.status, 0, `the tensor-core tests failed under ${sysroot}:\n${output}`);
    assert.match(output, /# pass [1-9]/, `no tensor-core test ran:\n${output}`);
    assert.match(output, /# skipped 0/, `a tensor-core test skipped:\n${output}`);
  });
} else {
  const skip = cfg ? false : 'no adapter with subgroup matrices (f16 → f32): a GPU, or scripts/vulkan-sysroot.sh for Mesa lavapipe';
  const f16 = (t: Tensor) => t.to('float16');
  const maxAbs = (t: Tensor) => t.toFloat32().reduce((a, x) => Math.max(a, Math.abs(x)), 0);

  // runs one call on the tensor cores and checks it against exact attention on the same f16 values
  async function check(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions, what: string): Promise<void> {
    assert.ok(tensorCorePlan(device!, q.shape[3], v.shape[3]), `${what}: the tensor-core kernel has no plan`);
    const gpu = await attentionWebGPU(q, k, v, options);
    assert.equal(gpu.device, 'webgpu');
    assert.equal(gpu.out.dtype, 'float16');
    const exact = attention(q.to('float32'), k.to('float32'), v.to('float32'), { ...options, kernel: 'reference' });
    assertClose(gpu.out, exact.out, 2 ** -10 * maxAbs(v) + 1e-4, HALF_STEP, `${what} out`);
    assertClose(gpu.lse, exact.lse, HALF_STEP + 1e-4, 1e-6, `${what} lse`);
  }

  test(`tensor-core flash attention equals exact attention on the same f16 values, with every mask and score modifier (${cfg ? `${cfg.M}×${cfg.N}×${cfg.K}, ${cfg.lanes} lanes` : 'none'})`, { skip }, async () => {
    for (let trial = 0; trial < MASK_CASES; trial++) {
      const c = maskCase(trial, rng(1300 + trial));
      const [q, k, v, options] = [f16(c.q), f16(c.k), f16(c.v), c.options];
      await check(q, k, v, options, `trial ${trial} ${JSON.stringify(options)}`);
    }
  });

  test('tensor-core flash attention: NaN and +∞ scores make their rows NaN, as on the CPU', { skip }, async () => {
    for (const c of poisonCases([[40, 40], [9, 70]])) {
      assert.ok(tensorCorePlan(device!, 8, 8), 'the tensor-core kernel has no plan');
      const gpu = await attentionWebGPU(f16(c.q), f16(c.k), f16(c.v), c.opts);
      assertSame(gpu.out.toFloat32(), c.want.out, `${c.name} out`, null);
      assertSame(gpu.lse.toFloat32(), c.want.lse, `${c.name} lse`, null);
    }
  });

  test('tensor-core flash attention: head dims 64 and 128, calls across many key tiles and workgroups, GQA', { skip }, async () => {
    const rand = rng(1400);
    for (const [B, Hq, Hkv, L, S, D, options] of [
      [1, 4, 2, 300, 300, 64, { causal: true }], [1, 2, 1, 129, 257, 128, {}], [2, 2, 2, 65, 65, 128, { window: [20, 0], softcap: 5 }],
    ] as [number, number, number, number, number, number, AttentionOptions][]) {
      const [q, k, v] = [f16(randn([B, Hq, L, D], rand)), f16(randn([B, Hkv, S, D], rand)), f16(randn([B, Hkv, S, D], rand))];
      await check(q, k, v, options, `B ${B} Hq ${Hq} Hkv ${Hkv} L ${L} S ${S} D ${D} ${JSON.stringify(options)}`);
    }
  });

  test('tensor-core flash attention with the tiles asked for (blockM × blockN)', { skip }, async () => {
    const rand = rng(1450);
    const [q, k, v] = [f16(randn([1, 2, 45, 24], rand)), f16(randn([1, 2, 77, 24], rand)), f16(randn([1, 2, 77, 24], rand))];
    for (const [blockM, blockN] of [[cfg!.M, 2 * cfg!.N], [2 * cfg!.M, 4 * cfg!.N], [4 * cfg!.M, undefined]]) {
      const plan = tensorCorePlan(device!, 24, 24, { blockM, blockN });
      assert.equal(plan!.subgroups * cfg!.M, blockM);
      if (blockN !== undefined) assert.equal(plan!.blockN, blockN);
      await check(q, k, v, { causal: true, blockM, blockN }, `blockM ${blockM} blockN ${blockN}`);
    }
  });

  test('tensor-core flash attention: a row with no allowed key gives o = 0 and lse = −∞, as on the CPU', { skip }, async () => {
    const rand = rng(1500);
    const [q, k, v] = [f16(randn([1, 1, 20, 16], rand)), f16(randn([1, 1, 30, 16], rand)), f16(randn([1, 1, 30, 16], rand))];
    const keep = Tensor.from(Array.from({ length: 20 * 30 }, (_, x) => (Math.floor(x / 30) === 7 ? 0 : 1)), [20, 30], 'bool');
    const gpu = await attentionWebGPU(q, k, v, { mask: keep });
    assert.deepEqual([...gpu.out.toFloat32().slice(7 * 16, 8 * 16)], Array(16).fill(0));
    assert.equal(gpu.lse.toFloat32()[7], -Infinity);
    await check(q, k, v, { mask: keep }, 'one masked row');
  });

  test('a float16 GpuKVCache runs its prompts on the tensor cores: each step equals attention over f16-rounded q, k, v', { skip }, async () => {
    assert.ok(tensorCorePlan(device!, 64, 64));
    await checkF16Cache(device!, (maxV) => 2 ** -10 * maxV, 1550); // P rounded to f16: |Δo| ≤ 2^−10 · max|v|
  });

  test('every golden sdpa case, with q, k, v rounded to f16, passes on the tensor cores (conformance --dtype f16)', { skip }, async (t) => {
    const why = await checkGoldenF16();
    if (why) t.skip(why);
  });

  test("the NVIDIA variants (16×16×16 on 32 lanes) of the tensor-core shader pass Dawn's WGSL checks", { skip }, async () => {
    // this device refuses their pipelines (it has another matrix shape), but the shader text, types and uniformity
    // are checked here for every plan an H100 gets, before one is lent
    const nvidia = { M: 16, N: 16, K: 16, lanes: 32 };
    for (const [D, Dv] of [[64, 64], [128, 128], [256, 256], [80, 48], [1, 3]]) {
      for (const storage of [32768, 49152]) {
        const plan = matrixPlan(nvidia, D, Dv, { maxComputeWorkgroupStorageSize: storage, maxComputeInvocationsPerWorkgroup: 1024 });
        if (!plan) continue;
        const info = await device!.createShaderModule({ code: matrixShader(plan) }).getCompilationInfo();
        const errors = info.messages.filter((m) => m.type !== 'info').map((m) => `${m.lineNum}:${m.linePos} ${m.message}`);
        assert.deepEqual(errors, [], `D ${D}, Dv ${Dv}, ${storage} bytes: ${JSON.stringify(plan)}`);
      }
    }
  });

  test("kernel: 'flash' keeps f16 on the plain WGSL kernel; the tensor-core kernel's f16 P gives other bits", { skip }, async () => {
    const rand = rng(1600);
    const [q, k, v] = [f16(randn([1, 2, 40, 32], rand)), f16(randn([1, 2, 50, 32], rand)), f16(randn([1, 2, 50, 32], rand))];
    const plain = (await attentionWebGPU(q, k, v, { kernel: 'flash' })).out.toFloat32();
    const cores = (await attentionWebGPU(q, k, v, {})).out.toFloat32();
    assert.ok(plain.some((x, n) => x !== cores[n]), 'the default f16 call did not run on the tensor cores');
    assertClose(cores, plain, 2 ** -10 * maxAbs(v) + 1e-4, 2 * HALF_STEP, 'tensor cores vs plain');
  });
}
