// WebAssembly features of this Node for qkv's kernels: Node 20's V8 has relaxed SIMD (fused multiply-add,
// f32x4.relaxed_madd) behind a flag — Node 22's has it on. Turning the flag on before the kernels are first compiled lets
// them take the fused build (kernels/wasm/runtime.ts); QKV_WASM_SIMD=simd128 keeps the multiply-then-add build.
import { setFlagsFromString } from 'node:v8';
import { QkvError } from '../errors.js';
import { setKernelVariant } from '../kernels/wasm/runtime.js';

let done = false;

/** Enables relaxed SIMD in this process (once) and applies $QKV_WASM_SIMD (auto, relaxed-simd or simd128). */
export function useWasmFeatures(env: string | undefined = process.env.QKV_WASM_SIMD): void {
  if (done) return;
  done = true;
  setFlagsFromString('--experimental-wasm-relaxed-simd'); // a no-op where it is on already; workers share the flag
  if (env === undefined || env === '') return;
  if (env !== 'auto' && env !== 'relaxed-simd' && env !== 'simd128') {
    throw new QkvError(`QKV_WASM_SIMD must be auto, relaxed-simd or simd128, got '${env}'`);
  }
  setKernelVariant(env);
}
