// Helpers shared by the CLI commands.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { QkvError } from '../../errors.js';
import { kernelVariant } from '../../kernels/wasm/runtime.js';
import { WEIGHT_FORMATS, type WeightFormat } from '../../models/weights.js';
import { useThreads } from '../threads.js';

export { DEFAULT_MODEL_DIR } from '../default-model.js';

/** A numeric flag, or undefined when absent; an error naming the flag when it is not a number. */
export function numberArg(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x)) throw new QkvError(`--${name} must be a number, got '${v}'`);
  return x;
}

/** An integer option ≥ `min` (a count, a size), or undefined when absent; else the error names the flag and the rule. */
export function countArg(v: string | undefined, name: string, min = 1): number | undefined {
  const x = numberArg(v, name);
  if (x !== undefined && (!Number.isSafeInteger(x) || x < min)) throw new QkvError(`--${name} must be an integer ≥ ${min}, got '${v}'`);
  return x;
}

/** 1536 → "1.5 KiB". */
export function human(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (bytes >= 1024 && u < units.length - 1) { bytes /= 1024; u++; }
  return `${u === 0 ? bytes : bytes.toFixed(bytes >= 100 ? 0 : 1)} ${units[u]}`;
}

/**
 * Refuses a checkpoint directory without tokenizer.json before its weights are read (hundreds of megabytes, then a
 * refusal); a directory that is no checkpoint at all is left to the loader, whose message says so.
 */
export function requireTokenizer(dir: string, command: string): void {
  if (!existsSync(join(dir, 'tokenizer.json')) && existsSync(join(dir, 'config.json'))) {
    throw new QkvError(`qkv ${command}: ${dir} has no tokenizer.json`);
  }
}

/** The flags every model command takes: --threads and --weights (parseArgs options and their help lines). */
export const RUNTIME_OPTIONS = { threads: { type: 'string' }, weights: { type: 'string' } } as const;
export const RUNTIME_HELP = `  --threads N              threads for the WebAssembly kernels (default: the cores available, ${availableParallelism()} here)
  --weights FORMAT         stored (default: the checkpoint's dtype, f16/bf16 stay 16-bit) | float32 | int8 (per-row scales)
                           | int4 (blocks of 32 with a scale each, as llama.cpp's Q4_0)`;

/** Starts the kernel threads and returns the weight format the flags ask for. */
export async function applyRuntimeOptions(values: { threads?: string; weights?: string }): Promise<{ threads: number; weights: WeightFormat }> {
  const n = numberArg(values.threads, 'threads') ?? availableParallelism();
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new QkvError(`--threads must be an integer in [1, 256], got ${n}`);
  const weights = (values.weights ?? 'stored') as WeightFormat;
  if (!WEIGHT_FORMATS.includes(weights)) throw new QkvError(`--weights must be one of ${WEIGHT_FORMATS.join(', ')}, got '${values.weights}'`);
  return { threads: await useThreads(n), weights };
}

/** Where a model runs, for banners and stats: "WebGPU", or "2 threads, WebAssembly relaxed-simd". */
export function whereText(gpu: boolean, threads: number): string {
  return gpu ? 'WebGPU' : `${threads} thread${threads > 1 ? 's' : ''}, WebAssembly ${kernelVariant() ?? 'off'}`;
}
