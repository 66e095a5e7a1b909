// The host of qkv's WebAssembly kernels (asm/kernels.ts): one linear memory owned here, a job protocol, and the
// threads that share the work. The same code runs in Node and browsers; only starting a worker differs (Node:
// src/node/threads.ts, browsers: kernel-worker.ts), and both hand this module the same `KernelWorkerInit`.
//
// Memory (bytes):  [0, 256) control words · [256, 512) the job · [64 KiB, top) resident weights and kernel storage
// (storage.ts: KV caches) · [top, …) scratch.
// The module has no data segments, so nothing in it touches memory the host did not lay out.
//
// Threads: with a SharedArrayBuffer-backed memory (Node; browsers when cross-origin isolated), workers instantiate the
// same module over the same memory. A call writes its job, opens its gate (gate.ts), bumps SEQ and wakes them; the
// threads take its parts (claimed units, or fixed shares by rank: runJob), and the caller waits (spinning — browsers
// forbid Atomics.wait on the main thread) only for the workers that got in. Workers spin briefly after a job before
// sleeping, so back-to-back calls in a decode step stay cheap. A call runs on the caller alone when its job is small,
// or when the thread chooser (thread-chooser.ts) has found the threads slower for now.
import { QkvError } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { WASM_BASE64 as PRIVATE } from './kernels-binary.js';
import { WASM_BASE64 as SHARED } from './kernels-shared-binary.js';
import { WASM_BASE64 as PRIVATE_RELAXED } from './kernels-relaxed-binary.js';
import { WASM_BASE64 as SHARED_RELAXED } from './kernels-shared-relaxed-binary.js';
import { jobShape, jobWork, ThreadChooser } from './thread-chooser.js';
import { enterGate, openGate, shutGate } from './gate.js';
import { claimsOnly } from './jobs.js';

/**
 * Which build of the kernels runs: 'relaxed-simd' uses fused multiply-add (f32x4.relaxed_madd: one instruction and one
 * rounding for a·b + c) and runs where the engine validates it (Chromium, Node ≥ 22; Node 20 with a V8 flag that
 * src/node turns on); 'simd128' is the fallback, a multiply then an add. Results differ by rounding only.
 */
export type KernelVariant = 'relaxed-simd' | 'simd128';
let wanted: KernelVariant | 'auto' = 'auto';

/** Chooses the build before the kernels first run ('auto': relaxed SIMD where the engine has it); throws after. */
export function setKernelVariant(v: KernelVariant | 'auto'): void {
  if (v !== 'auto' && v !== 'relaxed-simd' && v !== 'simd128') {
    const got = typeof v === 'string' ? JSON.stringify(v) : String(v);
    throw new QkvError(`setKernelVariant: variant must be 'auto', 'relaxed-simd' or 'simd128', got ${got}`);
  }
  if (rt !== undefined && rt !== null && v !== 'auto' && v !== rt.variant) {
    throw new QkvError(`setKernelVariant: the kernels already run as ${rt.variant}; choose before their first use`);
  }
  wanted = v;
}

/** The build that runs (or will run), or null without WebAssembly SIMD. */
export function kernelVariant(): KernelVariant | null {
  return kernelRuntime()?.variant ?? null;
}

interface Exports { init(): void; run(job: number, t: number, T: number): void }

export { JOB } from './jobs.js';

