// The qkv command: --version, --help, the demo, and errors on stderr with a non-zero exit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const CLI = `${ROOT}dist/src/node/cli/main.js`;
const qkv = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

test('qkv --version prints the package version', () => {
  const { version } = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string };
  const r = qkv('--version');
  assert.equal(r.status, 0);
  assert.equal(r.stdout.trim(), version);
});

test('qkv --help lists the commands', () => {
  const r = qkv('--help');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /usage: qkv <command>/);
  assert.match(r.stdout, /conformance DIR/);
});

test('qkv demo prints weights and checks flash against reference', () => {
  const r = qkv('demo');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /attention weights/);
  const diff = Number(/max \|Δout\| = (\S+)/.exec(r.stdout)![1]);
  assert.ok(diff < 1e-6, `flash vs reference differ by ${diff}`);
});

test('an unknown command fails on stderr', () => {
  const r = qkv('frobnicate');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command 'frobnicate'/);
});
