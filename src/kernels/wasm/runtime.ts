// The host of qkv's WebAssembly kernels (asm/kernels.ts): one linear memory owned here, a job protocol, and the
// threads that share the work. The same code runs in Node and browsers; only starting a worker differs (Node:
// src/node/threads.ts, browsers: kernel-worker.ts), and both hand this module the same `KernelWorkerInit`.
//
// Memory (bytes):  [0, 256) control words · [256, 512) the job · [64 KiB, top) resident weights and kernel storage
// (storage.ts: KV caches) · [top, …) scratch.
// The module has no data segments, so nothing in it touches memory the host did not lay out.
//
// Threads: with a SharedArrayBuffer-backed memory (Node; browsers when cross-origin isolated), workers instantiate the
// same module over the same memory. A call writes its job, bumps SEQ and wakes them; every thread t of T runs
// run(job, t, T) on its share; the caller waits (spinning — browsers forbid Atomics.wait on the main thread) until
// DONE = T − 1. Workers spin briefly after a job before sleeping, so back-to-back calls in a decode step stay cheap.
import { QkvError } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { WASM_BASE64 as PRIVATE } from './kernels-binary.js';
import { WASM_BASE64 as SHARED } from './kernels-shared-binary.js';
import { WASM_BASE64 as PRIVATE_RELAXED } from './kernels-relaxed-binary.js';
import { WASM_BASE64 as SHARED_RELAXED } from './kernels-shared-relaxed-binary.js';

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

/** Job kinds (asm/kernels.ts). */
export const JOB = {
  attention: 1, packK: 2, gemmF32: 3, gemmF16: 4, gemmBF16: 5, gemmI8: 6, decode: 7, gemmI4: 8, merge: 9, scaleF16: 10,
  rmsNorm: 11, add: 12, rope: 13,
} as const;

// control words (Int32Array indices at byte 0)
const SEQ = 0, DONE = 1, ERROR = 2, THREADS = 3, STOP = 4, NEXT = 5, AWAKE = 6; // NEXT: units claimed; AWAKE: workers not asleep
const JOB_AT = 256; // bytes
const RESIDENT_AT = 65536; // bytes
/** The most bytes the kernels' memory may have (wasm32 addresses 4 GiB). */
export const MAX_BYTES = 4 * 2 ** 30 - 65536;
// how long an idle worker polls before it sleeps: a decode step issues ~7 products per layer with a little JavaScript
// between them, and waking a thread costs tens of microseconds to ~1.5 ms (this VM: a batched server's first call of
// each step, after streaming 64 sequences). So a call that finds a worker asleep runs alone and wakes it for the next.
const SPIN_MS = 3;

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
  for (const n of sizes) { at.push(top); top += alignLine(n); }
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

// Threads that degrade gracefully. A worker whose core another busy process shares runs only part of the time, and
// the caller, done with its own share, waits for the worker's; a worker spinning between jobs can also keep the caller
// on the busy core. 2 threads then run far slower than 1 (qkv-tiny decode measured 237–266 against 446–708 tokens/s
// with a busy neighbour on one core). So the runtime measures both ways and keeps the faster: EPOCH calls on its threads,
// EPOCH calls on the caller alone (the workers sleep), then the faster way for a hold, and again — the hold doubling
// from HOLD_MS up to MAX_HOLD_MS while the measurements agree by MARGIN or more (each measurement runs calls the slower
// way). A close call is measured again after HOLD_MS: while V8 still compiles a decode's JavaScript on a background
// thread (the first ~40 tokens of a 135M decode), it takes the worker's core, and two 14 ms epochs that said "alone"
// (threads 0.23 against alone 0.22 ms per million units) had kept a decode alone for 8 s (24 against 44 tokens/s).
// The two epochs are compared call shape by call shape: for the shapes both epochs ran (a job's kind and size), each
// way's mean time a call, weighted by how often the shape came in both. A decode step's 211 calls differ in cost a
// hundredfold, and per unit of work (multiply-adds) they differ too — a decode attention call costs ~3× a product's
// time a unit — so comparing totals, or totals per unit of work, judged the mix of calls each epoch happened to draw:
// a 135M f16 decode at a 512-token context chose "alone" for half its tokens (threads 0.29 against alone 0.23 ms per
// million units, the threads' epoch holding the attention calls), 38 against ~24 ms a token. When the epochs share no
// shape (a few long calls), they are compared per unit of work. One decision for all calls, not one per shape: a
// worker that some calls leave idle falls asleep, and waking it costs the next threaded call ~1 ms here; for the same
// reason each epoch's first call is not measured (a waking worker, or one still spinning from the other way).
// The first measurement is thrown away: it runs while V8 still tiers the kernels up (Liftoff, then TurboFan, in each
// worker too), and it had kept a 135M f16 decode alone for its first 2 s (75 against 47 ms a token on 2 threads).
// An epoch also ends once its measured calls have taken EPOCH_MS: 128 attention calls of 20–150 ms each had run alone for
// seconds, on every measurement (L 1024 timed at 162 ms against 80 on the threads). And a threads epoch ends once it is
// clearly behind (BEHIND) the last alone epoch for the same shapes: beside a busy process qkv-tiny's 128 calls on the
// threads took 74–105 ms against 2.9 ms alone, a whole short generation's time, at every measurement. The decision
// itself still compares with this measurement's own alone epoch, so a machine that slowed down as a whole only
// shortens the threads epoch.
export class ThreadChooser {
  static readonly EPOCH = 128;
  static readonly EPOCH_MS = 100;
  static readonly HOLD_MS = 2000;
  static readonly MAX_HOLD_MS = 32_000;
  /** The hold doubles only when one way beat the other by this factor: a close call is measured again soon. */
  static readonly MARGIN = 1.1;
  /** A threads epoch ends early once its measured calls took BEHIND × what the last alone epoch's took for the same
   *  shapes, after at least EARLY_MS: with a busy neighbour its 128 calls took 74–105 ms against 2.9 ms alone. */
  static readonly BEHIND = 2;
  static readonly EARLY_MS = 5;
  #hold = ThreadChooser.HOLD_MS;
  #phase: 'threads' | 'alone' | 'hold' = 'threads';
  #calls = 0;
  #spent = 0; // ms of this epoch's measured calls
  #epochs = { threads: new Epoch(), alone: new Epoch() };
  #holdUntil = 0;
  #warm = false;
  #lastAlone: Epoch | null = null; // the last decided measurement's alone epoch
  /** The way chosen at the end of the last measurement (true: threads). */
  threaded = true;

