/**
 * ToTensor + Normalize(IMAGENET_MEAN, IMAGENET_STD), bit-exact with torch: every step is rounded to float32 as torch
 * computes it (uint8 → float32 / 255, then (x − mean) / std with float32 mean and std). A 256-entry table per channel
 * makes it a lookup.
 */
export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

const f = Math.fround;

function buildTable(): Float32Array {
  const t = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    const m = f(IMAGENET_MEAN[c]!);
    const s = f(IMAGENET_STD[c]!);
    for (let v = 0; v < 256; v++) t[c * 256 + v] = f(f(f(v / 255) - m) / s);
  }
  return t;
}

const TABLE = buildTable();

/** The normalised value of 8-bit sample `v` in channel `c` (0 = R, 1 = G, 2 = B). */
export function normalizedValue(c: number, v: number): number {
  return TABLE[c * 256 + v]!;
}

/** Writes packed RGB bytes as normalised float32 HWC into `out` starting at `offset`. */
export function normalizeInto(rgb: Uint8Array, out: Float32Array, offset: number): void {
  const n = rgb.length;
  if (n % 3 !== 0) throw new RangeError(`RGB buffer length ${n} is not a multiple of 3`);
  if (offset + n > out.length) throw new RangeError('normalised image does not fit the output');
  for (let i = 0; i < n; i += 3) {
    out[offset + i] = TABLE[rgb[i]!]!;
    out[offset + i + 1] = TABLE[256 + rgb[i + 1]!]!;
    out[offset + i + 2] = TABLE[512 + rgb[i + 2]!]!;
  }
}
