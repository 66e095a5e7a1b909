// The lab's "break it" experiments, run on a real model (Llama family, through CausalForwardOptions.ablate). Each
// returns a sentence on what to look for and measured numbers (and a series to plot where one helps). Browser-safe:
// the lab runs them in the page; the server runs the same code when the page cannot.
import { getSdpaKernel } from '../kernels/registry.js';
import { problemOf } from '../attention/dispatch.js';
import { checkQkv } from '../attention/validate.js';
import { describeValue, QkvError } from '../errors.js';
import { checkModelKind, type Ablations, type CausalLM } from '../models/model.js';
import { Rng } from '../nn/random.js';
import { Tensor } from '../tensor/tensor.js';

/** A measured value; `text` (a token, say) is shown in place of the number when given. */
export interface Metric { label: string; value: number; unit?: string; text?: string }
export interface Series { xLabel: string; yLabel: string; x: number[]; lines: { name: string; y: number[] }[] }
/** One attention map of a panel pair: rows [T][T] of one head, and which cells its mask hides. */
export interface MapPanel { label: string; rows: number[][]; mask: 'causal' | 'none' | { window: number } }
/** The same head before and after the change (the head the change moved most), to show side by side. */
export interface ExperimentMaps { layer: number; head: number; panels: MapPanel[] }
export interface ExperimentResult { id: string; title: string; lookFor: string; metrics: Metric[]; series?: Series; maps?: ExperimentMaps }

type Rows = number[][];

/** log-softmax of one logit row. */
function logSoftmax(l: Float32Array): Float64Array {
  let m = -Infinity;
  for (const x of l) m = Math.max(m, x);
  let s = 0;
  for (const x of l) s += Math.exp(x - m);
  const lse = m + Math.log(s);
  return Float64Array.from(l, (x) => x - lse);
}

/** Mean next-token cross-entropy (nats) of `ids` under the model with `ablate`. */
export function nextTokenLoss(model: CausalLM, ids: number[], ablate?: Ablations): number {
  checkModelKind(model, 'causal-lm', 'nextTokenLoss');
  needTokens(ids, 2, 'nextTokenLoss');
  const { logits } = model.forward([ids], { ablate });
  const V = model.info.vocabSize;
  const l = logits.toFloat32();
  let loss = 0;
  for (let t = 0; t + 1 < ids.length; t++) loss -= logSoftmax(l.subarray(t * V, (t + 1) * V))[ids[t + 1]];
  return loss / (ids.length - 1);
}

/** Attention weights of every layer [1, H, T, T] with `ablate`. */
function attentions(model: CausalLM, ids: number[], ablate?: Ablations): Tensor[] {
  return model.forward([ids], { outputAttentions: true, ablate }).attentions!;
}

/** Mean entropy of the attention rows (nats) and mean Frobenius norm of the softmax Jacobian J = diag(p) − p pᵀ. */
function saturation(maps: Tensor[]): { entropy: number; jacobian: number } {
  let entropy = 0;
  let jac = 0;
  let rows = 0;
  for (const a of maps) {
    const [, H, T, S] = a.shape;
    const w = a.toFloat32();
    for (let r = 0; r < H * T; r++) {
      const p = w.subarray(r * S, (r + 1) * S);
      let Hr = 0;
      let sq = 0;
      for (let j = 0; j < S; j++) sq += p[j] * p[j];
      // ‖J‖²_F = Σ_i p_i² ((1 − p_i)² + Σ_{j≠i} p_j²)
      let f = 0;
      for (let i = 0; i < S; i++) {
        if (p[i] > 0) Hr -= p[i] * Math.log(p[i]);
        f += p[i] * p[i] * ((1 - p[i]) ** 2 + sq - p[i] * p[i]);
      }
      entropy += Hr;
      jac += Math.sqrt(f);
      rows++;
    }
  }
  return { entropy: entropy / rows, jacobian: jac / rows };
}

// head h of one layer's weights [1, H, T, T] as rows
function headRows(a: Tensor, h: number): number[][] {
  const [, , T, S] = a.shape;
  const w = a.toFloat32();
  return Array.from({ length: T }, (_, i) => Array.from(w.subarray((h * T + i) * S, (h * T + i + 1) * S)));
}

