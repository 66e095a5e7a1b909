// sampleNext reads the candidates most likely first through a heap instead of sorting the vocabulary. Against the
// definition (sort every id by logit, cut by top-k, top-p and min-p, draw u over the kept mass) it picks the same
// token for the same draws, on random logits with ties, every cut and temperature.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, sampleNext, type SamplingOptions } from '../../../src/index.js';
import { randint, rng } from '../../helpers.js';

// the definition, as sampleNext computed it before: a stable sort of all ids
function reference(logits: Float32Array, o: SamplingOptions, u: number): number {
  const T = o.temperature ?? 1;
  const l = Float64Array.from(logits, (x) => x / T);
  let order = Array.from(l.keys()).sort((a, b) => l[b] - l[a]);
  if (o.topK && o.topK > 0) order = order.slice(0, o.topK);
  const m = l[order[0]];
  let p = order.map((i) => Math.exp(l[i] - m));
  const sum = p.reduce((a, b) => a + b, 0);
  p = p.map((x) => x / sum);
  if (o.topP !== undefined && o.topP < 1) {
    let mass = 0, keep = 0;
    while (keep < p.length && mass < o.topP) mass += p[keep++];
    order = order.slice(0, Math.max(1, keep));
    p = p.slice(0, order.length);
  }
  if (o.minP) {
    const keep = p.findIndex((x) => x < o.minP! * p[0]);
    if (keep > 0) { order = order.slice(0, keep); p = p.slice(0, keep); }
  }
  let r = u * p.reduce((a, b) => a + b, 0);
  for (let c = 0; c < p.length; c++) { r -= p[c]; if (r <= 0) return order[c]; }
  return order[order.length - 1];
}

test('the heap-ordered draw picks what sorting the vocabulary picks (random logits, ties, top-k, top-p, min-p)', () => {
  const rand = rng(3);
  let draws = 0;
  for (let trial = 0; trial < 60; trial++) {
    const V = randint(rand, 2, 3000);
    // logits from a few levels (many ties) or spread out
    const levels = trial % 3 === 0 ? 4 : 0;
    const logits = Float32Array.from({ length: V }, () => (levels ? Math.floor(rand() * levels) : (rand() - 0.5) * 12));
    const o: SamplingOptions = {
      temperature: [0.3, 0.7, 1, 1.8][trial % 4], topK: trial % 5 === 1 ? randint(rand, 1, 50) : undefined,
      topP: trial % 3 === 2 ? 0.5 + rand() / 2 : undefined, minP: trial % 7 === 3 ? rand() / 5 : undefined,
    };
    for (let s = 0; s < 20; s++) {
      const seed = trial * 100 + s;
      const u = new Rng(seed).uniform();
      assert.equal(sampleNext(logits, [], o, new Rng(seed)), reference(logits, o, u), `trial ${trial} draw ${s} ${JSON.stringify(o)}`);
      draws++;
    }
  }
  assert.equal(draws, 1200);
});
