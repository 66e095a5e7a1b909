// The backend suite (suite.ts) on the CPU: the reference, flash, decode and WebAssembly kernels, and `auto`.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { attention } from '../../src/index.js';
import { assertSameResult, expectedCpuKernel, suiteCases } from './suite.js';

describe('the backend suite on the CPU kernels', () => {
  for (const c of suiteCases()) {
    test(c.name, () => {
      const want = attention(c.q, c.k, c.v, { ...c.options, kernel: 'reference' });
      for (const kernel of ['flash', 'decode', 'flash-wasm', 'auto'] as const) {
        const r = attention(c.q, c.k, c.v, { ...c.options, kernel });
        assert.equal(r.kernel, expectedCpuKernel(kernel, c), `${kernel}: the kernel that ran`);
        assertSameResult(r, want, [2e-6, 1e-4], kernel);
      }
    });
  }
});