// the head whose map the change moved most (mean |Δw|), shown before and after
function mapsOf(before: Tensor[], after: Tensor[], labels: [string, string], masks: [MapPanel['mask'], MapPanel['mask']]): ExperimentMaps {
  let [best, layer, head] = [-1, 0, 0];
  before.forEach((a, l) => {
    const [x, y] = [a.toFloat32(), after[l].toFloat32()];
    const [, H, T, S] = a.shape;
    for (let h = 0; h < H; h++) {
      let d = 0;
      for (let i = h * T * S; i < (h + 1) * T * S; i++) d += Math.abs(x[i] - y[i]);
      if (d > best) [best, layer, head] = [d, l, h];
    }
  });
  const panel = (k: number) => ({ label: labels[k], rows: headRows([before, after][k][layer], head), mask: masks[k] });
  return { layer, head, panels: [panel(0), panel(1)] };
}

function needTokens(ids: number[], n: number, what: string): void {
  if (!Array.isArray(ids) || !ids.every((id) => Number.isInteger(id))) {
    throw new QkvError(`${what}: the prompt must be a list of token ids, got ${describeValue(ids)}`);
  }
  if (ids.length < n) throw new QkvError(`${what}: needs a prompt of at least ${n} tokens, got ${ids.length}`);
}

/** 1. No 1/√d: scores grow by √d, the softmax saturates — entropy collapses and its gradient vanishes. */
export function noScaling(model: CausalLM, ids: number[]): ExperimentResult {
  needTokens(ids, 2, 'noScaling');
  const [withScale, without] = [attentions(model, ids), attentions(model, ids, { noScale: true })];
  const [normal, broken] = [saturation(withScale), saturation(without)];
  const maps = mapsOf(withScale, without, ['with 1/√d', 'without 1/√d'], ['causal', 'causal']);
  const last = maps.panels.map((panel) => panel.rows[ids.length - 1]); // the last query's softmax row, before and after
  return {
    maps,
    series: {
      xLabel: `key position (last query's row, layer ${maps.layer} head ${maps.head})`, yLabel: 'softmax weight', x: ids.map((_, j) => j),
      lines: [{ name: 'with 1/√d', y: last[0] }, { name: 'without', y: last[1] }],
    },
    id: 'no-scaling', title: 'Remove the 1/√d scaling',
    lookFor: `Without 1/√d the scores are √${model.info.headDim} ≈ ${Math.sqrt(model.info.headDim).toFixed(1)}× larger: the softmax saturates, attention collapses onto single tokens (lower entropy) and the gradient that flows back through the softmax shrinks (smaller Jacobian norm).`,
    metrics: [
      { label: 'attention entropy, with 1/√d', value: normal.entropy, unit: 'nats' },
      { label: 'attention entropy, without', value: broken.entropy, unit: 'nats' },
      { label: 'softmax Jacobian ‖J‖, with 1/√d', value: normal.jacobian },
      { label: 'softmax Jacobian ‖J‖, without', value: broken.jacobian },
      { label: 'next-token loss, with 1/√d', value: nextTokenLoss(model, ids), unit: 'nats' },
      { label: 'next-token loss, without', value: nextTokenLoss(model, ids, { noScale: true }), unit: 'nats' },
    ],
  };
}

/** 2. No causal mask: every position can see the token it is asked to predict. */
export function noCausalMask(model: CausalLM, ids: number[]): ExperimentResult {
  needTokens(ids, 3, 'noCausalMask');
  // attention mass each position puts on position i+1 — the answer it must predict
  const onAnswer = (maps: Tensor[]) => {
    let mass = 0;
    let n = 0;
    for (const a of maps) {
      const [, H, T, S] = a.shape;
      const w = a.toFloat32();
      for (let h = 0; h < H; h++) for (let i = 0; i + 1 < T; i++) { mass += w[(h * T + i) * S + i + 1]; n++; }
    }
    return mass / n;
  };
  const [masked, open] = [attentions(model, ids), attentions(model, ids, { noCausal: true })];
  return {
    maps: mapsOf(masked, open, ['with the causal mask', 'without: the future is visible'], ['causal', 'none']),
    id: 'no-causal', title: 'Remove the causal mask',
    lookFor: 'With the mask, position i cannot see token i+1, so predicting it is a real task. Without it the answer is in plain sight: attention flows onto the next token and the loss drops although nothing was learned — a model trained this way would just copy, and its next-token loss would say nothing about language modelling.',
    metrics: [
      { label: 'attention on the next token (the answer), with mask', value: 100 * onAnswer(masked), unit: '%' },
      { label: 'attention on the next token, without mask', value: 100 * onAnswer(open), unit: '%' },
      { label: 'next-token loss, with mask', value: nextTokenLoss(model, ids), unit: 'nats' },
      { label: 'next-token loss, without mask (the answer leaks)', value: nextTokenLoss(model, ids, { noCausal: true }), unit: 'nats' },
    ],
  };
}

