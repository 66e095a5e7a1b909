// Threads that degrade gracefully (kernels/wasm/thread-chooser.ts, ThreadChooser): the runtime runs EPOCH calls on its
// threads and EPOCH on the caller alone (the first such measurement thrown away as warm-up), keeps the faster way —
// compared shape by shape, or per unit of work when the epochs share no shape — for a hold (2 s, doubling while the
// measurements agree by MARGIN or more), then measures again; a threads epoch clearly behind the last alone one ends
// early. With a busy neighbour
// process on one core, 2 threads had run qkv-tiny's decode at a third of 1 thread's speed; the timing itself is a
// benchmark (BENCHMARKS.md), not a test — here, the rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jobWork, ThreadChooser } from '../../../src/kernels/wasm/thread-chooser.js';
import { DECODE_JOB, GEMM_JOB } from '../../../src/kernels/wasm/jobs.js';

// one measurement of short calls (threadsMs and aloneMs in tenths of a millisecond: EPOCH calls end each epoch)
function measure(c: ThreadChooser, threadsMs: number, aloneMs: number, now: number): void {
  for (let i = 0; i < 2 * ThreadChooser.EPOCH; i++) {
    const onThreads = c.useThreads(now);
    assert.equal(onThreads, i < ThreadChooser.EPOCH, `call ${i}: threads first, then alone`);
    c.note(onThreads, (onThreads ? threadsMs : aloneMs) / 10, now);
  }
}

// a new chooser's first measurement (kernels still being tiered up) is thrown away
function warmedUp(): ThreadChooser {
  const c = new ThreadChooser();
  measure(c, 1, 1, 0);
  return c;
}

test('the first measurement is a warm-up: measured again at once, whatever it showed', () => {
  const c = new ThreadChooser();
  measure(c, 5, 1, 0); // threads slower while the kernels tier up
  assert.equal(c.threaded, true, 'not decided by the warm-up');
  measure(c, 1, 2, 0); // measured again at once: threads
  assert.equal(c.threaded, true);
  assert.equal(c.useThreads(ThreadChooser.HOLD_MS - 1), true, 'held now');
});

test('two epochs measured, the faster way kept for the hold time, then measured again', () => {
  const c = warmedUp();
  measure(c, 3, 1, 0); // threads slower (a contended core)
  assert.equal(c.threaded, false);
  assert.equal(c.useThreads(100), false, 'alone while held');
  assert.equal(c.useThreads(ThreadChooser.HOLD_MS - 1), false);
  measure(c, 1, 2, ThreadChooser.HOLD_MS); // the hold is over: measured again, threads win now
  assert.equal(c.threaded, true);
  assert.equal(c.useThreads(ThreadChooser.HOLD_MS + 10), true);
});

test('a measurement that agrees with the last doubles the hold (up to MAX_HOLD_MS); one that disagrees resets it', () => {
  const c = warmedUp();
  let now = 0;
  measure(c, 1, 2, now); // threads, as assumed: the hold doubles
  assert.equal(c.useThreads(now + 2 * ThreadChooser.HOLD_MS - 1), true);
  assert.equal(c.useThreads(now + 2 * ThreadChooser.HOLD_MS - 1), true, 'still held');
  now += 2 * ThreadChooser.HOLD_MS;
  measure(c, 1, 2, now); // agrees again: 4 × HOLD_MS
  now += 4 * ThreadChooser.HOLD_MS;
  measure(c, 3, 1, now); // disagrees: alone, held HOLD_MS only
  assert.equal(c.threaded, false);
  assert.equal(c.useThreads(now + ThreadChooser.HOLD_MS - 1), false);
  assert.equal(c.useThreads(now + ThreadChooser.HOLD_MS), true, 'measuring again, threads first');
});

test('a close call (within MARGIN) does not double the hold: measured again after HOLD_MS', () => {
  const c = warmedUp();
  const H = ThreadChooser.HOLD_MS;
  measure(c, 1, 1.2, 0); // threads, clearly, as at the start: the hold doubles
  assert.equal(c.useThreads(2 * H - 1), true, 'held 2 × HOLD_MS');
  measure(c, 1.2, 1, 2 * H); // alone, clearly: disagrees, HOLD_MS
  assert.equal(c.threaded, false);
  measure(c, 1.05, 1, 3 * H); // alone again, but by 5%: not doubled
  assert.equal(c.threaded, false);
  assert.equal(c.useThreads(4 * H - 1), false, 'alone while held');
  measure(c, 1.5, 1, 4 * H); // measured again after HOLD_MS; alone by 1.5×: agrees clearly, the hold doubles
  assert.equal(c.threaded, false);
  assert.equal(c.useThreads(6 * H - 1), false, 'held 2 × HOLD_MS');
  assert.equal(c.useThreads(6 * H), true, 'then measured again, threads first');
});

