// One measurement in a fresh process, so peak memory belongs to one kernel at one size:
//   node dist/bench/sdpa-child.js KERNEL L RUNS  →  one JSON line {kernel, L, ms: [...], inputBytes, baseRss, peakRss}
// KERNEL: auto (what attention() picks by default: the WebAssembly SIMD kernel here) | flash (TypeScript tiles) | reference
// Peak memory is the process's maximum resident set (VmHWM), read before and after the runs; the baseline is
// taken after a warm-up on a small problem and after the inputs exist, so `peak − base` is the kernel's own memory.
import { attention, kernelVariant, Tensor } from '../src/index.js';
import { useWasmFeatures } from '../src/node/wasm-features.js';
import { peakRss } from './peak-rss.js';

const [kernel, Ls, runsS] = process.argv.slice(2);
const L = Number(Ls);
const runs = Number(runsS);
const D = 64;
useWasmFeatures(); // as qkv's Node entry points: relaxed SIMD where this V8 has it
type Kernel = 'auto' | 'flash' | 'reference';

function input(seed: number): Tensor {
  const data = new Float32Array(L * D);
  let x = seed;
  for (let i = 0; i < data.length; i++) { x = (x * 1664525 + 1013904223) >>> 0; data[i] = x / 2 ** 31 - 1; }
  return Tensor.from(data, [1, 1, L, D]);
}

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
// warm up on a small problem first, so compiled code and the heap's start-up growth are in the baseline
const small = Tensor.from(new Float32Array(256 * D), [1, 1, 256, D]);
for (let r = 0; r < 3; r++) attention(small, small, small, { causal: true, kernel: kernel as Kernel });
const [q, k, v] = [input(1), input(2), input(3)];
gc();
const baseRss = peakRss();
const ms: number[] = [];
for (let r = 0; r < runs; r++) {
  gc(); // each run's garbage (outputs, the reference kernel's score matrix) is freed before the next
  const t0 = performance.now();
  attention(q, k, v, { causal: true, kernel: kernel as Kernel });
  ms.push(performance.now() - t0);
}
console.log(JSON.stringify({ kernel, L, ms, inputBytes: 3 * L * D * 4, baseRss, peakRss: peakRss(), variant: kernelVariant() }));
