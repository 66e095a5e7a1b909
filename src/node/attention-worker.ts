// An attention worker: for each (batch, kv head) unit it owns, runs attention on the G query heads of that group
// reading the shared inputs in place, and writes their output rows and lse into the shared results (threads.ts).
import { parentPort } from 'node:worker_threads';
import { attention } from '../attention/index.js';
import { Tensor } from '../tensor/tensor.js';
import type { ThreadJob } from './threads.js';

parentPort!.on('message', (job: ThreadJob) => {
  try {
    const { B, Hq, Hkv, L, S, D, Dv } = job.dims;
    const G = Hq / Hkv;
    const [q, k, v] = [new Float32Array(job.q), new Float32Array(job.k), new Float32Array(job.v)];
    const [out, lse] = [new Float32Array(job.out), new Float32Array(job.lse)];
    for (const u of job.units) {
      const b = Math.floor(u / Hkv);
      const kvh = u % Hkv;
      const h0 = kvh * G; // query heads h0..h0+G−1 read kv head kvh
      // views, not copies: the unit's rows are contiguous in every input
      const qu = Tensor.from(q.subarray(((b * Hq + h0) * L) * D, ((b * Hq + h0 + G) * L) * D), [1, G, L, D]);
      const ku = Tensor.from(k.subarray(((b * Hkv + kvh) * S) * D, ((b * Hkv + kvh + 1) * S) * D), [1, 1, S, D]);
      const vu = Tensor.from(v.subarray(((b * Hkv + kvh) * S) * Dv, ((b * Hkv + kvh + 1) * S) * Dv), [1, 1, S, Dv]);
      const r = attention(qu, ku, vu, job.options);
      out.set(r.out.toFloat32(), ((b * Hq + h0) * L) * Dv);
      lse.set(r.lse.toFloat32(), (b * Hq + h0) * L);
    }
    parentPort!.postMessage({});
  } catch (e) {
    parentPort!.postMessage({ error: (e as Error).message });
  }
});