test('a threads epoch clearly behind the last alone epoch ends after EARLY_MS (a busy neighbour: not 128 slow calls)', () => {
  const c = warmedUp();
  const H = ThreadChooser.HOLD_MS;
  measure(c, 3, 1, 0); // alone, clearly: its calls took 0.1 ms
  let onThreads = 0;
  for (let i = 0; i < 2 * ThreadChooser.EPOCH; i++) {
    const t = c.useThreads(H); // the hold is over: measured again
    if (t) onThreads++;
    c.note(t, t ? 1 : 0.1, H); // the threads ten times slower
  }
  assert.equal(onThreads, 1 + ThreadChooser.EARLY_MS, 'the unmeasured first call, then EARLY_MS of 1 ms calls');
  assert.equal(c.threaded, false);
  assert.equal(c.useThreads(H + 1), false, 'decided, held');
  // the first measurement after the warm-up has no alone epoch to compare with: its threads epoch runs whole
  const d = warmedUp();
  let n = 0;
  for (let i = 0; i < ThreadChooser.EPOCH; i++) if (d.useThreads(0)) { n++; d.note(true, 0.5, 0); }
  assert.equal(n, ThreadChooser.EPOCH);
});

test('epochs are compared per unit of work: fewer costly calls in one epoch do not make it look faster', () => {
  const c = warmedUp();
  // threads: 0.2 ms per call of 10 units (0.02 ms a unit); alone: 0.1 ms per call of 2 units (0.05 ms a unit) → threads
  for (let i = 0; i < 2 * ThreadChooser.EPOCH; i++) {
    const onThreads = c.useThreads(0);
    c.note(onThreads, onThreads ? 0.2 : 0.1, 0, onThreads ? 10 : 2);
  }
  assert.equal(c.threaded, true, 'by totals alone would have won (12.8 ms against 25.6)');
});

test('epochs are compared shape by shape: a costlier mix of calls in one epoch does not make it look slower', () => {
  const c = warmedUp();
  // a product (work 100) and a decode attention call (work 10, the same time: ten times the time a unit); the threads'
  // epoch draws both, the alone one products only. Every shape is faster on the threads (0.06 against 0.1 ms a call),
  // yet per unit of work the threads' epoch looks slower (0.06 / 55 against 0.1 / 100 ms a unit)
  for (let i = 0; i < 2 * ThreadChooser.EPOCH; i++) {
    const onThreads = c.useThreads(0);
    const work = onThreads && i % 2 ? 10 : 100;
    c.note(onThreads, onThreads ? 0.06 : 0.1, 0, work);
  }
  assert.equal(c.threaded, true);
  // and the other way: every shape slower on the threads
  const d = warmedUp();
  for (let i = 0; i < 2 * ThreadChooser.EPOCH; i++) {
    const onThreads = d.useThreads(0);
    d.note(onThreads, onThreads ? 0.12 : 0.1, 0, onThreads && i % 2 ? 10 : 100);
  }
  assert.equal(d.threaded, false);
});

test('an epoch\'s first call is not measured (a waking worker): a slow first threaded call does not decide', () => {
  const c = warmedUp();
  for (let i = 0; i < 2 * ThreadChooser.EPOCH; i++) {
    const onThreads = c.useThreads(0);
    c.note(onThreads, onThreads ? (i === 0 ? 50 : 0.05) : 0.1, 0);
  }
  assert.equal(c.threaded, true);
});

test('an epoch ends after EPOCH calls or once its measured calls took EPOCH_MS, whichever comes first', () => {
  const c = warmedUp();
  const slow = ThreadChooser.EPOCH_MS / 4; // long calls (attention at L 1024): four measured ones fill an epoch
  for (let i = 0; i < 10; i++) {
    const onThreads = c.useThreads(0);
    assert.equal(onThreads, i < 5, `call ${i}: five on the threads (the first not measured), then five alone`);
    c.note(onThreads, slow, 0, onThreads ? 2 : 1); // the threads do twice the work in the same time
  }
  assert.equal(c.threaded, true);
  assert.equal(c.useThreads(1), true, 'decided after 10 calls, held');
});

test('a job\'s work: M·K·N for a GEMM (twice gated), rows · keys · D per head for attention', () => {
  const gemm = (M: number, K: number, N: number, glu = 0) => GEMM_JOB.words({
    kind: 6, a: 0, b: 0, c: 0, M, K, N, scales: 0, scratch: 0, scratchStride: 0, glu, b2: 0, scales2: 0, c2: 0, f16Scale: 2 ** 112, f16Scale2: 2 ** 112, outer: 0 });
  assert.equal(jobWork(gemm(1, 576, 49152)), 576 * 49152);
  assert.equal(jobWork(gemm(3, 576, 1536, 1)), 2 * 3 * 576 * 1536);
  const decode = DECODE_JOB.words({ kind: 7, q: 0, k: 0, v: 0, part: 0, scratch: 0, scratchStride: 0, B: 2, Hq: 9, Hkv: 3,
    L: 1, S: 300, D: 64, Dv: 64, scale: 0.125, causal: 1, shift: 0, chunk: 64, splits: 1, kStride: 0, vStride: 0, paged: 0, tables: 0, lens: 0,
    tableStride: 0, kScales: 0, vScales: 0, f16: 0, window: -1, softcap: 0, keep: 0, bias: 0, biasB: 0, biasH: 0, biasI: 0, alibi: 0, posShift: 0 });
  assert.equal(jobWork(decode), 2 * 9 * 300 * 64);
  decode[DECODE_JOB.index.window] = 127; // a sliding window: each row reads its last 128 keys at most
  assert.equal(jobWork(decode), 2 * 9 * 128 * 64);
});
