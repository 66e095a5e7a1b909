// `npm run bench:performer`: how well Performer FAVOR+ approximates softmax attention as the number of random
// features m grows, with i.i.d. and orthogonal features, next to exact attention's time in the same run.
// Error: ‖out_performer − out_exact‖ / ‖out_exact‖ over B = 1, H = 4, L = S = 256, d = 64, q and k ~ U(−1, 1)·0.5,
// median over 5 seeds of the projection. Options: --json
import { attention, performerAttention, Rng, Tensor } from '../src/index.js';

const [H, L, D] = [4, 256, 64];
const rng = new Rng(1);
const make = (amp: number) => Tensor.from(Float32Array.from({ length: H * L * D }, () => (rng.uniform() * 2 - 1) * amp), [1, H, L, D]);
const [q, k, v] = [make(0.5), make(0.5), make(1)];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const t0 = performance.now();
const exact = attention(q, k, v, { kernel: 'flash' }).out.toFloat32();
const exactMs = performance.now() - t0;
const normExact = Math.sqrt(exact.reduce((s, x) => s + x * x, 0));

const rows = [];
for (const m of [8, 16, 32, 64, 128, 256, 512, 1024]) {
  const row: Record<string, number> = { features: m };
  for (const orthogonal of [false, true]) {
    const errs: number[] = [];
    const times: number[] = [];
    for (let seed = 0; seed < 5; seed++) {
      const s = performance.now();
      const approx = performerAttention(q, k, v, { features: m, seed, orthogonal }).toFloat32();
      times.push(performance.now() - s);
      let e = 0;
      for (let x = 0; x < exact.length; x++) e += (approx[x] - exact[x]) ** 2;
      errs.push(Math.sqrt(e) / normExact);
    }
    row[orthogonal ? 'orthogonalError' : 'iidError'] = median(errs);
    row[orthogonal ? 'orthogonalMs' : 'iidMs'] = median(times);
  }
  rows.push(row);
}
if (process.argv.includes('--json')) {
  console.log(JSON.stringify({ date: new Date().toISOString(), H, L, D, exactMs, rows }, null, 2));
} else {
  console.log(`Performer FAVOR+ vs exact softmax attention — B=1, H=${H}, L=S=${L}, d=${D}; exact (flash kernel): ${exactMs.toFixed(0)} ms`);
  console.log('relative error ‖Δout‖/‖out‖, median of 5 seeds\n');
  console.log('features m | iid error | orthogonal error | performer ms');
  console.log('-----------|-----------|------------------|-------------');
  for (const r of rows) {
    console.log(`${String(r.features).padStart(10)} | ${r.iidError.toFixed(4).padStart(9)} | ${r.orthogonalError.toFixed(4).padStart(16)} | ${r.orthogonalMs.toFixed(0).padStart(12)}`);
  }
}
