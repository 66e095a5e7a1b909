// Paths to the embedded model and the golden checkpoints, for model tests.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GOLDEN } from '../helpers.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const TINY = join(ROOT, 'models', 'qkv-tiny');
export const GOLDEN_MODELS = join(GOLDEN, 'models');
/** node:test skip reason when the golden checkpoints are not beside the checkout. */
export const skipGolden = existsSync(GOLDEN_MODELS) ? false : `no golden checkpoints at ${GOLDEN_MODELS}`;
