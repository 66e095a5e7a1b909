// Continuous batching: every request gets exactly the tokens it gets alone, also when a small block pool forces
// preemption and recomputation; blocks never leak.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { greedy } from '../../../src/generate/generate.js';
import { ContinuousBatcher } from '../../../src/generate/scheduler.js';
import type { CausalLM } from '../../../src/models/model.js';
import { loadCheckpoint } from '../../../src/node/checkpoint.js';
import { TINY } from '../../models/helpers.js';

const model = loadCheckpoint(TINY, { tokenizer: false }).model as CausalLM;
const requests = Array.from({ length: 7 }, (_, id) => ({
  id, prompt: Array.from({ length: 3 + ((id * 5) % 11) }, (_, t) => 10 + ((id * 131 + t * 17) % 4000)), maxTokens: 6 + ((id * 7) % 13),
  greedy: true, stopTokens: [] as number[],
}));
const alone = new Map(requests.map((r) => [r.id, greedy(model, [r.prompt], r.maxTokens).slice(r.prompt.length)]));

for (const [name, maxBlocks] of [['a roomy pool', 64], ['a pool so small it must preempt', 7]] as const) {
  test(`continuous batching with ${name}: each request's tokens equal its own greedy run`, () => {
    const batcher = new ContinuousBatcher(model, { blockSize: 4, maxBlocks });
    // arrivals spread over the first steps: requests join a batch that is already running
    let next = 0;
    while (next < requests.length || batcher.busy) {
      if (next < requests.length) batcher.submit(requests[next++]);
      batcher.step();
    }
    assert.equal(batcher.finished.length, requests.length);
    for (const r of batcher.finished) assert.deepEqual(r.ids, alone.get(r.id), `request ${r.id}`);
    if (maxBlocks === 7) assert.ok(batcher.finished.some((r) => r.preemptions > 0), 'the small pool should have preempted');
    assert.ok(batcher.peakBlocks <= maxBlocks);
    assert.equal(batcher.cache.allocator.usedBlocks, 0, 'every block returned');
  });
}

test('a request that can never fit is refused up front', () => {
  const batcher = new ContinuousBatcher(model, { blockSize: 4, maxBlocks: 2 });
  assert.throws(() => batcher.submit({ id: 1, prompt: [1, 2, 3, 4, 5], maxTokens: 10 }), /request 1 needs 4 blocks, the pool has 2/);
});
