// The worker that renders chat templates for `qkv serve` (templates.ts starts it): one request at a time, in a thread
// whose heap is capped, so a template that grows a value without bound exhausts the worker's memory, not the server's.
import { parentPort } from 'node:worker_threads';
import { applyChatTemplate, type ChatMessage } from '../../generate/chat.js';

interface RenderRequest {
  id: number;
  template: string;
  messages: ChatMessage[];
  bosToken?: string;
  eosToken?: string;
}

parentPort!.on('message', (r: RenderRequest) => {
  try {
    const text = applyChatTemplate(r.template, r.messages, { addGenerationPrompt: true, bosToken: r.bosToken, eosToken: r.eosToken });
    parentPort!.postMessage({ id: r.id, text });
  } catch (e) {
    parentPort!.postMessage({ id: r.id, error: (e as Error).message });
  }
});
