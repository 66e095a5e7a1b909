// safetensors reader and writer (https://github.com/huggingface/safetensors, format section).
// Layout: u64 little-endian header length N, N bytes of JSON header, then the data buffer. Files are untrusted:
// every size and offset is checked before a byte of data is touched, following the reference implementation's rules
// (offsets in range, sizes = dtype size × elements, no overlaps, no holes, JSON nested at most 128 deep, no BOM).
// Beyond it: at most MAX_TENSORS entries of rank ≤ MAX_RANK, so a legal 95 MB header cannot cost seconds and
// gigabytes, and every message describes a bad value without recursing into it. Aligned tensors are zero-copy views.
// Reading from disk is Node-only and lives in src/node/files.ts; this file works on bytes in any runtime.
import { describeValue, SafetensorsError } from '../errors.js';
import { DTYPE_SIZE, storageView, type DType } from './dtype.js';
import { fmtShape } from './shape.js';
import { checkTensor, Tensor } from './tensor.js';

// a Map, so a dtype named 'toString' or '__proto__' is unknown rather than found on Object.prototype
const TO_DTYPE = new Map<string, DType>([
  ['F32', 'float32'], ['F16', 'float16'], ['BF16', 'bfloat16'], ['I8', 'int8'],
  ['U8', 'uint8'], ['I32', 'int32'], ['I64', 'int64'], ['BOOL', 'bool'],
]);
const FROM_DTYPE = Object.fromEntries([...TO_DTYPE].map(([k, v]) => [v, k])) as Record<DType, string>;

/** Default bound on the JSON header (the reference implementation uses 100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;
/** Deepest nesting of the header's JSON (the reference implementation's JSON parser stops at 128). */
export const MAX_NESTING = 128;
/** Tensors in one file at most (a DeepSeek-V3 shard holds a few thousand; a whole unsharded MoE model ~100k). */
export const MAX_TENSORS = 1 << 18;
/** Dimensions of one tensor at most. */
export const MAX_RANK = 32;

/** What a safetensors file holds: named tensors (in file order) and the free-form string metadata. */
export interface SafetensorsFile {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

/** One tensor's place in the data buffer, validated. */
export interface SafetensorsEntry { name: string; dtype: DType; shape: number[]; begin: number; end: number }
type Entry = SafetensorsEntry;

/** Parses and validates the header, returning each entry with checked offsets into the data buffer. */
function parseHeader(bytes: Uint8Array, maxHeaderBytes: number, fileLength = bytes.length): { entries: Entry[]; metadata: Record<string, string>; dataStart: number } {
  if (fileLength < 8 || bytes.length < 8) throw new SafetensorsError(`file is ${fileLength} bytes, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  const n = hi * 2 ** 32 + lo;
  if (n > maxHeaderBytes) throw new SafetensorsError(`header length ${n} exceeds the limit of ${maxHeaderBytes} bytes`);
  if (8 + n > fileLength) throw new SafetensorsError(`header length ${n} runs past the end of the file (${fileLength} bytes)`);
  if (8 + n > bytes.length) throw new SafetensorsError(`header of ${n} bytes was not read in full (${bytes.length - 8} bytes given)`);
  const json = bytes.subarray(8, 8 + n);
  if (json[0] === 0xef && json[1] === 0xbb && json[2] === 0xbf) {
    throw new SafetensorsError('header starts with a UTF-8 byte order mark, which JSON does not allow');
  }
  // entries and __metadata__: refused by count before JSON.parse spends seconds and gigabytes on a huge legal header
  if (checkJsonNesting(json) > MAX_TENSORS + 1) throw new SafetensorsError(`header holds more than ${MAX_TENSORS} tensors`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(json));
  } catch (e) {
    throw new SafetensorsError(`header is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new SafetensorsError('header must be a JSON object of tensor entries');
  }
  const dataLen = fileLength - 8 - n;
  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null) continue; // the reference implementation writes and accepts null for "no metadata"
      if (typeof raw !== 'object' || Array.isArray(raw)) {
        throw new SafetensorsError(`__metadata__ must be an object of strings, got ${describeValue(raw)}`);
      }
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== 'string') throw new SafetensorsError(`__metadata__.${k.slice(0, 100)} must be a string, got ${describeValue(v)}`);
        Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true }); // '__proto__' too
      }
      continue;
    }
    if (entries.length === MAX_TENSORS) throw new SafetensorsError(`header holds more than ${MAX_TENSORS} tensors`);
    entries.push(parseEntry(name, raw, dataLen));
  }
  checkCoverage(entries, dataLen);
  return { entries, metadata, dataStart: 8 + n };
}

