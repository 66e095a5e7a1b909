// Host of the WebAssembly SIMD matrix product (asm/matmul.ts) for linear layers. A weight is copied into the
// module's memory the first time it is used and stays there (keyed by its storage array), so each call copies only
// the activations in and the result out. Falls back (returns null) where WebAssembly SIMD is missing or K % 4 ≠ 0.
import { align16, instantiate } from './load.js';
import { WASM_BASE64 } from './matmul-binary.js';

interface Exports { memory: WebAssembly.Memory; gemmTransB(a: number, b: number, c: number, M: number, K: number, N: number): void }

let mod: Exports | null | undefined;
const resident = new WeakMap<Float32Array, number>(); // weight storage → byte offset in wasm memory
const seen = new WeakSet<Float32Array>();
let top = 65536; // bump allocator for weights; the first page is the module's own

function instance(): Exports | null {
  if (mod === undefined) mod = instantiate<Exports>(WASM_BASE64);
  return mod;
}

function ensure(m: Exports, bytes: number): void {
  const pages = Math.ceil(bytes / 65536) - m.memory.buffer.byteLength / 65536;
  if (pages > 0) m.memory.grow(pages);
}

/** C = A · Bᵀ with B resident in wasm memory; null when the SIMD path does not apply. */
export function wasmMatmulTransB(a: Float32Array, b: Float32Array, M: number, K: number, N: number): Float32Array | null {
  const m = instance();
  if (!m || K % 4 !== 0 || b.length !== N * K) return null;
  let bPtr = resident.get(b);
  // a matrix seen a second time is a weight: it moves into wasm memory for good (a one-off one is copied per call)
  if (bPtr === undefined && seen.has(b) && top + 4 * b.length < 3 * 2 ** 30) {
    bPtr = top;
    top = align16(top + 4 * b.length);
    ensure(m, top);
    new Float32Array(m.memory.buffer).set(b, bPtr / 4);
    resident.set(b, bPtr);
  }
  seen.add(b);
  // scratch after the resident weights: (b if not resident), a, c
  let at = top;
  const bScratch = bPtr === undefined ? at : -1;
  if (bPtr === undefined) at = align16(at + 4 * b.length);
  const aPtr = at;
  const cPtr = align16(aPtr + 4 * a.length);
  if (cPtr + 4 * M * N > 4 * 2 ** 30 - 65536) return null;
  ensure(m, cPtr + 4 * M * N);
  const heap = new Float32Array(m.memory.buffer); // a fresh view: growing detaches older ones
  if (bPtr === undefined) { heap.set(b, bScratch / 4); bPtr = bScratch; }
  heap.set(a, aPtr / 4);
  m.gemmTransB(aPtr, bPtr, cPtr, M, K, N);
  return new Float32Array(m.memory.buffer, cPtr, M * N).slice();
}
