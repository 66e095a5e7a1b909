// What the views share: the backend, the last prompt's results, the selected head, and the events that redraw them.
import type { Attention, Backend } from './backend.js';
import { $, status } from './dom.js';

export const page = {
  backend: null as Backend | null,
  /** The last prompt run through the model. */
  state: null as Attention | null,
  /** The head the enlarged map and the step-by-step view show. */
  selected: { layer: 0, head: 0 },
};

/** The backend (the page starts it before any view draws). */
export function backend(): Backend {
  if (!page.backend) throw new Error('the model is not loaded yet');
  return page.backend;
}

/** The prompt, or null (and a sentence in the status line) when there is nothing to run. */
export function promptOrSay(): string | null {
  const prompt = $<HTMLTextAreaElement>('#prompt').value;
  if (prompt.trim() !== '') return prompt;
  status('Type a prompt first: the model needs at least one token to attend over.');
  return null;
}

type Listener = () => void;
const onSelect: Listener[] = [];

/** Calls `f` whenever another head is selected. */
export function whenSelected(f: Listener): void { onSelect.push(f); }

/** Selects a head for every view that shows one. */
export function selectHead(layer: number, head: number): void {
  page.selected = { layer, head };
  for (const f of onSelect) f();
}
