// When the kernels' threads help and when they do not: the runtime's chooser (runJob, runtime.ts) and the size of a job.
import { JOB } from './jobs.js';

// Threads that degrade gracefully. A worker whose core another busy process shares runs only part of the time, and
// the caller, done with its own share, waits for the worker's; a worker spinning between jobs can also keep the caller
// on the busy core. 2 threads then run far slower than 1 (qkv-tiny decode measured 237–266 against 446–708 tokens/s
// with a busy neighbour on one core). So the runtime measures both ways and keeps the faster: EPOCH calls on its threads,
// EPOCH calls on the caller alone (the workers sleep), then the faster way for a hold, and again — the hold doubling
// from HOLD_MS up to MAX_HOLD_MS while the measurements agree by MARGIN or more (each measurement runs calls the slower
// way). A close call is measured again after HOLD_MS: while V8 still compiles a decode's JavaScript on a background
// thread (the first ~40 tokens of a 135M decode), it takes the worker's core, and two 14 ms epochs that said "alone"
// (threads 0.23 against alone 0.22 ms per million units) had kept a decode alone for 8 s (24 against 44 tokens/s).
// The two epochs are compared call shape by call shape: for the shapes both epochs ran (a job's kind and size), each
// way's mean time a call, weighted by how often the shape came in both. A decode step's 211 calls differ in cost a
// hundredfold, and per unit of work (multiply-adds) they differ too — a decode attention call costs ~3× a product's
// time a unit — so comparing totals, or totals per unit of work, judged the mix of calls each epoch happened to draw:
// a 135M f16 decode at a 512-token context chose "alone" for half its tokens (threads 0.29 against alone 0.23 ms per
// million units, the threads' epoch holding the attention calls), 38 against ~24 ms a token. When the epochs share no
// shape (a few long calls), they are compared per unit of work. One decision for all calls, not one per shape: a
// worker that some calls leave idle falls asleep, and the next threaded calls then run without it while it wakes
// (~1 ms here); for the same reason each epoch's first call is not measured (a waking worker, or one still spinning).
// The first measurement is thrown away: it runs while V8 still tiers the kernels up (Liftoff, then TurboFan, in each
// worker too), and it had kept a 135M f16 decode alone for its first 2 s (75 against 47 ms a token on 2 threads).
// An epoch also ends once its measured calls have taken EPOCH_MS: 128 attention calls of 20–150 ms each had run alone for
// seconds, on every measurement (L 1024 timed at 162 ms against 80 on the threads). And a threads epoch ends once it is
// clearly behind (BEHIND) the last alone epoch for the same shapes: beside a busy process qkv-tiny's 128 calls on the
// threads took 74–105 ms against 2.9 ms alone, a whole short generation's time, at every measurement. The decision
// itself still compares with this measurement's own alone epoch, so a machine that slowed down as a whole only
// shortens the threads epoch.
export class ThreadChooser {
  static readonly EPOCH = 128;
  static readonly EPOCH_MS = 100;
  static readonly HOLD_MS = 2000;
  static readonly MAX_HOLD_MS = 32_000;
  /** The hold doubles only when one way beat the other by this factor: a close call is measured again soon. */
  static readonly MARGIN = 1.1;
  /** A threads epoch ends early once its measured calls took BEHIND × what the last alone epoch's took for the same
   *  shapes, after at least EARLY_MS: with a busy neighbour its 128 calls took 74–105 ms against 2.9 ms alone. */
  static readonly BEHIND = 2;
  static readonly EARLY_MS = 5;
  #hold = ThreadChooser.HOLD_MS;
  #phase: 'threads' | 'alone' | 'hold' = 'threads';
  #calls = 0;
  #spent = 0; // ms of this epoch's measured calls
  #epochs = { threads: new Epoch(), alone: new Epoch() };
  #holdUntil = 0;
  #warm = false;
  #lastAlone: Epoch | null = null; // the last decided measurement's alone epoch
  /** The way chosen at the end of the last measurement (true: threads). */
  threaded = true;

