// The golden data in test/golden (PyTorch 2.11, copied from ../shared/golden) with both kernels, and the runner itself on a directory
// made here in the same format (other seeds and shapes), including a wrong expectation it must report.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { attention, serializeSafetensors, Tensor } from '../../src/index.js';
import { runConformance, summary } from '../../src/node/conformance.js';
import { GOLDEN, randn, rng, scratchDir } from '../helpers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url)); // dist/test/conformance -> repo root
const CLI = join(ROOT, 'dist', 'src', 'node', 'conformance-cli.js');

describe('golden data from PyTorch', () => {
  for (const kernel of ['reference', 'flash', 'flash-wasm'] as const) {
    test(`every case (sdpa, scores, linear, position, mha, graph, models) passes with the ${kernel} kernel`, (t) => {
      const results = runConformance(GOLDEN, kernel);
      const sdpa = results.filter((r) => r.file.startsWith('sdpa/'));
      assert.ok(sdpa.length >= 25, `found ${sdpa.length} sdpa cases`);
      for (const r of results) assert.notEqual(r.status, 'fail', `${r.file}: ${r.detail}`);
      for (const r of results) assert.equal(r.status, 'pass', `${r.file}: ${r.detail}`);
      for (const dir of ['scores/', 'linear/', 'position/', 'mha/', 'graph/', 'models/']) assert.ok(results.some((r) => r.file.startsWith(dir)), `no ${dir} cases`);
      for (const name of ['sdpa/long.safetensors', 'sdpa/large_logits.safetensors']) assert.ok(sdpa.some((r) => r.file === name && r.status === 'pass'), name);
      t.diagnostic(`${kernel}: ${summary(results)}`);
    });
  }
});

describe('the runner on any directory in the golden format', () => {
  test('prints pass/fail/skip lines and the summary, exits 1 on a failure', () => {
    const dir = scratchDir('qkv-golden-');
    mkdirSync(join(dir, 'sdpa'));
    const rand = rng(99);
    const cases = [];
    // a correct causal GQA case with a keep mask, computed by qkv's reference kernel
    const q = randn([1, 4, 9, 8], rand);
    const k = randn([1, 2, 9, 8], rand);
    const v = randn([1, 2, 9, 8], rand);
    const r = attention(q, k, v, { causal: true, kernel: 'reference' });
    const keep = Tensor.from(Array.from({ length: 4 * 81 }, (_, x) => (x % 9 <= Math.floor(x / 9) % 9 ? 1 : 0)), [1, 4, 9, 9], 'uint8');
    writeFileSync(join(dir, 'sdpa/good.safetensors'), serializeSafetensors({ q, k, v, out: r.out, lse: r.lse, keep }));
    cases.push({ file: 'sdpa/good.safetensors', op: 'sdpa', params: { causal: true }, tensors: {}, atol: 2e-5, rtol: 2e-4 });
    // the same data with a wrong expectation: must fail
    const bad = r.out.contiguous().to('float32');
    bad.set(bad.get(0, 0, 3, 3) + 0.1, 0, 0, 3, 3);
    writeFileSync(join(dir, 'sdpa/bad.safetensors'), serializeSafetensors({ q, k, v, out: bad, lse: r.lse }));
    cases.push({ file: 'sdpa/bad.safetensors', op: 'sdpa', params: { causal: true }, tensors: {}, atol: 2e-5, rtol: 2e-4 });
    // a keep mask that disagrees with the params: the mask check must catch it
    const wrongKeep = keep.to('uint8');
    wrongKeep.set(1, 0, 0, 0, 5);
    writeFileSync(join(dir, 'sdpa/mask.safetensors'), serializeSafetensors({ q, k, v, out: r.out, lse: r.lse, keep: wrongKeep }));
    cases.push({ file: 'sdpa/mask.safetensors', op: 'sdpa', params: { causal: true }, tensors: {}, atol: 2e-5, rtol: 2e-4 });
    cases.push({ file: 'x/unknown.safetensors', op: 'fourier_mixing', params: {}, tensors: {}, atol: 0, rtol: 0 });
    writeFileSync(join(dir, 'index.json'), JSON.stringify({ generator: 'qkv test', cases }));

    const run = spawnSync(process.execPath, [CLI, dir, '--kernel', 'flash'], { encoding: 'utf8' });
    const lines = run.stdout.trim().split('\n');
    assert.match(lines[0], /^pass sdpa\/good\.safetensors max_abs_err=\S+$/);
    assert.match(lines[1], /^fail sdpa\/bad\.safetensors max_abs_err=\S+ out element \d+: got .*, expected/);
    assert.match(lines[2], /^fail sdpa\/mask\.safetensors .*mask differs from keep at \[0, 0, 0, 5\]/);
    assert.match(lines[3], /^skip x\/unknown\.safetensors op 'fourier_mixing' not supported yet$/);
    assert.equal(lines[4], '1 passed, 2 failed, 1 skipped');
    assert.match(lines[5], /^WebAssembly kernels: (relaxed-simd|simd128)$/);
    assert.equal(run.status, 1);
  });

  test('usage errors exit 2 with a message', () => {
    const run = spawnSync(process.execPath, [CLI, '/nonexistent-qkv-dir'], { encoding: 'utf8' });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /directory '\/nonexistent-qkv-dir' does not exist/);
    assert.match(execFileSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' }), /usage: npm run conformance -- DIR/);
  });
});
