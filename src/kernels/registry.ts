// Kernel registry: name → kernel. Backends register their kernels here; registering a name twice throws.
import { QkvError } from '../errors.js';
import type { SdpaKernel } from './contract.js';

const sdpaKernels = new Map<string, SdpaKernel>();

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
