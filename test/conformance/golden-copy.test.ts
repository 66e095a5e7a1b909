// test/golden is the PyTorch golden data the suite runs on, copied verbatim from ../shared/golden so that a clone of
// the repository alone runs every conformance test. This checks the copy is whole and unedited, file by file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT_DIR } from '../helpers.js';

const COPY = join(ROOT_DIR, 'test', 'golden');
const SOURCE = join(ROOT_DIR, '..', 'shared', 'golden');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

test('test/golden is a byte-for-byte copy of ../shared/golden', { skip: existsSync(SOURCE) ? false : `no ${SOURCE} to compare with (a clone outside the workspace)` }, () => {
  const want = files(SOURCE).map((f) => relative(SOURCE, f)).sort();
  const have = files(COPY).map((f) => relative(COPY, f)).sort();
  assert.deepEqual(have, want, 'the same files');
  for (const f of want) assert.ok(readFileSync(join(COPY, f)).equals(readFileSync(join(SOURCE, f))), `${f} differs from ../shared/golden`);
});

test('the golden copy holds every kind of case the suite checks', () => {
  const index = JSON.parse(readFileSync(join(COPY, 'index.json'), 'utf8')) as { cases: { file: string; op: string }[] };
  assert.ok(index.cases.length >= 54, `${index.cases.length} cases`);
  for (const c of index.cases) assert.ok(existsSync(join(COPY, c.file)), `${c.file} is listed but missing`);
});