/** 3. No positions: attention is a set operation; shuffling the input shuffles the output. */
export function noPositions(model: CausalLM, ids: number[], seed = 1): ExperimentResult {
  needTokens(ids, 3, 'noPositions');
  const rng = new Rng(seed);
  const perm = ids.map((_, i) => i);
  for (let i = perm.length - 1; i > 0; i--) { const j = Math.floor(rng.uniform() * (i + 1)); [perm[i], perm[j]] = [perm[j], perm[i]]; }
  const V = model.info.vocabSize;
  // max |logits(shuffled)[t] − logits(original)[perm[t]]|, both without the causal mask (the mask itself encodes order)
  const gap = (ablate: Ablations) => {
    const a = model.forward([ids], { ablate }).logits.toFloat32();
    const b = model.forward([perm.map((p) => ids[p])], { ablate }).logits.toFloat32();
    let m = 0;
    perm.forEach((p, t) => { for (let v = 0; v < V; v++) m = Math.max(m, Math.abs(b[t * V + v] - a[p * V + v])); });
    return m;
  };
  const [rope, none] = [attentions(model, ids, { noCausal: true }), attentions(model, ids, { noCausal: true, noPositions: true })];
  return {
    maps: mapsOf(rope, none, ['with RoPE (no causal mask)', 'no positions: a repeated token repeats its row'], ['none', 'none']),
    id: 'no-positions', title: 'Drop the positional encoding and shuffle the tokens',
    lookFor: 'Without positions (and without the causal mask, which itself reveals order) attention cannot tell where a token is: shuffle the words and every output is just shuffled the same way. With RoPE the outputs change.',
    metrics: [
      { label: 'max |Δlogit| after shuffling, no positions', value: gap({ noPositions: true, noCausal: true }) },
      { label: 'max |Δlogit| after shuffling, with RoPE', value: gap({ noCausal: true }) },
    ],
  };
}

/** 4. Shrink the sliding window: less context, worse predictions. */
export function slidingWindow(model: CausalLM, ids: number[]): ExperimentResult {
  needTokens(ids, 4, 'slidingWindow');
  const windows = [1, 2, 4, 8, 16, 32, 64, 128].filter((w) => w < ids.length);
  const full = nextTokenLoss(model, ids);
  const losses = windows.map((w) => nextTokenLoss(model, ids, { slidingWindow: w }));
  // what this prompt shows, said from the measured losses (a prompt whose next tokens follow from the last few may not
  // get worse with a small window, and the sentence must not claim it does)
  const worst = Math.max(...losses);
  const shown = worst > full + 0.05
    ? `On this prompt a window of ${windows[losses.indexOf(worst)]} costs ${(worst - full).toFixed(2)} nats over full context; ` +
      'the plot shows the loss against the window.'
    : 'On this prompt a small window costs almost nothing: its next tokens follow from the last few. Try a prompt that ' +
      'repeats a phrase from its start (the lab\'s "A fool and his money …" example) to see the window matter.';
  const W = Math.min(4, windows[windows.length - 1]);
  const windowed = attentions(model, ids, { slidingWindow: W });
  const maps = mapsOf(attentions(model, ids), windowed, ['full context', `window ${W}`], ['causal', { window: W }]);
  return {
    maps,
    id: 'window', title: 'Shrink the sliding window',
    lookFor: `Each token may only look back W positions (Mistral caches only W tokens). ${shown}`,
    metrics: [
      { label: 'next-token loss, full context', value: full, unit: 'nats' },
      ...windows.slice(0, 3).map((w, i) => ({ label: `next-token loss, window ${w}`, value: losses[i], unit: 'nats' })),
    ],
    series: { xLabel: 'window (tokens)', yLabel: 'next-token loss (nats)', x: windows, lines: [{ name: 'window', y: losses }, { name: 'full', y: windows.map(() => full) }] },
  };
}

