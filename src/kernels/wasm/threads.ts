// Starting the kernel threads. Node: useThreads() in qkv/node (worker_threads). Browsers: useBrowserThreads() here
// (module Web Workers); both need a SharedArrayBuffer, which browsers give only to cross-origin-isolated pages
// (served with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp).
import { describeValue, QkvError } from '../../errors.js';
import { type KernelWorkerInit, kernelRuntime, kernelThreads, setKernelThreads, workerInit, workerJoined } from './runtime.js';

/** Something that can be started with a KernelWorkerInit and answers 'ready' (a Node Worker or a Web Worker). */
export interface StartableWorker { postMessage(m: KernelWorkerInit): void }

/**
 * Brings the kernels up to `threads` threads (the caller counts as one), starting workers with `spawn`; resolves to
 * the threads in use — 1 where memory cannot be shared.
 */
export async function startThreads(threads: number, spawn: (index: number, ready: () => void, failed: (e: unknown) => void) => StartableWorker): Promise<number> {
  // (10⁹ had started workers until the process ran out of memory)
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
    throw new QkvError(`threads must be an integer in [1, 256], got ${String(threads)}`);
  }
  const r = kernelRuntime();
  if (!r || !r.shared) return 1;
  const have = kernelThreads();
  const starts: Promise<void>[] = [];
  for (let index = have; index < threads; index++) {
    starts.push(new Promise<void>((resolve, reject) => {
      const w = spawn(index, () => { workerJoined(); resolve(); }, reject);
      w.postMessage(workerInit(index)!);
    }));
  }
  await Promise.all(starts);
  setKernelThreads(threads);
  return kernelThreads();
}

/**
 * Browsers: runs the WebAssembly kernels on `threads` threads (default: navigator.hardwareConcurrency) with module
 * Web Workers loaded from `workerUrl` (qkv's dist/src/kernels/wasm/kernel-worker-browser.js). Returns the threads in
 * use: 1 when the page is not cross-origin isolated.
 */
export async function useBrowserThreads(workerUrl: string | URL, threads = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1): Promise<number> {
  if (typeof Worker !== 'function') {
    throw new QkvError("useBrowserThreads: this environment has no Web Workers (in Node: useThreads from 'qkv/node')");
  }
  if (typeof workerUrl !== 'string' && !(workerUrl instanceof URL)) {
    throw new QkvError(`useBrowserThreads: workerUrl must be a string or a URL, got ${describeValue(workerUrl)}`);
  }
  return startThreads(threads, (_index, ready, failed) => {
    const w = new Worker(workerUrl, { type: 'module' });
    w.onmessage = () => ready();
    w.onerror = (e) => failed(new QkvError(`kernel worker failed to start: ${e.message}`));
    return w;
  });
}
