// Kernel registry: name → kernel, one table per kind of problem (contract.ts). Backends register their kernels here
// (the CPU and WebAssembly ones in cpu/index.ts, the WGSL ones in webgpu/index.ts); registering a name twice throws.
// Layers above reach kernels only through this file and the contract; attention/dispatch.ts chooses among them.
import { QkvError } from '../errors.js';
import type {
  GpuBackwardKernel, GpuLayerKernels, GpuPagedKernel, GpuSdpaKernel, KernelStorage, MatmulKernel, PagedKernel, RowKernels, SdpaKernel,
} from './contract.js';

class Table<K extends { readonly name: string }> {
  private readonly byName = new Map<string, K>();
  constructor(private readonly what: string) {}

  add(kernel: K): void {
    if (this.byName.has(kernel.name)) throw new QkvError(`${this.what} kernel '${kernel.name}' is already registered`);
    this.byName.set(kernel.name, kernel);
  }

  get(name: string): K {
    const k = this.byName.get(name);
    if (!k) throw new QkvError(`${this.what}: kernel must be one of ${this.names().join(', ')}; got '${name}'`);
    return k;
  }

  names(): string[] { return [...this.byName.keys()]; }
}

const sdpa = new Table<SdpaKernel>('attention');
const paged = new Table<PagedKernel>('paged attention');
const matmul = new Table<MatmulKernel>('matmul');
const gpuSdpa = new Table<GpuSdpaKernel>('WebGPU attention');
const gpuPaged = new Table<GpuPagedKernel>('WebGPU paged attention');
const gpuBackward = new Table<GpuBackwardKernel>('WebGPU attention backward');
const gpuLayers = new Table<GpuLayerKernels>('GPU layers');

/** Adds an attention kernel under its name. */
export const registerSdpaKernel = (k: SdpaKernel): void => sdpa.add(k);
/** The attention kernel registered under `name`. */
export const getSdpaKernel = (name: string): SdpaKernel => sdpa.get(name);
/** Names of the registered attention kernels. */
export const sdpaKernelNames = (): string[] => sdpa.names();

/** Adds a paged attention kernel under its name. */
export const registerPagedKernel = (k: PagedKernel): void => paged.add(k);
/** The paged attention kernel registered under `name`. */
export const getPagedKernel = (name = 'paged'): PagedKernel => paged.get(name);

/** Adds a matrix-product kernel under its name. */
export const registerMatmulKernel = (k: MatmulKernel): void => matmul.add(k);
/** The matrix-product kernel registered under `name`. */
export const getMatmulKernel = (name: string): MatmulKernel => matmul.get(name);

/** Adds a WGSL attention kernel (webgpu-flash, webgpu-tensor-cores, webgpu-decode). */
export const registerGpuSdpaKernel = (k: GpuSdpaKernel): void => gpuSdpa.add(k);
/** The WGSL attention kernel registered under `name`. */
export const getGpuSdpaKernel = (name: string): GpuSdpaKernel => gpuSdpa.get(name);

/** Adds a WGSL paged attention kernel. */
export const registerGpuPagedKernel = (k: GpuPagedKernel): void => gpuPaged.add(k);
/** The WGSL paged attention kernel registered under `name`. */
export const getGpuPagedKernel = (name = 'webgpu-paged'): GpuPagedKernel => gpuPaged.get(name);

/** Adds a WGSL backward kernel. */
export const registerGpuBackwardKernel = (k: GpuBackwardKernel): void => gpuBackward.add(k);
/** The WGSL backward kernel registered under `name`. */
export const getGpuBackwardKernel = (name = 'webgpu-backward'): GpuBackwardKernel => gpuBackward.get(name);

/** Adds a GPU backend's layer kernels (matmul, norms, RoPE, activations, transposes). */
export const registerGpuLayerKernels = (k: GpuLayerKernels): void => gpuLayers.add(k);
/** The layer kernels of the GPU backend `name`. */
export const getGpuLayerKernels = (name = 'webgpu'): GpuLayerKernels => gpuLayers.get(name);

let rowKernels: RowKernels | null = null;

/** Sets the CPU's elementwise layer kernels (the WebAssembly ones, kernels/wasm/rows-wasm.ts). */
export function registerRowKernels(k: RowKernels): void {
  rowKernels = k;
}

/** The CPU's elementwise layer kernels, or null (the TypeScript loops of nn/ then do the work). */
export function getRowKernels(): RowKernels | null {
  return rowKernels;
}

let storage: KernelStorage = { floats: (n) => new Float32Array(n), halves: (n) => new Uint16Array(n), release: () => {} };

/** Where KV caches keep their floats and loaders put weight matrices from now on (a backend's memory, so its kernels
 *  read them in place). */
export function registerKernelStorage(s: KernelStorage): void {
  storage = s;
}

/** The storage KV caches and checkpoint loaders allocate from. */
export function kernelStorage(): KernelStorage {
  return storage;
}
