// `npm run bench`: causal attention, B = 1, H = 1, head_dim 64, L = S ∈ {1k … 16k}: the kernel attention() picks by
// default (WebAssembly SIMD), the TypeScript tiled (flash) kernel and the materialising reference kernel side by side:
// median time of several runs, GFLOP/s and peak extra memory.
// Each (kernel, L) runs in its own process (sdpa-child.ts) so that its peak RSS is its own.
// Options: --sizes 1024,2048  --runs N  --json
// FLOPs of causal attention: 4·B·H·L·S·D / 2 (q·k and p·v, 2 FLOPs per multiply-add, half the pairs).
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';

interface Sample { kernel: string; L: number; ms: number[]; inputBytes: number; baseRss: number; peakRss: number; variant: string }

const args = process.argv.slice(2);
const opt = (name: string) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const sizes = (opt('--sizes') ?? '1024,2048,4096,8192,16384').split(',').map(Number);
const json = args.includes('--json');
const child = fileURLToPath(new URL('./sdpa-child.js', import.meta.url));

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const mib = (b: number) => (b / 2 ** 20).toFixed(1);

function measure(kernel: string, L: number): Sample {
  const runs = Number(opt('--runs') ?? (L <= 4096 ? 5 : 3));
  const out = execFileSync(process.execPath, ['--expose-gc', child, kernel, String(L), String(runs)], { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').pop()!) as Sample;
}

const rows: Record<string, unknown>[] = [];
if (!json) {
  console.log(`qkv sdpa bench — causal, B=1, H=1, D=64, float32, 1 thread; ${cpus()[0]?.model ?? 'cpu'} (${cpus().length} cores), node ${process.version}`);
  console.log('time: median of runs; extra: peak RSS − RSS after the inputs were made (the score matrix alone is 4·L² bytes)\n');
  console.log('auto = the default kernel (WebAssembly SIMD); flash = the TypeScript tiles; ref = the materialising reference\n');
  console.log('     L | auto ms  | GFLOP/s | flash ms | GFLOP/s | ref ms   | GFLOP/s | ref/auto | inputs MiB | auto extra MiB | flash extra MiB | ref extra MiB | L² f32 MiB');
  console.log('-------|----------|---------|----------|---------|----------|---------|----------|------------|----------------|-----------------|---------------|-----------');
}
for (const L of sizes) {
  const auto = measure('auto', L);
  const flash = measure('flash', L);
  const ref = measure('reference', L);
  const flops = (4 * L * L * 64) / 2;
  const [ta, tf, tr] = [median(auto.ms), median(flash.ms), median(ref.ms)];
  const row = {
    L, autoMs: ta, autoGflops: flops / ta / 1e6, autoVariant: auto.variant, autoExtraMiB: (auto.peakRss - auto.baseRss) / 2 ** 20, flashMs: tf, flashGflops: flops / tf / 1e6, refMs: tr, refGflops: flops / tr / 1e6, ratio: tr / tf,
    inputMiB: flash.inputBytes / 2 ** 20, flashExtraMiB: (flash.peakRss - flash.baseRss) / 2 ** 20,
    refExtraMiB: (ref.peakRss - ref.baseRss) / 2 ** 20, scoreMatrixMiB: (4 * L * L) / 2 ** 20,
    runs: flash.ms.length,
  };
  rows.push(row);
  if (!json) {
    console.log(`${String(L).padStart(6)} | ${ta.toFixed(0).padStart(8)} | ${row.autoGflops.toFixed(2).padStart(7)} | ${tf.toFixed(0).padStart(8)} | ` +
      `${row.flashGflops.toFixed(2).padStart(7)} | ${tr.toFixed(0).padStart(8)} | ${row.refGflops.toFixed(2).padStart(7)} | ${(tr / ta).toFixed(2).padStart(8)} | ` +
      `${mib(flash.inputBytes).padStart(10)} | ${mib(auto.peakRss - auto.baseRss).padStart(14)} | ${mib(flash.peakRss - flash.baseRss).padStart(15)} | ` +
      `${mib(ref.peakRss - ref.baseRss).padStart(13)} | ${mib(4 * L * L).padStart(10)}`);
  }
}
if (json) console.log(JSON.stringify({ date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, rows }, null, 2));
