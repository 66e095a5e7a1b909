// Positions: why attention needs them and how each scheme gives them — RoPE as pairs of dimensions turning at their own
// speed, the score q·k as a function of distance with and without RoPE (on the model's own q and k), the sinusoidal
// table, ALiBi's linear bias, and what a NoPE layer has left (the causal mask).
import { alibiSlopes, applyRope, ropeInvFreq, sinusoidalEncoding, Tensor } from '/qkv/index.js';
import { $, el, fmt, numberIn } from '../dom.js';
import { drawSigned, plot, svgEl } from '../draw.js';
import { backend, page, whenSelected } from '../page.js';

// RoPE's angle per position of pair k: θ_k = base^(−2k/d) (the model's own frequencies)
function frequencies(): Float64Array {
  const info = backend().info;
  return ropeInvFreq({ headDim: info.headDim, ropeTheta: backend().ropeTheta }).invFreq;
}

/** Pairs of dimensions as hands on dials: pair k of a vector at position m is turned by m · θ_k. */
function dials(m: number): HTMLElement {
  const inv = frequencies();
  const half = inv.length;
  const picks = [...new Set([0, Math.floor(half / 8), Math.floor(half / 4), Math.floor(half / 2), half - 1])];
  const figures = picks.map((k) => {
    const svg = svgEl('svg', { viewBox: '-60 -60 120 120', role: 'img', class: 'dial', 'aria-label': `pair ${k} at position ${m}` });
    svg.append(svgEl('circle', { cx: 0, cy: 0, r: 48, class: 'axis', fill: 'none' }));
    for (let p = 0; p <= m; p++) { // where the hand was at earlier positions, fading
      const a = p * inv[k];
      svg.append(svgEl('circle', { cx: 48 * Math.cos(a), cy: -48 * Math.sin(a), r: p === m ? 4 : 2, class: p === m ? 'hand' : 'trail' }));
    }
    const a = m * inv[k];
    svg.append(svgEl('line', { x1: 0, y1: 0, x2: 48 * Math.cos(a), y2: -48 * Math.sin(a), class: 'hand' }));
    const turn = (2 * Math.PI) / inv[k];
    const caption = `pair ${k}: θ = ${fmt(inv[k])} rad/token, a turn every ${fmt(Math.round(turn))} tokens`;
    return el('figure', {}, svg, el('figcaption', { textContent: caption }));
  });
  return el('div', { className: 'dials' }, ...figures);
}

// s(Δ) = scale · q_at_Δ · k_at_0 through RoPE, for Δ = 0 … n − 1 (a query Δ tokens after its key)
function scoreByDistance(q: Float32Array, k: Float32Array, n: number, scale: number): number[] {
  const D = q.length;
  const rows = new Float32Array(n * D);
  for (let t = 0; t < n; t++) rows.set(q, t * D);
  const freqs = ropeInvFreq({ headDim: D, ropeTheta: backend().ropeTheta });
  const turned = applyRope(Tensor.from(rows, [1, 1, n, D]), { freqs }).toFloat32(); // position t for row t
  return Array.from({ length: n }, (_, t) => scale * turned.subarray(t * D, (t + 1) * D).reduce((s, x, d) => s + x * k[d], 0));
}

/** q·k against distance: the model's q and k of the first token (position 0, not yet turned), and all-ones vectors. */
function distancePlot(): SVGSVGElement | HTMLElement {
  const D = backend().info.headDim;
  const n = 128;
  const x = Array.from({ length: n }, (_, t) => t);
  const ones = new Float32Array(D).fill(1);
  const lines = [{ name: 'q = k = 1 (RoFormer\'s decay)', y: scoreByDistance(ones, ones, n, 1 / D) }];
  const qkv = page.state?.qkv?.[0];
  if (qkv) {
    const { q, k, scale } = qkv;
    const [, Hq, T] = q.shape;
    const kvh = Math.floor(page.selected.head / (Hq / k.shape[1]));
    // position 0 is turned by 0: these are the vectors before RoPE
    const q0 = q.toFloat32().subarray(page.selected.head * T * D, page.selected.head * T * D + D);
    const k0 = k.toFloat32().subarray(kvh * T * D, kvh * T * D + D);
    const s = scoreByDistance(q0, k0, n, scale);
    lines.unshift({ name: `layer 0 head ${page.selected.head}: with RoPE`, y: s },
      { name: 'without (NoPE): the same at every distance', y: x.map(() => s[0]) });
  }
  return plot({ xLabel: 'distance Δ between query and key (tokens)', yLabel: 'score q·k × scale', x, lines }, 440, 200);
}

/** The sinusoidal table of the original Transformer: position × dimension. */
function sinusoidal(): HTMLElement {
  const [P, d] = [64, 64];
  const canvas = el('canvas', { className: 'table-map' });
  canvas.setAttribute('aria-label', 'sinusoidal encodings: 64 positions down, 64 dimensions across');
  drawSigned(canvas, sinusoidalEncoding(P, d).toFloat32(), P, d);
  const caption = `PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(…) — ${P} positions down, ${d} dims across; ` +
    'red +1, blue −1';
  return el('figure', {}, canvas, el('figcaption', { textContent: caption }));
}

/** ALiBi: no position vectors at all, a bias −m_h · (i − j) added to the scores, one slope per head. */
function alibi(): SVGSVGElement {
  const H = backend().info.numHeads;
  const slopes = alibiSlopes(H);
  const x = Array.from({ length: 33 }, (_, t) => t);
  const heads = [...new Set([0, Math.floor(H / 2), H - 1])];
  return plot({ xLabel: 'distance i − j (tokens)', yLabel: 'bias added to the score', x,
    lines: heads.map((h) => ({ name: `head ${h}: m = ${fmt(slopes[h])}`, y: x.map((t) => -slopes[h] * t) })) }, 440, 200);
}

export function renderPositions(): void {
  const m = Math.max(0, Math.min(64, numberIn('#rope-position', 5)));
  $('#rope-position-value').textContent = String(m);
  $('#rope-dials').replaceChildren(dials(m));
  $('#rope-distance').replaceChildren(distancePlot());
  const tables = $('#position-tables');
  if (!tables.childElementCount) tables.append(sinusoidal(), el('figure', {}, alibi()));
}

whenSelected(renderPositions);
