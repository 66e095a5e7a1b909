// Helpers shared by the CLI commands.
import { QkvError } from '../../errors.js';

export { DEFAULT_MODEL_DIR } from '../default-model.js';

/** A numeric flag, or undefined when absent; an error naming the flag when it is not a number. */
export function numberArg(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x)) throw new QkvError(`--${name} must be a number, got '${v}'`);
  return x;
}

/** 1536 → "1.5 KiB". */
export function human(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (bytes >= 1024 && u < units.length - 1) { bytes /= 1024; u++; }
  return `${u === 0 ? bytes : bytes.toFixed(bytes >= 100 ? 0 : 1)} ${units[u]}`;
}
