import type { S3Client } from '@aws-sdk/client-s3';
import { isNotFound, listObjects, parseS3Uri } from '@gpulab/storage';
import { mapLimit } from './concurrency';
import { DatasetError } from './errors';
import { attachCache, ImageCache } from './image-cache';
import { ImageDecodeError, probe } from './image-kernel.cjs';
import { type Candidate, classifyListing, type Split, throwProblems } from './layout';
import { DATA_DEFAULTS } from './limits';

export interface ImageRef {
  key: string;
  label: number;
  size: number;
}

export interface DatasetIndex {
  bucket: string;
  /** The dataset prefix, with a trailing "/" (empty for a whole bucket). */
  prefix: string;
  /** Class names: train/'s folder names sorted by code point; a label is an index into this. */
  classes: string[];
  train: ImageRef[];
  val: ImageRef[];
  /** Files that are not used, with why: not images, unreadable, too large. */
  skipped: { key: string; reason: string }[];
}

export interface LoadDatasetOptions {
  /** Objects fetched and validated at once (default 8). */
  concurrency?: number;
  /** Budget in bytes of the in-memory cache of encoded images reused by `batches` (default 512 MiB; 0 disables). */
  cacheBytes?: number;
  maxFileBytes?: number;
  maxPixels?: number;
  /** Called after each image is validated. */
  onProgress?: (done: number, total: number) => void;
}

/** Splits and checks a dataset URI: `s3://bucket/prefix` (trailing slash optional). */
export function parseDatasetUri(uri: string): { bucket: string; prefix: string; root: string } {
  let loc: { bucket: string; key: string };
  try {
    loc = parseS3Uri(uri);
  } catch (e) {
    throw new DatasetError(`invalid dataset URI ${JSON.stringify(uri)}: ${(e as Error).message}`, { uri });
  }
  const prefix = loc.key === '' || loc.key.endsWith('/') ? loc.key : `${loc.key}/`;
  return { bucket: loc.bucket, prefix, root: `s3://${loc.bucket}/${prefix}` };
}

function isNoSuchBucket(e: unknown): boolean {
  return (e as { name?: string }).name === 'NoSuchBucket';
}

/**
 * Lists, validates and indexes an ImageFolder dataset in S3, before any training. Structural problems throw a
 * DatasetError naming each problem and its location. Every image is then downloaded (bounded concurrency) and
 * checked: header dimensions (over `maxPixels` is refused before decoding) and a small decode that reads the whole
 * stream. Unreadable files are skipped and recorded; a class or split left with no readable image is a DatasetError.
 * The downloaded bytes stay in an in-memory cache (bounded by `cacheBytes`) that `batches` reads.
 *
 * Errors from S3 other than a missing bucket propagate unchanged (infrastructure, retryable).
 */
export async function loadDatasetIndex(
  s3: S3Client,
  datasetUri: string,
  opts: LoadDatasetOptions = {},
): Promise<DatasetIndex> {
  const { bucket, prefix, root } = parseDatasetUri(datasetUri);
  const maxFileBytes = opts.maxFileBytes ?? DATA_DEFAULTS.maxFileBytes;
  const maxPixels = opts.maxPixels ?? DATA_DEFAULTS.maxPixels;

  let listing: { key: string; size: number }[];
  try {
    listing = await listObjects(s3, bucket, prefix);
  } catch (e) {
    if (isNoSuchBucket(e)) throw new DatasetError(`dataset not found at ${root}: bucket "${bucket}" does not exist`);
    throw e;
  }
  if (listing.length === 0) throw new DatasetError(`dataset not found at ${root}: no objects under that prefix`);

  const layout = classifyListing(listing, prefix, root, { maxFileBytes });
  const cache = new ImageCache(opts.cacheBytes ?? DATA_DEFAULTS.cacheBytes);
  const skipped = [...layout.skipped];
  let done = 0;

  const results = await mapLimit(layout.candidates, opts.concurrency ?? DATA_DEFAULTS.concurrency, async (c) => {
    const verdict = await validateOne(s3, bucket, c, cache, { maxFileBytes, maxPixels });
    done++;
    opts.onProgress?.(done, layout.candidates.length);
    return verdict;
  });

  const label = new Map(layout.classes.map((c, i) => [c, i]));
  const out: Record<Split, ImageRef[]> = { train: [], val: [] };
  const readable = new Set<string>();
  const firstReason = new Map<string, string>();
  results.forEach((reason, i) => {
    const c = layout.candidates[i]!;
    if (reason === null) {
      out[c.split].push({ key: c.key, label: label.get(c.className)!, size: c.size });
      readable.add(`${c.split}/${c.className}`);
    } else {
      skipped.push({ key: c.key, reason });
      if (!firstReason.has(`${c.split}/${c.className}`)) firstReason.set(`${c.split}/${c.className}`, reason);
    }
  });

  const problems: string[] = [];
  for (const split of ['train', 'val'] as const) {
    for (const c of layout.folders[split]) {
      const id = `${split}/${c}`;
      if (!readable.has(id)) {
        const n = layout.candidates.filter((x) => x.split === split && x.className === c).length;
        problems.push(`${id}/ has no readable images (${n} skipped; first: ${firstReason.get(id) ?? 'none'})`);
      }
    }
    if (out[split].length === 0) problems.push(`${split}/ has no readable images`);
  }
  if (problems.length) throwProblems(root, problems);

  cache.hits = 0;
  cache.misses = 0;
  skipped.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const index: DatasetIndex = { bucket, prefix, classes: layout.classes, train: out.train, val: out.val, skipped };
  attachCache(index, cache);
  return index;
}

/** null when the image is usable, else the reason it is skipped. Storage errors other than "gone" propagate. */
async function validateOne(
  s3: S3Client,
  bucket: string,
  c: Candidate,
  cache: ImageCache,
  limits: { maxFileBytes: number; maxPixels: number },
): Promise<string | null> {
  let bytes: Uint8Array;
  try {
    bytes = await cache.fetch(s3, bucket, c.key);
  } catch (e) {
    if (isNotFound(e)) return 'object disappeared after listing';
    throw e;
  }
  if (bytes.byteLength > limits.maxFileBytes) {
    return `file too large: ${bytes.byteLength} bytes > ${limits.maxFileBytes} byte limit`;
  }
  let info: Awaited<ReturnType<typeof probe>>;
  try {
    info = await probe(bytes, limits.maxPixels, { keep: true });
    cache.setDims(c.key, info.width, info.height);
  } catch (e) {
    if (e instanceof ImageDecodeError) return e.code === 'TOO_LARGE' ? e.message : `unreadable image: ${e.message}`;
    throw e;
  }
  cache.set(c.key, bytes);
  // Pixels the check decoded in full (most PNGs, BMP, PNM) are kept as the first epoch would keep them (the same
  // budget, first come), so that it does not decode each image a second time.
  if (info.rgb) cache.setDecoded(c.key, { data: info.rgb, width: info.width, height: info.height });
  return null;
}
