// The WebAssembly SIMD rung of the CPU ladder: asm/attention.ts (AssemblyScript, f32x4) behind the same contract as
// the TypeScript kernels. It takes the calls it knows — no mask or a causal one, no score modifiers, head_dim and
// value dim multiples of 4 — and hands every other call to the tiled TypeScript kernel (sdpa-flash.ts).
// Host side: q, k, v are copied into the module's linear memory (O(L·D), small next to the O(L·S·D) work), the
// kernel runs, out and lse are copied back. Falls back to TypeScript where WebAssembly SIMD is missing.
import type { SdpaForwardRequest, SdpaForwardResult, SdpaKernel, SdpaProblem } from '../contract.js';
import { sdpaFlash } from '../cpu/sdpa-flash.js';
import { WASM_BASE64 } from './attention-binary.js';
import { align16, instantiate } from './load.js';

interface Exports {
  memory: WebAssembly.Memory;
  flashForward(q: number, k: number, v: number, out: number, lse: number, s: number, acc: number,
    BH: number, Hq: number, Hkv: number, L: number, S: number, D: number, Dv: number, scale: number, causal: number, shift: number): void;
}

let cached: Exports | null | undefined;

/** The instantiated module, or null where WebAssembly SIMD is unavailable. */
export function wasmKernels(): Exports | null {
  if (cached === undefined) cached = instantiate<Exports>(WASM_BASE64);
  return cached;
}

/** True when the WebAssembly kernel can take this problem. */
export function wasmSupports(p: SdpaProblem, req: SdpaForwardRequest = {}): boolean {
  const shift = p.mask ? p.mask.causalShift() : 0;
  return wasmKernels() !== null && !p.mods && shift !== null && p.D % 4 === 0 && p.Dv % 4 === 0 && !req.stats && !req.weights;
}

const BLOCK_N = 64; // as in asm/attention.ts

function forward(p: SdpaProblem, req: SdpaForwardRequest): SdpaForwardResult {
  if (!wasmSupports(p, req)) return sdpaFlash.forward(p, req);
  const w = wasmKernels()!;
  const { B, Hq, Hkv, L, S, D, Dv } = p;
  // lay out q, k, v, out, lse and the scratch in linear memory, 16-byte aligned for v128 loads
  const sizes = [p.q.length, p.k.length, p.v.length, B * Hq * L * Dv, B * Hq * L, BLOCK_N, Dv].map((n) => align16(4 * n));
  const offsets: number[] = [];
  let at = 65536; // the first page holds the module's own data (expf's lookup table)
  for (const n of sizes) { offsets.push(at); at += n; }
  const pages = Math.ceil(at / 65536) - w.memory.buffer.byteLength / 65536;
  if (pages > 0) w.memory.grow(pages);
  const heap = new Float32Array(w.memory.buffer); // after any growth: growing detaches older views
  heap.set(p.q, offsets[0] / 4);
  heap.set(p.k, offsets[1] / 4);
  heap.set(p.v, offsets[2] / 4);
  const shift = p.mask ? p.mask.causalShift()! : 0;
  w.flashForward(offsets[0], offsets[1], offsets[2], offsets[3], offsets[4], offsets[5], offsets[6],
    B * Hq, Hq, Hkv, L, S, D, Dv, p.scale, p.mask ? 1 : 0, shift);
  return {
    out: heap.slice(offsets[3] / 4, offsets[3] / 4 + B * Hq * L * Dv),
    lse: heap.slice(offsets[4] / 4, offsets[4] / 4 + B * Hq * L),
  };
}

/** The WebAssembly SIMD kernel (falls back to the TypeScript flash kernel for what it does not cover). */
export const sdpaFlashWasm: SdpaKernel = {
  name: 'flash-wasm',
  forward,
  backward: (p, out, lse, dout, req) => sdpaFlash.backward!(p, out, lse, dout, req),
};
