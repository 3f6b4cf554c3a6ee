/**
 * Security: hostile dataset files are refused before they cost memory or GPU time.
 *
 * - A manifest that claims a 10 GB file (or files adding up past the dataset limit) is refused by
 *   POST /v1/datasets/uploads before a session exists or a URL is signed; a client that then sends more bytes than
 *   it declared is refused by S3 itself (each presigned PUT signs its Content-Length).
 * - Image bombs — a real decompression bomb (a 12 KB PNG that decodes to 10000×10000), PNG/BMP/PNM headers that
 *   declare 60000×60000 — and a truncated PNG are uploaded through the API: POST /v1/datasets/:id/validate reports
 *   each by path without decoding the bombs' pixels, and the trainer's dataset indexing (which runs before a model is
 *   built or any step is taken) skips the same files. The process's peak RSS while doing so stays far below what one
 *   decoded bomb would take (10000×10000×3 = 300 MB; 60000² × 3 = 10.8 GB).
 *
 * The limits are the trainer's (apps/trainer/src/data/limits.ts: 50 MB a file, 40 Mpx an image), which the API uses
 * too, so an upload that passes is one the trainer accepts.
 */
import { deflateSync } from 'node:zlib';
import { createS3Client, EMBEDDED_S3_CREDENTIALS, listObjects } from '@gpulab/storage';
import { loadDatasetIndex } from '@gpulab/trainer/src/data';
import { decodeRgb, ImageDecodeError, probe } from '@gpulab/trainer/src/data/image-kernel.cjs';
import { DATA_DEFAULTS } from '@gpulab/trainer/src/data/limits';
import {
  type DatasetTestEnv,
  imageFolder,
  manifestOf,
  png,
  sendMissing,
  startDatasetEnv,
} from '../../apps/api/test/helpers/datasets';

const GB = 1024 ** 3;
const FAKE_SHA = 'a'.repeat(64);
/** Peak RSS growth allowed while handling the hostile files: well under one decoded bomb. */
const RSS_BUDGET = 150 * 1024 * 1024;

let env: DatasetTestEnv;
let alice: { token: string; userId: string };

beforeAll(async () => {
  env = await startDatasetEnv('security-images'); // the default limits: what production runs with
  alice = await env.user('alice@uni.edu');
});
afterAll(() => env.close());

const post = (body: unknown) => env.call(alice.token, 'POST', '/v1/datasets/uploads', body);

// --- hostile files -------------------------------------------------------------------------------------------------

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(b: Buffer): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}
/** A PNG with this IHDR (colour type 0 = grey, 2 = RGB) and this IDAT payload. */
function pngWith(width: number, height: number, bitDepth: number, colorType: number, idat: Buffer): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colorType;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', idat),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
/** A real decompression bomb: valid 1-bit grey pixels, 10000×10000, about 12 KB on disk, 300 MB as RGB. */
function decompressionBomb(): Buffer {
  const side = 10_000;
  const row = Buffer.alloc(1 + side / 8); // filter byte + 1 bit a pixel, all black
  const raw = Buffer.alloc(row.length * side);
  return pngWith(side, side, 1, 0, deflateSync(raw, { level: 9 }));
}
/** Headers that declare 60000×60000 with (almost) nothing behind them. */
function lyingPng(): Buffer {
  return pngWith(60_000, 60_000, 8, 2, deflateSync(Buffer.alloc(100)));
}
function lyingBmp(): Buffer {
  const b = Buffer.alloc(54 + 16);
  b.write('BM', 0, 'latin1');
  b.writeUInt32LE(b.length, 2);
  b.writeUInt32LE(54, 10);
  b.writeUInt32LE(40, 14);
  b.writeInt32LE(60_000, 18);
  b.writeInt32LE(60_000, 22);
  b.writeUInt16LE(1, 26);
  b.writeUInt16LE(24, 28);
  return b;
}
function lyingPnm(): Buffer {
  return Buffer.concat([Buffer.from('P6\n60000 60000\n255\n', 'latin1'), Buffer.alloc(16)]);
}

