// Chat templates: the Jinja template a checkpoint ships in tokenizer_config.json (chat_template) turns a list of
// messages into the prompt text the model was trained on — rendered with @huggingface/jinja, as transformers'
// apply_chat_template does. Checkpoints without one (qkv-tiny) get DEFAULT_CHAT_TEMPLATE. Messages and templates come
// from outside (requests, files): both are checked, and a template that does not parse or render is a QkvError.
import { Template } from '@huggingface/jinja';
import { describeValue, QkvError } from '../errors.js';

/** One chat message. */
export interface ChatMessage { role: string; content: string }

/** For checkpoints without a template: one "role: content" line per message, then "assistant:" to answer. */
export const DEFAULT_CHAT_TEMPLATE =
  "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";

const MAX_MESSAGES = 10_000;
const MAX_TEMPLATE_CHARS = 1 << 20;
// The most items range() may produce over one rendering: jinja2's sandbox limit (MAX_RANGE, per call there), under
// which transformers renders chat templates; counted over the rendering here, so that nested loops cannot multiply it.
// A template comes with the checkpoint, from outside: `range(10000000)` took a minute of the server's only thread,
// and a larger one would hold it for good (100,000 items take this interpreter ~0.5 s).
const MAX_RANGE = 100_000;

// The most loop iterations and macro calls over one rendering. Loops nest and macros recurse, so a template can
// multiply its work without range(): three loops over a request's 2,000 messages (8·10⁹ steps), or a macro that calls
// itself twice per level, held the server's only thread for good. Real templates take a step or a few per message
// and per content part (MAX_MESSAGES of them at most).
const MAX_STEPS = 100_000;

const RANGE = '__qkv_range'; // what the template's range is renamed to (the library will not let a render replace its own)
const STEP = '__qkv_step'; // called at the top of every loop body and macro body, to count the rendering's steps

// The parsed template made safe to render: every use of the name `range` (not `x.range`, not a keyword `range=`)
// renamed to RANGE, which render binds to safeRange; a call of STEP put first in the body of every loop and macro.
function sandbox(root: unknown): void {
  const stack: unknown[] = [root];
  const seen = new Set<object>();
  const bodies: unknown[][] = [];
  while (stack.length > 0) {
    const node = stack.pop();
    if (typeof node !== 'object' || node === null || seen.has(node)) continue;
    seen.add(node);
    const n = node as { type?: unknown; value?: unknown; object?: unknown; computed?: unknown; body?: unknown };
    if (n.type === 'Identifier' && n.value === 'range') n.value = RANGE;
    if ((n.type === 'For' || n.type === 'Macro') && Array.isArray(n.body)) bodies.push(n.body);
    if (n.type === 'MemberExpression' && !n.computed) { stack.push(n.object); continue; } // x.range is an attribute
    if (n.type === 'KeywordArgumentExpression') { stack.push(n.value); continue; } // f(range=…) names an argument
    for (const child of Object.values(node)) stack.push(child);
  }
  // STEP() renders nothing (it returns null); it throws once the rendering's steps run out
  for (const body of bodies) body.unshift({ type: 'CallExpression', callee: { type: 'Identifier', value: STEP }, args: [] });
}

/** One more step of the rendering whose step budget is `budget`; refused once it runs out. */
function step(budget: { steps: number }): null {
  if (--budget.steps < 0) {
    throw new QkvError(`the template took more than ${MAX_STEPS} loop iterations and macro calls for these messages`);
  }
  return null;
}

