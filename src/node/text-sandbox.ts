// Text to token ids away from the caller's thread (`qkv serve`, `qkv generate --chat`). The tokenizer's regular
// expressions and the chat template come with the checkpoint, from outside, and run on whatever a client sends. The
// checks at load refuse the known catastrophic shapes (generate/tokenizer-check.ts) and the template engine bounds
// loops and range() (generate/chat.ts), but not every slow pattern — `\s*\s*\s*\s*x` took 40 s on 200 spaces — nor
// the size of what a template builds — a list doubled in a loop reached 1.5 GB before the engine refused it. So text is
// encoded and rendered in a worker thread with a capped heap (memoryMb) and a deadline (DEADLINE_MS): a request that
// passes either is a QkvError, the worker is replaced, the requests queued behind it go to the new one, and the server
// goes on.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { QkvError } from '../errors.js';
import type { ChatMessage } from '../generate/chat.js';
import type { Tokenizer } from '../generate/tokenizer.js';
import type { TextRequest } from './text-worker.js';

const DEADLINE_MS = 5_000;

// The worker's heap: room for the tokenizer itself (its structures grow with tokenizer.json: ~16× the file here is
// generous) and 64 MiB for a request's text, its pieces and a rendered chat.
const memoryMb = (tokenizerJsonBytes: number) => Math.ceil(64 + 16 * (tokenizerJsonBytes / 2 ** 20));

type Op = { op: 'encode'; text: string } | { op: 'chat'; messages: readonly ChatMessage[] };
interface Pending { op: Op; resolve: (ids: number[]) => void; reject: (e: Error) => void }

/**
 * The tokenizer of checkpoint directory `dir`, in a worker thread: prompts and chats to token ids, in order. Only the
 * request the worker is on (the oldest) is timed; when it runs over the deadline or the heap, it alone fails and the
 * requests queued behind it go to a new worker.
 */
export class TextSandbox {
  #worker: Worker | null = null;
  #next = 1;
  readonly #pending = new Map<number, Pending>(); // in the order sent: the first is the one the worker is on
  #timer: NodeJS.Timeout | null = null;
  readonly #memoryMb: number;

  /** `tokenizer`, built from `dir`, serves in this thread only when `dir` has no tokenizer.json (a checkpoint built by hand). */
  constructor(readonly dir: string, private readonly tokenizer: Tokenizer) {
    const file = join(dir, 'tokenizer.json');
    this.#memoryMb = existsSync(file) ? memoryMb(statSync(file).size) : 0;
  }

  /** Token ids of a prompt (special tokens added as the tokenizer's post-processor says). */
  encode(text: string): Promise<number[]> {
    if (!this.#memoryMb) return Promise.resolve().then(() => this.tokenizer.encode(text));
    return this.#ask({ op: 'encode', text });
  }

  /** Token ids of a conversation through the checkpoint's chat template (Tokenizer.chat), the assistant's turn opened. */
  chat(messages: readonly ChatMessage[]): Promise<number[]> {
    if (!this.#memoryMb) return Promise.resolve().then(() => this.tokenizer.chat(messages).ids);
    return this.#ask({ op: 'chat', messages });
  }

  /** Starts the worker now (it builds the tokenizer: ~0.2 s for qkv-tiny's), not at the first request. */
  warm(): void {
    if (this.#memoryMb) this.#start();
  }

  /** Stops the worker; requests still waiting fail (a later request starts another worker). */
  close(): void {
    this.#stop();
    for (const p of this.#pending.values()) p.reject(new QkvError('the text sandbox was closed'));
    this.#pending.clear();
  }

  #ask(op: Op): Promise<number[]> {
    const id = this.#next++;
    return new Promise<number[]>((resolve, reject) => {
      this.#pending.set(id, { op, resolve, reject });
      this.#start().postMessage({ id, ...op } as TextRequest);
      this.#time();
    });
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const w = new Worker(new URL('./text-worker.js', import.meta.url), {
      workerData: { dir: this.dir }, resourceLimits: { maxOldGenerationSizeMb: this.#memoryMb, maxYoungGenerationSizeMb: 16 },
    });
    w.unref(); // never keeps the process alive
    w.on('message', (m: { id: number; ids?: number[]; error?: string }) => {
      const p = this.#worker === w ? this.#pending.get(m.id) : undefined; // a replaced worker's last words: not ours
      if (!p) return;
      this.#pending.delete(m.id);
      this.#untime();
      this.#time();
      if (Array.isArray(m.ids)) p.resolve(m.ids);
      else p.reject(new QkvError(m.error ?? 'the tokenizer failed'));
    });
    w.on('error', (e: Error & { code?: string }) => {
      if (this.#worker !== w) return;
      const why = e.code === 'ERR_WORKER_OUT_OF_MEMORY'
        ? `the tokenizer or chat template needed more than ${this.#memoryMb} MiB for this text` : `the tokenizer failed: ${e.message}`;
      this.#failFirst(why);
    });
    w.on('exit', () => { if (this.#worker === w) this.#failFirst('the tokenizer worker stopped'); });
    return (this.#worker = w);
  }

  // the deadline of the request the worker is on (the oldest), when there is one and it is not timed yet
  #time(): void {
    if (this.#timer || this.#pending.size === 0) return;
    this.#timer = setTimeout(() => this.#failFirst(`the tokenizer took more than ${DEADLINE_MS / 1000} s on this text`), DEADLINE_MS);
  }

  #untime(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #stop(): void {
    this.#untime();
    const w = this.#worker;
    this.#worker = null;
    void w?.terminate();
  }

  // the request the worker was on fails with `why`; the worker is replaced and the queued requests are sent again
  #failFirst(why: string): void {
    this.#stop();
    const first = this.#pending.entries().next();
    if (!first.done) {
      this.#pending.delete(first.value[0]);
      first.value[1].reject(new QkvError(why));
    }
    if (this.#pending.size === 0) return;
    const w = this.#start();
    for (const [id, p] of this.#pending) w.postMessage({ id, ...p.op } as TextRequest);
    this.#time();
  }
}