/** 5. Mean-pool key/value heads: GQA → MQA. */
export function poolKvHeads(model: CausalLM, ids: number[]): ExperimentResult {
  needTokens(ids, 2, 'poolKvHeads');
  const { numKvHeads: Hkv, numLayers, headDim } = model.info;
  const V = model.info.vocabSize;
  const base = model.forward([ids]).logits.toFloat32();
  const targets = [...new Set([Hkv, Math.max(1, Hkv / 2), 1])].filter((n) => Hkv % n === 0);
  const rows = targets.map((n) => {
    const l = model.forward([ids], { ablate: { kvHeads: n } }).logits.toFloat32();
    // KL(p_original ‖ p_pooled), mean over positions, and top-1 agreement
    let kl = 0;
    let agree = 0;
    for (let t = 0; t < ids.length; t++) {
      const [p, q] = [logSoftmax(base.subarray(t * V, (t + 1) * V)), logSoftmax(l.subarray(t * V, (t + 1) * V))];
      let argP = 0;
      let argQ = 0;
      for (let v = 0; v < V; v++) {
        kl += Math.exp(p[v]) * (p[v] - q[v]);
        if (p[v] > p[argP]) argP = v;
        if (q[v] > q[argQ]) argQ = v;
      }
      if (argP === argQ) agree++;
    }
    return { n, kvBytes: 2 * numLayers * n * headDim * 2, kl: kl / ids.length, agree: agree / ids.length };
  });
  const pooled = attentions(model, ids, { kvHeads: 1 });
  const maps = mapsOf(attentions(model, ids), pooled, [`${Hkv} kv heads (as trained)`, '1 kv head (pooled)'], ['causal', 'causal']);
  return {
    maps,
    id: 'gqa', title: 'Share key/value heads (GQA → MQA)',
    lookFor: 'Averaging key/value heads shrinks the KV cache by the same factor. The question is what it costs: how far the next-token distribution moves (KL) and how often the top prediction changes.',
    metrics: rows.flatMap((r) => [
      { label: `${r.n} kv head${r.n > 1 ? 's' : ''}: KV cache per token (f16)`, value: r.kvBytes, unit: 'bytes' },
      { label: `${r.n} kv head${r.n > 1 ? 's' : ''}: KL from the original`, value: r.kl, unit: 'nats' },
      { label: `${r.n} kv head${r.n > 1 ? 's' : ''}: same top-1 token`, value: 100 * r.agree, unit: '%' },
    ]),
  };
}

/** 6. Reference vs tiled kernel: bytes each allocates (counted) and time, as the sequence grows. */
export function kernelMemory(headDim = 32, lengths = [64, 128, 256, 512, 1024]): ExperimentResult {
  const rng = new Rng(3);
  const run = (kernel: 'reference' | 'flash', L: number) => {
    const t = () => Tensor.from(Float32Array.from({ length: L * headDim }, () => rng.uniform() - 0.5), [1, 1, L, headDim]);
    const [q, k, v] = [t(), t(), t()];
    const dims = checkQkv(q, k, v);
    const p = problemOf(q, k, v, { causal: true }, dims);
    const counters = (p.counters = { tiles: 0, skipped: 0, scratchBytes: 0 });
    const t0 = performance.now();
    getSdpaKernel(kernel).forward(p, {});
    return { bytes: counters.scratchBytes, ms: performance.now() - t0 };
  };
  const ref = lengths.map((L) => run('reference', L));
  const flash = lengths.map((L) => run('flash', L));
  const last = lengths.length - 1;
  return {
    id: 'kernel-memory', title: 'Swap the tiled kernel for the reference one',
    lookFor: 'The reference kernel builds the whole L×S score matrix: its memory grows with the square of the length. The tiled (FlashAttention-style) kernel keeps one tile and a running max and sum per row: its memory does not grow at all.',
    metrics: [
      { label: `reference kernel scratch at L = ${lengths[last]}`, value: ref[last].bytes, unit: 'bytes' },
      { label: `tiled kernel scratch at L = ${lengths[last]}`, value: flash[last].bytes, unit: 'bytes' },
      { label: `reference / tiled time at L = ${lengths[last]}`, value: ref[last].ms / flash[last].ms, unit: '×' },
    ],
    series: { xLabel: 'sequence length L', yLabel: 'bytes allocated (counted)', x: lengths, lines: [{ name: 'reference', y: ref.map((r) => r.bytes) }, { name: 'tiled', y: flash.map((r) => r.bytes) }] },
  };
}

/**
 * 7. Remove one head (its output zeroed): the loss, the heads of later layers whose maps move most, and how much every
 * head matters on this prompt (the loss without it, head by head: layer × heads forward passes).
 */
