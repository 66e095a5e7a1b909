// llama.cpp, measured in the same run as qkv, through node-llama-cpp (a dev dependency with prebuilt CPU binaries; the
// exact version is pinned in package.json). The benchmarks write the GGUF files themselves (gguf.ts) from the same
// weights qkv runs, and feed token ids, so both run the same model on the same tokens.
import { getLlama, type Llama, type LlamaModel } from 'node-llama-cpp';

let llama: Llama | null = null;

/** llama.cpp's CPU build (never a GPU, never a download or a build from source). */
export async function llamaCpp(): Promise<Llama> {
  llama ??= await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  return llama;
}

/** Loads a GGUF file on the CPU. */
export async function loadGguf(path: string): Promise<LlamaModel> {
  return (await llamaCpp()).loadModel({ modelPath: path, gpuLayers: 0 });
}

/** Greedy generation of `n` tokens after `prompt` (token ids), with prefill and decode timed apart. */
export async function llamaGenerate(model: LlamaModel, prompt: number[], n: number, threads: number):
  Promise<{ tokens: number[]; prefillMs: number; decodeMs: number }> {
  const context = await model.createContext({ contextSize: prompt.length + n + 8, batchSize: 512, threads: { ideal: threads, min: threads } });
  try {
    const seq = context.getSequence();
    const t0 = performance.now();
    // the prompt's last token is evaluated with the first generated one, as qkv's prefill produces the first token
    await seq.evaluateWithoutGeneratingNewTokens(prompt.slice(0, -1) as never);
    const tokens: number[] = [];
    let t1 = 0;
    for await (const t of seq.evaluate(prompt.slice(-1) as never, { temperature: 0 })) {
      if (tokens.length === 0) t1 = performance.now();
      tokens.push(t as number);
      if (tokens.length === n) break;
    }
    return { tokens, prefillMs: t1 - t0, decodeMs: performance.now() - t1 };
  } finally {
    await context.dispose();
  }
}
