// Threads that degrade gracefully (kernels/wasm/runtime.ts, ThreadChooser): the runtime runs 128 calls on its threads
// and 128 on the caller alone, keeps the faster way for 2 s, then measures again. With a busy neighbour process on one
// core, 2 threads had run qkv-tiny's decode at a third of 1 thread's speed; the timing itself is a benchmark
// (BENCHMARKS.md), not a test — here, the rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ThreadChooser } from '../../../src/kernels/wasm/runtime.js';

function measure(c: ThreadChooser, threadsMs: number, aloneMs: number, now: number): void {
  for (let i = 0; i < 2 * ThreadChooser.EPOCH; i++) {
    const onThreads = c.useThreads(now);
    assert.equal(onThreads, i < ThreadChooser.EPOCH, `call ${i}: threads first, then alone`);
    c.note(onThreads, onThreads ? threadsMs : aloneMs, now);
  }
}

test('two epochs measured, the faster way kept for the hold time, then measured again', () => {
  const c = new ThreadChooser();
  measure(c, 3, 1, 0); // threads slower (a contended core)
  assert.equal(c.threaded, false);
  assert.equal(c.useThreads(100), false, 'alone while held');
  assert.equal(c.useThreads(ThreadChooser.HOLD_MS - 1), false);
  measure(c, 1, 2, ThreadChooser.HOLD_MS); // the hold is over: measured again, threads win now
  assert.equal(c.threaded, true);
  assert.equal(c.useThreads(ThreadChooser.HOLD_MS + 10), true);
});
