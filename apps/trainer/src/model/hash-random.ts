/**
 * Counter-based random numbers: every value is a pure function of (seed, stream name, index), so a tensor's
 * initialisation never depends on the order in which tensors are created, on the process, or on what ran before.
 * The hash is the one /work/shared/fixtures/resnet18/README.md specifies (FNV-1a of the name, murmur3's fmix32).
 * All integer arithmetic is unsigned 32-bit and wrapping.
 */

const encoder = new TextEncoder();
// Module-level aliases: hot loops must not look up globals (in a vm context, as under jest, each global lookup goes
// through an interceptor and is ~100x slower).
const { imul, sqrt, log, cos, PI } = Math;

/** FNV-1a, 32-bit, over the UTF-8 bytes of `name`. */
export function fnv1a32(name: string): number {
  let h = 0x811c9dc5;
  for (const b of encoder.encode(name)) {
    h ^= b;
    h = imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** murmur3's 32-bit finaliser. */
export function fmix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

const TWO_POW_M24 = 2 ** -24;

/**
 * A stream of uniforms in [0, 1) named `name`: `u(i) = (fmix32(i * 0x9E3779B1 + fnv1a32(name) + seed) >>> 8) * 2^-24`.
 * Every value is exactly representable in float32.
 */
export function uniformStream(seed: number, name: string): (i: number) => number {
  const base = (fnv1a32(name) + (seed >>> 0)) >>> 0;
  return (i: number) => (fmix32((imul(i >>> 0, 0x9e3779b1) + base) >>> 0) >>> 8) * TWO_POW_M24;
}

/** Fills `n` uniforms of stream `name` into a new Float32Array, mapped through `f`. */
export function fillUniform(seed: number, name: string, n: number, f: (u: number) => number): Float32Array {
  const u = uniformStream(seed, name);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = f(u(i));
  return out;
}

/** `n` standard normal samples (Box–Muller on two uniform streams derived from `name`). */
export function fillNormal(seed: number, name: string, n: number, std = 1): Float32Array {
  const u1 = uniformStream(seed, `${name}#normal-radius`);
  const u2 = uniformStream(seed, `${name}#normal-angle`);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = sqrt(-2 * log(1 - u1(i)));
    out[i] = std * r * cos(2 * PI * u2(i));
  }
  return out;
}
