// A kernel thread (browsers, a module Web Worker): the counterpart of src/node/kernel-worker.ts.
import { kernelWorkerLoop, type KernelWorkerInit } from './runtime.js';

const scope = globalThis as unknown as { onmessage: ((e: MessageEvent<KernelWorkerInit>) => void) | null; postMessage(m: unknown): void };
scope.onmessage = (e) => { scope.onmessage = null; kernelWorkerLoop(e.data, () => scope.postMessage('ready')); };
