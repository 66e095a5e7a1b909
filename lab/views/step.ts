// One head, step by step, for one query token: q, every key, q·k, × scale, the mask, softmax as bars, and o = Σ p v —
// the numbers the kernels compute, from the q, k and v the model used (forward's outputQkv), with a link to the loop.
import { $, el } from '../dom.js';
import { headScores, softmax } from '../attend.js';
import { strip } from '../draw.js';
import { page, whenSelected } from '../page.js';

// the loop this view mirrors, in qkv's source as the server shows it (the line marked)
const SOURCE = `/source/src/kernels/cpu/sdpa-naive.ts?find=${encodeURIComponent('1. scores and softmax')}#match`;

export function renderStep(): void {
  const box = $('#step');
  const state = page.state;
  if (!state?.qkv) {
    const why = 'This view needs the model in the page (the server sends the maps only).';
    box.replaceChildren(el('p', { className: 'hint', textContent: why }));
    return;
  }
  const T = state.tokens.length;
  const sel = $<HTMLSelectElement>('#step-query');
  if (sel.options.length !== T) {
    sel.replaceChildren(...state.tokens.map((t, i) => el('option', { value: String(i), textContent: `${i}: ${JSON.stringify(t)}` })));
    sel.value = String(T - 1);
  }
  const i = Math.min(T - 1, +sel.value);
  const { layer: l, head: h } = page.selected;
  const { q, k, v, scale, x } = state.qkv[l];
  const [, Hq, , D] = q.shape;
  const Hkv = k.shape[1];
  const kvh = Math.floor(h / (Hq / Hkv));
  const [qa, ka, va] = [q.toFloat32(), k.toFloat32(), v.toFloat32()];
  const row = (a: Float32Array, head: number, j: number) => a.subarray((head * T + j) * D, (head * T + j + 1) * D);
  const qi = row(qa, h, i);
  // s_j = scale · q_i · k_j for the keys the causal mask allows (j ≤ i); p = softmax(s); o = Σ_j p_j v_j
  const s = headScores(state.qkv[l], h, i, (j) => j > i, ka);
  const p = softmax(s);
  const o = new Float32Array(D);
  for (let j = 0; j <= i; j++) row(va, kvh, j).forEach((x, d) => { o[d] += p[j] * x; });
  const mapRow = state.map(l, h)[i];
  const diff = Math.max(...p.map((x, j) => Math.abs(x - mapRow[j])));
  const num = (x: string) => el('td', { className: 'num', textContent: x });
  box.replaceChildren(
    el('p', { textContent: `Layer ${l}, head ${h}${Hkv < Hq ? ` (reads kv head ${kvh}, shared by ${Hq / Hkv} query heads)` : ''} · ` +
      `head_dim d = ${D} · ` +
      `scale = ${scale.toFixed(4)} (1/√d = ${(1 / Math.sqrt(D)).toFixed(4)})` }),
    ...(x ? [el('div', { className: 'step-q' }, el('span', { textContent: `x of “${state.tokens[i]}” (${x.shape[2]} dims)` }),
      strip(x.toFloat32().subarray(i * x.shape[2], (i + 1) * x.shape[2]), 'the layer input after its norm')),
    el('p', { className: 'hint', textContent: `q = x W_q (this head's ${D} of ${Hq * D} outputs), then RoPE at position ${i}; ` +
      `every k_j = x_j W_k and v_j = x_j W_v (kv head ${kvh}).` })] : []),
    el('div', { className: 'step-q' }, el('span', { textContent: `q of “${state.tokens[i]}”` }), strip(qi, 'q (blue < 0 < red)')),
    el('div', { className: 'scroll' }, el('table', { className: 'table step' },
      el('tr', {}, ...['key token', 'k_j', 'q ⊙ k_j', 'q·k_j', '× scale', 'softmax p_j', '', 'v_j']
        .map((t) => el('th', { textContent: t }))),
      ...state.tokens.map((t, j) => {
        const masked = j > i;
        const kj = row(ka, kvh, j);
        // BertViz's neuron view: q ⊙ k_j element by element — its sum is q·k_j; which dimensions carry the score
        const prod = kj.map((x, d) => x * qi[d]);
        return el('tr', { className: masked ? 'masked' : '' }, el('td', { textContent: JSON.stringify(t) }),
          el('td', {}, strip(kj, `k_${j}`)), el('td', {}, strip(prod, `q ⊙ k_${j} (red: pushes the score up)`)),
          num(masked ? 'masked' : (s[j] / scale).toFixed(3)), num(masked ? '−∞' : s[j].toFixed(3)),
          el('td', {}, el('div', { className: 'bar', style: `width: ${(100 * p[j]).toFixed(1)}%` })),
          num(masked ? '0' : `${(100 * p[j]).toFixed(1)}%`), el('td', {}, strip(row(va, kvh, j), `v_${j}`)));
      }))),
    el('div', { className: 'step-q' }, el('span', { textContent: 'o = Σ p_j v_j' }), strip(o, 'the head output for this token')),
    el('p', { className: 'hint' }, 'q ⊙ k_j shows which dimensions make the score (red cells push it up, blue down; ' +
      'they sum to q·k_j). ' +
      's_j = q·k_j × scale; keys after the query are masked (−∞, so p_j = 0); p = softmax(s); ' +
      'o = Σ_j p_j v_j — ',
      el('a', { href: SOURCE, textContent: 'the loop of src/kernels/cpu/sdpa-naive.ts' }),
      `. These p_j match the attention map's row (max |Δ| = ${diff.toExponential(1)}).`),
  );
  box.dataset.maxDiff = String(diff);
}

whenSelected(renderStep);
