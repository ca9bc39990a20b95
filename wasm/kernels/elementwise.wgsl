// elementwise: per-element steps not fused into a product.
//
//   silu_mul: a[i] = silu(a[i]) · b[i]   (SwiGLU: a is the gate, b the up
//             projection; used when gate and up cannot be one product)
//
//   a, b: (n) act

// act is the activations' type: f32, or f16 where the device has
// shader-f16 (package kernels rewrites this line).
alias act = f32;

struct Params {
  n: u32,
}

@group(0) @binding(0) var<storage, read_write> a: array<act>;
@group(0) @binding(1) var<storage, read> b: array<act>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(64)
fn silu_mul(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * 65535u * 64u + gid.x;
  if (i < params.n) {
    let g = f32(a[i]);
    a[i] = act(g / (1.0 + exp(-g)) * f32(b[i]));
  }
}
