// The WebAssembly SIMD rung of the CPU ladder: the ATTENTION job of asm/kernels.ts behind the same contract as the
// TypeScript kernels, on as many threads as the runtime has (runtime.ts). It takes the calls it knows — no mask or a
// causal one, no score modifiers, head_dim and value dim multiples of 4 — and hands every other call to the tiled
// TypeScript kernel (sdpa-flash.ts).
// Host side: q, k, v are copied into linear memory (O(L·D), small next to the O(L·S·D) work), k is packed into
// panels of 8 keys, the kernel runs, out is copied back and lse = m + log l is formed from each row's statistics.
import type { SdpaForwardRequest, SdpaForwardResult, SdpaKernel, SdpaProblem } from '../contract.js';
import { sdpaFlash } from '../cpu/sdpa-flash.js';
import { floatBits, JOB, kernelRuntime, put, runJob, scratch, take } from './runtime.js';

const BN = 64, BM = 4, BLOCK_M = 32; // the kernel's tiles: micro-blocks of 4 query rows × 64 keys, units of 32 rows

/** True when the WebAssembly kernel can take this problem. */
export function wasmSupports(p: SdpaProblem, req: SdpaForwardRequest = {}): boolean {
  const shift = p.mask ? p.mask.causalShift() : 0;
  return kernelRuntime() !== null && !p.mods && shift !== null && p.D % 4 === 0 && p.Dv % 4 === 0 && !req.stats && !req.weights;
}

function forward(p: SdpaProblem, req: SdpaForwardRequest): SdpaForwardResult {
  if (!wasmSupports(p, req)) return sdpaFlash.forward(p, req);
  const r = kernelRuntime()!;
  const { B, Hq, Hkv, L, S, D, Dv } = p;
  const [BH, BHkv, Sp] = [B * Hq, B * Hkv, Math.ceil(S / 8) * 8];
  const perThread = 4 * (BM * BN + BLOCK_M * Dv + 2 * BLOCK_M); // bytes: s tile, acc, m, l
  const floats = [p.q.length, p.k.length, BHkv * Sp * D, p.v.length, BH * L * Dv, 2 * BH * L];
  const [q, k, kp, v, out, ml, scr] = scratch(r, [...floats.map((n) => 4 * n), perThread * r.threads]);
  put(r, q, p.q);
  put(r, k, p.k);
  put(r, v, p.v);
  runJob(r, [JOB.packK, k, kp, BHkv, S, D, Sp]);
  const shift = p.mask ? p.mask.causalShift()! : 0;
  runJob(r, [JOB.attention, q, kp, v, out, ml, scr, perThread, BH, Hq, Hkv, L, S, D, Dv, floatBits(p.scale), p.mask ? 1 : 0, shift, Sp]);
  // lse = m + log l; l = 0 (no allowed key) → −∞
  const stats = take(r, ml, 2 * BH * L);
  const lse = new Float32Array(BH * L);
  for (let i = 0; i < BH * L; i++) lse[i] = stats[BH * L + i] > 0 ? stats[i] + Math.log(stats[BH * L + i]) : -Infinity;
  return { out: take(r, out, BH * L * Dv), lse };
}

/** The WebAssembly SIMD kernel (falls back to the TypeScript flash kernel for what it does not cover). */
export const sdpaFlashWasm: SdpaKernel = {
  name: 'flash-wasm',
  forward,
  backward: (p, out, lse, dout, req) => sdpaFlash.backward!(p, out, lse, dout, req),
};
