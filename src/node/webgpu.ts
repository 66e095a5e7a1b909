// WebGPU in Node through Dawn (the `webgpu` package, an optional dependency). Backends: Vulkan by default (NVIDIA's
// driver on the GPU machines; the flags enable f16 and subgroup matrices there), or OpenGL ES — Mesa's llvmpipe on
// a machine without a GPU (CI) — with QKV_WEBGPU_BACKEND=opengles (EGL_PLATFORM=surfaceless is set for it).
import { setGpuProvider } from '../kernels/webgpu/device.js';

/** Makes qkv's WebGPU kernels use Dawn; returns false when the `webgpu` package is not installed. */
export async function useDawn(backend = process.env.QKV_WEBGPU_BACKEND ?? 'vulkan'): Promise<boolean> {
  let mod: { create(flags: string[]): GPU; globals: Record<string, unknown> };
  try {
    mod = (await import('webgpu')) as unknown as typeof mod;
  } catch {
    return false;
  }
  Object.assign(globalThis, mod.globals); // GPUBufferUsage, GPUMapMode, …
  if (backend === 'opengles') process.env.EGL_PLATFORM ??= 'surfaceless';
  const flags = backend === 'opengles' ? ['backend=opengles'] : [`backend=${backend}`, 'enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia'];
  const gpu = mod.create(flags);
  setGpuProvider(async () => gpu);
  return true;
}
