// tokenizer.json through @huggingface/tokenizers (a maintained pure-JS implementation of the Rust library's
// pipeline: normalizer, pre-tokenizer, BPE/WordPiece/Unigram model, post-processor, decoder). This wrapper fixes
// the API qkv uses and turns malformed files into QkvErrors naming the file.
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { checkIds, checkOptions, describeValue, QkvError } from '../errors.js';
import { checkTokenizerJson } from './tokenizer-check.js';
import { applyChatTemplate, chatTemplateOf, DEFAULT_CHAT_TEMPLATE, type ChatMessage } from './chat.js';

// a special token of tokenizer_config.json: a string, or { content } (AddedToken)
function tokenText(x: unknown): string | undefined {
  if (typeof x === 'string') return x;
  const content = typeof x === 'object' && x !== null ? (x as { content?: unknown }).content : undefined;
  return typeof content === 'string' ? content : undefined;
}

function checkText(text: unknown, what: string): void {
  if (typeof text !== 'string') throw new QkvError(`${what}: text must be a string, got ${describeValue(text)}`);
}

export class Tokenizer {
  /** The checkpoint's chat template (tokenizer_config.json), or null: chat() then uses DEFAULT_CHAT_TEMPLATE. */
  readonly chatTemplate: string | null;
  private readonly special: { bos?: string; eos?: string };

  private constructor(private readonly tok: HfTokenizer, readonly source: string, config: Record<string, unknown> = {}) {
    if (!(tok instanceof HfTokenizer)) {
      throw new QkvError(`Tokenizer: build one with Tokenizer.fromJSON(tokenizer.json, config), got ${describeValue(tok)}`);
    }
    if (typeof config !== 'object' || config === null) {
      throw new QkvError(`Tokenizer: tokenizer_config must be an object, got ${describeValue(config)}`);
    }
    this.chatTemplate = chatTemplateOf(config);
    this.special = { bos: tokenText(config.bos_token), eos: tokenText(config.eos_token) };
  }

  /** From parsed tokenizer.json and tokenizer_config.json objects. */
  static fromJSON(tokenizerJson: unknown, tokenizerConfig: unknown = {}, source = 'tokenizer.json'): Tokenizer {
    if (typeof tokenizerJson !== 'object' || tokenizerJson === null || !('model' in tokenizerJson)) {
      throw new QkvError(`${source}: not a tokenizer.json (no "model" section)`);
    }
    checkTokenizerJson(tokenizerJson, source);
    try {
      const config = (tokenizerConfig ?? {}) as Record<string, unknown>;
      return new Tokenizer(new HfTokenizer(tokenizerJson, config), source, config);
    } catch (e) {
      throw new QkvError(`${source}: cannot build the tokenizer: ${(e as Error).message}`);
    }
  }

  /** Token ids of `text` (special tokens added as the tokenizer's post-processor says, unless disabled). */
  encode(text: string, o: { addSpecialTokens?: boolean } = {}): number[] {
    checkText(text, 'Tokenizer.encode');
    checkOptions(o, 'Tokenizer.encode: options');
    return this.tok.encode(text, { add_special_tokens: o.addSpecialTokens ?? true }).ids;
  }

  /** The token strings of `text`. */
  tokenize(text: string): string[] {
    checkText(text, 'Tokenizer.tokenize');
    return this.tok.encode(text, { add_special_tokens: false }).tokens;
  }

  /** Text of `ids`. */
  decode(ids: readonly number[], o: { skipSpecialTokens?: boolean } = {}): string {
    checkIds(ids, 'Tokenizer.decode: ids');
    checkOptions(o, 'Tokenizer.decode: options');
    if (ids.length === 0) return ''; // no tokens, no text (the library refuses an empty list)
    return this.tok.decode([...ids], { skip_special_tokens: o.skipSpecialTokens ?? false });
  }

  /**
   * Each token's text, for labels: pieces that join to decode(ids). A character whose bytes span several byte-level
   * tokens (é, 🙂) belongs to the token that completes it — the ones before it get '' — instead of one U+FFFD each.
   */
  pieces(ids: readonly number[]): string[] {
    checkIds(ids, 'Tokenizer.pieces: ids');
    const out: string[] = [];
    const text = new IncrementalDecoder(this); // a short window a token, not every prefix decoded whole
    let prev = '';
    for (let i = 0; i < ids.length; i++) {
      const decoded = text.decode(ids.slice(0, i + 1)); // decode(ids[0…i])
      const full = i === ids.length - 1 ? decoded : settledText(decoded);
      out.push(full.startsWith(prev) ? full.slice(prev.length) : this.decode([ids[i]]));
      prev = full.startsWith(prev) ? full : prev + out[i];
    }
    return out;
  }

  /**
   * The prompt of a conversation: `messages` rendered with the checkpoint's chat template (or the default one), and its
   * token ids — encoded without adding special tokens, since the template writes them (as transformers does).
   * @example const { ids } = tokenizer.chat([{ role: 'user', content: 'Hello' }]);
   */
  chat(messages: readonly ChatMessage[], o: { addGenerationPrompt?: boolean } = {}): { text: string; ids: number[] } {
    checkOptions(o, 'Tokenizer.chat: options');
    const text = applyChatTemplate(this.chatTemplate ?? DEFAULT_CHAT_TEMPLATE, messages, {
      addGenerationPrompt: o.addGenerationPrompt, bosToken: this.special.bos, eosToken: this.special.eos,
    });
    return { text, ids: this.encode(text, { addSpecialTokens: false }) };
  }

  /** The string of one token id (e.g. 'Ġthe'), or undefined. */
  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  get vocabSize(): number {
    return this.tok.get_vocab(true).size;
  }
}

/**
 * Decoded text without the replacement characters at its end: a character whose bytes span several byte-level tokens
 * (é, 🙂) decodes as one or more U+FFFD until its last byte arrives — never show half a character.
 */
export function settledText(full: string): string {
  return full.replace(/\uFFFD+$/u, '');
}

/**
 * decode(ids) of a growing list of ids, one decode of a short window per token instead of the whole list (which made
 * a 1,000-token generation 1.6× slower than its decoding). The ids up to `read` are text already; the window starts
 * at `prefix`, a step earlier, so that a decoder which treats its first token specially (a leading space) sees the
 * same context as in the whole decode:  decode(ids) = done + decode(ids[prefix…]) minus decode(ids[prefix…read]).
 * The window moves on once it ends in whole characters. Where a decoder does not split that way (the window's text
 * does not begin with the text it had), the whole list is decoded instead.
 */
export class IncrementalDecoder {
  private done = ''; // decode(ids[0…read])
  private prefix = 0;
  private read = 0;
  private before = ''; // decode(ids[prefix…read])

  constructor(private readonly tokenizer: Tokenizer) {}

  /** decode(ids) for `ids`, the list given last time with ids appended. */
  decode(ids: readonly number[]): string {
    const window = this.tokenizer.decode(ids.slice(this.prefix));
    const full = window.startsWith(this.before) ? this.done + window.slice(this.before.length) : this.tokenizer.decode(ids);
    if (!full.endsWith('\uFFFD')) { // whole characters: the window moves on
      [this.done, this.prefix, this.read] = [full, this.read, ids.length];
      this.before = this.tokenizer.decode(ids.slice(this.prefix, this.read));
    }
    return full;
  }
}

