// Interview mode: the questions people are asked about attention, each answered in a few sentences with the number
// measured on this model and prompt filled in, and a link to the view or experiment that shows it.
import { humanBytes, kvCacheBytes, KV_PRESETS, type ExperimentResult } from '/qkv/index.js';
import { $, el, fmt } from '../dom.js';
import { backend, page } from '../page.js';

interface Answer { q: string; a: string; see: [string, string] }

const value = (r: ExperimentResult, i: number) => r.metrics[i]?.value ?? NaN;

// the experiments whose numbers the answers quote, run once per prompt
async function measure(prompt: string): Promise<Record<string, ExperimentResult>> {
  const out: Record<string, ExperimentResult> = {};
  for (const id of ['no-scaling', 'no-causal', 'no-positions', 'gqa']) out[id] = await backend().experiment(id, prompt);
  return out;
}

function answers(x: Record<string, ExperimentResult>): Answer[] {
  const info = backend().info;
  const state = page.state!;
  const d = info.headDim, G = info.numHeads / info.numKvHeads;
  const perToken = kvCacheBytes({ layers: info.numLayers, kvHeads: info.numKvHeads, headDim: d }, 2, 1);
  const llama = kvCacheBytes(KV_PRESETS['llama-2-7b'], 2, 4096, 32);
  const patterns = new Map<string, number>();
  for (const m of state.metrics) patterns.set(m.pattern, (patterns.get(m.pattern) ?? 0) + 1);
  const heads = [...patterns].sort((a, b) => b[1] - a[1]).map(([p, n]) => `${n} ${p}`).join(', ');
  const [s, c, p, g] = [x['no-scaling'], x['no-causal'], x['no-positions'], x['gqa']];
  return [
    { q: 'Why divide the scores by √d?', see: ['#experiments', 'Break it: remove the 1/√d scaling'],
      a: `q·k is a sum of d products, so its spread grows like √d; unscaled, the softmax saturates onto one key and its gradient ` +
        `vanishes. On this model (d = ${d}) removing 1/√d drops the mean attention entropy from ${fmt(value(s, 0))} to ` +
        `${fmt(value(s, 1))} nats and the softmax Jacobian norm from ${fmt(value(s, 2))} to ${fmt(value(s, 3))}.` },
    { q: 'What does the KV cache store, and how big is it?', see: ['#kv-cache', 'The KV cache'],
      a: `The keys and values of every earlier token, per layer and kv head, so each new token computes only its own. ` +
        `Bytes = 2 × layers × kv heads × head_dim × bytes × tokens × batch: ${humanBytes(perToken)} per token here in f16. ` +
        `Llama-2-7B at 4K tokens × batch 32 in f16 is ${humanBytes(llama)} — not “about 2 GB”.` },
    { q: 'MQA vs GQA?', see: ['#experiments', 'Break it: share key/value heads'],
      a: `Multi-query attention gives all query heads one key/value head; grouped-query attention gives each group of G its own ` +
        `(here ${info.numHeads} query heads share ${info.numKvHeads}: G = ${G}). The cache shrinks by Hq/Hkv = ${G}×, not by the number ` +
        'of heads. Pooling this model\'s kv heads down to one moves its next-token distribution by ' +
        `KL = ${fmt(value(g, g.metrics.length - 2))} ` +
        `nats and keeps the top token ${fmt(value(g, g.metrics.length - 1))}% of the time.` },
    { q: 'What does FlashAttention change?', see: ['#flash', 'FlashAttention'],
      a: 'Not the result: the same softmax(QKᵀ/√d)V to rounding. It never builds the L×S matrix — it walks it in tiles with an ' +
        'online softmax (a running max and sum per row), so memory is O(L) instead of O(L²), reads of HBM drop, and tiles a causal ' +
        'mask hides are skipped (about half of them).' },
    { q: 'Why does attention need positions?', see: ['#positions', 'Positions'],
      a: `Attention is a weighted average over a set: without positions, shuffling the tokens just shuffles the outputs. Measured ` +
        `here (causal mask off, since it leaks order): max |Δlogit| after a shuffle is ${fmt(value(p, 0))} without positions and ` +
        `${fmt(value(p, 1))} with RoPE.` },
    { q: 'What is causal masking?', see: ['#experiments', 'Break it: remove the causal mask'],
      a: `Each position may only attend to itself and earlier ones, so predicting the next token is a real task. Remove the mask ` +
        `and attention flows onto the answer: ${fmt(value(c, 0))}% → ${fmt(value(c, 1))}% of it on the next token here, and the loss ` +
        `drops from ${fmt(value(c, 2))} to ${fmt(value(c, 3))} nats without anything being learned.` },
    { q: 'Bahdanau vs Luong attention?', see: ['#step', 'One head, step by step'],
      a: 'Both score a decoder state against encoder states. Bahdanau (additive) scores with a small network, vᵀ tanh(W₁q + W₂k); ' +
        'Luong (multiplicative) with a product, qᵀk (“dot”) or qᵀWk (“general”). ' +
        'The Transformer\'s scaled dot product is Luong\'s ' +
        `dot score divided by √d — the score the step-by-step view computes (× ${fmt(1 / Math.sqrt(d))} here).` },
    { q: 'What does a head learn?', see: ['#maps-title', 'Attention maps'],
      a: `Patterns you can read off the maps: previous token, first token (an attention sink), delimiters, copying. On this prompt ` +
        `the ${state.metrics.length} heads are: ${heads}.` },
  ];
}

export async function renderInterview(): Promise<void> {
  const box = $('#interview-list');
  const prompt = $<HTMLTextAreaElement>('#prompt').value;
  if (!page.state || !prompt.trim()) return;
  box.replaceChildren(el('p', { className: 'hint', textContent: 'measuring on this model and prompt…' }));
  try {
    const list = answers(await measure(prompt));
    box.replaceChildren(...list.map(({ q, a, see }) => el('details', { className: 'qa' }, el('summary', { textContent: q }),
      el('p', { textContent: a }), el('p', {}, 'See it: ', el('a', { href: see[0], textContent: see[1] })))));
  } catch (e) {
    box.replaceChildren(el('p', { className: 'hint', textContent: `error: ${(e as Error).message}` }));
  }
}
