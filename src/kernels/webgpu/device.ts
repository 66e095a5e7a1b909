// The WebGPU device qkv computes on. In browsers it comes from navigator.gpu; in Node, from Google's Dawn through
// the `webgpu` package, which only the Node entry (src/node/webgpu.ts) imports — the core stays browser-safe.
// Robustness: a lost device is reported once with its reason and the next call asks for a new one.

import { gpuWait } from './buffers.js';

let provider: (() => Promise<GPU | null>) | null = null;
let current: Promise<GPUDevice | null> | null = null;

/** Lets the Node entry hand qkv Dawn's GPU object (browsers need no call). */
export function setGpuProvider(p: () => Promise<GPU | null>): void {
  provider = p;
  current = null;
}

async function open(): Promise<GPUDevice | null> {
  const gpu = provider ? await provider() : (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu ?? null;
  if (!gpu) return null;
  const adapter = (await gpuWait(gpu.requestAdapter())) ?? (await gpuWait(gpu.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions)));
  if (!adapter) return null;
  // the adapter's own buffer limits, not WebGPU's defaults (128 MiB per binding): a KV cache or a 4k×4k attention
  // call on a real GPU needs more
  const big = (name: 'maxStorageBufferBindingSize' | 'maxBufferSize') => adapter.limits[name];
  // shader-f16 where the adapter has it: the f16 kernels (storage in f16, arithmetic in f32) then become available;
  // and subgroup matrices (tensor cores) where it also has an f16 → f32 configuration
  const requiredFeatures: GPUFeatureName[] = adapter.features.has('shader-f16') ? ['shader-f16'] : [];
  const matrix = requiredFeatures.length ? f16MatrixConfig(adapter) : null;
  if (matrix) requiredFeatures.push(SUBGROUP_MATRIX);
  const device = await gpuWait(adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxStorageBufferBindingSize: big('maxStorageBufferBindingSize'), maxBufferSize: big('maxBufferSize'),
      // the flash kernels size their tiles to what the adapter offers
      maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: adapter.limits.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: adapter.limits.maxComputeWorkgroupSizeY,
    },
  }));
  if (matrix) matrices.set(device, matrix);
  void device.lost.then((info) => {
    if (info.reason !== 'destroyed') console.warn(`qkv: the WebGPU device was lost (${info.reason}): ${info.message}`);
    current = null; // the next call opens a new one
  });
  return device;
}

/** The shared device, or null when no adapter exists (callers fall back to the CPU). */
export function gpuDevice(): Promise<GPUDevice | null> {
  return (current ??= open());
}

const SUBGROUP_MATRIX = 'chromium-experimental-subgroup-matrix' as GPUFeatureName;

/** One shape of the matrix units: SM × SK f16 times SK × SN f16 into SM × SN f32, on subgroups of `lanes`. */
export type MatrixConfig = { M: number; N: number; K: number; lanes: number };

const matrices = new WeakMap<GPUDevice, MatrixConfig>();

type AdapterMatrixInfo = { subgroupMatrixConfigs?: Iterable<{ componentType: string; resultComponentType: string; M: number; N: number; K: number }>; subgroupMinSize?: number; subgroupMaxSize?: number };

// the adapter's f16 → f32 subgroup-matrix configuration (the largest, where it lists several), when its subgroups have
// one size (the kernel lays out its workgroup for it); null without the feature
function f16MatrixConfig(adapter: GPUAdapter): MatrixConfig | null {
  if (!adapter.features.has(SUBGROUP_MATRIX)) return null;
  const info = adapter.info as unknown as AdapterMatrixInfo;
  if (!info.subgroupMinSize || info.subgroupMinSize !== info.subgroupMaxSize) return null;
  const configs = [...(info.subgroupMatrixConfigs ?? [])].filter((c) => c.componentType === 'f16' && c.resultComponentType === 'f32');
  configs.sort((a, b) => b.M * b.N * b.K - a.M * a.N * a.K);
  const c = configs[0];
  return c ? { M: c.M, N: c.N, K: c.K, lanes: info.subgroupMinSize } : null;
}

/** The tensor-core shape `device` was opened with (chromium-experimental-subgroup-matrix, f16 → f32), or null. */
export function matrixConfig(device: GPUDevice): MatrixConfig | null {
  return matrices.get(device) ?? null;
}

/** True when `device` runs WGSL with f16 (the shader-f16 feature): f16 tensors then stay f16 on the GPU. */
export function hasF16(device: GPUDevice): boolean {
  return device.features.has('shader-f16');
}
