// The worker in which `qkv serve` turns text into token ids (text-sandbox.ts starts it): the checkpoint's tokenizer,
// built here from its directory, encodes prompts and renders chats, one request at a time, in a thread whose heap is
// capped — so that its regular expressions and chat template, which come from outside, cannot hold or fill the server.
import { parentPort, workerData } from 'node:worker_threads';
import type { ChatMessage } from '../generate/chat.js';
import { loadTokenizer } from './checkpoint.js';

export type TextRequest = { id: number } & ({ op: 'encode'; text: string } | { op: 'chat'; messages: ChatMessage[] });

const tokenizer = loadTokenizer((workerData as { dir: string }).dir);

parentPort!.on('message', (r: TextRequest) => {
  try {
    if (!tokenizer) throw new Error('the checkpoint has no tokenizer.json');
    const ids = r.op === 'encode' ? tokenizer.encode(r.text) : tokenizer.chat(r.messages).ids;
    parentPort!.postMessage({ id: r.id, ids });
  } catch (e) {
    parentPort!.postMessage({ id: r.id, error: (e as Error).message });
  }
});
