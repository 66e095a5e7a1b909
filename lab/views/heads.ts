// Heads: the prompt's tokens (hover one to see what it attends to), the grid of every layer × head map with GQA groups
// marked, and the enlarged map of the selected head — sharp, labelled on both axes, with a legend, beside its metrics.
import { $, el, fmt } from '../dom.js';
import { drawBigMap, drawMap } from '../draw.js';
import { backend, page, selectHead, whenSelected } from '../page.js';
import { showQuery } from './head-view.js';

/** The token chips; hovering or focusing one lights up what it attends to. */
export function renderTokens(): void {
  const state = page.state!;
  $('#tokens').replaceChildren(...state.tokens.map((t, i) => {
    const chip = el('span', { className: 'tok', tabIndex: 0, textContent: t.replace(/\n/g, '⏎') || '·', title: `token ${i}` });
    const on = () => hoverToken(i);
    chip.addEventListener('mouseenter', on);
    chip.addEventListener('focus', on);
    chip.addEventListener('mouseleave', () => hoverToken(-1));
    chip.addEventListener('blur', () => hoverToken(-1));
    return chip;
  }));
}

function hoverToken(i: number): void {
  const state = page.state!;
  const rows = state.map(page.selected.layer, page.selected.head);
  drawBigMap($<HTMLCanvasElement>('#big'), rows, state.tokens, i);
  showQuery(i);
  document.querySelectorAll<HTMLElement>('.tok').forEach((c, j) => {
    c.classList.toggle('src', j === i);
    const p = i >= 0 && j !== i ? rows[i][j] : 0;
    c.style.background = p > 0 ? `rgba(245, 158, 11, ${Math.min(0.9, Math.sqrt(p))})` : '';
  });
  const info = document.querySelector('#hover-info');
  if (!info) return;
  if (i < 0) {
    info.textContent = 'Hover or focus a token above: it lights up the tokens it attends to (orange) and its row and column here.';
    return;
  }
  const top = (vals: ArrayLike<number>) => [...Array(vals.length).keys()].sort((a, b) => vals[b] - vals[a]).slice(0, 3)
    .map((j) => `“${state.tokens[j]}” ${(100 * vals[j]).toFixed(0)}%`).join(', ');
  info.textContent = `“${state.tokens[i]}” attends to ${top(rows[i])}; it is attended by ${top(rows.map((r) => r[i]))}.`;
}

/** Every layer × head as a small map; heads that share a kv head (GQA) share a colour bar. */
export function renderGrid(): void {
  const state = page.state!;
  const grid = $('#grid');
  grid.style.setProperty('--heads', String(state.heads));
  // GQA: query head h reads kv head ⌊h / G⌋, G = Hq / Hkv
  const Hkv = backend().info.numKvHeads || state.heads;
  const G = state.heads / Hkv;
  $('#gqa-note').textContent = G > 1
    ? `GQA: ${state.heads} query heads read ${Hkv} key/value heads — the ${G} heads under one colour bar share their keys and values.`
    : `MHA: each of the ${state.heads} heads has its own keys and values.`;
  const cells: HTMLElement[] = [];
  for (let l = 0; l < state.layers; l++) for (let h = 0; h < state.heads; h++) {
    const m = state.metrics.find((x) => x.layer === l && x.head === h)!;
    const kv = Math.floor(h / G);
    const canvas = el('canvas', { width: state.tokens.length, height: state.tokens.length });
    drawMap(canvas, state.map(l, h));
    const label = `L${l} H${h}${G > 1 ? ` · kv${kv}` : ''} · ${m.pattern}`;
    const title = `layer ${l}, head ${h}: ${m.pattern}`;
    const cell = el('button', { className: 'cell heatmap', type: 'button', title }, canvas, el('span', { textContent: label }));
    if (G > 1) cell.style.borderTop = `4px solid hsl(${Math.round((360 * kv) / Hkv)} 65% 50%)`;
    cell.setAttribute('role', 'listitem');
    cell.setAttribute('aria-label', `layer ${l} head ${h}${G > 1 ? `, kv head ${kv}` : ''}, ${m.pattern}; enlarge`);
    cell.dataset.layer = String(l);
    cell.dataset.head = String(h);
    cell.addEventListener('click', () => selectHead(l, h));
    cells.push(cell);
  }
  grid.replaceChildren(...cells);
}

// the enlarged map and the metrics of the selected head
function renderDetail(): void {
  const state = page.state;
  if (!state) return;
  const { layer: l, head: h } = page.selected;
  for (const c of document.querySelectorAll<HTMLElement>('.cell')) {
    c.classList.toggle('selected', +c.dataset.layer! === l && +c.dataset.head! === h);
  }
  const m = state.metrics.find((x) => x.layer === l && x.head === h)!;
  $('#detail').hidden = false;
  const row = (k: string, v: string) => el('tr', {}, el('td', { textContent: k }), el('td', { className: 'num', textContent: v }));
  $('#detail-info').replaceChildren(
    el('h3', { textContent: `Layer ${l}, head ${h}: ${m.pattern}` }),
    el('table', { className: 'table' },
      row('entropy (nats)', fmt(m.entropy)), row('sparsity (0 = uniform, 1 = one key)', fmt(m.sparsity)),
      row('mean distance (tokens)', fmt(m.distance)), row('pattern strength', fmt(m.strength)),
      row('most attended', m.topTokens.map((t) => `“${t.token}”`).join(' '))),
    el('p', { id: 'hover-info', className: 'hint' }),
    el('p', { className: 'hint', textContent: 'Rows are queries (each token, down the left), columns the keys it may look at '
      + '(along the top); '
      + 'the causal mask hides the upper triangle (hatched grey). Colour: viridis on √weight — dark purple is 0, yellow is 1.' }),
  );
  hoverToken(-1);
}

whenSelected(renderDetail);