  /** Whether the call starting at `now` (performance.now() ms) runs on the threads. */
  useThreads(now: number): boolean {
    if (this.#phase === 'hold' && now >= this.#holdUntil) this.#measure();
    return this.#phase === 'hold' ? this.threaded : this.#phase === 'threads';
  }

  /**
   * A call of `work` units took `ms`, on the threads or alone; it ended at `now`. `shape` names the call's kind and size
   * (calls of one shape cost the same): by default its work.
   */
  note(onThreads: boolean, ms: number, now: number, work = 1, shape = work): void {
    if (this.#phase === 'hold') return;
    if (this.#calls++ === 0) return; // the epoch's first call: not measured
    this.#epochs[onThreads ? 'threads' : 'alone'].add(shape, ms, work);
    this.#spent += ms;
    if (this.#calls < ThreadChooser.EPOCH && this.#spent < ThreadChooser.EPOCH_MS && !this.#behind()) return;
    [this.#calls, this.#spent] = [0, 0];
    if (this.#phase === 'threads') { this.#phase = 'alone'; return; }
    if (!this.#warm) { // the warm-up measurement: measured again at once
      this.#warm = true;
      this.#measure();
      return;
    }
    this.#lastAlone = this.#epochs.alone;
    const ratio = this.#epochs.threads.timeRatio(this.#epochs.alone); // threads' time ÷ alone's
    const threaded = ratio <= 1;
    const decisive = ratio <= 1 / ThreadChooser.MARGIN || ratio >= ThreadChooser.MARGIN;
    const agrees = threaded === this.threaded && decisive;
    this.#hold = agrees ? Math.min(2 * this.#hold, ThreadChooser.MAX_HOLD_MS) : ThreadChooser.HOLD_MS;
    this.threaded = threaded;
    [this.#phase, this.#holdUntil] = ['hold', now + this.#hold];
  }

  // whether the threads epoch under way is clearly behind the last alone epoch (the same shapes, BEHIND × the time)
  #behind(): boolean {
    return this.#phase === 'threads' && this.#lastAlone !== null && this.#spent >= ThreadChooser.EARLY_MS &&
      this.#epochs.threads.timeRatio(this.#lastAlone) >= ThreadChooser.BEHIND;
  }

  // a new measurement: an epoch on the threads, then one alone
  #measure(): void {
    [this.#phase, this.#calls, this.#spent] = ['threads', 0, 0];
    this.#epochs = { threads: new Epoch(), alone: new Epoch() };
  }
}

/** One epoch's calls: per shape, how many and their time; and the totals of time and work. */
class Epoch {
  readonly shapes = new Map<number, { n: number; ms: number }>();
  ms = 0;
  work = 0;

  add(shape: number, ms: number, work: number): void {
    const s = this.shapes.get(shape) ?? { n: 0, ms: 0 };
    s.n++;
    s.ms += ms;
    this.shapes.set(shape, s);
    this.ms += ms;
    this.work += work;
  }

  /**
   * This epoch's way's time ÷ `other`'s for the same calls: over the shapes both ran, Σ (n + n') · mean time, each way;
   * with no shape in common, per unit of work (ms / work).
   */
  timeRatio(other: Epoch): number {
    let [mine, theirs] = [0, 0];
    for (const [shape, a] of this.shapes) {
      const b = other.shapes.get(shape);
      if (!b) continue;
      mine += (a.n + b.n) * (a.ms / a.n);
      theirs += (a.n + b.n) * (b.ms / b.n);
    }
    if (mine === 0 && theirs === 0) [mine, theirs] = [this.ms * other.work, other.ms * this.work];
    return theirs > 0 ? mine / theirs : mine > 0 ? Infinity : 1;
  }
}
/**
 * A job's work in multiply-adds, roughly (the products' count; the chooser compares time per unit): a GEMM's M·K·N
 * (twice when gated), attention's rows · keys · D per head, packing's BHkv · S · D, the rows jobs' elements.
 */
export function jobWork(w: readonly number[]): number {
  // (a sliding window W: a row reads W + 1 keys at most)
  if (w[0] === JOB.attention) return w[8] * w[11] * keys(w[12], w[19]) * w[13]; // BH · L · S · D
  if (w[0] === JOB.decode) return w[7] * w[8] * w[10] * keys(w[11], w[28]) * w[12]; // B · Hq · L · S · D
  if (w[0] === JOB.packK) return w[3] * w[4] * w[5]; // BHkv · S · D
  if (w[0] === JOB.merge) return w[4] * w[5] * w[7] * w[8] * w[9]; // B · Hq · L · Dv · splits
  if (w[0] === JOB.rmsNorm) return w[4] * w[5]; // rows · C
  if (w[0] === JOB.add) return w[4]; // n
  if (w[0] === JOB.rope) return w[5] * w[6] * w[7] * w[8]; // B · H · T · D
  return w[4] * w[5] * w[6] * (w[10] ? 2 : 1); // M · K · N, gate and up
}

// the keys a row reads: S, or W + 1 with a sliding window W ≥ 0 (a word written as i32: −1 for none)
const keys = (S: number, window: number) => ((window | 0) >= 0 ? Math.min(S, (window | 0) + 1) : S);

/** A number that names a job's kind and size: calls with the same one cost the same (the chooser pairs them). */
export function jobShape(w: readonly number[], work = jobWork(w)): number {
  return work * 16 + w[0];
}