/** range(stop) / range(start, stop[, step]) as Python has it, refused once the rendering's `budget` of items runs out. */
function safeRange(budget: { left: number }, ...args: unknown[]): number[] {
  if (args.length < 1 || args.length > 3 || !args.every((a) => Number.isSafeInteger(a))) {
    throw new QkvError(`range() takes 1 to 3 integers, got ${args.map((a) => describeValue(a)).join(', ')}`);
  }
  const [a, b, c] = args as number[];
  const [start, stop, step] = args.length === 1 ? [0, a, 1] : [a, b, c ?? 1];
  if (step === 0) throw new QkvError('range() step must not be zero');
  const n = Math.max(0, Math.ceil((stop - start) / step));
  if ((budget.left -= n) < 0) {
    throw new QkvError(`range() may give at most ${MAX_RANGE} items over a rendering (jinja2's sandbox limit); range(${args.join(', ')}) ` +
      `is ${n} items, ${budget.left + n} were left`);
  }
  return Array.from({ length: n }, (_, i) => start + i * step);
}

/** Checks `messages` (an array of { role, content } with string values; content may be OpenAI's text parts). */
export function checkMessages(messages: unknown, what = 'messages'): ChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0 || messages.length > MAX_MESSAGES) {
    throw new QkvError(`${what} must be a non-empty array of at most ${MAX_MESSAGES} messages, got ${describeValue(messages)}`);
  }
  return messages.map((m: unknown, i) => {
    const own = (k: string) => (typeof m === 'object' && m !== null && Object.hasOwn(m, k) ? (m as Record<string, unknown>)[k] : undefined);
    const role = own('role');
    if (typeof role !== 'string' || role.length === 0) {
      throw new QkvError(`${what}[${i}].role must be a non-empty string, got ${describeValue(role)}`);
    }
    return { role, content: contentText(own('content'), `${what}[${i}].content`) };
  });
}

// a string, or an array of { type: 'text', text } parts (OpenAI's content parts), joined
function contentText(content: unknown, what: string): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content) && content.length <= MAX_MESSAGES) {
    return content.map((part: unknown, i) => {
      const p = part as Record<string, unknown> | null;
      if (typeof p === 'object' && p !== null && Object.hasOwn(p, 'text') && typeof p.text === 'string' && p.type === 'text') return p.text;
      throw new QkvError(`${what}[${i}] must be a text part { type: 'text', text: string }, got ${describeValue(part)}`);
    }).join('');
  }
  throw new QkvError(`${what} must be a string or an array of text parts, got ${describeValue(content)}`);
}

/** The chat template of a parsed tokenizer_config.json: its chat_template string (or the 'default' of a named list). */
export function chatTemplateOf(tokenizerConfig: unknown): string | null {
  const c = tokenizerConfig as Record<string, unknown> | null;
  const t = typeof c === 'object' && c !== null && Object.hasOwn(c, 'chat_template') ? c.chat_template : undefined;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const named = t.find((x: unknown) => (x as Record<string, unknown> | null)?.name === 'default') as Record<string, unknown> | undefined;
    if (typeof named?.template === 'string') return named.template;
  }
  return null;
}

/** The prompt text for `messages` under `template` (add_generation_prompt: open the assistant's turn). */
export function applyChatTemplate(template: string, messages: readonly ChatMessage[],
  o: { addGenerationPrompt?: boolean; bosToken?: string; eosToken?: string } = {}): string {
  if (template.length > MAX_TEMPLATE_CHARS) {
    throw new QkvError(`chat template: ${template.length} characters, more than ${MAX_TEMPLATE_CHARS}`);
  }
  let t: Template;
  try {
    t = new Template(template);
    sandbox(t.parsed);
  } catch (e) {
    throw new QkvError(`chat template: it does not parse: ${(e as Error).message}`);
  }
  const budget = { left: MAX_RANGE, steps: MAX_STEPS };
  try {
    return t.render({
      messages, add_generation_prompt: o.addGenerationPrompt ?? true, bos_token: o.bosToken ?? '', eos_token: o.eosToken ?? '',
      [RANGE]: (...args: unknown[]) => safeRange(budget, ...args), [STEP]: () => step(budget),
    });
  } catch (e) {
    throw new QkvError(`chat template: it does not render these messages: ${(e as Error).message}`);
  }
}