/** Runs `fn` while sampling RSS every 5 ms; returns its result and the peak growth over the RSS before it. */
async function peakRss<T>(fn: () => Promise<T>): Promise<{ value: T; growth: number }> {
  global.gc?.();
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 5);
  try {
    const value = await fn();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { value, growth: peak - before };
  } finally {
    clearInterval(timer);
  }
}

// --- the tests -----------------------------------------------------------------------------------------------------

describe('size claims', () => {
  it('a manifest claiming a 10 GB file, or 20+ GiB in all, is refused before a session exists or a URL is signed', async () => {
    const good = manifestOf(imageFolder(['cat', 'dog'], { train: 2, val: 1 }));
    let res = await post({
      name: 'huge',
      files: [...good, { path: 'train/cat/huge.png', size: 10 * GB, sha256: FAKE_SHA }],
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'VALIDATION', field: 'files.6.size', path: 'train/cat/huge.png' });
    expect(res.json().detail).toMatch(`is ${10 * GB} bytes; a file may have at most ${DATA_DEFAULTS.maxFileBytes}`);

    // each file under the per-file limit, together past the 20 GiB dataset limit
    const each = DATA_DEFAULTS.maxFileBytes - 1;
    const n = Math.ceil((20 * GB) / each) + 1;
    const many = Array.from({ length: n }, (_, i) => ({
      path: `${i % 5 === 0 ? 'val' : 'train'}/${i % 2 ? 'cat' : 'dog'}/${i}.png`,
      size: each,
      sha256: i.toString(16).padStart(64, '0'),
    }));
    res = await post({ name: 'many', files: many });
    expect(res.statusCode).toBe(400);
    expect(res.json().detail).toMatch(/add up to \d+ bytes; a dataset may have at most 21474836480/);

    for (const size of [-1, 1.5, 2 ** 63, '10000000000']) {
      res = await post({ name: 'odd', files: [...good, { path: 'train/cat/x.png', size, sha256: FAKE_SHA }] });
      expect({ size, status: res.statusCode, field: res.json().field }).toEqual({
        size,
        status: 400,
        field: 'files.6.size',
      });
    }
    expect(await env.db.datasetUpload.count()).toBe(0);
    expect(await listObjects(env.s3.client, env.s3.bucket, 'uploads/')).toEqual([]);
    console.log(`hostile-images: refused a 10 GiB file, ${n} files of ${each} bytes, sizes -1, 1.5, 2^63, "1e10"`);
  });

  it('a client that sends more bytes than it declared is refused by S3 (the presigned PUT signs Content-Length)', async () => {
    const files = imageFolder(['cat', 'dog'], { train: 1, val: 1 }, 7);
    const s = (await post({ name: 'liar', files: manifestOf(files) })).json();
    const target = s.missing[0] as { url: string; size: number };
    expect(new URL(target.url).searchParams.get('X-Amz-SignedHeaders')).toBe('content-length;host');
    const bigger = Buffer.alloc(target.size + 10 * 1024 * 1024, 1);
    const res = await fetch(target.url, { method: 'PUT', body: bigger });
    expect(res.status).toBe(403);
    expect(await res.text()).toMatch(/SignatureDoesNotMatch/);
    const staged = await listObjects(env.s3.client, env.s3.bucket, `uploads/${alice.userId}/${s.id}/`);
    expect(staged).toEqual([]);
  });
});