export function removeHead(model: CausalLM, ids: number[], layer: number, head: number): ExperimentResult {
  checkModelKind(model, 'causal-lm', 'removeHead');
  needTokens(ids, 2, 'removeHead');
  const { numLayers: L, numHeads: H } = model.info;
  if (!Number.isInteger(layer) || layer < 0 || layer >= L || !Number.isInteger(head) || head < 0 || head >= H) {
    throw new QkvError(`removeHead: layer must be in [0, ${L}) and head in [0, ${H}), got layer ${String(layer)}, head ${String(head)}`);
  }
  const full = nextTokenLoss(model, ids);
  const without = (l: number, h: number) => nextTokenLoss(model, ids, { heads: [{ layer: l, head: h }] });
  const delta = Array.from({ length: L * H }, (_, i) => without(Math.floor(i / H), i % H) - full);
  const top = [...delta.keys()].sort((a, b) => delta[b] - delta[a]).slice(0, 3);
  const [before, after] = [attentions(model, ids), attentions(model, ids, { heads: [{ layer, head }] })];
  const labels: [string, string] = ['with the head', `without layer ${layer} head ${head}`];
  const later = layer + 1 < L ? mapsOf(before.slice(layer + 1), after.slice(layer + 1), labels, ['causal', 'causal']) : undefined;
  if (later) later.layer += layer + 1; // counted from the first later layer
  return {
    id: 'remove-head', title: `Remove layer ${layer}, head ${head}`,
    lookFor: 'The head\'s output is zeroed; every layer after it sees a different residual stream. ' +
      `${later ? `Below: the later head it moves most (layer ${later.layer}, head ${later.head}). ` : ''}` +
      'The plot is the loss increase when each head alone is removed: the heads that matter on this prompt stand out.',
    maps: later,
    metrics: [
      { label: 'next-token loss, all heads', value: full, unit: 'nats' },
      { label: `next-token loss without layer ${layer} head ${head}`, value: full + delta[layer * H + head], unit: 'nats' },
      ...top.map((i) => ({ label: `loss increase without layer ${Math.floor(i / H)} head ${i % H}`, value: delta[i], unit: 'nats' })),
    ],
    series: {
      xLabel: `head (layer × ${H} + head)`, yLabel: 'loss increase without it (nats)', x: delta.map((_, i) => i),
      lines: [{ name: 'Δ loss', y: delta }],
    },
  };
}

/**
 * 8. Activation patching: head (layer, head) attends with the pattern it has on another prompt, over this prompt's
 * values. What moves: the loss and the next-token prediction; the maps show its own pattern and the patched one.
 */
export function patchHead(model: CausalLM, ids: number[], source: number[], layer: number, head: number,
  decode: (id: number) => string = String): ExperimentResult {
  checkModelKind(model, 'causal-lm', 'patchHead');
  needTokens(ids, 2, 'patchHead');
  if (!Number.isInteger(layer) || layer < 0 || layer >= model.info.numLayers) {
    throw new QkvError(`patchHead: layer must be in [0, ${model.info.numLayers}), got ${String(layer)}`);
  }
  needTokens(source, 2, 'patchHead (the source prompt)');
  const w = attentions(model, source)[layer];
  const [, H, S] = w.shape;
  if (!Number.isInteger(head) || head < 0 || head >= H) throw new QkvError(`patchHead: head must be in [0, ${H}), got ${String(head)}`);
  const weights = w.toFloat32().slice(head * S * S, (head + 1) * S * S);
  const patch = { layer, head, weights, size: S };
  const own = attentions(model, ids)[layer];
  const patched = attentions(model, ids, { patch })[layer];
  const V = model.info.vocabSize;
  const top = (ablate?: Ablations) => {
    const l = model.forward([ids], { ablate, lastOnly: true }).logits.toFloat32().subarray(0, V);
    return l.indexOf(Math.max(...l));
  };
  return {
    id: 'patch-head', title: `Patch layer ${layer}, head ${head} from another prompt`,
    lookFor: `The head keeps this prompt's values but attends as it does on the other prompt (first ${Math.min(ids.length, S)} ` +
      'positions). If the loss or the prediction moves, this head\'s pattern carries what the model needs here.',
    maps: { layer, head, panels: [{ label: 'its own pattern', rows: headRows(own, head), mask: 'causal' },
      { label: 'patched from the other prompt', rows: headRows(patched, head), mask: 'causal' }] },
    metrics: [
      { label: 'next-token loss, own pattern', value: nextTokenLoss(model, ids), unit: 'nats' },
      { label: 'next-token loss, patched', value: nextTokenLoss(model, ids, { patch }), unit: 'nats' },
      { label: 'predicted next token, own pattern', value: top(), text: JSON.stringify(decode(top())) },
      { label: 'predicted next token, patched', value: top({ patch }), text: JSON.stringify(decode(top({ patch }))) },
    ],
  };
}

/** Every experiment by id. */
export const EXPERIMENTS: Record<string, (model: CausalLM, ids: Rows[number]) => ExperimentResult> = {
  'no-scaling': noScaling,
  'no-causal': noCausalMask,
  'no-positions': (m, ids) => noPositions(m, ids),
  'window': slidingWindow,
  'gqa': poolKvHeads,
  'kernel-memory': (m) => kernelMemory(m.info.headDim),
};
