// `npm start` for now: a small, honest demo of the attention API on a sentence-sized example. It prints the
// causal attention weights as a shaded grid, the output, lse and the per-row statistics, and checks that the
// tiled kernel agrees with the materialising reference. (The Attention Lab will replace this as `npm start`.)
import { attention } from '../../attention/index.js';
import { Tensor } from '../../tensor/tensor.js';

/** A deterministic pseudo-random tensor (mulberry32), so the demo prints the same numbers every run. */
function seeded(shape: number[], seed: number): Tensor {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const n = shape.reduce((x, y) => x * y, 1);
  return Tensor.from(Array.from({ length: n }, () => rand() * 2 - 1), shape);
}

const SHADES = ' .:-=+*#%@';

/** Prints the demo to stdout. */
export function runDemo(): void {
  const tokens = ['The', 'cat', 'sat', 'on', 'the', 'mat', '.'];
  const T = tokens.length;
  const D = 8;
  const q = seeded([1, 1, T, D], 1);
  const k = seeded([1, 1, T, D], 2);
  const v = seeded([1, 1, T, D], 3);
  const ref = attention(q, k, v, { causal: true, kernel: 'reference', returnWeights: true, returnStats: true });
  const flash = attention(q, k, v, { causal: true, kernel: 'flash', returnStats: true, blockM: 2, blockN: 3 });

  console.log('qkv demo — causal scaled dot-product attention, one head, head_dim 8, random q/k/v\n');
  console.log('attention weights p_ij = softmax_j(q_i·k_j / √8), future keys masked (darker = more weight):\n');
  console.log(`${''.padEnd(6)}${tokens.map((t) => t.padEnd(6)).join('')}`);
  for (let i = 0; i < T; i++) {
    const cells = tokens.map((_, j) => {
      const p = ref.weights!.get(0, 0, i, j);
      return (j > i ? '   ·' : `${SHADES[Math.min(9, Math.floor(p * 10))]}${p.toFixed(2)}`).padEnd(6);
    });
    console.log(`${tokens[i].padEnd(6)}${cells.join('')}`);
  }
  console.log('\nper query row:  lse      entropy (nats)  mean distance |i−j|');
  for (let i = 0; i < T; i++) {
    const row = [ref.lse.get(0, 0, i), ref.stats!.entropy.get(0, 0, i), ref.stats!.meanDistance.get(0, 0, i)];
    console.log(`  ${tokens[i].padEnd(6)}  ${row.map((x) => x.toFixed(4).padStart(8)).join('   ')}`);
  }
  const a = ref.out.toFloat32();
  const b = flash.out.toFloat32();
  let maxDiff = 0;
  for (let x = 0; x < a.length; x++) maxDiff = Math.max(maxDiff, Math.abs(a[x] - b[x]));
  console.log(`\noutput o_0 = [${[...a.subarray(0, D)].map((x) => x.toFixed(3)).join(', ')}]`);
  console.log(`tiled (flash) kernel vs reference: max |Δout| = ${maxDiff.toExponential(2)} (blocks 2×3, online softmax)`);
  console.log('\nThis is a console demo; the Attention Lab (a web page over a real model) will take over `npm start`.');
  console.log('Try `npx qkv --help`, and see README.md for the full attention API.');
}
