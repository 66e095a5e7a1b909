// A BertViz-style head view (Vig 2019): the tokens twice, queries on the left and keys on the right, a line from each
// query to each key it attends to, the weight as the line's opacity — for the selected head, or for every head of its
// layer at once, one colour per head. Hover a query on the left, or hover or focus a token chip (the keyboard's way), to see
// its lines alone.
import { $, el } from '../dom.js';
import { page, whenSelected } from '../page.js';

const ROW = 18;

function hue(h: number, H: number): string { return `hsl(${Math.round((360 * h) / H)} 70% 48%)`; }

function draw(canvas: HTMLCanvasElement, only: number): void {
  const state = page.state!;
  const T = state.tokens.length;
  const all = $<HTMLInputElement>('#head-view-all').checked;
  const heads = all ? [...Array(state.heads).keys()] : [page.selected.head];
  const [left, right] = [120, canvas.width - 120];
  const ctx = canvas.getContext('2d')!;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = '12px ui-monospace, monospace';
  ctx.textBaseline = 'middle';
  ctx.fillStyle = getComputedStyle(canvas).color || '#333';
  state.tokens.forEach((t, i) => {
    const y = ROW * i + ROW / 2 + 4;
    const label = (t.replace(/\n/g, '⏎').trim() || '·').slice(0, 12);
    ctx.globalAlpha = only < 0 || only === i ? 1 : 0.35;
    ctx.textAlign = 'right';
    ctx.fillText(label, left - 8, y);
    ctx.globalAlpha = 1;
    ctx.textAlign = 'left';
    ctx.fillText(label, right + 8, y);
  });
  ctx.lineWidth = 2;
  for (const h of heads) {
    const rows = state.map(page.selected.layer, h);
    ctx.strokeStyle = all ? hue(h, state.heads) : '#4f46e5';
    for (let i = 0; i < T; i++) {
      if (only >= 0 && i !== only) continue;
      for (let j = 0; j <= i; j++) {
        const w = rows[i][j];
        if (w < 0.01) continue; // too faint to see
        ctx.globalAlpha = Math.min(1, w * (all ? 0.8 : 1));
        ctx.beginPath();
        ctx.moveTo(left, ROW * i + ROW / 2 + 4);
        ctx.lineTo(right, ROW * j + ROW / 2 + 4);
        ctx.stroke();
      }
    }
  }
  ctx.globalAlpha = 1;
}

let current: HTMLCanvasElement | null = null;

/** Shows query token i's lines alone (−1: all): the token chips call it on hover and keyboard focus. */
export function showQuery(i: number): void {
  if (current && page.state) draw(current, i);
}

export function renderHeadView(): void {
  const state = page.state;
  if (!state) return;
  const T = state.tokens.length;
  const canvas = el('canvas', { width: 560, height: ROW * T + 8, className: 'head-view' });
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', `Lines from each query token (left) to the keys it attends to (right), layer ${page.selected.layer}`);
  // the query under the pointer: its row of lines alone
  canvas.addEventListener('mousemove', (e) => {
    const r = canvas.getBoundingClientRect();
    const x = ((e.clientX - r.left) / r.width) * canvas.width;
    const i = Math.floor((((e.clientY - r.top) / r.height) * canvas.height - 4) / ROW);
    draw(canvas, x < canvas.width / 2 && i >= 0 && i < T ? i : -1);
  });
  canvas.addEventListener('mouseleave', () => draw(canvas, -1));
  const all = $<HTMLInputElement>('#head-view-all').checked;
  const legend = all ? el('p', { className: 'legend-row' }, ...[...Array(state.heads).keys()].flatMap((h) => [
    el('span', { className: 'swatch', style: `background: ${hue(h, state.heads)}` }), ` H${h} `])) : el('p');
  $('#head-view').replaceChildren(canvas, legend);
  current = canvas;
  draw(canvas, -1);
}

whenSelected(renderHeadView);
