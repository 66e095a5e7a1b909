// Node-only file helpers: read safetensors from disk (the parser itself is runtime-neutral, src/tensor/safetensors.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import { SafetensorsError } from '../errors.js';
import { parseSafetensors, serializeSafetensors, type SafetensorsFile } from '../tensor/safetensors.js';
import type { Tensor } from '../tensor/tensor.js';

/** Reads and validates a .safetensors file; errors name the file. */
export function readSafetensors(path: string): SafetensorsFile {
  const bytes = readFileSync(path);
  try {
    return parseSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    if (e instanceof SafetensorsError) throw new SafetensorsError(`${path}: ${e.message}`);
    throw e;
  }
}

/** Writes tensors (and string metadata) to a .safetensors file. */
export function writeSafetensors(path: string, tensors: Record<string, Tensor> | Map<string, Tensor>, metadata?: Record<string, string>): void {
  writeFileSync(path, serializeSafetensors(tensors, metadata));
}
