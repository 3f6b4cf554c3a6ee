import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  createS3Client,
  EMBEDDED_S3_CREDENTIALS,
  type EmbeddedS3,
  ensureBucket,
  putObject,
  startEmbeddedS3,
  uploadImageFolder,
} from '@gpulab/storage';
import {
  type Batch,
  batches,
  closeSharedDecodePools,
  DatasetError,
  type DatasetIndex,
  loadDatasetIndex,
  sharedDecodePool,
} from '../../src/data';
import { trainOp, valOp } from '../../src/data/geometry';
import { cacheFor } from '../../src/data/image-cache';
import { decodeRgb, dimensions, transform } from '../../src/data/image-kernel.cjs';
import { normalizeInto } from '../../src/data/normalize';
import { imageRng, shuffledOrder } from '../../src/data/prng';
import { hashEpoch } from './data-tsx-child';

const REPO = join(__dirname, '../../../..');
const FASHION = join(REPO, 'examples/datasets/fashion-mini');
const BUCKET = 'datasets';
const CLASSES = ['Bag', 'Sneaker', 'T-shirt_top', 'Trouser'];
const aug = { randomResizedCrop: true, horizontalFlip: true, scale: [0.08, 1] as [number, number] };

let dir: string;
let server: EmbeddedS3;
let s3: S3Client;
let good: Buffer[];

/** A PNG whose header claims width × height. */
function pngClaiming(width: number, height: number): Buffer {
  const png = Buffer.from(good[0]!);
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  return png;
}

async function put(prefix: string, files: Record<string, Buffer | string>): Promise<string> {
  await Promise.all(Object.entries(files).map(([k, body]) => putObject(s3, BUCKET, `${prefix}/${k}`, body)));
  return `s3://${BUCKET}/${prefix}`;
}

async function datasetError(uri: string): Promise<string> {
  const err = await loadDatasetIndex(s3, uri).catch((e) => e);
  expect(err).toBeInstanceOf(DatasetError);
  return (err as Error).message;
}

async function collect(it: AsyncIterable<Batch>): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of it) out.push(b);
  return out;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gpulab-data-s3-'));
  server = await startEmbeddedS3({ directory: dir });
  s3 = createS3Client({
    endpoint: server.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    ...EMBEDDED_S3_CREDENTIALS,
  });
  await ensureBucket(s3, BUCKET);
  await uploadImageFolder(s3, BUCKET, 'fashion-mini', FASHION);
  good = ['00016', '00021', '00038'].map((n) => readFileSync(join(FASHION, 'train/Trouser', `${n}.png`)));
});

