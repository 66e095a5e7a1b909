// Mutations of real safetensors files (the small golden files), for the fuzz test (a few thousand, fixed seed) and
// `npm run fuzz` (a million or more). Each mutation is one of the ways a file from outside goes wrong: bit flips and
// byte noise, truncation, a lying length prefix, and edits of the JSON header — offsets, shapes, dtypes (prototype
// names included), nesting thousands deep, a BOM, odd __metadata__, prototype tensor names, BOOL bytes other than 0/1.
// `check` feeds one input to every reader and returns what it saw; anything but a QkvError is a finding.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { QkvError } from '../../src/errors.js';
import { parseSafetensors, parseSafetensorsHeader } from '../../src/tensor/safetensors.js';

/** The golden .safetensors files under `maxBytes`: valid inputs to mutate (F32, I64, U8 and BOOL-like masks, metadata). */
export function seedFiles(goldenDir: string, maxBytes = 16 * 1024): Uint8Array[] {
  const walk = (dir: string): string[] => readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.safetensors') && statSync(p).size <= maxBytes ? [p] : [];
  });
  return walk(goldenDir).sort().map((p) => new Uint8Array(readFileSync(p)));
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function headerText(file: Uint8Array): string {
  const n = Number(new DataView(file.buffer, file.byteOffset, 8).getBigUint64(0, true));
  return dec.decode(file.subarray(8, 8 + n));
}

/** A file from a header text and the seed's data buffer, the length prefix set to the header's true length. */
function withHeader(seed: Uint8Array, json: string): Uint8Array {
  const n = Number(new DataView(seed.buffer, seed.byteOffset, 8).getBigUint64(0, true));
  const h = enc.encode(json);
  const out = new Uint8Array(8 + h.length + seed.length - 8 - n);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(seed.subarray(8 + n), 8 + h.length);
  return out;
}

const DTYPES = ['F32', 'F16', 'BF16', 'I8', 'U8', 'I32', 'I64', 'BOOL', 'F64', 'U16', 'f32', '', 'toString', '__proto__', 'constructor', 'valueOf', 'hasOwnProperty'];
const SHAPES = ['[]', '[0]', '[1]', '[-1]', '[1.5]', '["2"]', '[null]', '[9007199254740993]', '[4294967296, 4294967296]', '[0, 4294967296, 4294967296, 4294967296]',
  '[4294967296, 4294967296, 0]', `[${Array(33).fill(1).join(',')}]`, '{}', 'null', '"3"', '[[[[[[[[1]]]]]]]]'];
const NUMBERS = ['0', '1', '-1', '8', '1e3', '1.5', '9007199254740993', '1e308', '-0', 'null', '"8"', '[]', '{}'];

