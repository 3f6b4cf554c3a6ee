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

/**
 * A synthetic dataset with the view semantics of data/batches.ts, for the feature cache: `train` and `val` fixed
 * images (class-coloured noise); train batches in a fresh order each epoch. Views per `mode`:
 * - 'fixed': each image always the same (views 2·i), as without augmentation;
 * - 'flip': image i mirrored horizontally when a draw of (epoch, i) says so (views 2·i + flip);
 * - 'fresh': new pixels for every image in every epoch (views -1), as with a random crop.
 * Val: index order, the same every epoch, views 2·i.
 */
export function syntheticViewBatches(opts: {
  imageSize: number;
  batchSize: number;
  train: number;
  val: number;
  classes: number;
  mode: 'fixed' | 'flip' | 'fresh';
}) {
  const s = opts.imageSize;
  const px = s * s * 3;
  const image = (rand: () => number, label: number) => {
    const x = new Float32Array(px);
    for (let j = 0; j < px; j++) x[j] = rand() * 2 - 1 + (j % 3 === label ? 1.5 : 0);
    return x;
  };
  const mirrored = (x: Float32Array) => {
    const m = new Float32Array(px);
    for (let r = 0; r < s; r++)
      for (let c = 0; c < s; c++)
        for (let k = 0; k < 3; k++) m[(r * s + c) * 3 + k] = x[(r * s + (s - 1 - c)) * 3 + k]!;
    return m;
  };
  const labelOf = (i: number) => i % opts.classes;
  const fixedTrain = Array.from({ length: opts.train }, (_, i) => image(mulberry(100 + i), labelOf(i)));
  const fixedVal = Array.from({ length: opts.val }, (_, i) => image(mulberry(9000 + i), labelOf(i)));

  return (split: 'train' | 'val', epoch: number): AsyncIterable<Batch> => {
    const total = split === 'train' ? opts.train : opts.val;
    const order = Array.from({ length: total }, (_, i) => i);
    if (split === 'train') {
      const rand = mulberry(5000 + epoch);
      for (let k = total - 1; k > 0; k--) {
        const j = Math.floor(rand() * (k + 1));
        [order[k], order[j]] = [order[j]!, order[k]!];
      }
    }
    const sample = (i: number): { x: Float32Array; view: number } => {
      if (split === 'val') return { x: fixedVal[i]!, view: 2 * i };
      if (opts.mode === 'fixed') return { x: fixedTrain[i]!, view: 2 * i };
      if (opts.mode === 'fresh') return { x: image(mulberry(epoch * 100_000 + i), labelOf(i)), view: -1 };
      const flip = mulberry(epoch * 100_000 + i)() < 0.5;
      return { x: flip ? mirrored(fixedTrain[i]!) : fixedTrain[i]!, view: 2 * i + (flip ? 1 : 0) };
    };
    return (async function* () {
      for (let start = 0; start < total; start += opts.batchSize) {
        const n = Math.min(opts.batchSize, total - start);
        const x = new Float32Array(n * px);
        const y = new Int32Array(n);
        const views = new Int32Array(n);
        for (let p = 0; p < n; p++) {
          const i = order[start + p]!;
          const v = sample(i);
          x.set(v.x, p * px);
          y[p] = labelOf(i);
          views[p] = v.view;
        }
        yield { x, y, n, views };
      }
    })();
  };
}
