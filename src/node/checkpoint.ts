// Loading a Hugging Face checkpoint directory from disk (Node-only): config.json, model.safetensors or a sharded
// model.safetensors.index.json, tokenizer.json (+ tokenizer_config.json), generation_config.json.
// Tensors are streamed one at a time from the file (header validated first, then each tensor's byte range read
// with a positioned read), so a checkpoint never sits in memory twice; a progress bar shows on a terminal.
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { QkvError, SafetensorsError } from '../errors.js';
import { Tokenizer } from '../generate/tokenizer.js';
import type { HfConfig } from '../models/config.js';
import type { Model } from '../models/model.js';
import { buildModel } from '../models/registry.js';
import { Weights, type WeightFormat } from '../models/weights.js';
import { storageView, DTYPE_SIZE } from '../tensor/dtype.js';
import { MAX_HEADER_BYTES, parseSafetensorsHeader } from '../tensor/safetensors.js';
import { Tensor } from '../tensor/tensor.js';

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
}

/** Progress reports while tensors stream in. */
export type LoadProgress = (done: number, total: number, file: string) => void;

function readJson(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new QkvError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new QkvError(`${path}: invalid JSON (${(e as Error).message})`);
  }
}

/** Reads and validates the header of an open safetensors file (only the length prefix and the JSON are read). */
function readHeader(fd: number, path: string): ReturnType<typeof parseSafetensorsHeader> {
  const size = fstatSync(fd).size;
  const lenBuf = Buffer.alloc(8);
  readSync(fd, lenBuf, 0, Math.min(8, size), 0);
  const n = size >= 8 ? Number(lenBuf.readBigUInt64LE(0)) : 0;
  // read no more than the file has or the header limit allows; the parser reports which bound was broken
  const prefix = new Uint8Array(8 + Math.min(n, Math.max(0, size - 8), MAX_HEADER_BYTES));
  readSync(fd, prefix, 0, prefix.length, 0);
  try {
    return parseSafetensorsHeader(prefix, size);
  } catch (e) {
    throw new SafetensorsError(`${path}: ${(e as Error).message}`);
  }
}

/** Streams every tensor of one safetensors file into `into`, validating the header before reading data. */
export function streamSafetensors(path: string, into: Map<string, Tensor>, progress?: (bytes: number) => void): number {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new QkvError(`${path}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const header = readHeader(fd, path);
    let total = 0;
    for (const e of header.entries) {
      const bytes = e.end - e.begin;
      const buf = new ArrayBuffer(bytes); // fresh and aligned: typed-array views need no copy
      const got = readSync(fd, new Uint8Array(buf), 0, bytes, header.dataStart + e.begin);
      if (got !== bytes) throw new SafetensorsError(`${path}: tensor '${e.name}': read ${got} of ${bytes} bytes`);
      into.set(e.name, new Tensor(e.dtype, storageView(e.dtype, buf, 0, bytes / DTYPE_SIZE[e.dtype]), e.shape));
      total += bytes;
      progress?.(bytes);
    }
    return total;
  } finally {
    closeSync(fd);
  }
}

/** The safetensors files of a checkpoint: one file, or the shards named by the index. */
function weightFiles(dir: string): string[] {
  const single = join(dir, 'model.safetensors');
  if (existsSync(single)) return [single];
  const indexPath = join(dir, 'model.safetensors.index.json');
  if (!existsSync(indexPath)) throw new QkvError(`${dir}: no model.safetensors or model.safetensors.index.json`);
  const map = readJson(indexPath).weight_map;
  if (typeof map !== 'object' || map === null) throw new QkvError(`${indexPath}: no "weight_map"`);
  const files = [...new Set(Object.values(map as Record<string, unknown>))];
  for (const f of files) {
    if (typeof f !== 'string' || f.includes('/') || f.includes('\\') || f.startsWith('.')) throw new QkvError(`${indexPath}: bad shard name ${JSON.stringify(f)}`);
  }
  return (files as string[]).map((f) => join(dir, f));
}

/** A terminal progress bar on stderr for big checkpoints (> 64 MiB), silent otherwise. */
export function terminalProgress(): LoadProgress | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = -1;
  return (done, total, file) => {
    if (total < 64 * 2 ** 20) return;
    const pct = Math.floor((100 * done) / total);
    if (pct === last) return;
    last = pct;
    const bar = '█'.repeat(Math.floor(pct / 4)).padEnd(25, '░');
    process.stderr.write(`\rloading ${file} ${bar} ${pct}% ${(done / 2 ** 20).toFixed(0)}/${(total / 2 ** 20).toFixed(0)} MiB`);
    if (done >= total) process.stderr.write('\n');
  };
}

/** What `qkv info` shows without loading any tensor data: sizes from the headers alone. */
export interface CheckpointSummary { dir: string; config: HfConfig; files: string[]; parameters: number; dtypes: string[]; bytes: number }

/** Reads config.json and every safetensors header (validated), not the data: cheap even for huge checkpoints. */
export function inspectCheckpoint(dir: string): CheckpointSummary {
  if (!existsSync(dir)) throw new QkvError(`${dir}: no such checkpoint directory`);
  const config = readJson(join(dir, 'config.json')) as HfConfig;
  const files = weightFiles(dir);
  let parameters = 0;
  let bytes = 0;
  const dtypes = new Set<string>();
  for (const f of files) {
    const fd = openSync(f, 'r');
    try {
      for (const e of readHeader(fd, f).entries) {
        parameters += e.shape.reduce((a, b) => a * b, 1);
        bytes += e.end - e.begin;
        dtypes.add(e.dtype);
      }
    } finally {
      closeSync(fd);
    }
  }
  return { dir, config, files, parameters, dtypes: [...dtypes], bytes };
}

/** Loads config, weights, model and tokenizer from a checkpoint directory. */
export function loadCheckpoint(dir: string, o: { progress?: LoadProgress; tokenizer?: boolean; weights?: WeightFormat } = {}): Checkpoint {
  if (!existsSync(dir)) throw new QkvError(`${dir}: no such checkpoint directory`);
  const config = readJson(join(dir, 'config.json')) as HfConfig;
  const files = weightFiles(dir);
  const total = files.reduce((s, f) => s + (existsSync(f) ? statSync(f).size : 0), 0);
  const tensors = new Map<string, Tensor>();
  let done = 0;
  const progress = o.progress ?? terminalProgress();
  for (const f of files) streamSafetensors(f, tensors, (b) => { done += b; progress?.(done, total, f.split('/').pop()!); });
  const weights = new Weights(tensors, files.length === 1 ? files[0] : dir, { format: o.weights });
  const model = buildModel(config, weights);
  const tokPath = join(dir, 'tokenizer.json');
  const tokenizer = o.tokenizer !== false && existsSync(tokPath)
    ? Tokenizer.fromJSON(readJson(tokPath), existsSync(join(dir, 'tokenizer_config.json')) ? readJson(join(dir, 'tokenizer_config.json')) : {}, tokPath)
    : null;
  const genPath = join(dir, 'generation_config.json');
  return { dir, config, model, weights, tokenizer, generationConfig: existsSync(genPath) ? readJson(genPath) : {}, bytes: done };
}