  /** Whether the call starting at `now` (performance.now() ms) runs on the threads. */
  useThreads(now: number): boolean {
    if (this.#phase === 'hold' && now >= this.#holdUntil) this.#measure();
    return this.#phase === 'hold' ? this.threaded : this.#phase === 'threads';
  }

  /**
   * A call of `work` units took `ms`, on the threads or alone; it ended at `now`. `shape` names the call's kind and size
   * (calls of one shape cost the same): by default its work.
   */
  note(onThreads: boolean, ms: number, now: number, work = 1, shape = work): void {
    if (this.#phase === 'hold') return;
    if (this.#calls++ === 0) return; // the epoch's first call: not measured
    this.#epochs[onThreads ? 'threads' : 'alone'].add(shape, ms, work);
    this.#spent += ms;
    if (this.#calls < ThreadChooser.EPOCH && this.#spent < ThreadChooser.EPOCH_MS && !this.#behind()) return;
    [this.#calls, this.#spent] = [0, 0];
    if (this.#phase === 'threads') { this.#phase = 'alone'; return; }
    if (!this.#warm) { // the warm-up measurement: measured again at once
      this.#warm = true;
      this.#measure();
      return;
    }
    this.#lastAlone = this.#epochs.alone;
    const ratio = this.#epochs.threads.timeRatio(this.#epochs.alone); // threads' time ÷ alone's
    const threaded = ratio <= 1;
    const decisive = ratio <= 1 / ThreadChooser.MARGIN || ratio >= ThreadChooser.MARGIN;
    const agrees = threaded === this.threaded && decisive;
    this.#hold = agrees ? Math.min(2 * this.#hold, ThreadChooser.MAX_HOLD_MS) : ThreadChooser.HOLD_MS;
    this.threaded = threaded;
    [this.#phase, this.#holdUntil] = ['hold', now + this.#hold];
  }

  // whether the threads epoch under way is clearly behind the last alone epoch (the same shapes, BEHIND × the time)
  #behind(): boolean {
    return this.#phase === 'threads' && this.#lastAlone !== null && this.#spent >= ThreadChooser.EARLY_MS &&
      this.#epochs.threads.timeRatio(this.#lastAlone) >= ThreadChooser.BEHIND;
  }

  // a new measurement: an epoch on the threads, then one alone
  #measure(): void {
    [this.#phase, this.#calls, this.#spent] = ['threads', 0, 0];
    this.#epochs = { threads: new Epoch(), alone: new Epoch() };
  }
}

/** One epoch's calls: per shape, how many and their time; and the totals of time and work. */
class Epoch {
  readonly shapes = new Map<number, { n: number; ms: number }>();
  ms = 0;
  work = 0;

  add(shape: number, ms: number, work: number): void {
    const s = this.shapes.get(shape) ?? { n: 0, ms: 0 };
    s.n++;
    s.ms += ms;
    this.shapes.set(shape, s);
    this.ms += ms;
    this.work += work;
  }

  /**
   * This epoch's way's time ÷ `other`'s for the same calls: over the shapes both ran, Σ (n + n') · mean time, each way;
   * with no shape in common, per unit of work (ms / work).
   */
  timeRatio(other: Epoch): number {
    let [mine, theirs] = [0, 0];
    for (const [shape, a] of this.shapes) {
      const b = other.shapes.get(shape);
      if (!b) continue;
      mine += (a.n + b.n) * (a.ms / a.n);
      theirs += (a.n + b.n) * (b.ms / b.n);
    }
    if (mine === 0 && theirs === 0) [mine, theirs] = [this.ms * other.work, other.ms * this.work];
    return theirs > 0 ? mine / theirs : mine > 0 ? Infinity : 1;
  }
}
const chooser = new ThreadChooser();

/**
 * A job's work in multiply-adds, roughly (the products' count; the chooser compares time per unit): a GEMM's M·K·N
 * (twice when gated), attention's rows · keys · D per head, packing's BHkv · S · D, the rows jobs' elements.
 */
export function jobWork(w: readonly number[]): number {
  if (w[0] === JOB.attention) return w[8] * w[11] * w[12] * w[13]; // BH · L · S · D
  if (w[0] === JOB.decode) return w[7] * w[8] * w[10] * w[11] * w[12]; // B · Hq · L · S · D
  if (w[0] === JOB.packK) return w[3] * w[4] * w[5]; // BHkv · S · D
  if (w[0] === JOB.merge) return w[4] * w[5] * w[7] * w[8] * w[9]; // B · Hq · L · Dv · splits
  if (w[0] === JOB.rmsNorm) return w[4] * w[5]; // rows · C
  if (w[0] === JOB.add) return w[4]; // n
  if (w[0] === JOB.rope) return w[5] * w[6] * w[7] * w[8]; // B · H · T · D
  return w[4] * w[5] * w[6] * (w[10] ? 2 : 1); // M · K · N, gate and up
}

/** A number that names a job's kind and size: calls with the same one cost the same (the chooser pairs them). */
export function jobShape(w: readonly number[]): number {
  return jobWork(w) * 16 + w[0];
}

/** Runs a job on this thread alone (work done once, at load: not the thread chooser's business). */
export function runAlone(r: Runtime, words: readonly number[]): void {
  r.jobWords.set(words);
  r.exports.run(JOB_AT, 0, 1);
}

/** Runs a job (its i32 words, kind first, as a layout of jobs.ts writes them) on every thread. */
export function runJob(r: Runtime, words: readonly number[]): void {
  r.jobWords.set(words);
  const T = r.threads;
  if (T === 1) { r.exports.run(JOB_AT, 0, 1); return; }
  const t0 = performance.now();
  if (!chooser.useThreads(t0)) { // alone, for now: the workers sleep
    r.exports.run(JOB_AT, 0, 1);
    const t1 = performance.now();
    chooser.note(false, t1 - t0, t1, jobWork(words), jobShape(words));
    return;
  }
  const c = r.control;
  if (Atomics.load(c, AWAKE) < r.workers) { // one sleeps (no job for SPIN_MS): this call alone while it wakes
    Atomics.notify(c, SEQ);
    r.exports.run(JOB_AT, 0, 1);
    return;
  }
  Atomics.store(c, DONE, 0);
  Atomics.store(c, ERROR, 0);
  Atomics.store(c, THREADS, T);
  Atomics.store(c, NEXT, 0);
  Atomics.add(c, SEQ, 1);
  Atomics.notify(c, SEQ);
  r.exports.run(JOB_AT, 0, T);
  const t1 = performance.now();
  // the workers' shares are the same size as ours: waiting much longer than ours took means one is gone
  const deadline = t1 + 10_000 + 20 * (t1 - t0);
  for (let spins = 0; Atomics.load(c, DONE) < T - 1; spins++) {
    if ((spins & 0xffff) === 0 && performance.now() > deadline) {
      r.threads = 1; // a worker is gone: later calls run on this thread alone
      throw new QkvError(`qkv threads: ${T - 1 - Atomics.load(c, DONE)} worker(s) did not finish a kernel; threads disabled`);
    }
  }
  const t2 = performance.now();
  chooser.note(true, t2 - t0, t2, jobWork(words), jobShape(words));
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
  Atomics.add(c, AWAKE, 1);
  ready();
  for (;;) {
    let s = Atomics.load(c, SEQ);
    if (s === seen) {
      const until = performance.now() + SPIN_MS;
      while (s === seen && performance.now() < until) s = Atomics.load(c, SEQ);
      if (s === seen) { // asleep until a job, or a caller that found us asleep, wakes us
        Atomics.sub(c, AWAKE, 1);
        Atomics.wait(c, SEQ, seen);
        Atomics.add(c, AWAKE, 1);
        continue;
      }
    }
    seen = s;
    if (Atomics.load(c, STOP)) { Atomics.sub(c, AWAKE, 1); return; }
    const T = Atomics.load(c, THREADS);
    if (init.index >= T) continue;
    try { exports.run(JOB_AT, init.index, T); } catch { Atomics.store(c, ERROR, 1); }
    Atomics.add(c, DONE, 1);
  }
}
