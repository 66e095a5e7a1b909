// A kernel thread (Node): joins the WebAssembly kernels' shared memory and runs its share of every job
// (src/kernels/wasm/runtime.ts) until told to stop.
import { parentPort } from 'node:worker_threads';
import { kernelWorkerLoop, type KernelWorkerInit } from '../kernels/wasm/runtime.js';

parentPort!.once('message', (init: KernelWorkerInit) => kernelWorkerLoop(init, () => parentPort!.postMessage('ready')));
