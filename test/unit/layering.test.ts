// Architecture rules from STYLE.md, checked on the source: the core (everything outside src/node) imports no
// Node-only module, so it runs in browsers; kernels import only types from the spec layers; imports flow one way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

function files(dir: string, ext = /(?<!-binary|-wgsl)\.ts$/): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p, ext) : ext.test(p) ? [p] : [];
  });
}

/** TypeScript, AssemblyScript and WGSL sources (not the generated modules). */
const sources = () => files(SRC, /(?<!-binary|-wgsl)\.(ts|wgsl)$/);

function imports(file: string): { spec: string; typeOnly: boolean }[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^(import|export)\s+(type\s+)?[^'"]*?from\s+'([^']+)'|^import\s+'([^']+)'/gm)].map((m) => ({
    spec: m[3] ?? m[4], typeOnly: !!m[2],
  }));
}

test('the core imports no node: modules (browser-safe); only src/node may', () => {
  for (const f of files(SRC)) {
    const rel = relative(SRC, f);
    if (rel.startsWith('node/')) continue;
    for (const { spec } of imports(f)) assert.ok(!spec.startsWith('node:'), `${rel} imports ${spec}`);
  }
});

test('kernels import nothing from attention/ (the contract has what they need: problems, masks, plans), nor from nn, models, node', () => {
  for (const f of files(join(SRC, 'kernels'))) {
    const rel = relative(SRC, f);
    for (const { spec } of imports(f)) assert.ok(!/\/(attention|nn|models|generate|inspect|node|cache)\//.test(spec), `${rel} imports ${spec}`);
  }
});

// Above the kernels, every layer reaches a kernel through the contract and the registry only (importing a backend's
// index registers its kernels). The WebGPU files (named webgpu.ts) may also use WebGPU's device runtime — the device,
// GpuTensor, the buffer pool and validation scopes — but no kernel host: matmul, ops and attention come from the registry.
const REACH = /\/kernels\/(contract|registry|cpu\/index|webgpu\/index)\.js$/;
const RUNTIME = /\/kernels\/webgpu\/(gpu-tensor|buffers|device|pipelines)\.js$/;

test('above the kernels (attention, cache, nn, models, generate, inspect): kernels only through the contract and the registry', () => {
  for (const dir of ['attention', 'cache', 'nn', 'models', 'generate', 'inspect']) {
    for (const f of files(join(SRC, dir))) {
      const rel = relative(SRC, f);
      for (const { spec } of imports(f)) {
        if (!spec.includes('/kernels/')) continue;
        assert.ok(REACH.test(spec) || (rel.endsWith('webgpu.ts') && RUNTIME.test(spec)), `${rel} imports ${spec}`);
      }
    }
  }
});

test('caches store: cache/ never attends (no attention/, nn/, models/)', () => {
  for (const f of files(join(SRC, 'cache'))) {
    for (const { spec } of imports(f)) assert.ok(!/\/(attention|nn|models)\//.test(spec), `${relative(SRC, f)} imports ${spec}`);
  }
});

test('one forward per family: model families import no WebGPU module (they are written over DecoderOps, models/ops.ts)', () => {
  for (const f of files(join(SRC, 'models'))) {
    const rel = relative(SRC, f);
    if (rel.endsWith('webgpu.ts')) continue;
    for (const { spec } of imports(f)) assert.ok(!/webgpu/.test(spec), `${rel} imports ${spec}`);
  }
});

test('tensor/ imports nothing above it', () => {
  for (const f of files(join(SRC, 'tensor'))) {
    for (const { spec } of imports(f)) assert.ok(!/attention|kernels|node\//.test(spec), `${relative(SRC, f)} imports ${spec}`);
  }
});

test('no source file (TypeScript, AssemblyScript, WGSL) is over 500 lines', () => {
  for (const f of sources()) {
    const n = readFileSync(f, 'utf8').split('\n').length;
    assert.ok(n <= 500, `${relative(SRC, f)} has ${n} lines`);
  }
});

// The width cap: lines over 140 characters. Files written before the cap have a budget (test/unit/line-budget.json) that
// may only shrink; every other file has none. Lower a file's budget when you wrap its lines.
test('lines stay within 140 characters (a budget per older file that may only shrink)', () => {
  const budget = JSON.parse(readFileSync(join(SRC, '..', 'test', 'unit', 'line-budget.json'), 'utf8')) as Record<string, number>;
  for (const f of sources()) {
    const rel = relative(SRC, f);
    const long = readFileSync(f, 'utf8').split('\n').filter((l) => l.length > 140).length;
    assert.ok(long <= (budget[rel] ?? 0), `${rel} has ${long} lines over 140 characters; its budget is ${budget[rel] ?? 0}`);
  }
});

// the lab (lab/*.ts, lab/views/*.ts) is a page like any other: qkv through its public API only, short lines and files
test('the lab uses qkv\'s public API only (/qkv/index.js), in files under 500 lines of ≤ 140 characters', () => {
  const LAB = fileURLToPath(new URL('../../../lab/', import.meta.url));
  const labFiles = files(LAB).filter((f) => !f.includes('node_modules'));
  assert.ok(labFiles.length >= 8, `lab modules: ${labFiles.length}`);
  for (const f of labFiles) {
    const rel = relative(LAB, f);
    for (const { spec } of imports(f)) assert.ok(spec.startsWith('.') || spec === '/qkv/index.js', `lab/${rel} imports ${spec}`);
    const lines = readFileSync(f, 'utf8').split('\n');
    assert.ok(lines.length <= 500, `lab/${rel} has ${lines.length} lines`);
    assert.deepEqual(lines.filter((l) => l.length > 140), [], `lab/${rel}: lines over 140 characters`);
  }
});
