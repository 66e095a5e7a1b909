// Pictures the views share: the attention heatmap (one pixel per token pair in the grid; a labelled, sharp enlargement
// with a colour legend), a vector as a strip of coloured cells, and small SVG line plots with ticks and units.
import { humanBytes } from '/qkv/index.js';
import { fmt } from './dom.js';

/** Rows of attention weights: row i is query i's weights over keys 0 … T − 1. */
export type Rows = ArrayLike<number>[];

// viridis, sampled: readable on light and dark backgrounds
const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

/** The colour of weight p (0 … 1), on √p so that small weights stay visible. */
export function color(p: number): [number, number, number] {
  const x = Math.min(1, Math.sqrt(Math.max(0, p))) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  return STOPS[i].map((c, k) => Math.round(c + f * (STOPS[i + 1][k] - c))) as [number, number, number];
}

// masked cells (a key after its query: the causal mask) as a grey checker, so they never read as a weight of zero
const MASKED = [[150, 150, 150], [190, 190, 190]];

/** Whether cell (i, j) is masked: the causal mask by default, or what `masked` says. */
export type MaskFn = (i: number, j: number) => boolean;
const causal: MaskFn = (i, j) => j > i;

/** The map on `canvas`, one pixel per token pair (CSS scales it up, pixelated); `highlight` dims all but a row and column. */
export function drawMap(canvas: HTMLCanvasElement, rows: Rows, highlight = -1, masked: MaskFn = causal): void {
  const T = rows.length;
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(T, T);
  for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) {
    const [r, g, b] = masked(i, j) ? MASKED[(i + j) % 2] : color(rows[i][j]);
    const o = (i * T + j) * 4;
    const dim = highlight >= 0 && i !== highlight && j !== highlight ? 0.35 : 1;
    img.data[o] = r * dim; img.data[o + 1] = g * dim; img.data[o + 2] = b * dim; img.data[o + 3] = 255;
  }
  if (canvas.width !== T) { canvas.width = T; canvas.height = T; }
  ctx.putImageData(img, 0, 0);
}

/**
 * The enlarged map: one square per token pair at `cell` px, query tokens down the left, key tokens along the top
 * (rotated), masked cells hatched, a highlighted row and column outlined, and a colour legend under it.
 */
export function drawBigMap(canvas: HTMLCanvasElement, rows: Rows, tokens: readonly string[], highlight = -1, masked: MaskFn = causal,
  size = 520): void {
  const T = rows.length;
  const cell = Math.max(4, Math.min(28, Math.floor(size / Math.max(1, T))));
  const label = (t: string) => (t.replace(/\n/g, '⏎').trim() || '·').slice(0, 10);
  const ctx = canvas.getContext('2d')!;
  ctx.font = `${Math.min(12, cell)}px system-ui, sans-serif`;
  const margin = Math.ceil(Math.max(...tokens.map((t) => ctx.measureText(label(t)).width), 10)) + 8;
  const legendWidth = Math.min(260, T * cell);
  const [w, h] = [Math.max(margin + T * cell + 8, margin + legendWidth + 130), margin + T * cell + 44];
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  const ink = getComputedStyle(canvas).color || '#333';
  ctx.clearRect(0, 0, w, h);
  ctx.font = `${Math.min(12, cell)}px system-ui, sans-serif`;
  ctx.fillStyle = ink;
  ctx.textBaseline = 'middle';
  const show = cell >= 9; // labels only where they can be read
  for (let i = 0; i < T && show; i++) {
    ctx.textAlign = 'right';
    ctx.fillText(label(tokens[i]), margin - 4, margin + i * cell + cell / 2); // queries, down the left
    ctx.save();
    ctx.translate(margin + i * cell + cell / 2, margin - 4);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = 'left';
    ctx.fillText(label(tokens[i]), 0, 0); // keys, along the top
    ctx.restore();
  }
  for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) {
    const [x, y] = [margin + j * cell, margin + i * cell];
    if (masked(i, j)) {
      ctx.fillStyle = 'rgb(190,190,190)';
      ctx.fillRect(x, y, cell, cell);
      ctx.strokeStyle = 'rgb(140,140,140)'; // hatched: masked, not a weight of zero
      ctx.beginPath(); ctx.moveTo(x, y + cell); ctx.lineTo(x + cell, y); ctx.stroke();
      continue;
    }
    const [r, g, b] = color(rows[i][j]);
    const dim = highlight >= 0 && i !== highlight && j !== highlight ? 0.35 : 1;
    ctx.fillStyle = `rgb(${r * dim},${g * dim},${b * dim})`;
    ctx.fillRect(x, y, cell, cell);
  }
  if (highlight >= 0) {
    ctx.strokeStyle = '#f59e0b';
    ctx.lineWidth = 2;
    ctx.strokeRect(margin, margin + highlight * cell, T * cell, cell);
    ctx.strokeRect(margin + highlight * cell, margin, cell, T * cell);
    ctx.lineWidth = 1;
  }
  legend(ctx, margin, margin + T * cell + 12, legendWidth, ink);
}

// the colour scale, 0 … 1 with ticks (the colour is on √p), and the masked swatch
function legend(ctx: CanvasRenderingContext2D, x: number, y: number, width: number, ink: string): void {
  for (let k = 0; k < width; k++) {
    const [r, g, b] = color((k / (width - 1)) ** 2); // evenly in colour, so the ticks below are p
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fillRect(x + k, y, 1, 10);
  }
  ctx.fillStyle = ink;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  ctx.font = '11px system-ui, sans-serif';
  for (const p of [0, 0.01, 0.1, 0.25, 0.5, 1]) ctx.fillText(String(p), x + Math.sqrt(p) * (width - 1), y + 12);
  ctx.textAlign = 'left';
  ctx.fillText('weight', x + width + 8, y);
  ctx.fillStyle = 'rgb(190,190,190)';
  ctx.fillRect(x + width + 60, y, 10, 10);
  ctx.fillStyle = ink;
  ctx.fillText('masked', x + width + 74, y);
}

