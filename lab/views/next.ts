// Next token: the most likely continuations of the prompt, reshaped by temperature, top-k and top-p, and one sampled.
import { $, el, numberIn } from '../dom.js';
import type { NextLogits } from '../backend.js';
import { backend } from '../page.js';

let next: NextLogits | null = null;

interface Row { id: number; p: number; kept: boolean; q: number }

// p_i = softmax(l_i / T), then the top-k and top-p cuts (what is kept renormalised to q), most likely first
function sampling(n: NextLogits): Row[] {
  const T = numberIn('#temperature', 1), k = numberIn('#top-k', 0), topP = numberIn('#top-p', 1) || 1;
  const l = n.logits;
  const order = [...l.keys()].sort((a, b) => l[b] - l[a]);
  const m = l[order[0]];
  const e = order.map((i) => Math.exp((l[i] - m) / T));
  const sum = e.reduce((a, b) => a + b, 0);
  const p = e.map((x) => x / sum);
  let kept = k > 0 ? Math.min(k, p.length) : p.length;
  let mass = 0, count = 0;
  while (count < kept && mass < topP) mass += p[count++];
  kept = Math.max(1, count);
  const keptSum = p.slice(0, kept).reduce((a, b) => a + b, 0);
  return order.map((id, r) => ({ id, p: p[r], kept: r < kept, q: r < kept ? p[r] / keptSum : 0 }));
}

/** The 12 most likely tokens as bars; cut ones greyed; `picked` marked. */
export function renderNext(picked = -1): void {
  if (!next) return;
  const n = next;
  $('#temperature-value').textContent = numberIn('#temperature', 1).toFixed(2);
  $('#next-bars').replaceChildren(...sampling(n).slice(0, 12).flatMap((r) => {
    const cls = `${r.kept ? '' : 'out'} ${r.id === picked ? 'picked' : ''}`;
    const label = el('span', { className: `label ${cls}`, textContent: JSON.stringify(n.text(r.id)) });
    label.setAttribute('role', 'listitem');
    return [label, el('span', { className: cls }, el('div', { className: 'bar', style: `width: ${(100 * r.p).toFixed(1)}%` })),
      el('span', { className: `num ${cls}`, textContent: r.kept ? `${(100 * r.q).toFixed(1)}%` : 'cut' })];
  }));
}

/** The next-token distribution of `prompt`. */
export async function updateNext(prompt: string): Promise<void> {
  try {
    next = await backend().nextLogits(prompt);
    $('#sampled').textContent = next.partial ? 'the server gives the five most likely tokens only' : '';
    renderNext();
  } catch (e) {
    $('#sampled').textContent = `error: ${(e as Error).message}`;
  }
}

/** Draws one token from what the cuts keep. */
export function sampleOne(): void {
  if (!next) return;
  const n = next;
  const rows = sampling(n).filter((r) => r.kept);
  let u = Math.random();
  const pick = rows.find((r) => (u -= r.q) <= 0) ?? rows[rows.length - 1];
  $('#sampled').textContent = `sampled ${JSON.stringify(n.text(pick.id))} (p = ${(100 * pick.q).toFixed(1)}% after the cuts)`;
  renderNext(pick.id);
}
