// Break it: each experiment changes one piece of attention on the real model and measures what happens — the numbers,
// a plot where there is a curve, and the head the change moved most, before and after, side by side.
import { patchHead, removeHead, type ExperimentResult, type MapPanel } from '/qkv/index.js';
import { $, el, paint, withUnit } from '../dom.js';
import { drawBigMap, plot, type MaskFn } from '../draw.js';
import { backend, page, promptOrSay, whenSelected } from '../page.js';

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

// one experiment's card: a button that runs `measure` on the prompt and shows the result (numbers, maps, plot)
function card(id: string, title: string, measure: (prompt: string) => Promise<ExperimentResult>, ...controls: HTMLElement[]):
  HTMLElement {
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
      const r = await measure(prompt);
      result.replaceChildren(
        el('p', { textContent: r.lookFor }),
        ...panels(r),
        el('table', { className: 'table' }, ...r.metrics.map((m) => el('tr', { className: 'metric' },
          el('td', { textContent: m.label }),
          el('td', { className: 'num value', textContent: m.text ?? withUnit(m.value, m.unit) })))),
        ...(r.series ? [plot(r.series)] : []),
      );
    } catch (e) {
      result.textContent = `error: ${(e as Error).message}`;
    }
  });
  const box = el('div', { className: 'experiment' }, el('h3', { textContent: title }), ...controls, button, result);
  box.dataset.id = id;
  return box;
}

// the model in the page, for the interventions that take a head (the server has no route for them)
function inPage() {
  const b = backend();
  if (!b.model || !b.tokenizer) throw new Error('this experiment runs the model in the page (the server sends the maps only)');
  return { model: b.model, tokenizer: b.tokenizer };
}

export function renderExperiments(): void {
  const other = 'Beautiful is better than ugly. Explicit is better than implicit.';
  const source = el('input', { id: 'patch-source', type: 'text', value: other });
  source.setAttribute('aria-label', 'The prompt whose attention pattern is patched in');
  const which = el('p', { className: 'hint', id: 'patch-which' });
  const say = () => {
    which.textContent = `Uses the head selected in the grid (now layer ${page.selected.layer}, head ${page.selected.head}).`;
  };
  say();
  whenSelected(say);
  $('#experiments').replaceChildren(
    ...LIST.map(([id, title]) => card(id, title, (prompt) => backend().experiment(id, prompt))),
    card('remove-head', 'Remove one head (the selected one)', async (prompt) => {
      const { model, tokenizer } = inPage();
      return removeHead(model, tokenizer.encode(prompt), page.selected.layer, page.selected.head);
    }, el('p', { className: 'hint', textContent: 'Select a head in the grid above; every head is also removed alone for the plot.' })),
    card('patch-head', 'Patch the selected head from another prompt', async (prompt) => {
      const { model, tokenizer } = inPage();
      const { layer, head: h } = page.selected;
      return patchHead(model, tokenizer.encode(prompt), tokenizer.encode(source.value), layer, h, (id) => tokenizer.decode([id]));
    }, el('label', {}, 'other prompt ', source), which),
  );
}
