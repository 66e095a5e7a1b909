// FlashAttention (Dao et al. 2022): the L×S score matrix is never built. The kernel walks it in tiles of Br queries ×
// Bc keys, skips the tiles a causal or sliding-window mask hides entirely, and keeps per query row only a running max m
// and sum l of the online softmax. Here: the tile walk over this prompt's matrix, and one row's m and l tile by tile,
// from the selected head's real scores — ending at the same log-sum-exp as the whole row at once.
import { $, el, fmt, numberIn } from '../dom.js';
import { headScores } from '../attend.js';
import { page, whenSelected } from '../page.js';

type Tile = 'computed' | 'partial' | 'skipped';

// what the mask leaves of tile (bi, bj): causal keys j ≤ i, window keys j > i − W
function tileKind(bi: number, bj: number, Br: number, Bc: number, T: number, causal: boolean, W: number): Tile {
  const [i0, i1] = [bi * Br, Math.min(T, (bi + 1) * Br) - 1];
  const [j0, j1] = [bj * Bc, Math.min(T, (bj + 1) * Bc) - 1];
  const allowed = (i: number, j: number) => (!causal || j <= i) && (W <= 0 || j > i - W);
  let any = false, all = true;
  for (let i = i0; i <= i1; i++) for (let j = j0; j <= j1; j++) { const a = allowed(i, j); any ||= a; all &&= a; }
  return !any ? 'skipped' : all ? 'computed' : 'partial';
}

/** The tiles over the T×T matrix, the chosen row's band outlined. */
function walk(T: number, Br: number, Bc: number, causal: boolean, W: number, row: number):
  { canvas: HTMLCanvasElement; counts: Record<Tile, number> } {
  const cell = Math.max(4, Math.min(16, Math.floor(420 / T)));
  const canvas = el('canvas', { width: T * cell + 2, height: T * cell + 2, className: 'tile-walk' });
  canvas.setAttribute('role', 'img');
  const ctx = canvas.getContext('2d')!;
  const fill: Record<Tile, string> = { computed: '#059669', partial: '#f59e0b', skipped: '#d4d4d8' };
  const counts: Record<Tile, number> = { computed: 0, partial: 0, skipped: 0 };
  const [nr, nc] = [Math.ceil(T / Br), Math.ceil(T / Bc)];
  for (let bi = 0; bi < nr; bi++) for (let bj = 0; bj < nc; bj++) {
    const kind = tileKind(bi, bj, Br, Bc, T, causal, W);
    counts[kind]++;
    ctx.fillStyle = fill[kind];
    ctx.fillRect(1 + bj * Bc * cell, 1 + bi * Br * cell, Math.min(Bc, T - bj * Bc) * cell, Math.min(Br, T - bi * Br) * cell);
    ctx.strokeStyle = '#fff';
    ctx.strokeRect(1 + bj * Bc * cell, 1 + bi * Br * cell, Math.min(Bc, T - bj * Bc) * cell, Math.min(Br, T - bi * Br) * cell);
  }
  ctx.strokeStyle = '#4f46e5';
  ctx.lineWidth = 2;
  ctx.strokeRect(1, 1 + row * cell, T * cell, cell);
  canvas.setAttribute('aria-label', `${counts.computed} tiles computed, ${counts.partial} partly masked, ${counts.skipped} skipped`);
  return { canvas, counts };
}

/** One query row through the online softmax, tile by tile: m' = max(m, max s), l' = l·e^(m − m') + Σ e^(s − m'). */
function onlineRow(Bc: number, causal: boolean, W: number, i: number): HTMLElement | null {
  const qkv = page.state?.qkv?.[page.selected.layer];
  if (!qkv) return null;
  const T = qkv.q.shape[2];
  const h = page.selected.head;
  const s = headScores(qkv, h, i, (j) => (causal && j > i) || (W > 0 && j <= i - W));
  let m = -Infinity, l = 0;
  const rows: HTMLElement[] = [];
  for (let j0 = 0; j0 < T; j0 += Bc) {
    const tile = s.slice(j0, j0 + Bc);
    const mt = Math.max(...tile);
    const keys = `${j0}–${j0 + tile.length - 1}`;
    if (mt === -Infinity) {
      rows.push(el('tr', { className: 'masked' }, ...[keys, 'skipped', '', '', ''].map((t) => el('td', { textContent: t }))));
      continue;
    }
    const mNew = Math.max(m, mt);
    const alpha = Math.exp(m - mNew); // rescales what was summed under the old max (0 before the first tile)
    l = l * alpha + tile.reduce((acc, x) => acc + Math.exp(x - mNew), 0);
    m = mNew;
    const cells = [keys, fmt(mt), fmt(m), alpha === 1 ? '—' : `×${fmt(alpha)}`, fmt(l)];
    rows.push(el('tr', {}, ...cells.map((t, c) => el('td', { className: c ? 'num' : '', textContent: t }))));
  }
  const direct = Math.log(s.reduce((acc, x) => acc + Math.exp(x - m), 0)) + m; // log Σ e^s over the whole row at once
  const lse = m + Math.log(l);
  return el('div', {},
    el('table', { className: 'table', id: 'flash-row' }, el('tr', {}, ...['keys', 'tile max', 'running m', 'old sum rescaled', 'running l']
      .map((t) => el('th', { textContent: t }))), ...rows),
    el('p', { className: 'measured', textContent: `Row ${i} (“${page.state!.tokens[i]}”), layer ${page.selected.layer} head ${h}: ` +
      `lse = m + log l = ${lse.toFixed(6)}; the whole row at once: ${direct.toFixed(6)}. Only m and l (two numbers per row) were kept.` }));
}

export function renderFlash(): void {
  const state = page.state;
  if (!state) return;
  const T = state.tokens.length;
  const tile = Math.max(1, numberIn('#flash-tile', 4));
  const causal = $<HTMLInputElement>('#flash-causal').checked;
  const W = Math.max(0, numberIn('#flash-window', 0));
  const chosen = Number($<HTMLSelectElement>('#step-query').value); // the query token of the step-by-step view
  const row = Number.isInteger(chosen) && chosen >= 0 && chosen < T ? chosen : T - 1;
  const { canvas, counts } = walk(T, tile, tile, causal, W, row);
  const total = counts.computed + counts.partial + counts.skipped;
  const bytes = (n: number) => `${fmt(n)} floats`;
  $('#flash-views').replaceChildren(
    el('div', { className: 'flash-grid' }, canvas, el('div', {},
      el('p', { className: 'legend-row' }, el('span', { className: 'swatch computed' }), ' computed  ',
        el('span', { className: 'swatch partial' }), ' partly masked  ', el('span', { className: 'swatch skipped' }), ' skipped'),
      el('p', { className: 'measured', textContent: `${T}×${T} scores in ${total} tiles of ${tile}×${tile}: ` +
        `${counts.computed + counts.partial} computed, ` +
        `${counts.skipped} skipped (${fmt((100 * counts.skipped) / total)}% of the work never done).` }),
      el('p', { className: 'hint', textContent: `Memory: materialised, the matrix is ${bytes(T * T)} per head; ` +
        `tiled, one ${tile}×${tile} tile ` +
        `(${bytes(tile * tile)}) plus m and l for ${T} rows — the plot in the calculators below shows it as the length grows.` }))),
    onlineRow(tile, causal, W, row) ?? el('p', { className: 'hint', textContent: 'The online-softmax table needs the model in the page.' }),
  );
}

whenSelected(renderFlash);