// control words (Int32Array indices at byte 0)
// NEXT: units claimed (asm/common.ts); GATE: the workers in the job (gate.ts); CLAIMED: 1 for a job of claimed units, 0
// for one of fixed shares
const SEQ = 0, DONE = 1, ERROR = 2, THREADS = 3, STOP = 4, NEXT = 5, GATE = 7, CLAIMED = 8;
const JOB_AT = 256; // bytes
const RESIDENT_AT = 65536; // bytes
/** The most bytes the kernels' memory may have (wasm32 addresses 4 GiB). */
export const MAX_BYTES = 4 * 2 ** 30 - 65536;
// how long an idle worker polls before it sleeps: a decode step issues ~7 products per layer with a little JavaScript
// between them. Waking a thread costs tens of microseconds to ~1.5 ms (this VM: a batched server's first call of each
// step, after streaming 64 sequences), and a running one is now and then descheduled for a millisecond or more: so no
// call waits for a worker that has not started. The caller announces the job and takes its work — the units of a job
// of claimed units (claim(), asm/common.ts) until none is left, or share 0 of a job of fixed shares (thread t's part
// of T) — then shuts the gate (gate.ts), runs the shares of workers that did not get in (the k-th one in runs share k),
// and waits only for those that did. The answer is the same bits whoever runs each part.
const SPIN_MS = 3;
// jobs of less work (jobWork) run on the caller alone: a decode step's norms, adds, RoPE and merges (1–5 µs each), whose
// caller waited 6–16 µs for the worker's half on average — ~150 a token in a 30-layer model
const SMALL_WORK = 4096;

/** What a worker needs to join: the compiled module, the shared memory and its index (1…). */
export interface KernelWorkerInit { module: WebAssembly.Module; memory: WebAssembly.Memory; index: number }

export interface Runtime {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  exports: Exports;
  shared: boolean;
  control: Int32Array;
  workers: number; // workers that have joined
  threads: number; // threads a call uses (caller included)
  top: number; // end of the resident weights
  written: number; // end of the memory scratch has ever used: past it, memory is as grown (zero)
  variant: KernelVariant;
  // views kept from one growth to the next (ensure() renews them): reading `memory.buffer` on every call cost a good
  // part of a small call's host time, most with a shared memory
  bytes: Uint8Array; // the whole memory
  jobWords: Int32Array; // the job's words at JOB_AT
}

let rt: Runtime | null | undefined;

