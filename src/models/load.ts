// Building a model from files already in memory — the browser path (fetch the files, then call this) and the
// one the Node loader uses after streaming tensors from disk.
// Weight matrices go into the matrix kernel's memory where it offers room (the WebAssembly kernels' memory, shared in
// a cross-origin isolated page), and every other tensor into its own array, so the model holds no view of the files:
// once the caller drops them, the weights are held once (not in the fetched bytes and again in the kernel's copy).
import { kernelStorage } from '../kernels/registry.js';
import type { HfConfig } from './config.js';
import type { Model } from './model.js';
import { buildModel } from './registry.js';
import { Weights } from './weights.js';
import { describeValue, QkvError, SafetensorsError } from '../errors.js';
import { DTYPE_SIZE, type DType, type Storage, storageView } from '../tensor/dtype.js';
import { checkBool, MAX_HEADER_BYTES, parseSafetensors, parseSafetensorsHeader } from '../tensor/safetensors.js';
import { Tensor } from '../tensor/tensor.js';

/** Room for a weight matrix (a 2-D float tensor of `n` elements) where the matrix kernel reads it in place, when the
 *  kernel offers room; null for anything else (the caller gives it a buffer of its own). The Node loader uses it too. */
export function inKernelMemory(dtype: DType, shape: readonly number[], n: number): Storage | null {
  const matrix = shape.length === 2 && (dtype === 'float32' || dtype === 'float16' || dtype === 'bfloat16');
  return matrix ? kernelStorage().matrix?.(dtype, n) ?? null : null;
}

// storage of its own for a tensor: the kernel's memory for a weight matrix where it offers room, else a new array
function storageFor(dtype: DType, shape: readonly number[], n: number): Storage {
  return inKernelMemory(dtype, shape, n) ?? storageView(dtype, new ArrayBuffer(n * DTYPE_SIZE[dtype]), 0, n);
}

// t copied into storage of its own
function own(t: Tensor): Tensor {
  const src = t.contiguous().data;
  const data = storageFor(t.dtype, t.shape, t.size);
  new Uint8Array(data.buffer, data.byteOffset, src.byteLength).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
  return new Tensor(t.dtype, data, t.shape);
}

/**
 * A model from config.json (parsed) and the bytes of its safetensors file(s); the model keeps no reference to `files`.
 * @example const model = modelFromBytes(await (await fetch('config.json')).json(), [new Uint8Array(await (await fetch('model.safetensors')).arrayBuffer())]);
 */
export function modelFromBytes(config: HfConfig, files: readonly Uint8Array[]): Model {
  if (!Array.isArray(files)) {
    throw new QkvError(`modelFromBytes: files must be a list of safetensors files' bytes, got ${describeValue(files)}`);
  }
  const tensors = new Map<string, Tensor>();
  for (const bytes of files) for (const [name, t] of parseSafetensors(bytes).tensors) tensors.set(name, own(t));
  return buildModel(config, new Weights(tensors, 'model.safetensors'));
}

/** Reads exactly `into.length` bytes from a stream reader, keeping what a chunk holds past them for the next read. */
class StreamBytes {
  private chunk: Uint8Array = new Uint8Array(0);
  read = 0;
  constructor(private readonly reader: ReadableStreamDefaultReader<Uint8Array>, private readonly what: string) {}
  async fill(into: Uint8Array): Promise<void> {
    for (let at = 0; at < into.length;) {
      if (this.chunk.length === 0) {
        const { done, value } = await this.reader.read();
        if (done) throw new SafetensorsError(`${this.what}: the stream ended at byte ${this.read}, before the data its header declares`);
        this.chunk = value;
      }
      const n = Math.min(this.chunk.length, into.length - at);
      into.set(this.chunk.subarray(0, n), at);
      [this.chunk, at, this.read] = [this.chunk.subarray(n), at + n, this.read + n];
    }
  }
}

/**
 * A model from config.json (parsed) and a safetensors file as a stream of `size` bytes (a fetch Response's body and its
 * Content-Length): the header is validated first, then each tensor is read from the stream straight into its final
 * place (weight matrices into the matrix kernel's memory), so the file is never held whole beside the model.
 * @example const r = await fetch('model.safetensors');
 *   const model = await modelFromStream(config, r.body!, Number(r.headers.get('content-length')));
 */
export async function modelFromStream(config: HfConfig, body: ReadableStream<Uint8Array>, size: number,
  what = 'model.safetensors'): Promise<Model> {
  if (!Number.isSafeInteger(size) || size < 8) {
    throw new QkvError(`modelFromStream: size must be the file's length in bytes (≥ 8), got ${String(size)}`);
  }
  if (typeof body?.getReader !== 'function') {
    throw new QkvError(`modelFromStream: body must be a ReadableStream, got ${describeValue(body)}`);
  }
  what = String(what);
  const bytes = new StreamBytes(body.getReader(), what);
  const len = new Uint8Array(8);
  await bytes.fill(len);
  const n = Number(new DataView(len.buffer).getBigUint64(0, true));
  if (n > Math.min(MAX_HEADER_BYTES, size - 8)) {
    throw new SafetensorsError(`${what}: header length ${n} exceeds the file (${size} bytes) or the limit`);
  }
  const prefix = new Uint8Array(8 + n);
  prefix.set(len);
  await bytes.fill(prefix.subarray(8));
  const { entries, dataStart } = parseSafetensorsHeader(prefix, size);
  const tensors = new Map<string, Tensor>();
  for (const e of [...entries].sort((a, b) => a.begin - b.begin)) {
    if (dataStart + e.begin > bytes.read) await bytes.fill(new Uint8Array(dataStart + e.begin - bytes.read)); // a gap
    const data = storageFor(e.dtype, e.shape, (e.end - e.begin) / DTYPE_SIZE[e.dtype]);
    await bytes.fill(new Uint8Array(data.buffer, data.byteOffset, e.end - e.begin));
    checkBool(e, data);
    tensors.set(e.name, new Tensor(e.dtype, data, e.shape));
  }
  return buildModel(config, new Weights(tensors, what));
}
