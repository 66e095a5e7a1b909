// The conformance runner reads any directory in the golden format, from anywhere: each case of its index.json is
// checked before a file is opened or a tolerance used — a path outside the directory, a non-string op, tolerances
// that are not numbers ≥ 0 — and an op named like an Object property is an unknown op, not a function call.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QkvError } from '../../../src/index.js';
import { runConformance } from '../../../src/node/conformance.js';
import { GOLDEN } from '../../helpers.js';

const DIR = mkdtempSync(join(tmpdir(), 'qkv-conformance-index-'));
after(() => rmSync(DIR, { recursive: true, force: true }));
mkdirSync(join(DIR, 'sdpa'));
copyFileSync(join(GOLDEN, 'sdpa', 'basic.safetensors'), join(DIR, 'sdpa', 'basic.safetensors'));
const good = { file: 'sdpa/basic.safetensors', op: 'sdpa', params: { B: 2, Hq: 4, Hkv: 4, L: 37, S: 37, D: 16, Dv: 16 }, atol: 2e-5, rtol: 2e-4 };
const run = (c: Record<string, unknown>) => {
  writeFileSync(join(DIR, 'index.json'), JSON.stringify({ cases: [good, c] }));
  return runConformance(DIR);
};

test('index.json cases are checked field by field before use', () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ ...good, file: '../basic.safetensors' }, /case 1: 'file' must be a path inside the directory, got "\.\.\/basic\.safetensors"/],
    [{ ...good, file: '/etc/passwd' }, /'file' must be a path inside the directory, got "\/etc\/passwd"/],
    [{ ...good, file: 5 }, /'file' must be a path inside the directory, got 5/],
    [{ ...good, op: 7 }, /\(sdpa\/basic\.safetensors\): 'op' must be a string, got 7/],
    [{ ...good, params: [1] }, /'params' must be an object, got \[1\]/],
    [{ ...good, atol: 'x' }, /'atol' must be a number ≥ 0, got "x"/],
    [{ ...good, rtol: -1 }, /'rtol' must be a number ≥ 0, got -1/],
    [{ ...good, rtol: null }, /'rtol' must be a number ≥ 0, got null/],
  ];
  for (const [c, message] of bad) assert.throws(() => run(c), (e: unknown) => e instanceof QkvError && message.test(e.message), JSON.stringify(c));
  assert.throws(() => run(JSON.parse('"a case"')), /case 1 must be an object, got "a case"/);
});

test('an op named like an Object property is unknown, and a good case still passes', () => {
  const results = run({ ...good, op: 'constructor' });
  assert.deepEqual(results.map((r) => r.status), ['pass', 'skip']);
  assert.match(results[1].detail!, /op 'constructor' not supported yet/);
});