const decode = (b64: string) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
const crossOriginIsolatedOrNode = () => (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated !== false;

function create(): Runtime | null {
  try {
    // a shared memory where SharedArrayBuffer is allowed, else a private one (one thread)
    const shared = typeof SharedArrayBuffer === 'function' && crossOriginIsolatedOrNode();
    const fused = decode(shared ? SHARED_RELAXED : PRIVATE_RELAXED);
    const variant: KernelVariant = wanted !== 'simd128' && WebAssembly.validate(fused) ? 'relaxed-simd' : 'simd128';
    const bytes = variant === 'relaxed-simd' ? fused : decode(shared ? SHARED : PRIVATE);
    if (!WebAssembly.validate(bytes)) return null;
    const module = new WebAssembly.Module(bytes);
    const memory = shared
      ? new WebAssembly.Memory({ initial: 2, maximum: 65536, shared: true } as WebAssembly.MemoryDescriptor)
      : new WebAssembly.Memory({ initial: 2 });
    const exports = new WebAssembly.Instance(module, { env: { memory, abort } }).exports as unknown as Exports;
    exports.init(); // the constant table, once for every thread that will share this memory
    const control = new Int32Array(memory.buffer, 0, 64);
    return { module, memory, exports, shared, control, workers: 0, threads: 1, top: RESIDENT_AT, written: RESIDENT_AT, variant,
      ...views(memory) };
  } catch {
    return null;
  }
}

function abort(): never { throw new Error('qkv wasm: abort'); }

// the runtime's views of the memory (Runtime.bytes, .jobWords), made again after each growth
const views = (memory: WebAssembly.Memory) => ({
  bytes: new Uint8Array(memory.buffer), jobWords: new Int32Array(memory.buffer, JOB_AT, 64),
});

/** The kernel runtime, or null where WebAssembly SIMD is unavailable (callers fall back to TypeScript). */
export function kernelRuntime(): Runtime | null {
  if (rt === undefined) rt = create();
  return rt;
}

/** Rounds a byte count up to 16 (v128 loads want aligned operands). */
export const align16 = (n: number) => (n + 15) & ~15;

function ensure(r: Runtime, bytes: number): void {
  // a size that is not a number (NaN from a caller's bad option) would slip past every comparison below and leave the
  // memory's top NaN: every later placement, then the kernels, reading out of bounds
  if (!Number.isFinite(bytes) || bytes < 0) throw new QkvError(`qkv wasm: asked for ${String(bytes)} bytes of kernel memory`);
  if (bytes > MAX_BYTES) throw new QkvError(`qkv wasm: needs ${(bytes / 2 ** 30).toFixed(2)} GiB of WebAssembly memory; the limit is 4 GiB`);
  const pages = Math.ceil(bytes / 65536) - r.bytes.byteLength / 65536;
  if (pages > 0) {
    r.memory.grow(pages);
    Object.assign(r, views(r.memory)); // a private memory's old buffer is detached now, a shared one's too short
  }
}

/** Rounds a byte count up to whole 64-byte cache lines. */
export const alignLine = (n: number) => Math.ceil(n / 64) * 64;

/**
 * Places `n` byte-sized blocks after the resident weights; returns their offsets (valid until the next call). Each
 * block starts on a cache line, so a block split among threads in line-sized shares is never written by two threads
 * at one line (false sharing cost the second thread of a causal attention call up to half its speed).
 */
export function scratch(r: Runtime, sizes: readonly number[]): number[] {
  const at: number[] = [];
  let top = alignLine(r.top);
  for (const n of sizes) {
    if (!(n >= 0)) throw new QkvError(`qkv wasm: asked for ${String(n)} bytes of scratch`); // NaN too
    at.push(top);
    top += alignLine(n);
  }
  ensure(r, top);
  r.written = Math.max(r.written, top);
  return at;
}

/** Reserves `bytes` for good after the resident data (weights; blocks storage.ts hands out); the offset is on a cache line. */
export function reserve(r: Runtime, bytes: number): number {
  const at = alignLine(r.top);
  ensure(r, at + bytes);
  r.top = at + bytes;
  return at;
}

const residentAt = new WeakMap<ArrayBufferView, number>();

// Weights stay resident only up to this many bytes of memory, leaving room for scratch (activations, results):
// a checkpoint bigger than WebAssembly's 4 GiB (a 7B model in bf16) keeps its other weights on the TypeScript kernel.
let residentLimit = MAX_BYTES - 2 ** 29;

/** Whether `data` is resident or may become so within the limit. */
export function canReside(r: Runtime, data: ArrayBufferView): boolean {
  return residentAt.has(data) || alignLine(r.top) + data.byteLength <= residentLimit;
}

/** Whether `bytes` more fit under the resident limit, in a free block (`free`, from storage.ts) or after the top. */
export function canReserve(r: Runtime, bytes: number, free: readonly { bytes: number }[]): boolean {
  return free.some((b) => b.bytes >= bytes) || alignLine(r.top) + bytes <= residentLimit;
}

/** Whether `data` lies in the kernels' memory already (copied in by resident, or placed there by storage.ts). */
export function isResident(data: ArrayBufferView): boolean {
  return residentAt.has(data);
}

/** The byte offset of a resident array (see isResident), or null: nothing is copied in. */
export function residentOffset(data: unknown): number | null {
  return ArrayBuffer.isView(data) ? (residentAt.get(data) ?? null) : null;
}

/** Records that `data` already lies in the kernels' memory at byte offset `at` (storage.ts placed it there). */
export function adoptResident(data: ArrayBufferView, at: number): void {
  residentAt.set(data, at);
}

/** Forgets a resident array whose room storage.ts has given back (releaseMatrix). */
export function forgetResident(data: ArrayBufferView): void {
  residentAt.delete(data);
}

/** Sets how many bytes of WebAssembly memory resident weights may reach (tests, tuning); returns the previous limit. */
export function setResidentLimit(bytes: number): number {
  if (!Number.isFinite(bytes) || bytes < 0) throw new QkvError(`setResidentLimit: bytes must be a number ≥ 0, got ${String(bytes)}`);
  const previous = residentLimit;
  residentLimit = Math.min(bytes, MAX_BYTES);
  return previous;
}

/** The offset of `data` copied into the resident region for good (weights: copied once, kept, row-major as given). */
export function resident(r: Runtime, data: Float32Array | Uint16Array | Int8Array | Uint8Array): number {
  let at = residentAt.get(data);
  if (at !== undefined) return at;
  at = reserve(r, data.byteLength);
  put(r, at, data);
  residentAt.set(data, at);
  return at;
}

/** Copies `data` into memory at byte offset `at` (as bytes: any element type). */
export function put(r: Runtime, at: number, data: Float32Array | Uint16Array | Int8Array | Uint8Array): void {
  r.bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
}

/** Copies a tensor's elements (row-major, as float32) to byte offset `at`; false when there is no tensor. */
export function putTensor(r: Runtime, at: number, t: Tensor | undefined): boolean {
  if (!t) return false;
  t.writeFloat32(new Float32Array(r.bytes.buffer, at, t.size));
  return true;
}

/**
 * A copy of `n` floats at byte offset `at`. Copied as bytes: out of a shared memory V8 copies a Float32Array element
 * by element (slice or set: ~0.8 ms for 2 MiB here) but a Uint8Array with memcpy (~0.2 ms).
 */
export function take(r: Runtime, at: number, n: number): Float32Array {
  return takeInto(r, at, new Float32Array(n));
}

/** take() into an array the caller has (as bytes, for the same reason); returns it. */
export function takeInto(r: Runtime, at: number, out: Float32Array): Float32Array {
  new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(r.bytes.subarray(at, at + out.byteLength));
  return out;
}

const chooser = new ThreadChooser();

/** Runs a job on this thread alone (work done once, at load: not the thread chooser's business). */
export function runAlone(r: Runtime, words: readonly number[]): void {
  r.jobWords.set(words);
  r.exports.run(JOB_AT, 0, 1);
}

/** Runs a job (its i32 words, kind first, as a layout of jobs.ts writes them) on every thread. */
export function runJob(r: Runtime, words: readonly number[]): void {
  r.jobWords.set(words);
  const T = r.threads;
  const work = T === 1 ? 0 : jobWork(words);
  if (work < SMALL_WORK) { r.exports.run(JOB_AT, 0, 1); return; }
  const t0 = performance.now();
  if (!chooser.useThreads(t0)) { // alone, for now: the workers sleep
    r.exports.run(JOB_AT, 0, 1);
    const t1 = performance.now();
    chooser.note(false, t1 - t0, t1, work, jobShape(words, work));
    return;
  }
  const c = r.control;
  Atomics.store(c, DONE, 0);
  Atomics.store(c, ERROR, 0);
  Atomics.store(c, THREADS, T);
  Atomics.store(c, NEXT, 0);
  const claimed = claimsOnly(words);
  Atomics.store(c, CLAIMED, claimed ? 1 : 0);
  const seq = (Atomics.load(c, SEQ) + 1) | 0;
  openGate(c, GATE, seq);
  Atomics.store(c, SEQ, seq); // announced: a sleeping worker wakes, a polling one joins
  Atomics.notify(c, SEQ);
  r.exports.run(JOB_AT, 0, T); // our claims, or share 0
  const workers = shutGate(c, GATE, T - 1); // the job is done once the workers that got in are
  if (!claimed) for (let share = workers + 1; share < T; share++) r.exports.run(JOB_AT, share, T); // no worker came for these
  const t1 = performance.now();
  // the workers' shares are the same size as ours: waiting much longer than ours took means one is gone
  const deadline = t1 + 10_000 + 20 * (t1 - t0);
  for (let spins = 0; Atomics.load(c, DONE) < workers; spins++) {
    if ((spins & 0xffff) === 0 && performance.now() > deadline) {
      r.threads = 1; // a worker is gone: later calls run on this thread alone
      throw new QkvError(`qkv threads: ${workers - Atomics.load(c, DONE)} worker(s) did not finish a kernel; threads disabled`);
    }
  }
  const t2 = performance.now();
  chooser.note(true, t2 - t0, t2, work, jobShape(words, work));
  if (Atomics.load(c, ERROR)) throw new QkvError('qkv threads: a worker failed while running a kernel');
}

/** What a worker is started with, or null when this runtime cannot share its memory (no SharedArrayBuffer). */
export function workerInit(index: number): KernelWorkerInit | null {
  const r = kernelRuntime();
  if (!r || !r.shared) return null;
  if (r.workers === 0) Atomics.store(r.control, STOP, 0);
  return { module: r.module, memory: r.memory, index };
}

/** Records that a worker has joined (it posted 'ready'); calls then use up to `threads` of them. */
export function workerJoined(): void {
  const r = kernelRuntime();
  if (!r) return;
  r.workers++;
  r.threads = r.workers + 1;
}

/** Threads the kernels use now (the caller included). */
export function kernelThreads(): number { return kernelRuntime()?.threads ?? 1; }

/** Uses at most `n` threads (1 … workers + 1). */
export function setKernelThreads(n: number): void {
  const r = kernelRuntime();
  if (!Number.isInteger(n) || n < 1) throw new QkvError(`threads must be a positive integer, got ${String(n)}`);
  if (r) r.threads = Math.min(n, r.workers + 1);
}

/** Tells the workers to leave their loop (they then exit). */
export function stopWorkers(): void {
  const r = kernelRuntime();
  if (!r || !r.shared) return;
  Atomics.store(r.control, STOP, 1);
  Atomics.add(r.control, SEQ, 1);
  Atomics.notify(r.control, SEQ);
  r.workers = 0;
  r.threads = 1;
}

/**
 * A worker's whole life (call it from the worker's entry point): instantiate the shared module, say ready, then run
 * jobs until told to stop. Spins SPIN_MS after each job before sleeping in Atomics.wait.
 */
export function kernelWorkerLoop(init: KernelWorkerInit, ready: () => void): void {
  const exports = new WebAssembly.Instance(init.module, { env: { memory: init.memory, abort } }).exports as unknown as Exports;
  const c = new Int32Array(init.memory.buffer, 0, 64);
  let seen = Atomics.load(c, SEQ); // before saying ready: every job after that is one we may be counted in
  ready();
  for (;;) {
    let s = Atomics.load(c, SEQ);
    if (s === seen) {
      const until = performance.now() + SPIN_MS;
      while (s === seen && performance.now() < until) s = Atomics.load(c, SEQ);
      if (s === seen) { // asleep until a job is announced
        Atomics.wait(c, SEQ, seen);
        continue;
      }
    }
    seen = s;
    if (Atomics.load(c, STOP)) return;
    if (init.index >= Atomics.load(c, THREADS)) continue;
    const rank = enterGate(c, GATE, s); // −1: shut out (the caller did our part)
    if (rank < 0) continue;
    // in: the job's words are read now (a worker stalled across 2^19 jobs could enter a later one whose tag is the same:
    // then it is that job it runs, checked against that job's thread count)
    const T = Atomics.load(c, THREADS);
    // claims (t picks our scratch), or the share our rank gives us: 1, 2, … (0 is the caller's)
    const t = Atomics.load(c, CLAIMED) ? init.index : rank + 1;
    try { if (t < T) exports.run(JOB_AT, t, T); } catch { Atomics.store(c, ERROR, 1); }
    Atomics.add(c, DONE, 1);
  }
}
