// Attention on several cores (Node's worker_threads). The work is cut into (batch, kv head) units — each a group of
// G query heads sharing one key/value head — and the units are dealt to a pool of workers. Inputs go into
// SharedArrayBuffers once; every worker reads them in place and writes its rows of the output, running the same
// kernels as the main thread (WebAssembly SIMD where it applies). The browser counterpart (Web Workers over
// SharedArrayBuffer, which needs cross-origin isolation) is not written yet.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { AttentionOptions } from '../attention/options.js';
import { checkQkv } from '../attention/validate.js';
import { QkvError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';

/** The options a worker can receive (plain data: no functions, no tensors). */
export type ThreadedOptions = Pick<AttentionOptions, 'scale' | 'causal' | 'window' | 'dilation' | 'softcap' | 'kernel' | 'blockM' | 'blockN'>;

/** A job for one worker: shared inputs, sizes, and the (b, kvh) units it owns. */
export interface ThreadJob {
  q: SharedArrayBuffer; k: SharedArrayBuffer; v: SharedArrayBuffer; out: SharedArrayBuffer; lse: SharedArrayBuffer;
  dims: { B: number; Hq: number; Hkv: number; L: number; S: number; D: number; Dv: number };
  units: number[];
  options: ThreadedOptions;
}

const shared = (a: Float32Array) => {
  const sab = new SharedArrayBuffer(a.byteLength);
  new Float32Array(sab).set(a);
  return sab;
};

/** A pool of attention workers. Call close() when done (workers keep a process alive). */
export class AttentionPool {
  private readonly workers: Worker[];
  readonly size: number;

  constructor(threads = availableParallelism()) {
    if (!Number.isInteger(threads) || threads < 1) throw new QkvError(`AttentionPool: threads must be a positive integer, got ${threads}`);
    this.size = threads;
    this.workers = Array.from({ length: threads }, () => new Worker(new URL('./attention-worker.js', import.meta.url)));
  }

  /** attention(q, k, v, options) with the (batch, kv head) units spread over the pool; resolves to out and lse. */
  async attention(q: Tensor, k: Tensor, v: Tensor, options: ThreadedOptions = {}): Promise<{ out: Tensor; lse: Tensor }> {
    const dims = checkQkv(q, k, v, 'AttentionPool.attention');
    for (const key of Object.keys(options)) {
      if (!['scale', 'causal', 'window', 'dilation', 'softcap', 'kernel', 'blockM', 'blockN'].includes(key)) {
        throw new QkvError(`AttentionPool.attention: option '${key}' cannot cross to a worker (use attention() on one thread)`);
      }
    }
    const { B, Hq, Hkv, L, Dv } = dims;
    const job = {
      q: shared(q.toFloat32()), k: shared(k.toFloat32()), v: shared(v.toFloat32()),
      out: new SharedArrayBuffer(4 * B * Hq * L * Dv), lse: new SharedArrayBuffer(4 * B * Hq * L), dims, options,
    };
    const units = Array.from({ length: B * Hkv }, (_, u) => u);
    await Promise.all(this.workers.map((w, t) => {
      const mine = units.filter((u) => u % this.size === t);
      if (mine.length === 0) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const onMessage = (m: { error?: string }) => { w.off('error', onError); if (m.error) reject(new QkvError(m.error)); else resolve(); };
        const onError = (e: Error) => { w.off('message', onMessage); reject(e); };
        w.once('message', onMessage);
        w.once('error', onError);
        w.postMessage({ ...job, units: mine } satisfies ThreadJob);
      });
    }));
    return { out: Tensor.from(new Float32Array(job.out), [B, Hq, L, Dv]), lse: Tensor.from(new Float32Array(job.lse), [B, Hq, L]) };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
