// New keys (or values) into a paged KV cache's pool on the GPU: x [R, H, C] holds R new tokens of H kv heads, and
// token r goes to pool slot slots[r] = block · blockSize + offset. The pool is [blocks, H, blockSize, C], the layout
// the CPU's paged cache uses and the decode kernel reads (sdpa-decode.wgsl). x is stored as X and the pool as Y (f32,
// or f16 in the host's variants).
//   out[((⌊slots[r] / blockSize⌋ · H + h) · blockSize + slots[r] mod blockSize) · C + c] = Y(x[(r · H + h) · C + c])

alias X = f32;
alias Y = f32;

struct Params { R: u32, H: u32, C: u32, blockSize: u32 }

@group(0) @binding(0) var<storage, read> x: array<X>;
@group(0) @binding(1) var<storage, read> slots: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<Y>;
@group(0) @binding(3) var<uniform> P: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let id = gid.x + gid.y * 65535u * 64u; // dispatches past 65535 workgroups continue along y
  if (id >= P.R * P.H * P.C) { return; }
  let c = id % P.C;
  let rh = id / P.C;
  let h = rh % P.H;
  let r = rh / P.H;
  let slot = slots[r];
  out[((slot / P.blockSize * P.H + h) * P.blockSize + slot % P.blockSize) * P.C + c] = Y(x[id]);
}
