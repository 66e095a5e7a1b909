// Loading a Hugging Face checkpoint directory from disk (Node-only): config.json, model.safetensors or a sharded
// model.safetensors.index.json, tokenizer.json (+ tokenizer_config.json), generation_config.json.
// Tensors are streamed one at a time from the file (header validated first, then each tensor's byte range read
// with positioned reads), so a checkpoint never sits in memory twice; a progress bar shows on a terminal. Weight
// matrices kept as stored are read straight into the matrix kernel's memory where it offers room (the WebAssembly
// kernels' shared memory), so they are held once: not in JavaScript and again in the kernel's copy.
// Everything here is untrusted: only regular files are read (files.ts), a sharded checkpoint loads what its
// weight_map names from the shard it names (a tensor in two shards is refused), and config.json is validated by the
// family that reads it (models/config.ts).
import { closeSync, existsSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describeValue, QkvError, SafetensorsError } from '../errors.js';
import { Tokenizer } from '../generate/tokenizer.js';
import type { HfConfig } from '../models/config.js';
import type { Model } from '../models/model.js';
import { buildModel, checkConfig } from '../models/registry.js';
import { Weights, type WeightFormat } from '../models/weights.js';
import { inKernelMemory } from '../models/load.js';
import { storageView, DTYPE_SIZE, type DType, type Storage } from '../tensor/dtype.js';
import { checkBool, MAX_HEADER_BYTES, parseSafetensorsHeader } from '../tensor/safetensors.js';
import { openRegular, printable, readFully, readJsonObject } from './files.js';
import { Tensor } from '../tensor/tensor.js';

type Header = ReturnType<typeof parseSafetensorsHeader>;

/** A loaded checkpoint. */
export interface Checkpoint {
  dir: string;
  config: HfConfig;
  model: Model;
  weights: Weights;
  tokenizer: Tokenizer | null;
  generationConfig: Record<string, unknown>;
  /** Bytes of tensor data read from disk. */
  bytes: number;
  /** Milliseconds the load took (headers, tensors, model, tokenizer). */
  loadMs: number;
}

/** Progress reports while tensors stream in. */
export type LoadProgress = (done: number, total: number, file: string) => void;

/** Reads and validates the header of an open safetensors file (only the length prefix and the JSON are read). */
function readHeader(fd: number, size: number, path: string): Header {
  const lenBuf = new Uint8Array(8);
  if (size >= 8) readFully(fd, lenBuf, 0, path);
  const n = size >= 8 ? Number(new DataView(lenBuf.buffer).getBigUint64(0, true)) : 0;
  // read no more than the file has or the header limit allows; the parser reports which bound was broken
  const prefix = new Uint8Array(8 + Math.min(n, Math.max(0, size - 8), MAX_HEADER_BYTES));
  readFully(fd, prefix, 0, path);
  try {
    return parseSafetensorsHeader(prefix, size);
  } catch (e) {
    throw new SafetensorsError(`${printable(path)}: ${(e as Error).message}`);
  }
}

/** The validated header of a safetensors file on disk. */
function headerOf(path: string): Header {
  const { fd, size } = openRegular(path);
  try {
    return readHeader(fd, size, path);
  } finally {
    closeSync(fd);
  }
}

/**
 * Streams the tensors of one safetensors file into `into` (all of them, or those `wanted` says), validating the header
 * before reading data. Each tensor is read straight into its own buffer, in chunks (tensors of 2 GiB and more).
 */
export function streamSafetensors(path: string, into: Map<string, Tensor>, progress?: (bytes: number) => void,
  wanted?: (name: string) => boolean): number {
  const { fd, size } = openRegular(path);
  try {
    return readTensors(fd, path, readHeader(fd, size, path), into, progress, wanted);
  } finally {
    closeSync(fd);
  }
}

/** Where a tensor of `n` elements goes instead of a fresh buffer of its own (null: a fresh buffer). */
type Place = (dtype: DType, shape: readonly number[], n: number) => Storage | null;


// the tensors of an open file whose header is already validated, each read straight into its own storage
function readTensors(fd: number, path: string, header: Header, into: Map<string, Tensor>,
  progress?: (bytes: number) => void,
  wanted?: (name: string) => boolean, place?: Place): number {
  let total = 0;
  for (const e of header.entries) {
    if (wanted && !wanted(e.name)) continue;
    const bytes = e.end - e.begin;
    const n = bytes / DTYPE_SIZE[e.dtype];
    // fresh and aligned (typed-array views need no copy), unless placed
    const data = place?.(e.dtype, e.shape, n) ?? storageView(e.dtype, new ArrayBuffer(bytes), 0, n);
    const view = new Uint8Array(data.buffer, data.byteOffset, bytes);
    readFully(fd, view, header.dataStart + e.begin, `${printable(path)}: tensor '${e.name}'`);
    try {
      checkBool(e, data);
    } catch (err) {
      throw new SafetensorsError(`${printable(path)}: ${(err as Error).message}`);
    }
    into.set(e.name, new Tensor(e.dtype, data, e.shape));
    total += bytes;
    progress?.(bytes);
  }
  return total;
}

