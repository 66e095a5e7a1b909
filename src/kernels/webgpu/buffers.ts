// GPU buffers reused across calls, and the two transfers: host → GPU (writeBuffer) and GPU → host (a mapped copy).
// Every kernel call takes its buffers from a per-device pool of size classes (powers of two ≥ 256 bytes, by usage)
// and gives them back when its results are read, so a loop of calls allocates nothing after the first; the pool keeps
// at most POOL_BYTES idle per device and destroys the rest. A buffer is never returned to the pool while a GPU
// command that uses it may still run: release() follows the read-back that waited for that command.
import { QkvError } from '../../errors.js';
import { isConstant } from '../../tensor/constant.js';

const POOL_BYTES = 512 * 2 ** 20;

interface Pool { free: Map<string, GPUBuffer[]>; idleBytes: number }
const pools = new WeakMap<GPUDevice, Pool>();

function poolOf(device: GPUDevice): Pool {
  let p = pools.get(device);
  if (!p) pools.set(device, (p = { free: new Map(), idleBytes: 0 }));
  return p;
}

const sizeClass = (bytes: number) => Math.max(256, 2 ** Math.ceil(Math.log2(Math.max(1, bytes))));

/** A buffer of at least `bytes` with `usage`, from the pool when one is idle. */
export function acquire(device: GPUDevice, bytes: number, usage: number): GPUBuffer {
  const limit = usage & GPUBufferUsage.STORAGE ? device.limits.maxStorageBufferBindingSize : device.limits.maxBufferSize;
  if (bytes > limit) throw new QkvError(`WebGPU: a buffer of ${bytes} bytes exceeds this device's limit of ${limit} bytes`);
  let size = sizeClass(bytes);
  if (size > limit) size = Math.ceil(bytes / 4) * 4; // near the limit: the exact size, not the next power of two
  const p = poolOf(device);
  const list = p.free.get(`${usage}:${size}`);
  const b = list?.pop();
  if (b) { p.idleBytes -= size; return b; }
  return device.createBuffer({ size, usage });
}

/** Gives buffers back to the pool (their contents are garbage from now on) — inside a batch, once it is submitted. */
export function release(device: GPUDevice, ...buffers: GPUBuffer[]): void {
  const batch = batches.get(device);
  if (batch) { batch.held.push(...buffers); return; }
  toPool(device, buffers);
}

function toPool(device: GPUDevice, buffers: readonly GPUBuffer[]): void {
  const p = poolOf(device);
  for (const b of buffers) {
    if (p.idleBytes + b.size > POOL_BYTES) { b.destroy(); continue; }
    const key = `${b.usage}:${b.size}`;
    let list = p.free.get(key);
    if (!list) p.free.set(key, (list = []));
    list.push(b);
    p.idleBytes += b.size;
  }
}

// Batches. Each submit costs the driver a round of work (tens of µs), and a decode step records hundreds of passes,
// so a step runs as a batch (batched()): submit() gathers command buffers and hands them to the queue 16 at a time
// (the GPU starts on those while JavaScript records the rest), and release() holds buffers back until flush() has
// submitted everything gathered — only then may they return to the pool, because a queue.writeBuffer into a reused
// buffer would otherwise land before the pending commands that still read it.
interface Batch { commands: GPUCommandBuffer[]; held: GPUBuffer[] }
let batchCommands = 16; // command buffers per submit inside a batch

/** How many command buffers a batch gathers per queue.submit (default 16; 1 = each at once), for tuning on a GPU. */
export function setSubmitBatch(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new QkvError(`setSubmitBatch: n must be a positive integer, got ${String(n)}`);
  batchCommands = n;
}
const batches = new WeakMap<GPUDevice, Batch>();

/** Submits `commands` now, or with the open batch of `device`. */
export function submit(device: GPUDevice, ...commands: GPUCommandBuffer[]): void {
  const batch = batches.get(device);
  if (!batch) { device.queue.submit(commands); return; }
  batch.commands.push(...commands);
  if (batch.commands.length >= batchCommands) flush(device); // the GPU starts on these while the rest are recorded
}

/** Submits what the open batch of `device` holds (in one queue.submit) and returns its held buffers to the pool. */
export function flush(device: GPUDevice): void {
  const batch = batches.get(device);
  if (!batch) return;
  if (batch.commands.length) device.queue.submit(batch.commands.splice(0));
  toPool(device, batch.held.splice(0));
}

/** Runs `work` with the GPU commands it records submitted together at its end (or at a read-back inside it). */
export async function batched<T>(device: GPUDevice, work: () => Promise<T>): Promise<T> {
  if (batches.has(device)) return work(); // inside another batch: that one submits
  batches.set(device, { commands: [], held: [] });
  try {
    return await work();
  } finally {
    flush(device);
    batches.delete(device);
  }
}

/** Idle bytes held by the pool of `device` (for tests and memory reports). */
export function pooledBytes(device: GPUDevice): number {
  return poolOf(device).idleBytes;
}

export const STORAGE = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;

const BOUNCE = 16 * 2 ** 20;

/** queue.writeBuffer of `bytes` (a multiple of 4) at `offset`; data in a SharedArrayBuffer (weights the loader read
 *  into the WebAssembly kernels' memory), which writeBuffer refuses, goes through an ordinary buffer in 16 MiB pieces. */
