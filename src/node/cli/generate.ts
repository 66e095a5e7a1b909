// `qkv generate [--model DIR] [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--min-p P]
//               [--repetition-penalty R] [--seed S] [--greedy] [--stop STR] [--no-prompt]
//               [--cache contiguous|paged|int8|sliding|sinks] [--window W] [--sinks K] [--device cpu|webgpu]
//               [--kv-dtype f32|f16] [--chat [--system TEXT]] [--stats] "prompt"`
// Streams the continuation to stdout as it is produced (the prompt first, unless --no-prompt or --chat; a prompt longer
// than one prefill chunk shows the prefill's progress on a terminal before it). With --chat the prompt is a user
// message, rendered with the checkpoint's chat template (generate/chat.ts). --stats: the prefill's and the decode's
// tokens/s on stderr at the end.
import { parseArgs } from 'node:util';
import { CACHE_KINDS, createCache, type CacheKind } from '../../cache/index.js';
import { generateStream, type GenerateOptions, type GenerateResult } from '../../generate/generate.js';
import { NumericsError, QkvError } from '../../errors.js';
import { loadCheckpoint } from '../checkpoint.js';
import { TextSandbox } from '../text-sandbox.js';
import { useDawn } from '../webgpu.js';
import { applyRuntimeOptions, DEFAULT_MODEL_DIR, numberArg, requireTokenizer, RUNTIME_HELP, RUNTIME_OPTIONS, whereText } from './shared.js';

export const GENERATE_HELP = `usage: qkv generate [options] "prompt"

  --model DIR              checkpoint directory (default: the embedded qkv-tiny)
  --max-tokens N           new tokens at most (default 64)
  --greedy                 always take the most likely token
  --temperature T          sampling temperature (default 0.8; 0 = greedy)
  --top-k K, --top-p P, --min-p P, --repetition-penalty R
  --seed S                 sampling seed (default 0): the same seed gives the same text
  --stop STR               stop at this string (repeatable)
  --no-prompt              print only the continuation
  --chat                   the prompt is a user message: apply the checkpoint's chat template (or a plain one) and
                           print only the reply
  --system TEXT            --chat: a system message first
  --cache KIND             contiguous (default) | paged | int8 | sliding | sinks
  --window W               sliding: window for layers without one; sinks: recent tokens kept (default 252)
  --sinks K                sinks: first tokens always kept (default 4)
  --device cpu|webgpu      where the model runs (default cpu); webgpu keeps weights and the KV cache on the GPU
                           (Dawn; QKV_WEBGPU_BACKEND=opengles for Mesa's llvmpipe without a GPU)
  --kv-dtype f32|f16       the KV cache's storage (default f32); f16 halves it, as llama.cpp's default cache does
                           (the contiguous cache, or the GPU's with --device webgpu: needs shader-f16)
  --stats                  at the end, on stderr: prompt and new tokens, time and tokens/s of the prefill and the decode
${RUNTIME_HELP}`;