/** The weight files of a checkpoint, and for a sharded one the file each tensor is to be loaded from. */
interface WeightFiles { files: string[]; shardOf: Map<string, string> | null }

/** The safetensors files of a checkpoint: one file, or the shards named by the index's weight_map. */
function weightFiles(dir: string): WeightFiles {
  const single = join(dir, 'model.safetensors');
  if (existsSync(single)) return { files: [single], shardOf: null };
  const indexPath = join(dir, 'model.safetensors.index.json');
  if (!existsSync(indexPath)) throw new QkvError(`${printable(dir)}: no model.safetensors or model.safetensors.index.json`);
  const map = readJsonObject(indexPath).weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new QkvError(`${printable(indexPath)}: "weight_map" must be an object of tensor name → shard file`);
  }
  const shardOf = new Map<string, string>();
  for (const [name, f] of Object.entries(map)) {
    if (typeof f !== 'string' || f === '' || /[/\\\u0000]/.test(f) || f.startsWith('.')) {
      throw new QkvError(`${printable(indexPath)}: weight_map["${printable(name)}"] must be a file name in the checkpoint directory, ` +
        `got ${printable(describeValue(f))}`);
    }
    shardOf.set(name, join(dir, f));
  }
  if (shardOf.size === 0) throw new QkvError(`${printable(indexPath)}: "weight_map" names no tensor`);
  return { files: [...new Set(shardOf.values())], shardOf };
}

/**
 * Checks the shards against the map before any data is read: each tensor the map names is in the shard it names, and
 * no tensor is in two shards (which copy would win is not for the loader to guess).
 */
function checkShards(w: WeightFiles, headers: Map<string, Header>): void {
  if (!w.shardOf) return;
  const seenIn = new Map<string, string>();
  for (const [file, h] of headers) {
    for (const e of h.entries) {
      const other = seenIn.get(e.name);
      if (other !== undefined) throw new QkvError(`tensor '${e.name}' is in two shards, ${basename(other)} and ${basename(file)}`);
      seenIn.set(e.name, file);
    }
  }
  for (const [name, file] of w.shardOf) {
    if (seenIn.get(name) !== file) {
      const actual = seenIn.has(name) ? `it is in ${basename(seenIn.get(name)!)}` : 'no shard holds it';
      throw new QkvError(`weight_map puts tensor '${printable(name)}' in ${basename(file)}, but ${actual}`);
    }
  }
}

/** A checkpoint directory that exists and is a directory. */
function checkDir(dir: string): void {
  let ok = false;
  try { ok = statSync(dir).isDirectory(); } catch { /* reported below */ }
  if (!ok) throw new QkvError(`${printable(dir)}: ${existsSync(dir) ? 'not a directory' : 'no such checkpoint directory'}`);
}

/** A terminal progress bar on stderr for big checkpoints (> 64 MiB), then the bytes and time; silent otherwise. */
export function terminalProgress(): LoadProgress | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = -1;
  const t0 = performance.now();
  return (done, total, file) => {
    if (total < 64 * 2 ** 20) return;
    const pct = Math.floor((100 * done) / total);
    if (pct === last) return;
    last = pct;
    const bar = '█'.repeat(Math.floor(pct / 4)).padEnd(25, '░');
    process.stderr.write(`\rloading ${file} ${bar} ${pct}% ${(done / 2 ** 20).toFixed(0)}/${(total / 2 ** 20).toFixed(0)} MiB`);
    if (done < total) return;
    const s = (performance.now() - t0) / 1000;
    const gb = total / 1e9;
    process.stderr.write(`\rloaded ${gb.toFixed(2)} GB of weights in ${s.toFixed(1)} s (${(gb / s).toFixed(2)} GB/s)`.padEnd(100) + '\n');
  };
}

/** What `qkv info` shows without loading any tensor data: sizes from the headers alone. */
export interface CheckpointSummary { dir: string; config: HfConfig; files: string[]; parameters: number; dtypes: string[]; bytes: number }

/**
 * What a checkpoint directory holds, checked before any tensor data is read: config.json, every weight file's header,
 * and which tensors load from which file (`loads`: all of a single file; for a sharded one, what weight_map names).
 */
function openCheckpoint(dir: string):
  { config: HfConfig; files: string[]; headers: Map<string, Header>; loads: (file: string, name: string) => boolean } {
  checkDir(dir);
  const config = readJsonObject(join(dir, 'config.json')) as HfConfig;
  const w = weightFiles(dir);
  const headers = new Map(w.files.map((f) => [f, headerOf(f)]));
  checkShards(w, headers);
  return { config, files: w.files, headers, loads: (file, name) => !w.shardOf || w.shardOf.get(name) === file };
}

