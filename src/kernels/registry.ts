// Kernel registry: name → kernel. Backends register their kernels here (the CPU and WebAssembly ones in cpu/index.ts);
// registering a name twice throws. Layers above reach kernels only through this file and the contract.
import { QkvError } from '../errors.js';
import type { KernelStorage, MatmulKernel, PagedKernel, SdpaKernel } from './contract.js';

const sdpaKernels = new Map<string, SdpaKernel>();
const pagedKernels = new Map<string, PagedKernel>();
const matmulKernels = new Map<string, MatmulKernel>();

/** Adds a kernel under its name. */
export function registerSdpaKernel(kernel: SdpaKernel): void {
  if (sdpaKernels.has(kernel.name)) throw new QkvError(`kernel '${kernel.name}' is already registered`);
  sdpaKernels.set(kernel.name, kernel);
}

/** The kernel registered under `name`. */
export function getSdpaKernel(name: string): SdpaKernel {
  const k = sdpaKernels.get(name);
  if (!k) throw new QkvError(`attention: kernel must be one of ${[...sdpaKernels.keys()].join(', ')}; got '${name}'`);
  return k;
}

/** Names of the registered kernels. */
export function sdpaKernelNames(): string[] {
  return [...sdpaKernels.keys()];
}

/** Adds a paged attention kernel under its name. */
export function registerPagedKernel(kernel: PagedKernel): void {
  if (pagedKernels.has(kernel.name)) throw new QkvError(`paged kernel '${kernel.name}' is already registered`);
  pagedKernels.set(kernel.name, kernel);
}

/** The paged attention kernel registered under `name`. */
export function getPagedKernel(name = 'paged'): PagedKernel {
  const k = pagedKernels.get(name);
  if (!k) throw new QkvError(`paged attention: kernel must be one of ${[...pagedKernels.keys()].join(', ')}; got '${name}'`);
  return k;
}

/** Adds a matrix-product kernel under its name. */
export function registerMatmulKernel(kernel: MatmulKernel): void {
  if (matmulKernels.has(kernel.name)) throw new QkvError(`matmul kernel '${kernel.name}' is already registered`);
  matmulKernels.set(kernel.name, kernel);
}

/** The matrix-product kernel registered under `name`. */
export function getMatmulKernel(name: string): MatmulKernel {
  const k = matmulKernels.get(name);
  if (!k) throw new QkvError(`matmul: kernel must be one of ${[...matmulKernels.keys()].join(', ')}; got '${name}'`);
  return k;
}

let storage: KernelStorage = { floats: (n) => new Float32Array(n), release: () => {} };

/** Where KV caches keep their floats from now on (a backend's memory, so its kernels read them in place). */
export function registerKernelStorage(s: KernelStorage): void {
  storage = s;
}

/** The storage KV caches allocate from. */
export function kernelStorage(): KernelStorage {
  return storage;
}
