// Paths to the embedded model and the golden checkpoints, for model tests.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GOLDEN } from '../helpers.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const TINY = join(ROOT, 'models', 'qkv-tiny');
export const GOLDEN_MODELS = join(GOLDEN, 'models');
