// Every ```js block of README.md runs as written (importing 'qkv' by name, as a user would) and exits cleanly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const blocks = [...readFileSync(join(ROOT, 'README.md'), 'utf8').matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);

test('README has runnable examples', () => assert.ok(blocks.length >= 4, `found ${blocks.length} js blocks`));

blocks.forEach((code, n) => {
  test(`README example ${n + 1} runs`, () => {
    const dir = join(ROOT, 'dist', 'readme-examples'); // inside the package, so `import 'qkv'` resolves to itself
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `example-${n + 1}.mjs`);
    writeFileSync(file, code);
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    if (n === 0) assert.match(r.stdout, /\[ 1, 1, 3, 2 \]\n1\n0\n/);
  });
});
