/**
 * Small seeded PRNGs. Every random choice in the data pipeline is a pure function of (seed, epoch, image index), so a
 * run resumed from a checkpoint replays an epoch exactly, whatever order or thread the images are decoded in.
 */

/** mulberry32: 32-bit state, uniform floats in [0, 1) with 32 bits of resolution. */
export function mulberry32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));

/** MurmurHash3 (x86, 32-bit) over 32-bit words: mixes integers into one well-distributed 32-bit seed. */
export function hashInts(...words: number[]): number {
  let h = 0x9747b28c;
  for (const w of words) {
    let k = Math.imul(w | 0, 0xcc9e2d51);
    k = rotl(k, 15);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = rotl(h, 13);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= words.length * 4;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const SALT_SHUFFLE = 0x5348_5546; // "SHUF"
const SALT_AUGMENT = 0x4155_4732; // "AUG2"

/** The RNG for one image's augmentation in one epoch; `imageIndex` is its position in the index's split list. */
export function imageRng(seed: number, epoch: number, imageIndex: number): () => number {
  return mulberry32(hashInts(SALT_AUGMENT, seed, epoch, imageIndex));
}

/** Fisher–Yates permutation of 0..n-1 for (seed, epoch). */
export function shuffledOrder(n: number, seed: number, epoch: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const rng = mulberry32(hashInts(SALT_SHUFFLE, seed, epoch));
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

/** torch.empty(1).uniform_(lo, hi) */
export function uniform(rng: () => number, lo: number, hi: number): number {
  return lo + (hi - lo) * rng();
}

/** torch.randint(lo, hi): an integer in [lo, hi). */
export function randint(rng: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo));
}
