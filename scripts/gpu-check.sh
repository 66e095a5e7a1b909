#!/usr/bin/env bash
# Everything a lent GPU machine is for, in one call (the device tool allows 10 minutes a command and 30 a session;
# the timeouts below add up to 9 minutes):
# which adapter Dawn sees, the WebGPU tests, every golden sdpa case in f32 and in f16 (the tensor cores where the
# adapter offers them), and `bench:gpu` beside PyTorch. Each result lands in $OUT (default gpu-results/).
# Here, before the call (.gpu/ and dist/ are carried; the golden data travels with the tree, in test/golden):
#   bash ../shared/tools/gpu-bundle.sh && npm run build
# The device tool's command, with carry [".gpu", "dist"]:
#   bash .gpu/run.sh bash scripts/gpu-check.sh
set -uo pipefail
golden=$(cd "${1:-test/golden}" && pwd)
out=${OUT:-gpu-results}
mkdir -p "$out"
export QKV_GOLDEN=$golden
timeout 30 node dist/src/node/cli/main.js gpu > "$out/adapter.txt" 2>&1
timeout 120 node --test dist/test/backends/webgpu.test.js dist/test/backends/webgpu-f16.test.js dist/test/backends/webgpu-tensor-cores.test.js > "$out/tests.txt" 2>&1
timeout 45 node dist/src/node/conformance-cli.js "$golden" --device webgpu > "$out/conformance-f32.txt" 2>&1
timeout 45 node dist/src/node/conformance-cli.js "$golden" --device webgpu --dtype f16 > "$out/conformance-f16.txt" 2>&1
timeout 300 node dist/bench/gpu.bench.js --sweep > "$out/bench.txt" 2>&1
for f in adapter tests conformance-f32 conformance-f16 bench; do echo "== $f"; grep -av 'artificially reduced\|^skip ' "$out/$f.txt" | tail -n 40; done