// blue (−1) … white (0) … red (+1)
function signed(t: number): [number, number, number] {
  return t >= 0 ? [255, 255 * (1 - t), 255 * (1 - t)] : [255 * (1 + t), 255 * (1 + t), 255];
}

/** A [rows, cols] table of values as cells, blue (negative) to red (positive), scaled by its largest |value|. */
export function drawSigned(canvas: HTMLCanvasElement, values: ArrayLike<number>, rows: number, cols: number): void {
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(cols, rows);
  let top = 1e-9;
  for (let i = 0; i < values.length; i++) top = Math.max(top, Math.abs(values[i]));
  for (let i = 0; i < rows * cols; i++) img.data.set([...signed(values[i] / top), 255], 4 * i);
  if (canvas.width !== cols || canvas.height !== rows) { canvas.width = cols; canvas.height = rows; }
  ctx.putImageData(img, 0, 0);
}

/** A vector as a strip of cells, blue (negative) to red (positive), scaled by its largest |value|. */
export function strip(values: ArrayLike<number>, title: string): HTMLCanvasElement {
  const c = document.createElement('canvas');
  Object.assign(c, { width: values.length, height: 1, className: 'strip', title });
  const ctx = c.getContext('2d')!;
  const img = ctx.createImageData(values.length, 1);
  const top = Math.max(1e-9, ...Array.from(values, Math.abs));
  Array.from(values).forEach((x, d) => img.data.set([...signed(x / top), 255], 4 * d));
  ctx.putImageData(img, 0, 0);
  return c;
}

/** An SVG element with attributes (and text). */
export function svgEl(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** A line plot's data: x values, one or more named lines. */
export interface Series { xLabel: string; yLabel: string; x: number[]; lines: { name: string; y: number[] }[] }

/** A small SVG line plot with ticks; log-scale axes where the values span decades; bytes as KiB/MiB/GiB. */
export function plot(s: Series, w = 340, h = 180): SVGSVGElement {
  const ys = s.lines.flatMap((l) => l.y).filter((y) => y > 0);
  const log = ys.length > 0 && Math.max(...ys) / Math.min(...ys) > 100 && s.lines.every((l) => l.y.every((y) => y > 0));
  const f = (y: number) => (log ? Math.log10(Math.max(y, 1e-12)) : y);
  const [x0, x1] = [Math.min(...s.x), Math.max(...s.x)];
  const logX = x0 > 0 && x1 / x0 > 50; // doubling lengths read best on a log axis
  const g = (x: number) => (logX ? Math.log2(x) : x);
  const [y0, y1] = [Math.min(...s.lines.flatMap((l) => l.y.map(f))), Math.max(...s.lines.flatMap((l) => l.y.map(f)))];
  const px = (x: number) => 64 + ((g(x) - g(x0)) / (g(x1) - g(x0) || 1)) * (w - 76);
  const top = 22 + 14 * s.lines.length; // the legend's lines above the plotted area
  const py = (y: number) => h - 28 - ((f(y) - y0) / (y1 - y0 || 1)) * (h - 28 - top);
  const svg = svgEl('svg', { viewBox: `0 0 ${w} ${h}`, role: 'img', 'aria-label': `${s.yLabel} against ${s.xLabel}` }) as SVGSVGElement;
  const add = (tag: string, attrs: Record<string, string | number>, text?: string) => svg.append(svgEl(tag, attrs, text));
  add('line', { x1: 64, y1: h - 28, x2: w - 8, y2: h - 28, class: 'axis' });
  add('line', { x1: 64, y1: top, x2: 64, y2: h - 28, class: 'axis' });
  add('text', { x: 64, y: h - 2 }, `${s.xLabel}${logX ? ' (log scale)' : ''}`);
  add('text', { x: 4, y: 14 }, `${s.yLabel}${log ? ' (log scale)' : ''}`);
  // ticks with values and units: every x given (thinned past 8), and four y values evenly spaced on the axis's scale
  const yText = (y: number) => (/bytes/.test(s.yLabel) ? humanBytes(y) : fmt(y));
  const every = Math.ceil(s.x.length / 8);
  s.x.forEach((x, i) => {
    if (i % every) return;
    add('line', { x1: px(x), y1: h - 28, x2: px(x), y2: h - 24, class: 'axis' });
    add('text', { x: px(x), y: h - 14, 'text-anchor': i === s.x.length - 1 ? 'end' : 'middle', class: 'tick' }, fmt(x));
  });
  for (let k = 0; k <= 3; k++) {
    const v = y0 + ((y1 - y0) * k) / 3; // on the axis's scale (log10 when log)
    const y = log ? 10 ** v : v;
    add('line', { x1: 60, y1: py(y), x2: 64, y2: py(y), class: 'axis' });
    add('text', { x: 58, y: py(y) + 3, 'text-anchor': 'end', class: 'tick' }, yText(y));
  }
  s.lines.forEach((l, k) => {
    add('polyline', { points: s.x.map((x, i) => `${px(x)},${py(l.y[i])}`).join(' '), fill: 'none', 'stroke-width': 2, class: `l${k}` });
    add('text', { x: 72, y: 30 + 14 * k, class: `legend l${k}` }, `${l.name}: ${yText(l.y[l.y.length - 1])} at ${fmt(x1)}`);
    add('line', { x1: 64, y1: 26 + 14 * k, x2: 70, y2: 26 + 14 * k, class: `l${k}`, 'stroke-width': 2 });
  });
  return svg;
}
