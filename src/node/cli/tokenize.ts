// `qkv tokenize [--model DIR] "text"`: one line per token (id, then the token string), then the count.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { QkvError } from '../../errors.js';
import { Tokenizer } from '../../generate/tokenizer.js';
import { readJsonObject } from '../files.js';
import { DEFAULT_MODEL_DIR } from './shared.js';

export function tokenizeCommand(argv: string[], out: (s: string) => void): number {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { model: { type: 'string' } } });
  if (positionals.length !== 1) throw new QkvError('usage: qkv tokenize [--model DIR] "text"');
  const dir = values.model ?? DEFAULT_MODEL_DIR;
  const path = join(dir, 'tokenizer.json');
  if (!existsSync(path)) throw new QkvError(`${dir}: no tokenizer.json`);
  const cfgPath = join(dir, 'tokenizer_config.json');
  const tok = Tokenizer.fromJSON(readJsonObject(path), existsSync(cfgPath) ? readJsonObject(cfgPath) : {}, path);
  const ids = tok.encode(positionals[0]);
  for (const id of ids) out(`${String(id).padStart(6)}  ${JSON.stringify(tok.idToToken(id) ?? '')}\n`);
  out(`${ids.length} tokens\n`);
  return 0;
}
