// Seeded random numbers, so that drawn projections and samples reproduce: mulberry32 for uniforms, Box–Muller for
// normals. Not cryptographic.

import { describeValue, QkvError } from '../errors.js';

/** A seeded generator of uniforms in [0, 1) and standard normals. */
export class Rng {
  private a: number;
  private spare: number | null = null;
  constructor(seed: number) {
    if (typeof seed !== 'number' || !Number.isFinite(seed)) {
      throw new QkvError(`Rng: seed must be a finite number, got ${describeValue(seed)}`);
    }
    this.a = seed >>> 0;
  }

  /** Uniform in [0, 1) (mulberry32). */
  uniform(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Standard normal N(0, 1) (Box–Muller, two per pair of uniforms). */
  normal(): number {
    if (this.spare !== null) { const s = this.spare; this.spare = null; return s; }
    let u = 0;
    while (u === 0) u = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    const th = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(th);
    return r * Math.cos(th);
  }
}
