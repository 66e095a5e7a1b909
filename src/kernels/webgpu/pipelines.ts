// Compute pipelines, built once per (device, shader variant) and cached. A shader that fails to compile, or a pipeline
// Dawn rejects, becomes a QkvError that quotes the compiler's messages with their line numbers.
import { QkvError } from '../../errors.js';
import { gpuWait } from './buffers.js';

const cache = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();
// compilation checks still running, per device: validated() awaits them, so a shader that does not compile is reported
// with the compiler's messages even though the pipeline was handed out at once
const checks = new WeakMap<GPUDevice, Promise<void>[]>();

/**
 * The pipeline of `entryPoint` in `code` on `device`; `key` names the variant (same key → same pipeline). `code` may
 * be a function: the source of a specialised variant is then put together only when the variant is first built,
 * not on every call (decoding asks for its pipelines hundreds of times a token). Synchronous, like recording a
 * pass: a layer's passes are recorded without waiting; whether the shader compiled is checked by validated().
 */
export function computePipeline(device: GPUDevice, key: string, code: string | (() => string), entryPoint = 'main'): GPUComputePipeline {
  let byKey = cache.get(device);
  if (!byKey) cache.set(device, (byKey = new Map()));
  const id = `${key}#${entryPoint}`;
  let p = byKey.get(id);
  if (!p) {
    const built = build(device, key, typeof code === 'string' ? code : code(), entryPoint);
    byKey.set(id, (p = built.pipeline));
    const check = built.check.catch((e: unknown) => { byKey!.delete(id); throw e; }); // a failed build is not cached
    check.catch(() => {}); // reported by validated(), not as an unhandled rejection
    let list = checks.get(device);
    if (!list) checks.set(device, (list = []));
    list.push(check);
  }
  return p;
}

function build(device: GPUDevice, key: string, code: string, entryPoint: string): { pipeline: GPUComputePipeline; check: Promise<void> } {
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ code, label: `qkv ${key}` });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint }, label: `qkv ${key} ${entryPoint}` });
  const popped = device.popErrorScope();
  const check = (async () => {
    const [info, err] = await gpuWait(Promise.all([module.getCompilationInfo(), popped]));
    const errors = info.messages.filter((m) => m.type === 'error');
    const where = errors.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join('; ');
    if (errors.length) throw new QkvError(`WebGPU: ${key} does not compile: ${where}`);
    if (err) throw new QkvError(`WebGPU: the ${key} pipeline (${entryPoint}) is invalid: ${err.message}`);
  })();
  return { pipeline, check };
}

/** Waits for the compilation checks of the pipelines built so far on `device`; throws the first failure. */
export async function pipelineChecks(device: GPUDevice): Promise<void> {
  const list = checks.get(device);
  if (!list?.length) return;
  await Promise.all(list.splice(0));
}

/** A bind group of group 0: `buffers[n]` at binding n, for the bindings in `used` (default: all). */
export function bindBuffers(device: GPUDevice, pipeline: GPUComputePipeline, buffers: readonly GPUBuffer[], used?: readonly number[]): GPUBindGroup {
  const bindings = used ?? buffers.map((_, n) => n);
  return device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: bindings.map((binding) => ({ binding, resource: { buffer: buffers[binding] } })) });
}

/**
 * Runs `work` (which records, submits and reads back GPU commands) inside a validation error scope, so a binding or
 * dispatch Dawn rejects becomes a QkvError naming `what` instead of a silently wrong result.
 */
export async function validated<T>(device: GPUDevice, what: string, work: () => T | Promise<T>): Promise<T> {
  device.pushErrorScope('validation');
  let result: { value: T } | { failure: unknown };
  try { result = { value: await work() }; } catch (failure) { result = { failure }; }
  const compiled = pipelineChecks(device).then(() => null, (e: unknown) => ({ e }));
  const err = await gpuWait(device.popErrorScope());
  const compileError = await compiled; // a shader that did not compile says so with its line numbers, first
  if (compileError) throw compileError.e;
  if ('failure' in result) throw result.failure;
  if (err) throw new QkvError(`WebGPU: ${what} was rejected: ${err.message}`);
  return result.value;
}

/** `code` with each `const NAME: u32 = …u;` line of `values` set: a kernel's compile-time tile sizes (Triton's constexprs). */
export function specialize(code: string, values: Record<string, number>): string {
  for (const [name, value] of Object.entries(values)) code = code.replace(new RegExp(`const ${name}: u32 = \\d+u;`), `const ${name}: u32 = ${value}u;`);
  return code;
}

/**
 * A shader whose storage type is `alias E = f32;` in the f16 variant when `dtype` is float16: `enable f16;` first and
 * E = f16 (its arithmetic is written in f32, converting at loads and stores). The f32 source is returned as it is.
 */
export function storageVariant(code: string, dtype: 'float32' | 'float16'): string {
  if (dtype === 'float32') return code;
  if (!code.includes('alias E = f32;')) throw new QkvError('WebGPU: this shader has no f16 variant (no `alias E = f32;`)');
  return `enable f16;\n${code.replace('alias E = f32;', 'alias E = f16;')}`;
}
