// The peak resident memory of this process. Linux's getrusage maxRSS carries over an exec, so a child spawned from a
// big parent would report the parent's size; VmHWM in /proc/self/status is this process's own high-water mark.
import { readFileSync } from 'node:fs';

/** Peak RSS in bytes: VmHWM where /proc has it, getrusage otherwise. */
export function peakRss(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch { /* not Linux */ }
  return process.resourceUsage().maxRSS * 1024;
}