/**
 * Throws unless the JSON text nests at most `max` arrays/objects deep — checked on the bytes before parsing, so
 * nothing downstream ever walks a value 10⁵ levels deep. Brackets inside strings do not count. Returns the number of
 * objects one level down (a safetensors header's entries), so a header of a million entries is refused unparsed.
 */
export function checkJsonNesting(json: Uint8Array, max = MAX_NESTING, what = 'header JSON'): number {
  let depth = 0;
  let entries = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) throw new SafetensorsError(`${what} nests deeper than ${max} levels`);
      if (depth === 2 && c === 0x7b) entries++;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return entries;
}

/** Validates one header entry: known dtype, integer shape, offsets in range and matching the size. */
function parseEntry(name: string, raw: unknown, dataLen: number): Entry {
  const bad = (what: string) => new SafetensorsError(`tensor '${name.slice(0, 200)}': ${what}`);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('entry must be an object with dtype, shape, data_offsets');
  const own = (key: string) => (Object.hasOwn(raw, key) ? (raw as Record<string, unknown>)[key] : undefined);
  const [code, shape, offsets] = [own('dtype'), own('shape'), own('data_offsets')];
  const dtype = typeof code === 'string' ? TO_DTYPE.get(code) : undefined;
  if (dtype === undefined) throw bad(`unknown dtype ${describeValue(code)} (supported: ${[...TO_DTYPE.keys()].join(' ')})`);
  if (!Array.isArray(shape) || shape.length > MAX_RANK || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw bad(`shape ${describeValue(shape)} must be an array of at most ${MAX_RANK} non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    throw bad(`data_offsets ${describeValue(offsets)} must be two non-negative integers`);
  }
  const [begin, end] = offsets as number[];
  if (begin > end) throw bad(`data_offsets [${begin}, ${end}] are reversed`);
  if (end > dataLen) throw bad(`data_offsets [${begin}, ${end}] run past the data buffer (${dataLen} bytes)`);
  // bytes = dtype size × Π dims; the product of the non-zero dims must fit whatever their order ([0, 2⁴⁰, 2⁴⁰] and
  // [2⁴⁰, 2⁴⁰, 0] alike are refused), and a zero dim then makes it 0
  let bytes = DTYPE_SIZE[dtype];
  for (const d of shape as number[]) {
    if (d === 0) continue;
    bytes *= d;
    if (!Number.isSafeInteger(bytes)) throw bad(`shape ${fmtShape(shape as number[])} is too large`);
  }
  if ((shape as number[]).includes(0)) bytes = 0;
  if (end - begin !== bytes) {
    throw bad(`data_offsets [${begin}, ${end}] span ${end - begin} bytes, but ${code} ${fmtShape(shape as number[])} needs ${bytes}`);
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

/** The data buffer must be covered exactly: sorted by offset, each tensor starts where the previous one ended. */
function checkCoverage(entries: Entry[], dataLen: number): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const e of sorted) {
    if (e.begin < at) throw new SafetensorsError(`tensor '${e.name}': data_offsets [${e.begin}, ${e.end}] overlap another tensor (which ends at ${at})`);
    if (e.begin > at) throw new SafetensorsError(`tensor '${e.name}': bytes ${at}..${e.begin} before it belong to no tensor`);
    at = e.end;
  }
  if (at !== dataLen) throw new SafetensorsError(`data buffer has ${dataLen - at} trailing bytes that belong to no tensor`);
}

/** BOOL tensors hold only the bytes 0 and 1 (every reader, in memory or streaming, checks this). */
export function checkBool(e: SafetensorsEntry, storage: ArrayLike<number | bigint>): void {
  if (e.dtype !== 'bool') return;
  const data = storage as Uint8Array;
  for (let i = 0; i < data.length; i++) {
    if (data[i] > 1) {
      throw new SafetensorsError(`tensor '${e.name}': BOOL data holds a byte other than 0 or 1 (${data[i]} at element ${i})`);
    }
  }
}

/**
 * Validates a header without the data: `prefix` holds at least the first 8 + N bytes of a file of `fileLength` bytes.
 * Returns each tensor's dtype, shape and byte range relative to `dataStart`, for readers that stream tensors from disk.
 */
export function parseSafetensorsHeader(prefix: Uint8Array, fileLength: number, options: { maxHeaderBytes?: number } = {}):
  { entries: SafetensorsEntry[]; metadata: Record<string, string>; dataStart: number } {
  return parseHeader(prefix, options.maxHeaderBytes ?? MAX_HEADER_BYTES, fileLength);
}

/**
 * Reads a safetensors file from its bytes. Aligned tensors are views into `bytes` (no copy).
 * @example const { tensors } = parseSafetensors(serializeSafetensors({ x: Tensor.from([1, 2], [2]) })); tensors.get('x')
 */
export function parseSafetensors(bytes: Uint8Array, options: { maxHeaderBytes?: number } = {}): SafetensorsFile {
  if (!(bytes instanceof Uint8Array)) {
    throw new SafetensorsError(`the bytes of a safetensors file must be a Uint8Array, got ${describeValue(bytes)}`);
  }
  const { entries, metadata, dataStart } = parseHeader(bytes, options.maxHeaderBytes ?? MAX_HEADER_BYTES);
  const tensors = new Map<string, Tensor>();
  for (const e of entries) {
    const size = DTYPE_SIZE[e.dtype];
    const count = (e.end - e.begin) / size;
    const at = bytes.byteOffset + dataStart + e.begin;
    // typed arrays need aligned offsets: view when aligned, copy the bytes otherwise
    const data = at % size === 0
      ? storageView(e.dtype, bytes.buffer, at, count)
      : storageView(e.dtype, bytes.slice(dataStart + e.begin, dataStart + e.end).buffer, 0, count);
    checkBool(e, data);
    tensors.set(e.name, new Tensor(e.dtype, data, e.shape));
  }
  return { tensors, metadata };
}

/**
 * Writes tensors (and optional string metadata) as safetensors bytes. Tensors are laid out widest dtype first
 * so every data offset stays aligned; the header is padded with spaces to a multiple of 8.
 */
export function serializeSafetensors(
  tensors: Record<string, Tensor> | Map<string, Tensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  if (typeof tensors !== 'object' || tensors === null) {
    throw new SafetensorsError(`tensors must be a Map or an object of name → Tensor, got ${describeValue(tensors)}`);
  }
  const strings = (m: object) => Object.values(m).every((v) => typeof v === 'string');
  if (metadata !== undefined && (typeof metadata !== 'object' || metadata === null || !strings(metadata))) {
    throw new SafetensorsError(`metadata must be an object of strings, got ${describeValue(metadata)}`);
  }
  const entries = [...(tensors instanceof Map ? tensors : Object.entries(tensors))];
  for (const [name, t] of entries) checkTensor(t, `serializeSafetensors: tensor '${String(name)}'`);
  const list = entries.map(([name, t]) => [name, t.contiguous()] as const);
  list.sort((a, b) => DTYPE_SIZE[b[1].dtype] - DTYPE_SIZE[a[1].dtype]);
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let at = 0;
  for (const [name, t] of list) {
    if (name === '__metadata__') throw new SafetensorsError("a tensor may not be named '__metadata__'");
    header[name] = { dtype: FROM_DTYPE[t.dtype], shape: t.shape, data_offsets: [at, at + t.byteLength] };
    at += t.byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const headerBytes = new Uint8Array(padded).fill(0x20);
  headerBytes.set(json);
  json = headerBytes;
  const out = new Uint8Array(8 + json.length + at);
  const view = new DataView(out.buffer);
  view.setUint32(0, json.length, true);
  view.setUint32(4, 0, true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const [, t] of list) {
    const src = new Uint8Array(t.data.buffer, t.data.byteOffset, t.byteLength);
    out.set(src, pos);
    pos += t.byteLength;
  }
  return out;
}
