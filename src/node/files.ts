// Node-only file helpers. Files come from outside: a checkpoint directory may hold a symlink to /dev/zero, a FIFO, a
// directory where a file should be, a 2 GiB tensor or a 10⁵-deep JSON. Only regular files are read (symlinks are
// followed — the Hugging Face cache is made of them — and the target must be a regular file), JSON files have a size
// cap, and large reads go in chunks (one read() call takes at most 2 GiB). Errors are QkvErrors naming the file.
// The safetensors parser itself is runtime-neutral (src/tensor/safetensors.ts).
import { closeSync, constants, fstatSync, openSync, readSync, writeFileSync } from 'node:fs';
import { QkvError, SafetensorsError } from '../errors.js';
import { checkJsonNesting, parseSafetensors, serializeSafetensors, type SafetensorsFile } from '../tensor/safetensors.js';
import type { Tensor } from '../tensor/tensor.js';

/** Size cap of a JSON file of a checkpoint (config, tokenizer, index): the largest tokenizer.json in use is ~35 MB. */
export const MAX_JSON_BYTES = 64 * 2 ** 20;
/** Bytes per read() call: well under the 2 GiB a single call can take. */
const CHUNK = 2 ** 30;

/** Opens `path` for reading if it is a regular file (after symlinks); never blocks on a FIFO. */
export function openRegular(path: string): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const badName = code === 'ERR_INVALID_ARG_VALUE' || code === 'ERR_INVALID_ARG_TYPE'; // a NUL in the name, say
    const why = code === 'ENOENT' ? 'no such file' : badName ? 'not a valid file name' : code ?? (e as Error).message;
    throw new QkvError(`${printable(path)}: cannot open (${why})`);
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new QkvError(`${printable(path)}: not a regular file (${st.isDirectory() ? 'a directory' : 'a device, FIFO or socket'})`);
  }
  return { fd, size: st.size };
}

/** Fills `into` from `fd` at `position`, in chunks; throws when the file ends first. */
export function readFully(fd: number, into: Uint8Array, position: number, what: string): void {
  for (let done = 0; done < into.length;) {
    const got = readSync(fd, into, done, Math.min(CHUNK, into.length - done), position + done);
    if (got === 0) throw new SafetensorsError(`${what}: the file ended after ${done} of ${into.length} bytes`);
    done += got;
  }
}

/** The whole of a regular file of at most `maxBytes`. */
export function readRegularFile(path: string, maxBytes: number): Uint8Array {
  const { fd, size } = openRegular(path);
  try {
    if (size > maxBytes) throw new QkvError(`${printable(path)}: ${size} bytes, more than the ${maxBytes} allowed for it`);
    const bytes = new Uint8Array(size);
    readFully(fd, bytes, 0, printable(path));
    return bytes;
  } finally {
    closeSync(fd);
  }
}

/** A JSON object from a regular file of at most MAX_JSON_BYTES, nested at most 128 deep. */
export function readJsonObject(path: string, maxBytes = MAX_JSON_BYTES): Record<string, unknown> {
  const bytes = readRegularFile(path, maxBytes);
  try {
    checkJsonNesting(bytes, 128, 'the JSON');
    const v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new QkvError(`${printable(path)}: invalid JSON (${(e as Error).message})`);
  }
}

/** A path as it may appear in a message: control characters (a NUL in a crafted name) shown escaped. */
export function printable(path: string): string {
  return path.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`).slice(0, 500);
}

/** Reads and validates a .safetensors file; errors name the file. */
export function readSafetensors(path: string): SafetensorsFile {
  const bytes = readRegularFile(path, Number.MAX_SAFE_INTEGER);
  try {
    return parseSafetensors(bytes);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new SafetensorsError(`${printable(path)}: ${e.message}`);
    throw e;
  }
}

/** Writes tensors (and string metadata) to a .safetensors file. */
export function writeSafetensors(path: string, tensors: Record<string, Tensor> | Map<string, Tensor>,
  metadata?: Record<string, string>): void {
  writeFileSync(path, serializeSafetensors(tensors, metadata));
}
