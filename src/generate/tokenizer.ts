// tokenizer.json through @huggingface/tokenizers (a maintained pure-JS implementation of the Rust library's
// pipeline: normalizer, pre-tokenizer, BPE/WordPiece/Unigram model, post-processor, decoder). This wrapper fixes
// the API qkv uses and turns malformed files into QkvErrors naming the file.
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { QkvError } from '../errors.js';

export class Tokenizer {
  private constructor(private readonly tok: HfTokenizer, readonly source: string) {}

  /** From parsed tokenizer.json and tokenizer_config.json objects. */
  static fromJSON(tokenizerJson: unknown, tokenizerConfig: unknown = {}, source = 'tokenizer.json'): Tokenizer {
    if (typeof tokenizerJson !== 'object' || tokenizerJson === null || !('model' in tokenizerJson)) {
      throw new QkvError(`${source}: not a tokenizer.json (no "model" section)`);
    }
    try {
      return new Tokenizer(new HfTokenizer(tokenizerJson, (tokenizerConfig ?? {}) as object), source);
    } catch (e) {
      throw new QkvError(`${source}: cannot build the tokenizer: ${(e as Error).message}`);
    }
  }

  /** Token ids of `text` (special tokens added as the tokenizer's post-processor says, unless disabled). */
  encode(text: string, o: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tok.encode(text, { add_special_tokens: o.addSpecialTokens ?? true }).ids;
  }

  /** The token strings of `text`. */
  tokenize(text: string): string[] {
    return this.tok.encode(text, { add_special_tokens: false }).tokens;
  }

  /** Text of `ids`. */
  decode(ids: readonly number[], o: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return ''; // no tokens, no text (the library refuses an empty list)
    return this.tok.decode([...ids], { skip_special_tokens: o.skipSpecialTokens ?? false });
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
