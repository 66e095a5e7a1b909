// The lab's head interventions on qkv-tiny (Ablations.heads and .patch, CPU forward): patching a head with its own
// pattern changes nothing; patching it with all-zero weights is removing it; a removed head changes the logits;
// the experiments built on them (removeHead, patchHead) report what they say; bad heads are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { patchHead, removeHead, type CausalLM } from '../../src/index.js';
import type { Ablations } from '../../src/models/model.js';
import { loadCheckpoint } from '../../src/node/checkpoint.js';
import { assertClose } from '../helpers.js';
import { TINY } from './helpers.js';

const ckpt = loadCheckpoint(TINY);
const model = ckpt.model as CausalLM;
const ids = ckpt.tokenizer!.encode('A fool and his money are soon parted. A fool and his money');
const T = ids.length;
const logits = (ablate?: Ablations) => model.forward([ids], { ablate }).logits.toFloat32();

test('patching a head with its own pattern gives the same logits; with zero weights it is removing the head', () => {
  const base = logits();
  const own = model.forward([ids], { outputAttentions: true }).attentions![2].toFloat32();
  const [layer, head] = [2, 5];
  const weights = own.slice(head * T * T, (head + 1) * T * T);
  assertClose(logits({ patch: { layer, head, weights, size: T } }), base, 1e-5, 1e-5, 'own pattern');
  const removed = logits({ heads: [{ layer, head }] });
  assertClose(logits({ patch: { layer, head, weights: new Float32Array(T * T), size: T } }), removed, 1e-6, 1e-6, 'zero pattern = removed');
  const moved = Math.max(...removed.map((x, i) => Math.abs(x - base[i])));
  assert.ok(moved > 1e-3, `removing a head moves the logits (max |Δ| ${moved})`);
  // the maps show the pattern the head used
  const patched = model.forward([ids], { outputAttentions: true, ablate: { patch: { layer, head, weights: new Float32Array(T * T), size: T } } });
  assert.ok(patched.attentions![layer].toFloat32().subarray(head * T * T, (head + 1) * T * T).every((x) => x === 0));
});

test('removeHead: the loss without every head, the chosen one reported, later maps moved; patchHead reports both patterns', () => {
  const r = removeHead(model, ids, 1, 3);
  const { numLayers: L, numHeads: H } = model.info;
  assert.equal(r.series!.lines[0].y.length, L * H);
  assert.equal(r.metrics[1].value - r.metrics[0].value, r.series!.lines[0].y[1 * H + 3]);
  assert.ok(r.maps && r.maps.layer > 1, 'a later layer\'s head');
  const p = patchHead(model, ids, ckpt.tokenizer!.encode('Beautiful is better than ugly. Explicit is better than implicit.'), 2, 5, (id) => `#${id}`);
  assert.equal(p.maps!.panels.length, 2);
  assert.match(p.metrics[2].text!, /^"#\d+"$/);
  assert.throws(() => removeHead(model, ids, 9, 0), /layer must be in \[0, 4\) and head in \[0, 8\)/);
  assert.throws(() => logits({ heads: [{ layer: 0, head: 8 }] }), /ablate\.heads: head must be in \[0, 8\), got 8/);
});
