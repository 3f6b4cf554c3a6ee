import type { S3Client } from '@aws-sdk/client-s3';
import type { JobSpec } from '@gpulab/core';
import { mapLimit } from './concurrency';
import type { DatasetIndex } from './dataset-index';
import { type DecodePool, sharedDecodePool } from './decode-pool';
import { DatasetError } from './errors';
import { trainOp, valOp } from './geometry';
import { cacheFor, type ImageCache } from './image-cache';
import { dimensions, ImageDecodeError } from './image-kernel.cjs';
import { DATA_DEFAULTS } from './limits';
import { normalizeInto } from './normalize';
import { imageRng, shuffledOrder } from './prng';

export interface Batch {
  /** n × imageSize × imageSize × 3, NHWC row-major, normalised with ImageNet mean and std. */
  x: Float32Array;
  /** n labels (indices into index.classes). */
  y: Int32Array;
  /** Images in this batch: batchSize, except possibly the last. */
  n: number;
  /**
   * Per image, the id of its view: 2·i + flip (i its index in the split) when the transform has no random crop — the
   * pixels are then a function of (image, flip) alone, the same in every epoch — and -1 for a random crop (a new
   * view each epoch). Used by the head-only feature cache (train/feature-cache.ts).
   */
  views: Int32Array;
}

export interface BatchOptions {
  s3: S3Client;
  index: DatasetIndex;
  split: 'train' | 'val';
  imageSize: number;
  batchSize: number;
  augmentation: JobSpec['augmentation'];
  seed: number;
  epoch: number;
  /** Decode worker threads (default 2; 0 decodes on the main thread). Ignored when `pool` is given. */
  workers?: number;
  /**
   * The pool to decode on (the caller closes it). Default: a process-wide pool shared by all calls with the same
   * `workers`, started on first use (see sharedDecodePool / closeSharedDecodePools).
   */
  pool?: DecodePool;
  maxPixels?: number;
  /** Batches prepared ahead of the one the caller holds (default 4, fewer when batches are large; at least 1). */
  prefetch?: number;
}

const FETCH_CONCURRENCY = 8;
/** Prepared batches held ahead at most (bytes of float32 pixels), which bounds the prefetch depth for big batches. */
const PREFETCH_BYTES = 128 * 1024 * 1024;

/**
 * The batches of one epoch of one split, deterministic in (seed, epoch):
 * - train: order is a seeded Fisher–Yates shuffle of (seed, epoch); each image's crop and flip come from an RNG seeded
 *   by (seed, epoch, its index in `index.train`), so a resumed run replays the epoch exactly, whatever the threads do.
 *   Transform: RandomResizedCrop(imageSize, augmentation.scale, (3/4, 4/3)) then RandomHorizontalFlip(0.5) when
 *   enabled; with randomResizedCrop off, the val geometry (+ flip).
 * - val: index order; Resize(round(imageSize·256/224)) then CenterCrop(imageSize); no randomness.
 * Decoding runs on a small pool of worker threads (shared across calls); the next batches (up to `prefetch`) are
 * prepared while the caller uses the current one. Up to 8 images per decode thread are fetched (cache, else S3) and queued at a time; the pool
 * bounds how many are decoded at once.
 */
export async function* batches(opts: BatchOptions): AsyncGenerator<Batch, void, undefined> {
  const { index, split, imageSize, batchSize } = opts;
  if (!Number.isInteger(imageSize) || imageSize < 1) throw new RangeError(`imageSize must be a positive integer`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer`);
  const refs = split === 'train' ? index.train : index.val;
  const order = split === 'train' ? shuffledOrder(refs.length, opts.seed, opts.epoch) : null;
  const count = Math.ceil(refs.length / batchSize);
  if (count === 0) return;
  const maxPixels = opts.maxPixels ?? DATA_DEFAULTS.maxPixels;
  const cache = cacheFor(index);
  const pool = opts.pool ?? (await sharedDecodePool(opts.workers ?? DATA_DEFAULTS.workers, maxPixels));

  const build = async (b: number): Promise<Batch> => {
    const start = b * batchSize;
    const n = Math.min(batchSize, refs.length - start);
    const px = imageSize * imageSize * 3;
    const x = new Float32Array(n * px);
    const y = new Int32Array(n);
    const views = new Int32Array(n);
    await mapLimit(
      Array.from({ length: n }, (_, p) => p),
      FETCH_CONCURRENCY * Math.max(1, pool.threads),
      async (p) => {
        const i = order ? order[start + p]! : start + p;
        const ref = refs[i]!;
        const bytes = await cache.fetch(opts.s3, index.bucket, ref.key);
        const { width, height } = await dims(cache, `s3://${index.bucket}/${ref.key}`, ref.key, bytes, maxPixels);
        const op =
          split === 'train'
            ? trainOp(width, height, imageSize, opts.augmentation, imageRng(opts.seed, opts.epoch, i))
            : valOp(width, height, imageSize);
        let rgb: Uint8Array;
        try {
          // Pixels decoded in an earlier epoch are reused; otherwise decoded, and kept if they fit the budget.
          const image = cache.getDecoded(ref.key);
          if (image) rgb = await pool.apply(image, op);
          else if (cache.decodedRoom(width * height * 3)) {
            const kept = await pool.runKeep(bytes, op, width * height);
            cache.setDecoded(ref.key, kept.image);
            rgb = kept.out;
          } else rgb = await pool.run(bytes, op, width * height);
        } catch (e) {
          if (e instanceof ImageDecodeError) {
            throw new DatasetError(`image s3://${index.bucket}/${ref.key} no longer decodes: ${e.message}`);
          }
          throw e;
        }
        normalizeInto(rgb, x, p * px);
        y[p] = ref.label;
        views[p] = op.pre === null ? 2 * i + (op.flip ? 1 : 0) : -1;
      },
    );
    return { x, y, n, views };
  };

  // Up to `depth` batches are being prepared while the caller uses the current one, so the decode threads always
  // have work queued even while the main thread is busy in a long step (which delays their completion messages).
  const batchBytes = batchSize * imageSize * imageSize * 3 * 4;
  const depth = Math.max(1, Math.min(opts.prefetch ?? 4, Math.floor(PREFETCH_BYTES / batchBytes)));
  const ahead: Promise<Batch>[] = [];
  let issued = 0;
  const fill = () => {
    while (issued < count && ahead.length < depth) {
      const p = build(issued++);
      // A prefetch may fail while the caller holds an earlier batch; it is awaited (and rethrown) in its turn.
      p.catch(() => {});
      ahead.push(p);
    }
  };
  try {
    for (let b = 0; b < count; b++) {
      fill();
      const current: Batch = await ahead.shift()!;
      fill();
      yield current;
    }
  } finally {
    // Stopped early (break, error): let the prefetches settle so nothing runs on after the loop.
    await Promise.allSettled(ahead);
  }
}

async function dims(cache: ImageCache, uri: string, key: string, bytes: Uint8Array, maxPixels: number) {
  const known = cache.getDims(key);
  if (known) return known;
  try {
    const d = await dimensions(bytes, maxPixels);
    cache.setDims(key, d.width, d.height);
    return d;
  } catch (e) {
    if (e instanceof ImageDecodeError) throw new DatasetError(`image ${uri} no longer decodes: ${e.message}`);
    throw e;
  }
}