describe('image bombs and truncated images', () => {
  const hostile = () =>
    new Map<string, Buffer>([
      ['train/dog/bomb.png', decompressionBomb()],
      ['train/dog/lying.png', lyingPng()],
      ['train/dog/lying.bmp', lyingBmp()],
      ['train/dog/lying.ppm', lyingPnm()],
      ['train/cat/truncated.png', Buffer.concat([png(99, 32, 32).subarray(0, 60)])],
    ]);

  it('the decoders refuse them from the header (the pixel limit), without allocating the pixels', async () => {
    for (const [name, bytes] of hostile()) {
      const { value, growth } = await peakRss(async () => {
        const a = await probe(bytes, DATA_DEFAULTS.maxPixels).then(
          () => 'accepted',
          (e: unknown) => (e instanceof ImageDecodeError ? e.code : `threw ${String(e)}`),
        );
        const b = await decodeRgb(bytes, DATA_DEFAULTS.maxPixels).then(
          () => 'accepted',
          (e: unknown) => (e instanceof ImageDecodeError ? e.code : `threw ${String(e)}`),
        );
        return [a, b];
      });
      const expected = name.includes('truncated') ? 'UNDECODABLE' : 'TOO_LARGE';
      expect({ name, probe: value[0], decode: value[1] }).toEqual({ name, probe: expected, decode: expected });
      expect({ name, rssOk: growth < RSS_BUDGET }).toEqual({ name, rssOk: true });
      console.log(`hostile-images: ${name} (${bytes.length} bytes) → ${expected}, peak RSS +${mb(growth)} MB`);
    }
  });

  it('uploaded through the API: validate reports each by path, and the trainer skips them before training', async () => {
    const files = imageFolder(['cat', 'dog'], { train: 2, val: 1 }, 3);
    for (const [p, b] of hostile()) files.set(p, b);
    let view = (await post({ name: 'bombs', files: manifestOf(files) })).json();
    expect(view.status).toBe('open');
    while (view.missing.length > 0) {
      await sendMissing(view.missing, files);
      view = (await env.call(alice.token, 'GET', `/v1/datasets/uploads/${view.id}`)).json();
    }
    const done = await env.call(alice.token, 'POST', `/v1/datasets/uploads/${view.id}/complete`, {});
    expect(done.statusCode).toBe(200);
    const dataset = done.json().dataset as { id: string; uri: string };

    const validated = await peakRss(() => env.call(alice.token, 'POST', `/v1/datasets/${dataset.id}/validate`, {}));
    expect(validated.value.statusCode).toBe(200);
    const report = validated.value.json().report;
    expect(report.corrupt).toEqual([
      { path: 'train/cat/truncated.png', reason: expect.stringMatching(/^unreadable image: /) },
      { path: 'train/dog/bomb.png', reason: 'image too large: 10000x10000 = 100.0 Mpx > 40 Mpx limit' },
      { path: 'train/dog/lying.bmp', reason: 'image too large: 60000x60000 = 3600.0 Mpx > 40 Mpx limit' },
      { path: 'train/dog/lying.png', reason: 'image too large: 60000x60000 = 3600.0 Mpx > 40 Mpx limit' },
      { path: 'train/dog/lying.ppm', reason: 'image too large: 60000x60000 = 3600.0 Mpx > 40 Mpx limit' },
    ]);
    expect(report).toMatchObject({ usable: true, counts: { train: { cat: 2, dog: 2 }, val: { cat: 1, dog: 1 } } });
    expect(validated.growth).toBeLessThan(RSS_BUDGET);

    // the trainer's own pass over the same objects, as an attempt starts (before the model exists)
    const s3 = createS3Client({
      endpoint: env.s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      ...EMBEDDED_S3_CREDENTIALS,
    });
    try {
      const indexed = await peakRss(() => loadDatasetIndex(s3, dataset.uri));
      const rel = (k: string) => k.split('/').slice(-3).join('/');
      expect(indexed.value.skipped.map((s) => rel(s.key)).sort()).toEqual([
        'train/cat/truncated.png',
        'train/dog/bomb.png',
        'train/dog/lying.bmp',
        'train/dog/lying.png',
        'train/dog/lying.ppm',
      ]);
      expect(indexed.value.train).toHaveLength(4);
      expect(indexed.growth).toBeLessThan(RSS_BUDGET);
      console.log(
        `hostile-images: validate peak RSS +${mb(validated.growth)} MB, trainer indexing +${mb(indexed.growth)} MB; ` +
          `5 hostile files reported and skipped, 6 good images kept`,
      );
    } finally {
      s3.destroy();
    }
  });
});

const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