export async function generateCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, strict: true,
    options: {
      model: { type: 'string' }, 'max-tokens': { type: 'string' }, temperature: { type: 'string' }, 'top-k': { type: 'string' },
      'top-p': { type: 'string' }, 'min-p': { type: 'string' }, 'repetition-penalty': { type: 'string' }, seed: { type: 'string' },
      greedy: { type: 'boolean' }, stop: { type: 'string', multiple: true }, 'no-prompt': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      cache: { type: 'string' }, window: { type: 'string' }, sinks: { type: 'string' }, device: { type: 'string' },
      'kv-dtype': { type: 'string' }, chat: { type: 'boolean' }, system: { type: 'string' }, stats: { type: 'boolean' }, ...RUNTIME_OPTIONS,
    },
  });
  if (values.help) { out(`${GENERATE_HELP}\n`); return 0; }
  if (positionals.length !== 1) throw new QkvError(`qkv generate: expected one prompt argument, got ${positionals.length}\n${GENERATE_HELP}`);
  const prompt = positionals[0];
  // every argument checked, and the tokenizer found, before a checkpoint of hundreds of megabytes is read
  const device = values.device ?? 'cpu';
  if (device !== 'cpu' && device !== 'webgpu') throw new QkvError(`--device must be cpu or webgpu, got '${device}'`);
  if (device === 'webgpu' && values.cache) throw new QkvError('--device webgpu keeps its own KV cache on the GPU; leave out --cache');
  const kvDtype = values['kv-dtype'];
  if (kvDtype !== undefined && kvDtype !== 'f32' && kvDtype !== 'f16') throw new QkvError(`--kv-dtype must be f32 or f16, got '${kvDtype}'`);
  const kind = (values.cache ?? 'contiguous') as CacheKind;
  if (!CACHE_KINDS.includes(kind)) throw new QkvError(`--cache must be one of ${CACHE_KINDS.join(', ')}; got '${kind}'`);
  if (kvDtype === 'f16' && kind !== 'contiguous') {
    throw new QkvError(`--kv-dtype f16 is the contiguous cache's storage; --cache ${kind} keeps its own`);
  }
  const sampling: GenerateOptions = {
    maxTokens: numberArg(values['max-tokens'], 'max-tokens') ?? 64,
    greedy: values.greedy ?? false,
    temperature: numberArg(values.temperature, 'temperature') ?? 0.8,
    topK: numberArg(values['top-k'], 'top-k'), topP: numberArg(values['top-p'], 'top-p'), minP: numberArg(values['min-p'], 'min-p'),
    repetitionPenalty: numberArg(values['repetition-penalty'], 'repetition-penalty'),
    seed: numberArg(values.seed, 'seed') ?? 0, stopStrings: values.stop,
  };
  if (values.system !== undefined && !values.chat) throw new QkvError('--system is a chat message: it needs --chat');
  const { threads, weights } = await applyRuntimeOptions(values);
  const dir = values.model ?? DEFAULT_MODEL_DIR;
  requireTokenizer(dir, 'generate');
  if (device === 'webgpu' && !(await useDawn())) throw new QkvError("--device webgpu needs the optional 'webgpu' package (npm install webgpu)");
  const ckpt = loadCheckpoint(dir, { weights });
  if (ckpt.model.kind !== 'causal-lm') throw new QkvError(`qkv generate: ${ckpt.config.architectures?.[0]} is not a causal language model`);
  if (!ckpt.tokenizer) throw new QkvError(`qkv generate: ${ckpt.dir} has no tokenizer.json`);
  const o: GenerateOptions = {
    ...sampling,
    device,
    kvDtype: kvDtype === undefined || (device === 'cpu' && kind !== 'contiguous') ? undefined : kvDtype === 'f16' ? 'float16' : 'float32',
    // the contiguous cache is generate's own (sized for the prompt and --max-tokens at once, in --kv-dtype)
    cache: device === 'webgpu' || kind === 'contiguous' ? undefined : createCache(kind, ckpt.model.info.numLayers, {
      window: numberArg(values.window, 'window'), sinks: numberArg(values.sinks, 'sinks'),
    }),
  };
  // --chat: system and user messages through the chat template; the reply alone is printed
  const system = values.system !== undefined ? [{ role: 'system', content: values.system }] : [];
  const messages = [...system, { role: 'user', content: prompt }];
  // the checkpoint's template rendered in a worker with a capped heap and a deadline (text-sandbox.ts), as qkv serve does
  const sandbox = values.chat ? new TextSandbox(ckpt.dir, ckpt.tokenizer) : null;
  const input = sandbox ? await sandbox.chat(messages).finally(() => sandbox.close()) : prompt;
  // a long prompt's prefill shows its progress on a terminal (stderr), then the prompt is printed and the text follows
  let shown = false;
  o.onPrefill = (done, total) => {
    if (done < total && process.stderr.isTTY) {
      process.stderr.write(`\rqkv: prefill ${done}/${total} prompt tokens`);
      shown = true;
    } else if (done === total) {
      if (shown) process.stderr.write('\r\x1b[K');
      if (!values['no-prompt'] && !values.chat) out(prompt);
    }
  };
  const it = generateStream(ckpt.model, ckpt.tokenizer, input, o);
  try {
    let r = await it.next();
    for (; !r.done; r = await it.next()) out(r.value.text);
    if (values.stats) process.stderr.write(`\n${statsLine(r.value)} (${whereText(device === 'webgpu', threads)})\n`);
  } catch (e) {
    if (!(e instanceof NumericsError)) throw e;
    const bad = ckpt.weights.nonFinite(); // only now: a pass over every weight
    const more = bad.length > 3 ? ` and ${bad.length - 3} more` : '';
    throw new NumericsError(`${e.message}${bad.length ? `; non-finite values in ${bad.slice(0, 3).join(', ')}${more}` : ''}`);
  }
  return 0;
}

// prefill P tokens in X ms (R tokens/s) · decode N tokens in Y ms (R tokens/s): the decode's count leaves out the first
// new token, which the prefill's last logits gave
function statsLine(g: GenerateResult): string {
  const { prefillMs, decodeMs } = g.timings;
  const rate = (n: number, ms: number) => (n > 0 && ms > 0 ? `${(n / (ms / 1000)).toFixed(1)} tokens/s` : '–');
  const decoded = Math.max(0, g.ids.length - 1);
  return `qkv: prefill ${g.promptTokens} tokens in ${prefillMs.toFixed(0)} ms (${rate(g.promptTokens, prefillMs)}) · ` +
    `decode ${decoded} tokens in ${decodeMs.toFixed(0)} ms (${rate(decoded, decodeMs)})`;
}
