// The gate of a job on threads (kernels/wasm/gate.ts): a caller that runs a job of claimed units alone while its worker
// sleeps closes the gate and waits only for the workers that got in; one that wakes later must not run the job, nor a
// later job it did not see announced, nor one job twice. The protocol, step by step, on a control word of its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeGate, enterGate, openGate, shutGate } from '../../../src/kernels/wasm/gate.js';
import { claimsOnly, GEMM_JOB, JOB } from '../../../src/kernels/wasm/jobs.js';

const AT = 3;
const control = () => new Int32Array(8);

test('workers that saw the job get in while it is open; the caller waits for exactly those', () => {
  const c = control();
  openGate(c, AT, 41);
  assert.equal(enterGate(c, AT, 41), 0, 'the first worker in: rank 0');
  assert.equal(enterGate(c, AT, 41), 1, 'a second worker: rank 1');
  assert.equal(closeGate(c, AT), 2);
});

test('shutGate closes the gate unless every worker is in already', () => {
  const c = control();
  openGate(c, AT, 5);
  assert.equal(enterGate(c, AT, 5) >= 0, true);
  assert.equal(shutGate(c, AT, 2), 1, 'one of two workers in');
  assert.equal(enterGate(c, AT, 5), -1, 'the other is shut out');
  openGate(c, AT, 6);
  assert.equal(enterGate(c, AT, 6) >= 0, true);
  assert.equal(enterGate(c, AT, 6) >= 0, true);
  assert.equal(shutGate(c, AT, 2), 2, 'both in: nothing to shut out');
});

test('a worker that wakes after the caller closed the gate stays out', () => {
  const c = control();
  openGate(c, AT, 7);
  assert.equal(closeGate(c, AT), 0, 'the caller took every unit alone');
  assert.equal(enterGate(c, AT, 7), -1);
});

test('a worker that saw an earlier job never gets into a later one', () => {
  const c = control();
  openGate(c, AT, 7);
  closeGate(c, AT);
  openGate(c, AT, 8); // the caller announces the next job while the worker still holds 7
  assert.equal(enterGate(c, AT, 7), -1, 'job 7 is gone: the worker must wait for 8 to be announced');
  assert.equal(enterGate(c, AT, 8) >= 0, true);
  assert.equal(closeGate(c, AT), 1);
});

test('sequence numbers that wrap around, and past the tag width, still tell jobs apart', () => {
  const c = control();
  for (const seq of [0x7ffff, 0x80000, 2 ** 31 - 1, -(2 ** 31), -1]) {
    openGate(c, AT, seq);
    assert.equal(enterGate(c, AT, (seq + 1) | 0), -1, `seq ${seq}: the next job's worker`);
    assert.equal(enterGate(c, AT, (seq - 1) | 0), -1, `seq ${seq}: the last job's worker`);
    assert.equal(enterGate(c, AT, seq) >= 0, true, `seq ${seq}`);
    assert.equal(closeGate(c, AT), 1);
  }
});

test('claimsOnly: the jobs made only of claimed units, and not the ones with fixed shares', () => {
  const gemm = (outer: number) => GEMM_JOB.words({ kind: JOB.gemmBF16, a: 0, b: 0, c: 0, M: 64, K: 8, N: 8, scales: 0, scratch: 0,
    scratchStride: 0, glu: 0, b2: 0, scales2: 0, c2: 0, f16Scale: 1, f16Scale2: 1, outer });
  assert.equal(claimsOnly(gemm(1)), true, 'the outer-product GEMM');
  assert.equal(claimsOnly(gemm(0)), false, 'the GEMM on column ranges');
  for (const kind of [JOB.attention, JOB.decode, JOB.merge, JOB.rmsNorm, JOB.add, JOB.rope]) {
    assert.equal(claimsOnly([kind]), true, `kind ${kind}`);
  }
  for (const kind of [JOB.packK, JOB.scaleF16]) assert.equal(claimsOnly([kind]), false, `kind ${kind}`);
});