/** One mutation of `seed` chosen by `rand` (a [0, 1) generator). */
export function mutate(seed: Uint8Array, rand: () => number): { kind: string; bytes: Uint8Array } {
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)];
  const text = headerText(seed);
  const kinds = ['bytes', 'header-bits', 'truncate', 'length', 'digits', 'dtype', 'shape', 'offsets', 'nesting', 'bom', 'metadata', 'names', 'bool'];
  const kind = pick(kinds);
  switch (kind) {
    case 'bytes': { // noise anywhere
      const b = seed.slice();
      for (let f = int(1, 8); f > 0; f--) b[int(0, b.length - 1)] = int(0, 255);
      return { kind, bytes: b };
    }
    case 'header-bits': { // single bit flips inside the length prefix or the JSON
      const b = seed.slice();
      for (let f = int(1, 3); f > 0; f--) b[int(0, Math.min(b.length, 8 + text.length) - 1)] ^= 1 << int(0, 7);
      return { kind, bytes: b };
    }
    case 'truncate': return { kind, bytes: seed.slice(0, int(0, seed.length - 1)) };
    case 'length': { // the prefix lies: a little, a lot, or past 2^53
      const b = seed.slice();
      const v = new DataView(b.buffer);
      const choice = int(0, 3);
      const n = BigInt(text.length);
      v.setBigUint64(0, choice === 0 ? n + BigInt(int(-16, 16)) : choice === 1 ? BigInt(int(0, 2 ** 31)) : choice === 2 ? (1n << 63n) + n : BigInt(seed.length), true);
      return { kind, bytes: b };
    }
    case 'digits': { // edit digits (offsets and shapes)
      const chars = [...text];
      for (let f = int(1, 3); f > 0; f--) {
        const at = int(0, chars.length - 1);
        if (/[0-9]/.test(chars[at])) chars[at] = String(int(0, 9));
      }
      return { kind, bytes: withHeader(seed, chars.join('')) };
    }
    case 'dtype': return { kind, bytes: withHeader(seed, replaceOne(text, /"dtype":\s*"[A-Z0-9]+"/g, () => `"dtype":"${pick(DTYPES)}"`, rand)) };
    case 'shape': return { kind, bytes: withHeader(seed, replaceOne(text, /"shape":\s*\[[0-9,\s]*\]/g, () => `"shape":${pick(SHAPES)}`, rand)) };
    case 'offsets': return { kind, bytes: withHeader(seed, replaceOne(text, /"data_offsets":\s*\[[0-9,\s]*\]/g, () => `"data_offsets":[${pick(NUMBERS)},${pick(NUMBERS)}]`, rand)) };
    case 'nesting': { // wrap a value in brackets, up to thousands deep
      const depth = pick([2, 100, 127, 128, 129, 1000, 5000]);
      const open = rand() < 0.5 ? '['.repeat(depth) : '{"a":'.repeat(depth);
      const close = open[0] === '[' ? ']'.repeat(depth) : '}'.repeat(depth);
      const field = pick(['dtype', 'shape', 'data_offsets']);
      return { kind, bytes: withHeader(seed, replaceOne(text, new RegExp(`"${field}":\\s*("[^"]*"|\\[[^\\]]*\\])`, 'g'), (m) => m.replace(/:\s*(.*)$/s, `:${open}$1${close}`), rand)) };
    }
    case 'bom': return { kind, bytes: withHeader(seed, `\uFEFF${text}`) };
    case 'metadata': {
      const meta = pick(['null', '[]', '{"a":1}', '{"a":null}', '{"__proto__":"x"}', '"x"', `{"a":${'['.repeat(500)}${']'.repeat(500)}}`]);
      const { __metadata__: _, ...entries } = JSON.parse(text) as Record<string, unknown>;
      return { kind, bytes: withHeader(seed, `{"__metadata__":${meta},${JSON.stringify(entries).slice(1)}`) };
    }
    case 'names': { // prototype names as tensor names, and a duplicated key
      const name = pick(['__proto__', 'constructor', 'toString', '__metadata__', '']);
      return { kind, bytes: withHeader(seed, replaceOne(text, /"[^"]+":\s*\{"dtype"/g, () => `"${name}":{"dtype"`, rand)) };
    }
    default: { // BOOL: a tensor of bytes declared BOOL, and (mostly) a byte other than 0/1 in its data
      const header = JSON.parse(text) as Record<string, { dtype: string; data_offsets: [number, number] }>;
      const bytesLike = Object.keys(header).filter((k) => k !== '__metadata__' && ['U8', 'I8'].includes(header[k].dtype));
      if (bytesLike.length === 0) return { kind, bytes: seed.slice() };
      const e = header[pick(bytesLike)];
      e.dtype = 'BOOL';
      const h = JSON.stringify(header);
      const b = withHeader(seed, h);
      const [begin, end] = e.data_offsets;
      if (rand() < 0.7 && end > begin) b[8 + enc.encode(h).length + int(begin, end - 1)] = int(2, 255);
      return { kind, bytes: b };
    }
  }
}

/** Replaces one (random) match of `re` in `s`. */
function replaceOne(s: string, re: RegExp, by: (m: string) => string, rand: () => number): string {
  const matches = [...s.matchAll(re)];
  if (matches.length === 0) return s;
  const m = matches[Math.floor(rand() * matches.length)];
  return s.slice(0, m.index) + by(m[0]) + s.slice(m.index! + m[0].length);
}

/** What one input did: parsed, or refused with a QkvError; anything else is a finding. */
export interface Outcome { parsed: boolean; finding: string | null; ms: number; headerBytes: number }

/** Runs one input through the in-memory reader and the header reader; reads every parsed tensor in full. */
export function check(bytes: Uint8Array): Outcome {
  const headerBytes = bytes.length >= 8 ? Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true)) : 0;
  const t0 = performance.now();
  let parsed = false;
  let finding: string | null = null;
  try {
    const f = parseSafetensors(bytes);
    for (const t of f.tensors.values()) {
      try { t.toArray(); } catch (e) { if (!(e instanceof QkvError)) throw e; } // an int64 past 2^53 is a clear refusal
    }
    parsed = true;
  } catch (e) {
    if (!(e instanceof QkvError)) finding = `parseSafetensors: ${(e as Error)?.constructor?.name}: ${String((e as Error)?.message ?? e).slice(0, 200)}`;
  }
  try {
    const h = parseSafetensorsHeader(bytes, bytes.length);
    if (!parsed && !finding && h.entries.every((e) => e.dtype !== 'bool')) finding = 'the header reader accepted what the full reader refused';
  } catch (e) {
    if (!(e instanceof QkvError)) finding = `parseSafetensorsHeader: ${(e as Error)?.constructor?.name}: ${String((e as Error)?.message ?? e).slice(0, 200)}`;
    else if (parsed) finding = 'the full reader accepted what the header reader refused';
  }
  return { parsed, finding, ms: performance.now() - t0, headerBytes };
}
