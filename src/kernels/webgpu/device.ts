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
  // shader-f16 where the adapter has it: the f16 kernels (storage in f16, arithmetic in f32) then become available
  const requiredFeatures: GPUFeatureName[] = adapter.features.has('shader-f16') ? ['shader-f16'] : [];
  const device = await gpuWait(adapter.requestDevice({ requiredFeatures, requiredLimits: { maxStorageBufferBindingSize: big('maxStorageBufferBindingSize'), maxBufferSize: big('maxBufferSize') } }));
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

/** True when `device` runs WGSL with f16 (the shader-f16 feature): f16 tensors then stay f16 on the GPU. */
export function hasF16(device: GPUDevice): boolean {
  return device.features.has('shader-f16');
}
