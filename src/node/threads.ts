// Threads in Node (worker_threads).
// useThreads(n): the WebAssembly kernels (attention and the matrix products of every linear layer) share their work
//   with n − 1 workers over one shared memory (src/kernels/wasm/runtime.ts) — every attention() and linear() call
//   after it is multi-threaded, synchronously. The default is the cores available.
// AttentionPool: attention for any mask the TypeScript kernels take, cut into (batch, kv head) units dealt to workers
//   — each unit a group of G query heads sharing one key/value head (asynchronous; inputs in SharedArrayBuffers).
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { startThreads } from '../kernels/wasm/threads.js';
import { kernelThreads, stopWorkers } from '../kernels/wasm/runtime.js';
import type { AttentionOptions } from '../attention/options.js';
import { checkQkv } from '../attention/validate.js';
import { QkvError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';

const kernelWorkers: Worker[] = [];

/**
 * Runs qkv's WebAssembly kernels on `threads` threads (this one included; default: the cores available). Resolves to
 * the threads in use. Workers are unref'd: they never keep the process alive.
 */
export async function useThreads(threads = availableParallelism()): Promise<number> {
  return startThreads(threads, (_index, ready, failed) => {
    // a kernel worker allocates next to nothing in JavaScript (it runs jobs in the shared memory): a young generation of
    // 1 MiB instead of V8's default growth took ~6 MiB off a 2-thread generation's peak RSS
    const w = new Worker(new URL('./kernel-worker.js', import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: 1 } });
    w.once('message', () => { w.unref(); ready(); }); // unref'd once ready: waiting for it must keep the process up
    w.once('error', failed);
    w.once('exit', (code) => failed(new QkvError(`qkv threads: a kernel worker exited (code ${code}) before it was ready`))); // no-op once ready
    kernelWorkers.push(w);
    return w;
  });
}

/** Stops the kernel workers; the kernels run on this thread again. */
export async function stopThreads(): Promise<void> {
  stopWorkers();
  await Promise.all(kernelWorkers.splice(0).map((w) => w.terminate()));
}

export { kernelThreads };

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
    if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
      throw new QkvError(`AttentionPool: threads must be an integer in [1, 256], got ${String(threads)}`);
    }
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
