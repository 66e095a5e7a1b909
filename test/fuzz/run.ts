// `npm run fuzz [-- N [SEED]]`: N mutations (default 1,000,000) of the golden safetensors files through every reader,
// then legal headers of growing size, timed. Reports findings — errors that are not QkvErrors, or readers that disagree
// — and calls over 1 s for headers under 10 MB; exits 1 when there is either. Not part of npm test (minutes, and it
// times things); the test suite runs 5,000 of the same mutations.
import { parseSafetensorsHeader } from '../../src/tensor/safetensors.js';
import { GOLDEN, rng } from '../helpers.js';
import { check, mutate, seedFiles } from './safetensors-mutations.js';

const N = Number(process.argv[2] ?? 1_000_000);
const SEED = Number(process.argv[3] ?? 1);
const seeds = seedFiles(GOLDEN);
const rand = rng(SEED);
const kinds = new Map<string, { n: number; parsed: number }>();
const findings: string[] = [];
let slow = 0;
let maxMs = 0;
const t0 = performance.now();
for (let trial = 0; trial < N; trial++) {
  const { kind, bytes } = mutate(seeds[trial % seeds.length], rand);
  const r = check(bytes);
  const k = kinds.get(kind) ?? { n: 0, parsed: 0 };
  k.n++;
  if (r.parsed) k.parsed++;
  kinds.set(kind, k);
  if (r.finding && findings.length < 20) findings.push(`trial ${trial} (${kind}): ${r.finding}`);
  else if (r.finding) findings.push('');
  if (r.ms > 1000 && r.headerBytes < 10e6) slow++;
  maxMs = Math.max(maxMs, r.ms);
  if (trial % 100_000 === 99_999) process.stderr.write(`  ${trial + 1} inputs, ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
}
console.log(`qkv fuzz: ${N} mutated safetensors files (seed ${SEED}, ${seeds.length} golden seed files) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
for (const [kind, k] of [...kinds].sort()) console.log(`  ${kind.padEnd(12)} ${String(k.n).padStart(8)} inputs, ${String(k.parsed).padStart(7)} parsed`);
console.log(`  slowest call ${maxMs.toFixed(1)} ms; calls over 1 s with a header under 10 MB: ${slow}`);

// legal headers of growing size: one U8 tensor per entry
console.log('legal headers (tensors → header bytes: parse time):');
for (const n of [10_000, 100_000, 200_000, 262_144]) {
  const parts = Array.from({ length: n }, (_, i) => `"model.layers.${i}.weight":{"dtype":"U8","shape":[1],"data_offsets":[${i},${i + 1}]}`);
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const bytes = new Uint8Array(8 + json.length + n);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
  bytes.set(json, 8);
  const t = performance.now();
  parseSafetensorsHeader(bytes, bytes.length);
  const ms = performance.now() - t;
  if (ms > 1000 && json.length < 10e6) slow++;
  console.log(`  ${String(n).padStart(7)} → ${(json.length / 1e6).toFixed(1)} MB: ${ms.toFixed(0)} ms`);
}
console.log(`findings (errors that are not QkvError, readers that disagree): ${findings.length}`);
for (const f of findings.filter(Boolean)) console.log(`  ${f}`);
console.log(`${findings.length === 0 && slow === 0 ? 'ok' : 'FAILED'}: ${findings.length} findings, ${slow} slow calls`);
process.exitCode = findings.length === 0 && slow === 0 ? 0 : 1;
