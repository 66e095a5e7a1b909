// What practitioners monitor per attention head, computed from a layer's weights [B, H, T, S] (row b = 0):
//   entropy     mean_i H(p_i) = −Σ_j p_ij log p_ij            (nats; low = focused)
//   sparsity    mean_i 1 − e^{H(p_i)} / n_i                    (n_i allowed keys; 1 = one key, 0 = uniform)
//   distance    mean_i Σ_j p_ij |i − j|                        (how far back a head looks)
//   top tokens  the keys that receive the most attention, Σ_i p_ij
// and a label for the pattern a head shows (Clark et al. 2019, "What does BERT look at?"; Olsson et al. 2022 on
// induction heads; Xiao et al. 2024 on attention sinks).
import { describeValue, QkvError } from '../errors.js';
import { fmtShape } from '../tensor/shape.js';
import { checkTensor, type Tensor } from '../tensor/tensor.js';

export type HeadPattern = 'previous-token' | 'first-token (sink)' | 'self' | 'delimiter' | 'copying (induction)' | 'broad' | 'mixed';

export interface HeadMetrics {
  layer: number; head: number;
  entropy: number; sparsity: number; distance: number;
  topTokens: { index: number; token: string; mass: number }[];
  pattern: HeadPattern;
  /** How strongly the pattern shows: the mean weight on the pattern's key (0..1). */
  strength: number;
}

const isDelimiter = (t: string) => /^[\s.,;:!?()\[\]{}"'`\-–—]*$/.test(t.replace(/^Ġ|^Ċ|^▁/, '').replace(/Ċ|Ġ/g, ' ')) && t.length > 0;

/** Metrics and pattern of every head of one layer, from its weights [B, H, T, T] (causal self-attention, row 0). */
export function headMetrics(weights: Tensor, layer: number, tokens: readonly string[]): HeadMetrics[] {
  checkTensor(weights, 'headMetrics: weights');
  if (weights.rank !== 4) throw new QkvError(`headMetrics: weights must be [B, H, T, T], got ${fmtShape(weights.shape)}`);
  if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string')) {
    throw new QkvError(`headMetrics: tokens must be a list of strings, got ${describeValue(tokens)}`);
  }
  const [, H, T, S] = weights.shape;
  const w = weights.toFloat32();
  const out: HeadMetrics[] = [];
  for (let h = 0; h < H; h++) {
    const p = (i: number, j: number) => w[(h * T + i) * S + j];
    let entropy = 0;
    let sparsity = 0;
    let distance = 0;
    const received = new Float64Array(S);
    // pattern scores: mean weight on the previous token, on token 0, on itself, on delimiters, on "after my last copy"
    let prev = 0;
    let first = 0;
    let self = 0;
    let delim = 0;
    let copy = 0;
    let copyRows = 0;
    for (let i = 0; i < T; i++) {
      let Hi = 0;
      let n = 0;
      for (let j = 0; j < S; j++) {
        const x = p(i, j);
        if (j <= i + S - T) n++;
        if (x <= 0) continue;
        Hi -= x * Math.log(x);
        distance += x * Math.abs(i + S - T - j);
        received[j] += x;
        if (isDelimiter(tokens[j] ?? '')) delim += x;
      }
      entropy += Hi;
      sparsity += n > 1 ? 1 - Math.exp(Hi) / n : 0;
      if (i > 0) prev += p(i, i - 1);
      first += p(i, 0);
      self += p(i, i);
      // induction: the token after an earlier occurrence of the current token
      for (let j = i - 1; j >= 1; j--) {
        if (tokens[j - 1] === tokens[i]) { copy += p(i, j); copyRows++; break; }
      }
    }
    const scores: [HeadPattern, number][] = [
      ['previous-token', T > 1 ? prev / (T - 1) : 0], ['first-token (sink)', first / T], ['self', self / T],
      ['delimiter', delim / T], ['copying (induction)', copyRows >= 2 ? copy / copyRows : 0],
    ];
    scores.sort((a, b) => b[1] - a[1]);
    let [pattern, strength] = scores[0];
    // below 0.3 on any single pattern the head spreads out (broad) or mixes several
    if (strength < 0.3) [pattern, strength] = sparsity / T < 0.5 ? ['broad', 1 - sparsity / T] : ['mixed', strength];
    const topTokens = [...received.keys()].sort((a, b) => received[b] - received[a]).slice(0, 3)
      .map((j) => ({ index: j, token: tokens[j] ?? '', mass: received[j] / T }));
    out.push({ layer, head: h, entropy: entropy / T, sparsity: sparsity / T, distance: distance / T, topTokens, pattern, strength });
  }
  return out;
}
