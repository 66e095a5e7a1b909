// x [A, B, C] → out [B, capA, C] at rows off … off + A − 1 of each of the B blocks: heads apart ([T, H, D] →
// [H, T, D]), heads together ([H, T, D] → [T, H, D]), and appending new keys to a KV cache [Hkv, capacity, D] at its
// length. x is stored as X and out as Y: f32, or f16 in the host's variants — f32 activations into an f16 KV cache,
// an f16 attention output back to f32.
//   out[(b · capA + off + a) · C + c] = Y(x[(a · B + b) · C + c])

alias X = f32;
alias Y = f32;

struct Params { A: u32, B: u32, C: u32, capA: u32, off: u32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<storage, read> x: array<X>;
@group(0) @binding(1) var<storage, read_write> out: array<Y>;
@group(0) @binding(2) var<uniform> P: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let id = gid.x + gid.y * 65535u * 64u; // dispatches past 65535 workgroups continue along y
  if (id >= P.A * P.B * P.C) { return; }
  let c = id % P.C;
  let ab = id / P.C;
  let b = ab % P.B;
  let a = ab / P.B;
  out[(b * P.capA + P.off + a) * P.C + c] = Y(x[id]);
}
