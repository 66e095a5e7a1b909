// `qkv score [--model DIR] [--top N] "text"`: how surprised the model is by each token of a text — its log-probability
// given the tokens before it (scoreTokens, generate/score.ts), the probability, and with --top the tokens the model
// expected there — then the text's next-token loss (mean −log p, nats) and perplexity (e^loss).
import { parseArgs } from 'node:util';
import { QkvError } from '../../errors.js';
import { scoreTokens, type TokenScore } from '../../generate/score.js';
import type { Tokenizer } from '../../generate/tokenizer.js';
import { loadCheckpoint } from '../checkpoint.js';
import { applyRuntimeOptions, countArg, DEFAULT_MODEL_DIR, requireTokenizer, RUNTIME_HELP, RUNTIME_OPTIONS } from './shared.js';

export const SCORE_HELP = `qkv score [options] "text"   each token's log-probability given those before it, the loss and perplexity

  --model DIR              a checkpoint directory (default: the embedded qkv-tiny)
  --top N                  also list the N tokens the model found most likely at each position (0–20, default 0)
${RUNTIME_HELP}`;

export async function scoreCommand(argv: string[], out: (s: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, strict: true,
    options: { model: { type: 'string' }, top: { type: 'string' }, help: { type: 'boolean', short: 'h' }, ...RUNTIME_OPTIONS },
  });
  if (values.help) { out(`${SCORE_HELP}\n`); return 0; }
  if (positionals.length !== 1) throw new QkvError(`qkv score: expected one text argument, got ${positionals.length}\n${SCORE_HELP}`);
  const top = countArg(values.top, 'top', 0) ?? 0;
  if (top > 20) throw new QkvError(`--top must be an integer ≤ 20, got '${values.top}'`);
  const { weights } = await applyRuntimeOptions(values);
  const dir = values.model ?? DEFAULT_MODEL_DIR;
  requireTokenizer(dir, 'score');
  const ckpt = loadCheckpoint(dir, { weights });
  if (ckpt.model.kind !== 'causal-lm') throw new QkvError(`qkv score: ${ckpt.config.architectures?.[0]} is not a causal language model`);
  const tokenizer = ckpt.tokenizer!;
  const ids = tokenizer.encode(positionals[0]);
  if (ids.length === 0) throw new QkvError('qkv score: the text has no tokens');
  // a long text's progress on a terminal (stderr), cleared before the table
  const onProgress = (done: number, total: number) => {
    if (process.stderr.isTTY) process.stderr.write(done < total ? `\rqkv: scored ${done}/${total} tokens` : '\r\x1b[K');
  };
  const scores = await scoreTokens(ckpt.model, ids, { top, onProgress });
  const pieces = tokenizer.pieces(ids); // a character split over byte-level tokens shows whole, on the token that ends it
  scores.forEach((s, t) => out(`${line(s, pieces[t], tokenizer)}\n`));
  out(`${summary(scores)}\n`);
  return 0;
}

// one token: its text, log p and p (— for the first, which nothing predicts), then the expected ones with --top (each
// alone: a byte of a longer character shows as U+FFFD)
function line(s: TokenScore, piece: string, tokenizer: Tokenizer): string {
  const head = `${JSON.stringify(piece).padEnd(18)} ${s.logprob === null ? '—'.padStart(8) : s.logprob.toFixed(3).padStart(8)}`;
  if (s.logprob === null) return head;
  const alone = (id: number) => JSON.stringify(tokenizer.decode([id]));
  const expected = s.top?.length ? `   expected ${s.top.map((t) => `${alone(t.id)} ${percent(t.logprob)}`).join(', ')}` : '';
  return `${head} ${percent(s.logprob).padStart(8)}${expected}`;
}

// p = e^logprob as a percentage, with three decimals below 0.1%
const percent = (logprob: number) => { const p = Math.exp(logprob); return `${(100 * p).toFixed(p < 0.001 ? 3 : 1)}%`; };

// loss = −(1/(T−1)) Σ_t log p(x_t | x_<t),  perplexity = e^loss
function summary(scores: readonly TokenScore[]): string {
  const n = scores.length - 1;
  if (n === 0) return '1 token: nothing to score (the first token has no tokens before it)';
  const loss = -scores.reduce((sum, s) => sum + (s.logprob ?? 0), 0) / n;
  return `${n} tokens scored: loss ${loss.toFixed(4)} nats/token, perplexity ${Math.exp(loss).toFixed(2)}`;
}
