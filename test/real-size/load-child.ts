// Run in a fresh process by the real-size test and `npm run bench:load`: loads a checkpoint directory, runs one forward
// of a short prompt and (with a token count) greedy decoding, then prints what it measured as one JSON line — load time,
// forward time, decode tokens/s, bytes loaded and the process's peak resident memory (maxRSS), which only a process of
// its own measures truthfully.
//   node load-child.js DIR [PROMPT_TOKENS] [NEW_TOKENS] [THREADS]
import { generate, type CausalLM } from '../../src/index.js';
import { loadCheckpoint } from '../../src/node/checkpoint.js';
import { useThreads } from '../../src/node/threads.js';

const [dir, promptArg = '4', newArg = '0', threadArg = '1'] = process.argv.slice(2);
const threads = await useThreads(Number(threadArg));
let t = performance.now();
const ck = loadCheckpoint(dir, { tokenizer: false, progress: () => {} });
const loadMs = performance.now() - t;
const model = ck.model as CausalLM;
const prompt = Array.from({ length: Number(promptArg) }, (_, i) => (i * 7919 + 13) % model.info.vocabSize);
t = performance.now();
const { logits } = model.forward([prompt], { lastOnly: true });
const forwardMs = performance.now() - t;
const finite = logits.toFloat32().every(Number.isFinite);
let decodeTokPerS: number | null = null;
let prefillTokPerS: number | null = null;
if (Number(newArg) > 1) {
  const g = await generate(model, null, prompt, { greedy: true, maxTokens: Number(newArg), stopTokens: [] });
  decodeTokPerS = (Number(newArg) - 1) / (g.timings.decodeMs / 1000);
  prefillTokPerS = prompt.length / (g.timings.prefillMs / 1000);
}
console.log(JSON.stringify({
  bytes: ck.bytes, loadMs, forwardMs, finite, vocab: logits.shape.at(-1), threads, prefillTokPerS, decodeTokPerS,
  maxRssBytes: process.resourceUsage().maxRSS * 1024,
}));
process.exit(0);