/** Reads config.json and every safetensors header (validated), not the data: cheap even for huge checkpoints. */
export function inspectCheckpoint(dir: string): CheckpointSummary {
  const { config, files, headers, loads } = openCheckpoint(dir);
  checkConfig(config);
  let parameters = 0;
  let bytes = 0;
  const dtypes = new Set<string>();
  for (const [f, h] of headers) {
    for (const e of h.entries) {
      if (!loads(f, e.name)) continue; // not in the map: not loaded
      parameters += e.shape.reduce((a, b) => a * b, 1);
      bytes += e.end - e.begin;
      dtypes.add(e.dtype);
    }
  }
  return { dir, config, files, parameters, dtypes: [...dtypes], bytes };
}

/**
 * A checkpoint's tensors read from their files when first asked for: for formats that convert weights as the model is
 * built (int8, int4), each stored matrix is read, quantized into the kernel's memory and dropped before the next one is
 * read, instead of the whole checkpoint sitting in memory beside its quantized copy.
 */
class TensorsOnDemand extends Map<string, Tensor> {
  constructor(private readonly pending: Map<string, () => Tensor>) { super(); }
  override get(name: string): Tensor | undefined {
    const read = super.has(name) ? undefined : this.pending.get(name);
    if (read) { this.pending.delete(name); super.set(name, read()); }
    return super.get(name);
  }
  override has(name: string): boolean { return super.has(name) || this.pending.has(name); }
  override delete(name: string): boolean { return this.pending.delete(name) || super.delete(name); }
  /** Reads the tensors nobody asked for, so that summaries and checks see every tensor (as when all are read first). */
  readRest(): void { for (const name of [...this.pending.keys()]) this.get(name); }
}

/** The tokenizer of a checkpoint directory (tokenizer.json, with tokenizer_config.json when there is one), or null. */
export function loadTokenizer(dir: string): Tokenizer | null {
  const tokPath = join(dir, 'tokenizer.json');
  const cfgPath = join(dir, 'tokenizer_config.json');
  if (!existsSync(tokPath)) return null;
  return Tokenizer.fromJSON(readJsonObject(tokPath), existsSync(cfgPath) ? readJsonObject(cfgPath) : {}, tokPath);
}

/**
 * Loads config, weights, model and tokenizer from a checkpoint directory. Weights are kept as stored unless
 * `weights` says otherwise ('float32', 'int8', 'int4'); stored matrices go straight into the matrix kernel's memory,
 * quantized ones are read one tensor at a time as the model asks for them (TensorsOnDemand).
 */
export function loadCheckpoint(dir: string, o: { progress?: LoadProgress; tokenizer?: boolean; weights?: WeightFormat } = {}): Checkpoint {
  const t0 = performance.now();
  const { config, files, headers, loads } = openCheckpoint(dir);
  let total = 0;
  for (const [f, h] of headers) for (const e of h.entries) if (loads(f, e.name)) total += e.end - e.begin;
  let done = 0;
  const progress = o.progress ?? terminalProgress();
  // the header read above; a sharded checkpoint loads what its map says, from the shard it names
  const read = (f: string, into: Map<string, Tensor>, wanted: (name: string) => boolean, place?: Place) => {
    const { fd } = openRegular(f);
    try {
      readTensors(fd, f, headers.get(f)!, into, (b) => { done += b; progress?.(done, total, basename(f)); }, wanted, place);
    } finally {
      closeSync(fd);
    }
  };
  const stored = (o.weights ?? 'stored') === 'stored';
  const pending = new Map<string, () => Tensor>();
  const tensors = stored ? new Map<string, Tensor>() : new TensorsOnDemand(pending);
  for (const [f, header] of headers) {
    if (stored) { read(f, tensors, (name) => loads(f, name), inKernelMemory); continue; }
    for (const e of header.entries) {
      if (!loads(f, e.name)) continue;
      pending.set(e.name, () => {
        const one = new Map<string, Tensor>();
        read(f, one, (n) => n === e.name, inKernelMemory); // given back when quantized (Weights.release)
        return one.get(e.name)!;
      });
    }
  }
  const weights = new Weights(tensors, files.length === 1 ? files[0] : dir, { format: o.weights });
  const model = buildModel(config, weights);
  if (tensors instanceof TensorsOnDemand) tensors.readRest();
  const tokenizer = o.tokenizer !== false ? loadTokenizer(dir) : null;
  const genPath = join(dir, 'generation_config.json');
  const generationConfig = existsSync(genPath) ? readJsonObject(genPath) : {};
  return { dir, config, model, weights, tokenizer, generationConfig, bytes: done, loadMs: performance.now() - t0 };
}
