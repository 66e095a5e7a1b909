// Where the embedded qkv-tiny checkpoint lives: inside the package (dist/src/node → models/qkv-tiny).
import { fileURLToPath } from 'node:url';

/** The directory of the embedded default model, qkv-tiny. */
export const DEFAULT_MODEL_DIR = fileURLToPath(new URL('../../../models/qkv-tiny', import.meta.url));