function write(device: GPUDevice, buf: GPUBuffer, offset: number, bytes: Uint8Array): void {
  if (bytes.buffer instanceof ArrayBuffer) {
    device.queue.writeBuffer(buf, offset, bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return;
  }
  const bounce = new Uint8Array(Math.min(BOUNCE, bytes.byteLength));
  for (let at = 0; at < bytes.byteLength; at += BOUNCE) {
    const piece = bytes.subarray(at, at + BOUNCE);
    bounce.set(piece);
    device.queue.writeBuffer(buf, offset + at, bounce.buffer, 0, piece.byteLength);
  }
}

/** A pooled storage buffer holding `data` (padded to 4 bytes). */
export function upload(device: GPUDevice, data: ArrayBufferView): GPUBuffer {
  const buf = acquire(device, Math.max(4, data.byteLength), STORAGE());
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const whole = bytes.byteLength & ~3;
  if (whole) write(device, buf, 0, bytes.subarray(0, whole));
  if (whole < bytes.byteLength) { // writeBuffer wants multiples of 4 bytes
    const tail = new Uint8Array(4);
    tail.set(bytes.subarray(whole));
    device.queue.writeBuffer(buf, whole, tail);
  }
  return buf;
}

const resident = new WeakMap<GPUDevice, WeakMap<Float32Array | Uint16Array, GPUBuffer>>();
const contentsOf = new WeakMap<Float32Array | Uint16Array, () => Float32Array | Uint16Array>();

/**
 * The GPU buffer that holds `w` on `device` (a weight), made on first use and kept while `w` lives (not pooled). A
 * constant `w` (tensor/constant.ts: a model's weights) is uploaded once; any other again on every call, so a weight
 * changed in place between calls is read as it is now (the queue orders the write after the work already submitted).
 */
export function residentBuffer(device: GPUDevice, w: Float32Array | Uint16Array, contents?: () => Float32Array | Uint16Array): GPUBuffer {
  let byArray = resident.get(device);
  if (!byArray) resident.set(device, (byArray = new WeakMap()));
  let buf = byArray.get(w);
  if (buf && isConstant(w)) return buf;
  // `contents`: what goes up in place of w's own bytes (as many), made only now (an F16Matrix's true f16: nn/webgpu.ts),
  // remembered for the uploads of later calls that do not give it
  if (contents) contentsOf.set(w, contents);
  const src = contentsOf.get(w)?.() ?? w;
  const bytes = Math.ceil(src.byteLength / 4) * 4; // writeBuffer moves whole 4-byte words
  if (!buf) {
    buf = device.createBuffer({ size: Math.max(16, bytes), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    byArray.set(w, buf);
  }
  const raw = new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
  if (bytes === src.byteLength) write(device, buf, 0, raw);
  else { const padded = new Uint8Array(bytes); padded.set(raw); device.queue.writeBuffer(buf, 0, padded); }
  return buf;
}

/** A pooled uniform buffer holding `data`. */
export function uniform(device: GPUDevice, data: ArrayBuffer): GPUBuffer {
  const buf = acquire(device, data.byteLength, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  device.queue.writeBuffer(buf, 0, data);
  return buf;
}

/**
 * Awaits a promise that the GPU resolves (a buffer map, compilation info, an error scope, an adapter). Node's event
 * loop must stay alive meanwhile — a pending Dawn promise alone does not keep it, and the process would exit silently
 * — so a timer runs until it settles.
 */
export async function gpuWait<T>(p: Promise<T>): Promise<T> {
  const keepAlive = setInterval(() => {}, 50);
  try { return await p; } finally { clearInterval(keepAlive); }
}

/** Submits `commands` (may be empty) and copies each [buffer, bytes] back to the host as a Float32Array, in order. */
export async function readBack(device: GPUDevice, commands: GPUCommandBuffer[], parts: readonly [GPUBuffer, number][]): Promise<Float32Array[]> {
  return (await readBackBytes(device, commands, parts)).map((b) => new Float32Array(b));
}

/** readBack's bytes: each part as an ArrayBuffer of its byte count (f16 data: a Uint16Array view of it). */
export async function readBackBytes(device: GPUDevice, commands: GPUCommandBuffer[], parts: readonly [GPUBuffer, number][]): Promise<ArrayBuffer[]> {
  const padded = (n: number) => Math.ceil(n / 4) * 4; // copies move whole 4-byte words
  const total = parts.reduce((s, [, n]) => s + padded(n), 0);
  const staging = acquire(device, Math.max(4, total), GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
  const enc = device.createCommandEncoder();
  let at = 0;
  for (const [buf, n] of parts) { if (n) enc.copyBufferToBuffer(buf, 0, staging, at, padded(n)); at += padded(n); }
  flush(device); // what a batch holds runs first
  device.queue.submit([...commands, enc.finish()]);
  await gpuWait(staging.mapAsync(GPUMapMode.READ, 0, staging.size));
  const all = staging.getMappedRange(0, staging.size);
  const out: ArrayBuffer[] = [];
  at = 0;
  for (const [, n] of parts) { out.push(all.slice(at, at + n)); at += padded(n); }
  staging.unmap();
  release(device, staging);
  return out;
}

/** Records one compute pass: `pipeline` with `bind` over `groups` workgroups (x, y). */
export function encodePass(device: GPUDevice, pipeline: GPUComputePipeline, bind: GPUBindGroup, x: number, y = 1): GPUCommandBuffer {
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bind);
  pass.dispatchWorkgroups(x, y);
  pass.end();
  return enc.finish();
}
