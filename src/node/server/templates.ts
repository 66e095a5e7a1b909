// Chat templates rendered away from the server's thread. A template comes with the checkpoint, from outside, and
// applyChatTemplate bounds its loops and range() (generate/chat.ts) — but not the size of what it builds: a list or a
// string that doubles in a loop of 30 steps reached 1.5–2 GB before the engine refused it, enough to kill a server in
// a container. So `qkv serve` renders in a worker thread with a capped heap (MEMORY_MB) and a deadline (DEADLINE_MS):
// a render that passes either is a QkvError, the worker is replaced, and the server goes on.
import { Worker } from 'node:worker_threads';
import { QkvError } from '../../errors.js';
import type { ChatMessage } from '../../generate/chat.js';

const MEMORY_MB = 64;
const DEADLINE_MS = 5_000;

interface Pending { resolve: (text: string) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }

/** Renders one template (with its special tokens) for many requests, one at a time, in a worker thread. */
export class TemplateRenderer {
  #worker: Worker | null = null;
  #next = 1;
  readonly #pending = new Map<number, Pending>();

  constructor(readonly template: string, readonly special: { bos?: string; eos?: string } = {}) {}

  /** The prompt text of `messages` (the assistant's turn opened); a QkvError when the template fails or runs over. */
  render(messages: readonly ChatMessage[]): Promise<string> {
    const worker = this.#start();
    const id = this.#next++;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => this.#fail(`the chat template took more than ${DEADLINE_MS / 1000} s to render`), DEADLINE_MS);
      this.#pending.set(id, { resolve, reject, timer });
      worker.postMessage({ id, template: this.template, messages, bosToken: this.special.bos, eosToken: this.special.eos });
    });
  }

  /** Stops the worker (a later render starts another). */
  async close(): Promise<void> {
    const w = this.#worker;
    this.#worker = null;
    this.#fail('the template renderer was closed');
    await w?.terminate();
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const w = new Worker(new URL('./template-worker.js', import.meta.url), {
      resourceLimits: { maxOldGenerationSizeMb: MEMORY_MB, maxYoungGenerationSizeMb: 16 },
    });
    w.unref(); // never keeps the process alive
    w.on('message', (m: { id: number; text?: string; error?: string }) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      clearTimeout(p.timer);
      if (typeof m.text === 'string') p.resolve(m.text);
      else p.reject(new QkvError(m.error ?? 'the chat template failed'));
    });
    w.on('error', (e: Error & { code?: string }) => {
      const oom = e.code === 'ERR_WORKER_OUT_OF_MEMORY';
      this.#fail(oom ? `the chat template needed more than ${MEMORY_MB} MiB to render` : `the chat template renderer failed: ${e.message}`);
    });
    w.on('exit', () => { if (this.#worker === w) this.#fail('the chat template renderer stopped'); });
    return (this.#worker = w);
  }

  // every waiting render fails with `why`; the worker (if any) is stopped and replaced at the next render
  #fail(why: string): void {
    const w = this.#worker;
    this.#worker = null;
    void w?.terminate();
    for (const p of this.#pending.values()) { clearTimeout(p.timer); p.reject(new QkvError(why)); }
    this.#pending.clear();
  }
}
