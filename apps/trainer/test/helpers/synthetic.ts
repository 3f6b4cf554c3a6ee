/** Deterministic synthetic batches (a function of split and epoch only), for loop tests without images. */
import type { Batch } from '../../src/train/step';

function mulberry(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function syntheticBatches(opts: {
  imageSize: number;
  batchSize: number;
  train: number;
  val: number;
  classes: number;
}) {
  return (split: 'train' | 'val', epoch: number): AsyncIterable<Batch> => {
    const total = split === 'train' ? opts.train : opts.val;
    const rand = mulberry(split === 'train' ? 1000 + epoch : 7);
    const px = opts.imageSize * opts.imageSize * 3;
    const all: Batch[] = [];
    for (let start = 0; start < total; start += opts.batchSize) {
      const n = Math.min(opts.batchSize, total - start);
      const y = Int32Array.from({ length: n }, (_, i) => (start + i) % opts.classes);
      const x = new Float32Array(n * px);
      for (let i = 0; i < n; i++)
        for (let j = 0; j < px; j++) x[i * px + j] = rand() * 2 - 1 + (j % 3 === y[i]! ? 1.5 : 0); // class-coloured noise
      all.push({ x, y, n });
    }
    return (async function* () {
      for (const b of all) yield b;
    })();
  };
}
