// The two builds of the WebAssembly kernels (kernels/wasm/runtime.ts): relaxed SIMD (fused multiply-add) where the
// engine has it, SIMD128 everywhere else. Both pass the whole golden conformance run and the random-shape differential
// suite (each in its own process: the build is chosen once per process), and each process says which ran.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { setKernelVariant, kernelVariant } from '../../../src/index.js';
import { ROOT_DIR } from '../../helpers.js';

const DIST = join(ROOT_DIR, 'dist');
// a child of its own: without NODE_TEST_CONTEXT a `--test` child reports in TAP, not to this runner
const run = (args: string[], env: Record<string, string>) => {
  const { NODE_TEST_CONTEXT: _, ...parent } = process.env;
  return spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...parent, ...env }, timeout: 600_000 });
};

for (const variant of ['relaxed-simd', 'simd128'] as const) {
  test(`${variant}: every golden case passes, and the run says which kernels ran`, () => {
    const r = run([join(DIST, 'src', 'node', 'conformance-cli.js'), join(ROOT_DIR, 'test', 'golden')], { QKV_WASM_SIMD: variant });
    assert.equal(r.status, 0, r.stdout.slice(-2000) + r.stderr);
    assert.match(r.stdout, new RegExp(`\\n\\d+ passed, 0 failed, 0 skipped\\nWebAssembly kernels: ${variant}\\n$`));
  });
}

test('relaxed-simd: the differential suite (random shapes against the reference kernel) passes with fused multiply-add', () => {
  // the core picks relaxed SIMD by itself where the engine validates it: here, Node 20 with V8's flag
  const suite = join(DIST, 'test', 'differential', 'kernels.test.js');
  const r = run(['--experimental-wasm-relaxed-simd', '--test', suite], { QKV_EXPECT_VARIANT: 'relaxed-simd' });
  assert.equal(r.status, 0, r.stdout.slice(-3000) + r.stderr);
  assert.match(r.stdout, /# fail 0/);
  assert.match(r.stdout, /# kernels: relaxed-simd/);
});

test('relaxed-simd: linear() and gatedLinear() in every weight format match their brute force (int4 decode: x in 8 bits)', () => {
  // all of linear.test.ts with fused multiply-adds, int4's products with x rounded to 8 bits (gemv-q.ts) among them
  const suite = join(DIST, 'test', 'unit', 'nn', 'linear.test.js');
  const args = ['--experimental-wasm-relaxed-simd', '--test', suite];
  const r = run(args, { QKV_EXPECT_VARIANT: 'relaxed-simd' });
  assert.equal(r.status, 0, r.stdout.slice(-3000) + r.stderr);
  assert.match(r.stdout, /# fail 0/);
  assert.match(r.stdout, /# kernels: relaxed-simd/);
});

test('relaxed-simd: the decode kernel reads an f16 KV cache as it reads an f32 one of the same values, bit for bit', () => {
  const suite = join(DIST, 'test', 'unit', 'cache', 'f16-cache.test.js');
  const r = run(['--experimental-wasm-relaxed-simd', '--test', suite], { QKV_EXPECT_VARIANT: 'relaxed-simd' });
  assert.equal(r.status, 0, r.stdout.slice(-3000) + r.stderr);
  assert.match(r.stdout, /# fail 0/);
  assert.match(r.stdout, /# kernels: relaxed-simd/);
});

test('setKernelVariant checks its argument and refuses to switch builds once the kernels run', () => {
  assert.throws(() => setKernelVariant('avx' as never), /variant must be 'auto', 'relaxed-simd' or 'simd128', got "avx"/);
  const now = kernelVariant()!; // starts the runtime
  const other = now === 'simd128' ? 'relaxed-simd' : 'simd128';
  assert.throws(() => setKernelVariant(other), /the kernels already run as/);
  setKernelVariant(now); // the same build: nothing to change
});
