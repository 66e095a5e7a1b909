// Three threads (two workers) on any machine (here: two cores, so a worker is often late or descheduled): the k-th
// worker into a job's gate runs share k + 1, the caller runs share 0 and the shares of the workers that did not come
// (runtime.ts, gate.ts), and claimed units go to whoever claims them — the same bits as one thread, call after call,
// also right after the workers fell asleep.
import { test } from 'node:test';
import { assertClose, randn, rng } from '../../helpers.js';

test('3 threads: fixed shares and claimed units give exactly the single-thread results', async () => {
  const { useThreads, setKernelThreads, kernelThreads } = await import('../../../src/node/index.js');
  const { attention, linear, gatedLinear, Int4Matrix, Int8Matrix } = await import('../../../src/index.js');
  if ((await useThreads(3)) !== 3) return; // (no SharedArrayBuffer: nothing to test)
  const rand = rng(21);
  const x1 = randn([1, 128], rand), x40 = randn([40, 128], rand), w = randn([52, 128], rand), u = randn([52, 128], rand);
  const q = randn([1, 6, 1, 32], rand), k = randn([1, 2, 700, 32], rand);
  const run = () => [
    // M = 1: three fixed shares of the columns
    linear(x1, w), linear(x1, w.to('float16')), linear(x1, w.to('bfloat16')), linear(x1, Int8Matrix.quantize(w)),
    linear(x1, Int4Matrix.quantize(w)), gatedLinear(x1, w, u, 'silu'),
    // claimed units: panels of 12 columns, chunks of keys
    linear(x40, w), gatedLinear(x40, w.to('bfloat16'), u.to('bfloat16'), 'silu'), attention(q, k, k).out,
  ];
  setKernelThreads(1);
  const want = run().map((t) => ({ t, data: t.toFloat32().slice() }));
  setKernelThreads(3);
  for (let round = 0; round < 3; round++) {
    if (round > 0) await new Promise((ok) => setTimeout(ok, 20)); // past SPIN_MS: the workers sleep
    for (let call = 0; call < 30; call++) {
      run().forEach((got, i) => assertClose(got, want[i].t, 0, 0, `result ${i}, round ${round}, call ${call} (${kernelThreads()} threads)`));
    }
  }
});
