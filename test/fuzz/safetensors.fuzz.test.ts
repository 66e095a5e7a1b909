// Fuzz (fixed seed, a few seconds): mutations of the golden safetensors files either parse or throw a QkvError from
// every reader — never another error (a RangeError would be a stack overflow or an out-of-bounds read), never a hang —
// and the streaming reader that loadCheckpoint uses agrees with the in-memory one. `npm run fuzz` runs a million.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QkvError } from '../../src/errors.js';
import { streamSafetensors } from '../../src/node/checkpoint.js';
import { MAX_TENSORS, parseSafetensors, parseSafetensorsHeader } from '../../src/tensor/safetensors.js';
import { GOLDEN, fuzzSeed, rng } from '../helpers.js';
import { check, mutate, seedFiles } from './safetensors-mutations.js';

const seeds = seedFiles(GOLDEN);

test('5,000 mutations of the golden files parse or fail with a QkvError in every reader', () => {
  assert.ok(seeds.length >= 20, `${seeds.length} seed files`);
  const rand = rng(fuzzSeed(2026));
  const kinds = new Map<string, { parsed: number; refused: number }>();
  for (let trial = 0; trial < 5000; trial++) {
    const { kind, bytes } = mutate(seeds[trial % seeds.length], rand);
    const r = check(bytes);
    assert.equal(r.finding, null, `trial ${trial} (${kind}): ${r.finding}`);
    const k = kinds.get(kind) ?? { parsed: 0, refused: 0 };
    k[r.parsed ? 'parsed' : 'refused']++;
    kinds.set(kind, k);
  }
  assert.equal(kinds.size, 13, `kinds exercised: ${[...kinds.keys()].join(', ')}`);
  for (const [kind, k] of kinds) assert.ok(k.refused > 0, `${kind}: never refused`);
});

test('the streaming reader (loadCheckpoint) accepts and refuses what the in-memory reader does', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qkv-fuzz-'));
  try {
    const rand = rng(fuzzSeed(7));
    for (let trial = 0; trial < 300; trial++) {
      const { kind, bytes } = mutate(seeds[trial % seeds.length], rand);
      const path = join(dir, `${trial}.safetensors`);
      writeFileSync(path, bytes);
      let memory = true;
      try { parseSafetensors(bytes); } catch (e) { assert.ok(e instanceof QkvError); memory = false; }
      let stream = true;
      try { streamSafetensors(path, new Map()); } catch (e) { assert.ok(e instanceof QkvError, `trial ${trial} (${kind}): ${String(e)}`); stream = false; }
      assert.equal(stream, memory, `trial ${trial} (${kind}): streaming ${stream ? 'accepted' : 'refused'}, in memory ${memory ? 'accepted' : 'refused'}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a legal header of 100,000 tensors parses; more than MAX_TENSORS is refused by count, not by exhaustion', () => {
  const header = (n: number) => {
    const parts = Array.from({ length: n }, (_, i) => `"t${i}":{"dtype":"U8","shape":[1],"data_offsets":[${i},${i + 1}]}`);
    const json = new TextEncoder().encode(`{${parts.join(',')}}`);
    const bytes = new Uint8Array(8 + json.length + n);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
    bytes.set(json, 8);
    return bytes;
  };
  const legal = header(100_000);
  assert.equal(parseSafetensorsHeader(legal, legal.length).entries.length, 100_000);
  const many = header(MAX_TENSORS + 1);
  assert.throws(() => parseSafetensorsHeader(many, many.length), /more than 262144 tensors/);
});
