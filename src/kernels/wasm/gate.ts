// The gate of a job on threads: which workers are in it, so that the caller need not wait for a worker that has not
// started — it takes every part of the job that is left (claimed units, or the shares of workers that did not come:
// runtime.ts), closes the gate, and waits only for the workers that got in. A worker that wakes after that finds the
// gate closed (or the tag of a later job) and leaves the job alone; one that got in claims units like the caller, or
// runs the share its rank in the gate gives it.
//   gate word = tag << 12 | closed << 11 | workers in (0 … 2047), tag = the job's sequence number mod 2^19
// The caller opens the gate (tag of the job about to be announced) before it announces the job (SEQ), so a worker
// that sees the job's sequence number sees its gate or a later one; a worker gets in only through the gate of the
// sequence number it saw, so it never runs a job it did not see announced, nor one job twice (short of a worker stalled
// across 2^19 jobs, which meets its tag again: runtime.ts checks what such a worker runs against the job it got into).

const COUNT = 0x7ff;
const CLOSED = 0x800;
const TAG_SHIFT = 12;
const TAG_MASK = 0x7ffff;

const tagOf = (seq: number) => (seq & TAG_MASK) << TAG_SHIFT;

/** Opens the gate of job `seq` (nobody in yet): the caller, before it announces the job. */
export function openGate(control: Int32Array, at: number, seq: number): void {
  Atomics.store(control, at, tagOf(seq));
}

/**
 * A worker that saw job `seq` announced tries to get in: its rank among the workers that got in (0, 1, …: it must then
 * run its part and say done), or −1 when it did not.
 */
export function enterGate(control: Int32Array, at: number, seq: number): number {
  let g = Atomics.load(control, at);
  for (;;) {
    if ((g & CLOSED) !== 0 || (g & ~(COUNT | CLOSED)) !== tagOf(seq) || (g & COUNT) === COUNT) return -1;
    const was = Atomics.compareExchange(control, at, g, g + 1);
    if (was === g) return g & COUNT;
    g = was; // another worker got in (or the caller closed it) meanwhile
  }
}

/** Closes the gate: the caller, once it has run out of units; returns how many workers got in (wait for those). */
export function closeGate(control: Int32Array, at: number): number {
  return Atomics.or(control, at, CLOSED) & COUNT;
}

/** closeGate(), unless all `workers` are in already (nobody is left to shut out: a read, no write to the shared line). */
export function shutGate(control: Int32Array, at: number, workers: number): number {
  const inside = Atomics.load(control, at) & COUNT;
  return inside === workers ? inside : closeGate(control, at);
}
