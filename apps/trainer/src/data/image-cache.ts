import type { S3Client } from '@aws-sdk/client-s3';
import { getObjectBytes } from '@gpulab/storage';
import type { DecodedImage } from './decode-pool';

/**
 * Encoded image bytes kept in memory between indexing and training, bounded by a byte budget, each image's
 * dimensions (a few bytes each, unbounded), and the decoded pixels of images within a second budget, so later epochs
 * only crop and resize them (decoding a PNG or JPEG costs more than the augmentation of a small image).
 *
 * Admission is first-come and nothing is evicted: training reads the whole dataset once per epoch in a fresh order,
 * and for such cyclic scans LRU would evict every entry before its next use (hit rate 0 once the dataset exceeds the
 * budget), whereas keeping a fixed subset serves budget/size of all reads from memory. Misses fall back to S3.
 */
export class ImageCache {
  private readonly entries = new Map<string, Uint8Array>();
  /** Decoded pixels of images seen before (first-come within `maxDecodedBytes`, like the encoded bytes). */
  private readonly decoded = new Map<string, DecodedImage>();
  private decodedHeld = 0;
  private readonly dims = new Map<string, { width: number; height: number }>();
  private bytesHeld = 0;
  hits = 0;
  misses = 0;

  constructor(
    readonly maxBytes: number,
    readonly maxDecodedBytes = 256 * 1024 * 1024,
  ) {}

  getDecoded(key: string): DecodedImage | undefined {
    return this.decoded.get(key);
  }

  /** Whether `bytes` more decoded bytes fit the budget. */
  decodedRoom(bytes: number): boolean {
    return this.decodedHeld + bytes <= this.maxDecodedBytes;
  }

  setDecoded(key: string, image: DecodedImage): boolean {
    if (this.decoded.has(key)) return true;
    if (!this.decodedRoom(image.data.byteLength)) return false;
    this.decoded.set(key, image);
    this.decodedHeld += image.data.byteLength;
    return true;
  }

  get decodedBytes(): number {
    return this.decodedHeld;
  }

  get bytes(): number {
    return this.bytesHeld;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): Uint8Array | undefined {
    return this.entries.get(key);
  }

  /** Stores a private copy if it fits the budget; returns whether it was stored. */
  set(key: string, bytes: Uint8Array): boolean {
    if (this.entries.has(key)) return true;
    if (this.bytesHeld + bytes.byteLength > this.maxBytes) return false;
    // An exact-size copy: views into larger (pooled) buffers would pin them and be copied whole into workers.
    const copy = new Uint8Array(bytes.byteLength);
    copy.set(bytes);
    this.entries.set(key, copy);
    this.bytesHeld += copy.byteLength;
    return true;
  }

  getDims(key: string): { width: number; height: number } | undefined {
    return this.dims.get(key);
  }

  setDims(key: string, width: number, height: number): void {
    this.dims.set(key, { width, height });
  }

  /** The bytes of `key`, from memory or else from S3. */
  async fetch(s3: S3Client, bucket: string, key: string): Promise<Uint8Array> {
    const hit = this.entries.get(key);
    if (hit) {
      this.hits++;
      return hit;
    }
    this.misses++;
    return getObjectBytes(s3, bucket, key);
  }
}

const caches = new WeakMap<object, ImageCache>();

/** The cache that loadDatasetIndex filled for this index (a fresh empty one for an index built elsewhere). */
export function cacheFor(index: object): ImageCache {
  let c = caches.get(index);
  if (!c) {
    c = new ImageCache(0);
    caches.set(index, c);
  }
  return c;
}

export function attachCache(index: object, cache: ImageCache): void {
  caches.set(index, cache);
}
