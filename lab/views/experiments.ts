// Break it: each experiment changes one piece of attention on the real model and measures what happens — the numbers,
// a plot where there is a curve, and the head the change moved most, before and after, side by side.
import type { ExperimentResult, MapPanel } from '/qkv/index.js';
import { $, el, paint, withUnit } from '../dom.js';
import { drawBigMap, plot, type MaskFn } from '../draw.js';
import { backend, page, promptOrSay } from '../page.js';

const LIST: [string, string][] = [
  ['no-scaling', 'Remove the 1/√d scaling'], ['no-causal', 'Remove the causal mask'], ['no-positions', 'Drop positions, shuffle tokens'],
  ['window', 'Shrink the sliding window'], ['gqa', 'Share key/value heads (GQA → MQA)'],
  ['kernel-memory', 'Reference vs tiled kernel memory'],
];

const maskOf = (m: MapPanel['mask']): MaskFn => (m === 'causal' ? (i, j) => j > i : m === 'none' ? () => false
  : (i, j) => j > i || j <= i - m.window);

// the two maps of one head, side by side, labelled with the tokens
function panels(r: ExperimentResult): HTMLElement[] {
  if (!r.maps) return [];
  const tokens = page.state?.tokens ?? [];
  const figures = r.maps.panels.map((p) => {
    const canvas = el('canvas', { className: 'panel-map' });
    canvas.setAttribute('aria-label', `${p.label}: layer ${r.maps!.layer}, head ${r.maps!.head}`);
    drawBigMap(canvas, p.rows, tokens.length === p.rows.length ? tokens : p.rows.map((_, i) => String(i)), -1, maskOf(p.mask), 380);
    return el('figure', {}, canvas, el('figcaption', { textContent: p.label }));
  });
  return [el('p', { className: 'hint', textContent: `Layer ${r.maps.layer}, head ${r.maps.head} — the head this change moved most:` }),
    el('div', { className: 'panels' }, ...figures)];
}

export function renderExperiments(): void {
  $('#experiments').replaceChildren(...LIST.map(([id, title]) => {
    const result = el('div', { className: 'result' });
    result.setAttribute('aria-live', 'polite');
    const button = el('button', { type: 'button', textContent: `Run: ${title}` });
    button.dataset.id = id;
    button.addEventListener('click', async () => {
      const prompt = promptOrSay();
      if (prompt === null) return;
      result.textContent = 'running on the real model…';
      await paint();
      try {
        const r = await backend().experiment(id, prompt);
        result.replaceChildren(
          el('p', { textContent: r.lookFor }),
          ...panels(r),
          el('table', { className: 'table' }, ...r.metrics.map((m) => el('tr', { className: 'metric' },
            el('td', { textContent: m.label }), el('td', { className: 'num value', textContent: withUnit(m.value, m.unit) })))),
          ...(r.series ? [plot(r.series)] : []),
        );
      } catch (e) {
        result.textContent = `error: ${(e as Error).message}`;
      }
    });
    const card = el('div', { className: 'experiment' }, el('h3', { textContent: title }), button, result);
    card.dataset.id = id;
    return card;
  }));
}