afterAll(async () => {
  await closeSharedDecodePools();
  s3?.destroy();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('loadDatasetIndex', () => {
  let index: DatasetIndex;
  beforeAll(async () => {
    index = await loadDatasetIndex(s3, `s3://${BUCKET}/fashion-mini`);
  });

  it('indexes a valid ImageFolder dataset: classes sorted, 40 + 10 per class, nothing skipped', () => {
    expect(index.bucket).toBe(BUCKET);
    expect(index.prefix).toBe('fashion-mini/');
    expect(index.classes).toEqual(CLASSES);
    expect(index.skipped).toEqual([]); // README.md is outside train/ and val/: ignored
    expect(index.train).toHaveLength(160);
    expect(index.val).toHaveLength(40);
    for (const [split, n] of [
      [index.train, 40],
      [index.val, 10],
    ] as const) {
      for (let label = 0; label < 4; label++) expect(split.filter((r) => r.label === label)).toHaveLength(n);
      for (const r of split) {
        expect(r.key.split('/')[2]).toBe(CLASSES[r.label]);
        expect(r.size).toBeGreaterThan(0);
      }
    }
    expect(index.train[0]!.key).toBe('fashion-mini/train/Bag/00023.png');
    expect(cacheFor(index).size).toBe(200);
  });

  it('keeps the pixels that validation decoded (28x28 PNGs, fast path): the first epoch does not decode again', async () => {
    const cache = cacheFor(index);
    expect(cache.decodedBytes).toBe(200 * 28 * 28 * 3);
    for (const ref of [index.train[0]!, index.val[7]!]) {
      const kept = cache.getDecoded(ref.key)!;
      const want = await decodeRgb(readFileSync(join(FASHION, ref.key.slice('fashion-mini/'.length))), 4e7);
      expect([kept.width, kept.height]).toEqual([28, 28]);
      expect(Buffer.from(kept.data).equals(Buffer.from(want.data))).toBe(true);
    }
  });

  it('accepts the URI with a trailing slash', async () => {
    const again = await loadDatasetIndex(s3, `s3://${BUCKET}/fashion-mini/`);
    expect(again.train).toEqual(index.train);
  });

  it('dataset not found: empty prefix, missing bucket, unsafe URI', async () => {
    expect(await datasetError(`s3://${BUCKET}/nope`)).toBe(
      `dataset not found at s3://${BUCKET}/nope/: no objects under that prefix`,
    );
    expect(await datasetError('s3://no-such-bucket/x')).toMatch(
      /^dataset not found at s3:\/\/no-such-bucket\/x\/: bucket "no-such-bucket" does not exist/,
    );
    expect(await datasetError(`s3://${BUCKET}/a/../fashion-mini`)).toMatch(/invalid dataset URI/);
  });

  it('no train/ folder', async () => {
    const uri = await put('no-train', { 'val/Bag/1.png': good[0]!, 'val/Trouser/1.png': good[1]! });
    expect(await datasetError(uri)).toMatch(/missing train\/ at s3:\/\/datasets\/no-train\//);
  });

  it('a single class', async () => {
    const uri = await put('one-class', { 'train/Bag/1.png': good[0]!, 'val/Bag/1.png': good[1]! });
    expect(await datasetError(uri)).toMatch(/train\/ has 1 class folder \(Bag\); a classifier needs at least 2/);
  });

  it('a val class that train does not have', async () => {
    const uri = await put('stray-val', {
      'train/Bag/1.png': good[0]!,
      'train/Trouser/1.png': good[1]!,
      'val/Hat/1.png': good[2]!,
    });
    expect(await datasetError(uri)).toMatch(/val\/ has class folders not in train\/: Hat/);
  });

  it('an unreadable image among good ones is skipped and recorded; so is an image bomb', async () => {
    const uri = await put('mixed', {
      'train/Bag/1.png': good[0]!,
      'train/Bag/2.png': good[1]!,
      'train/Bag/truncated.png': good[2]!.subarray(0, 200),
      'train/Bag/garbage.jpg': 'definitely not a jpeg',
      'train/Trouser/1.png': good[0]!,
      'train/Trouser/bomb.png': pngClaiming(9000, 9000),
      'val/Bag/1.png': good[1]!,
      'val/Trouser/1.png': good[2]!,
    });
    const idx = await loadDatasetIndex(s3, uri);
    expect(idx.classes).toEqual(['Bag', 'Trouser']);
    expect(idx.train.map((r) => r.key)).toEqual([
      'mixed/train/Bag/1.png',
      'mixed/train/Bag/2.png',
      'mixed/train/Trouser/1.png',
    ]);
    expect(idx.skipped).toEqual([
      { key: 'mixed/train/Bag/garbage.jpg', reason: expect.stringMatching(/^unreadable image: /) },
      { key: 'mixed/train/Bag/truncated.png', reason: expect.stringMatching(/^unreadable image: /) },
      { key: 'mixed/train/Trouser/bomb.png', reason: 'image too large: 9000x9000 = 81.0 Mpx > 40 Mpx limit' },
    ]);
  });

  it('a class whose images are all unreadable', async () => {
    const uri = await put('bad-class', {
      'train/Bag/1.png': 'x',
      'train/Bag/2.png': good[0]!.subarray(0, 100),
      'train/Trouser/1.png': good[0]!,
      'val/Bag/1.png': good[1]!,
      'val/Trouser/1.png': good[2]!,
    });
    expect(await datasetError(uri)).toMatch(
      /train\/Bag\/ has no readable images \(2 skipped; first: unreadable image: /,
    );
  });

  it('images at the wrong depth', async () => {
    const uri = await put('deep', {
      'train/Bag/1.png': good[0]!,
      'train/Trouser/1.png': good[0]!,
      'train/Trouser/more/2.png': good[1]!,
      'val/Bag/1.png': good[1]!,
    });
    expect(await datasetError(uri)).toMatch(/image at the wrong depth: deep\/train\/Trouser\/more\/2.png/);
  });
});

describe('batches', () => {
  let index: DatasetIndex;
  beforeAll(async () => {
    index = await loadDatasetIndex(s3, `s3://${BUCKET}/fashion-mini`);
  });
  const opts = () => ({ s3, index, imageSize: 32, batchSize: 64, augmentation: aug, seed: 7, epoch: 0 });

  it('train: NHWC float32 batches of batchSize (last smaller) with labels of the images in them', async () => {
    const bs = await collect(batches({ ...opts(), split: 'train' }));
    expect(bs.map((b) => b.n)).toEqual([64, 64, 32]);
    for (const b of bs) {
      expect(b.x).toBeInstanceOf(Float32Array);
      expect(b.x).toHaveLength(b.n * 32 * 32 * 3);
      expect(b.y).toBeInstanceOf(Int32Array);
      expect(b.y).toHaveLength(b.n);
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of b.x) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      expect(lo).toBeGreaterThanOrEqual(-2.12); // (0 − 0.485) / 0.229
      expect(hi).toBeLessThanOrEqual(2.641); // (1 − 0.406) / 0.225
    }
    const labels = bs.flatMap((b) => Array.from(b.y));
    expect([0, 1, 2, 3].map((l) => labels.filter((y) => y === l).length)).toEqual([40, 40, 40, 40]);
    // Shuffled: not in index order.
    expect(labels).not.toEqual(index.train.map((r) => r.label));
    // Grey input: R, G and B differ only by the per-channel normalisation.
    const x = bs[0]!.x;
    for (let p = 0; p < 32 * 32; p += 97) {
      const r = x[p * 3]! * 0.229 + 0.485;
      const g = x[p * 3 + 1]! * 0.224 + 0.456;
      expect(Math.abs(r - g)).toBeLessThan(1e-5);
    }
  });

  it('puts at position p the image shuffledOrder(seed, epoch)[p], transformed with imageRng(seed, epoch, its index)', async () => {
    const [first] = await collect(batches({ ...opts(), split: 'train', epoch: 3 }));
    const order = shuffledOrder(index.train.length, 7, 3);
    const px = 32 * 32 * 3;
    for (const p of [0, 1, 17, 63]) {
      const i = order[p]!;
      const ref = index.train[i]!;
      const bytes = readFileSync(join(FASHION, ref.key.slice('fashion-mini/'.length)));
      const { width, height } = await dimensions(bytes, 4e7);
      const rgb = await transform(bytes, trainOp(width, height, 32, aug, imageRng(7, 3, i)), 4e7);
      const want = new Float32Array(px);
      normalizeInto(rgb, want, 0);
      expect(Buffer.from(first!.x.subarray(p * px, (p + 1) * px).slice().buffer).equals(Buffer.from(want.buffer))).toBe(
        true,
      );
      expect(first!.y[p]).toBe(ref.label);
    }
    const [val] = await collect(batches({ ...opts(), split: 'val' }));
    const ref = index.val[5]!;
    const bytes = readFileSync(join(FASHION, ref.key.slice('fashion-mini/'.length)));
    const want = new Float32Array(px);
    normalizeInto(await transform(bytes, valOp(28, 28, 32), 4e7), want, 0);
    expect(Buffer.from(val!.x.subarray(5 * px, 6 * px).slice().buffer).equals(Buffer.from(want.buffer))).toBe(true);
  });

  it('is deterministic in (seed, epoch): same bytes with 0 or 2 workers, any prefetch depth; another epoch differs', async () => {
    const a = await collect(batches({ ...opts(), split: 'train' }));
    expect((await sharedDecodePool(2, 40_000_000)).mode).toBe('workers'); // what `a` was decoded on
    const b = await collect(batches({ ...opts(), split: 'train', workers: 0 }));
    expect(b.map((x, i) => Buffer.from(x.x.buffer).equals(Buffer.from(a[i]!.x.buffer)))).toEqual([true, true, true]);
    expect(b.map((x) => Array.from(x.y))).toEqual(a.map((x) => Array.from(x.y)));
    const d = await collect(batches({ ...opts(), split: 'train', prefetch: 1 }));
    expect(d.map((x, i) => Buffer.from(x.x.buffer).equals(Buffer.from(a[i]!.x.buffer)))).toEqual([true, true, true]);
    const c = await collect(batches({ ...opts(), split: 'train', epoch: 1 }));
    expect(c.map((x) => Array.from(x.y))).not.toEqual(a.map((x) => Array.from(x.y)));
  });

  it('val: index order, no randomness (seed and epoch do not matter)', async () => {
    const a = await collect(batches({ ...opts(), split: 'val', batchSize: 16 }));
    expect(a.map((b) => b.n)).toEqual([16, 16, 8]);
    expect(a.flatMap((b) => Array.from(b.y))).toEqual(index.val.map((r) => r.label));
    const b = await collect(batches({ ...opts(), split: 'val', batchSize: 16, seed: 99, epoch: 5 }));
    expect(Buffer.from(b[0]!.x.buffer).equals(Buffer.from(a[0]!.x.buffer))).toBe(true);
  });

  it('views: -1 for random crops; 2·i + flip without, the same pixels for the same view in any epoch', async () => {
    const px = 32 * 32 * 3;
    const cropped = await collect(batches({ ...opts(), split: 'train' }));
    expect(cropped.flatMap((b) => Array.from(b.views)).every((v) => v === -1)).toBe(true);

    const flipOnly = { ...aug, randomResizedCrop: false };
    const byView = new Map<number, Buffer>();
    let repeats = 0;
    for (const epoch of [1, 2]) {
      const bs = await collect(batches({ ...opts(), split: 'train', augmentation: flipOnly, epoch }));
      const order = shuffledOrder(index.train.length, 7, epoch);
      bs.flatMap((b) => Array.from(b.views)).forEach((v, p) => {
        const i = order[p]!;
        const flip = trainOp(28, 28, 32, flipOnly, imageRng(7, epoch, i)).flip;
        expect(v).toBe(2 * i + (flip ? 1 : 0));
      });
      for (const b of bs)
        for (let p = 0; p < b.n; p++) {
          const pixels = Buffer.from(b.x.slice(p * px, (p + 1) * px).buffer);
          const seen = byView.get(b.views[p]!);
          if (seen) {
            repeats++;
            expect(pixels.equals(seen)).toBe(true);
          } else byView.set(b.views[p]!, pixels);
        }
    }
    expect(repeats).toBeGreaterThan(40); // about half of the 160 views of epoch 2 were already seen in epoch 1
    expect(byView.size).toBeGreaterThan(index.train.length); // both mirror images of some

    const val = await collect(batches({ ...opts(), split: 'val', batchSize: 16 }));
    expect(val.flatMap((b) => Array.from(b.views))).toEqual(index.val.map((_, i) => 2 * i));
  });

  it('re-fetches from S3 when the cache holds nothing, with identical results', async () => {
    const uncached = await loadDatasetIndex(s3, `s3://${BUCKET}/fashion-mini`, { cacheBytes: 0 });
    expect(cacheFor(uncached).size).toBe(0);
    const a = await hashEpoch(s3, index, {});
    const b = await hashEpoch(s3, uncached, {});
    expect(b).toBe(a);
    expect(cacheFor(uncached).misses).toBeGreaterThanOrEqual(200);
    // An index that did not come from loadDatasetIndex in this process (e.g. deserialised) works too.
    expect(await hashEpoch(s3, JSON.parse(JSON.stringify(index)) as DatasetIndex, { workers: 0 })).toBe(a);
  });

  it('stops cleanly when the caller breaks out early', async () => {
    let seen = 0;
    for await (const b of batches({ ...opts(), split: 'train', batchSize: 8 })) {
      seen += b.n;
      if (seen >= 16) break;
    }
    expect(seen).toBe(16);
  });

  it('gives the same bytes under `node --import tsx` (worker threads outside jest) as under jest', async () => {
    const inJest = await hashEpoch(s3, index, { workers: 2 });
    const child = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', join(__dirname, 'data-tsx-child.ts'), server.endpoint, `s3://${BUCKET}/fashion-mini`],
      { cwd: REPO, env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } },
    );
    const out = JSON.parse(child.stdout.trim().split('\n').pop()!) as { mode: string; threads: number; hash: string };
    expect(out).toEqual({ mode: 'workers', threads: 2, hash: inJest });
  });
});
