// test/golden and test/golden-frontier are the PyTorch golden data the suite runs on, copied verbatim from
// ../shared/golden and ../shared/golden-frontier so that a clone of the repository alone runs every conformance test.
// This checks each copy is whole and unedited, file by file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT_DIR } from '../helpers.js';

const COPY = join(ROOT_DIR, 'test', 'golden');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

for (const set of ['golden', 'golden-frontier']) {
  const [copy, source] = [join(ROOT_DIR, 'test', set), join(ROOT_DIR, '..', 'shared', set)];
  test(`test/${set} is a byte-for-byte copy of ../shared/${set}`, { skip: existsSync(source) ? false : `no ${source} to compare with (a clone outside the workspace)` }, () => {
    const want = files(source).map((f) => relative(source, f)).sort();
    const have = files(copy).map((f) => relative(copy, f)).sort();
    assert.deepEqual(have, want, 'the same files');
    for (const f of want) assert.ok(readFileSync(join(copy, f)).equals(readFileSync(join(source, f))), `${f} differs from ../shared/${set}`);
  });
}

test('the golden copy holds every kind of case the suite checks', () => {
  const index = JSON.parse(readFileSync(join(COPY, 'index.json'), 'utf8')) as { cases: { file: string; op: string }[] };
  assert.ok(index.cases.length >= 54, `${index.cases.length} cases`);
  for (const c of index.cases) assert.ok(existsSync(join(COPY, c.file)), `${c.file} is listed but missing`);
});
