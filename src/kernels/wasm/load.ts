// Instantiating qkv's embedded WebAssembly modules (base64 from scripts/build-wasm.mjs), the same way in Node and
// browsers; null where WebAssembly SIMD is unavailable, so callers fall back to TypeScript.

/** The module's exports, or null when it cannot be compiled here. */
export function instantiate<T>(base64: string): T | null {
  try {
    const bin = typeof atob === 'function' ? Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)) : new Uint8Array(0);
    if (!WebAssembly.validate(bin)) return null;
    const env = { abort: () => { throw new Error('qkv wasm: abort'); } };
    return new WebAssembly.Instance(new WebAssembly.Module(bin), { env }).exports as unknown as T;
  } catch {
    return null;
  }
}

/** Rounds a byte count up to 16 (v128 loads want aligned operands). */
export const align16 = (n: number) => (n + 15) & ~15;
