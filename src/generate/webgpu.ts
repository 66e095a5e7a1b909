// Generation on WebGPU: the step function over a decoder's one forward pass (logits() over GpuOps, models/ops-webgpu.ts)
// and a GPU KV cache, for generateStream's `device: 'webgpu'`. Weights and the cache stay on the GPU between steps;
// each step reads back one row of logits.
import { GpuKVCache, type GpuPagedKVCache } from '../cache/webgpu.js';
import { QkvError } from '../errors.js';
import { gpuDevice } from '../kernels/webgpu/device.js';
import { validated } from '../kernels/webgpu/pipelines.js';
import { batched } from '../kernels/webgpu/buffers.js';
import type { CausalLM } from '../models/model.js';
import { isDecoder } from '../models/ops.js';
import { forwardWebGPU, forwardWebGPUPaged } from '../models/ops-webgpu.js';

/** The next-logits step of `model` on WebGPU (its KV cache stored as `kvDtype`), or null (with a warning) when there is no adapter. */
export async function webgpuStepper(model: CausalLM, kvDtype: 'float32' | 'float16' = 'float32'):
  Promise<{ step: (ids: readonly number[]) => Promise<Float32Array>; release: () => void } | null> {
  if (!isDecoder(model)) {
    const families = 'the families written over DecoderOps do: Llama, Mistral, Qwen2, Gemma 2';
    throw new QkvError(`generate: ${model.info.architecture} has no WebGPU forward yet (${families})`);
  }
  const device = await gpuDevice();
  if (!device) {
    console.warn('qkv: generating on the CPU instead of WebGPU (no WebGPU adapter)');
    return null;
  }
  const cache = new GpuKVCache(device, model.info.numLayers, undefined, kvDtype); // refuses f16 without shader-f16
  // a dispatch Dawn rejects becomes an error here instead of garbage logits
  const what = `${model.info.architecture} forward on WebGPU`;
  // each step's passes go to the GPU in one submit (batched), read back once
  const step = (ids: readonly number[]) => validated(device, what, () => batched(device, () => forwardWebGPU(model, ids, cache)));
  return { step, release: () => cache.release() };
}

/**
 * One step of the batch engine on WebGPU: `model`'s forward over rows `ids` (B of one new token, or one prompt chunk)
 * at `positions`, on the paged GPU cache (its `batch` names the rows' sequences); the last position's logits of each
 * row, [B · V]. Every pass in one submission; a dispatch Dawn rejects becomes an error here, not garbage logits.
 */
export function webgpuBatchStep(model: CausalLM, cache: GpuPagedKVCache, ids: readonly (readonly number[])[], positions: readonly number[]):
  Promise<Float32Array> {
  if (!isDecoder(model)) throw new QkvError(`BatchEngine: ${model.info.architecture} has no WebGPU forward`);
  const step = () => batched(cache.device, () => forwardWebGPUPaged(model, ids, cache, positions));
  return validated(cache.device, `${model.info.architecture} batch step on WebGPU`, step);
}
