// Real size (issue #17): a synthetic checkpoint of Llama-3.2-1B's shape — 1.24 B parameters, 2.47 GB of bf16 in two
// shards, random weights written by this test and deleted after — loads, runs one forward of a few tokens, and the
// process that did it peaked at no more than 1.2 × the weights' bytes: weight matrices are read straight into the
// matrix kernel's memory and held once. Measured in a process of its own (load-child.ts), where maxRSS is the load's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LLAMA_1B, writeSyntheticLlama } from './synthetic-checkpoint.js';

const CHILD = fileURLToPath(new URL('./load-child.js', import.meta.url));

test('a 1B-shaped sharded bf16 checkpoint loads and runs a forward at peak memory ≤ 1.2 × its weights', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qkv-1b-'));
  try {
    const weights = writeSyntheticLlama(dir, LLAMA_1B, 2);
    assert.equal(weights, 2_471_628_800);
    const out = execFileSync(process.execPath, [CHILD, dir, '5'], { encoding: 'utf8', maxBuffer: 2 ** 20 });
    const r = JSON.parse(out.trim().split('\n').at(-1)!) as { bytes: number; finite: boolean; vocab: number; maxRssBytes: number };
    assert.equal(r.bytes, weights, 'every tensor was read');
    assert.equal(r.vocab, LLAMA_1B.V);
    assert.ok(r.finite, 'the logits are finite');
    const ratio = r.maxRssBytes / weights;
    const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
    assert.ok(ratio <= 1.2, `peak memory ${gib(r.maxRssBytes)} is ${ratio.toFixed(2)} × the weights' ${gib(weights)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
