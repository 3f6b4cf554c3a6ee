/** Test helpers for dataset uploads: small real ImageFolder trees, manifests, and a client that uploads like a browser. */
import { createHash } from 'node:crypto';
import { createDb, createUserToken, type Db, ensureFlavor, ensureUserWithQuota } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import { createRedis, DispatchQueue } from '@gpulab/queue';
import {
  createTestDatabase,
  startTestS3,
  TEST_POLICY,
  TEST_REDIS_URL,
  type TestDatabase,
  type TestS3,
  testRedisPrefix,
} from '@gpulab/testing';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { Redis } from 'ioredis';
import { PNG } from 'pngjs';
import { buildApp } from '../../src/app';
import type { DatasetSettings } from '../../src/services/dataset-settings';

/** A w×h RGB PNG whose pixels depend on `seed` (distinct seeds give distinct files). */
export function png(seed: number, w = 8, h = 8, deflateLevel = 6): Buffer {
  const img = new PNG({ width: w, height: h });
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < w * h; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    img.data[i * 4] = x & 255;
    img.data[i * 4 + 1] = (x >>> 8) & 255;
    img.data[i * 4 + 2] = (x >>> 16) & 255;
    img.data[i * 4 + 3] = 255;
  }
  return PNG.sync.write(img, { colorType: 2, inputHasAlpha: true, deflateLevel, filterType: deflateLevel ? -1 : 0 });
}

/** `perClass` images per class in train/ and val/, each distinct: path → bytes. */
export function imageFolder(classes: string[], perClass: { train: number; val: number }, seed = 1) {
  const files = new Map<string, Buffer>();
  let n = seed * 1000;
  for (const split of ['train', 'val'] as const)
    for (const c of classes)
      for (let i = 0; i < perClass[split]; i++) files.set(`${split}/${c}/${String(i).padStart(3, '0')}.png`, png(n++));
  return files;
}

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export function manifestOf(files: Map<string, Uint8Array>) {
  return [...files].map(([path, b]) => ({ path, size: b.byteLength, sha256: sha256(b) }));
}

export interface MissingEntry {
  sha256: string;
  size: number;
  paths: string[];
  method: 'PUT' | 'multipart';
  url?: string;
  partSize?: number;
  parts?: { partNumber: number; size: number; url: string }[];
}

export type PartEtags = Record<string, { partNumber: number; etag: string }[]>;

/**
 * Sends what the session says is missing, with plain fetch, as a browser would: the file's bytes to its URL, or each
 * part's slice to the part's URL (keeping the ETag S3 answers, which complete needs where S3 cannot list parts).
 * `only` limits it to some blobs; `bytesOf` may substitute the bytes sent. Returns the bytes sent and the ETags.
 */
export async function sendMissing(
  missing: MissingEntry[],
  files: Map<string, Uint8Array>,
  opts: { only?: (m: MissingEntry) => boolean; bytesOf?: (m: MissingEntry) => Uint8Array; parts?: number[] } = {},
): Promise<{ bytes: number; etags: PartEtags }> {
  let bytes = 0;
  const etags: PartEtags = {};
  // The server names files by their NFC paths.
  const byPath = new Map([...files].map(([p, b]) => [p.normalize('NFC'), b]));
  for (const m of missing) {
    if (opts.only && !opts.only(m)) continue;
    const body = opts.bytesOf?.(m) ?? byPath.get(m.paths[0]!);
    if (!body) throw new Error(`no local file for ${m.paths[0]}`);
    if (m.method === 'PUT') {
      const res = await fetch(m.url!, { method: 'PUT', body });
      if (res.status !== 200) throw new Error(`PUT ${m.paths[0]}: ${res.status} ${await res.text()}`);
      bytes += body.byteLength;
      continue;
    }
    for (const p of m.parts!) {
      if (opts.parts && !opts.parts.includes(p.partNumber)) continue;
      const start = (p.partNumber - 1) * m.partSize!;
      const slice = body.subarray(start, start + p.size);
      const res = await fetch(p.url, { method: 'PUT', body: slice });
      if (res.status !== 200) throw new Error(`part ${p.partNumber} of ${m.paths[0]}: ${res.status}`);
      bytes += slice.byteLength;
      const list = etags[m.sha256] ?? [];
      list.push({ partNumber: p.partNumber, etag: res.headers.get('etag')! });
      etags[m.sha256] = list;
    }
  }
  return { bytes, etags };
}

export interface DatasetTestEnv {
  app: FastifyInstance;
  db: Db;
  s3: TestS3;
  user(email: string, role?: 'student' | 'admin'): Promise<{ token: string; userId: string }>;
  call(
    token: string,
    method: 'GET' | 'POST' | 'DELETE',
    url: string,
    payload?: unknown,
  ): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/** The API on a fresh database (migrated), a real s3rver and a Redis prefix. */
export async function startDatasetEnv(name: string, datasets: Partial<DatasetSettings> = {}): Promise<DatasetTestEnv> {
  const tdb: TestDatabase = await createTestDatabase();
  const db = createDb(tdb.url);
  const s3 = await startTestS3();
  const redis: Redis = createRedis(TEST_REDIS_URL);
  const queue = new DispatchQueue(redis, testRedisPrefix(name));
  await ensureFlavor(db, { name: 'local', rateMicrosPerHour: 1_000_000, capacity: 1 });
  const app = buildApp(
    {
      db,
      redis,
      queue,
      s3: s3.client,
      bucket: s3.bucket,
      clock: () => new Date(),
      maxAttempts: 3,
      policy: TEST_POLICY,
      datasets,
    },
    createLogger({ name: 'test', level: 'silent' }),
  );
  await app.ready();
  return {
    app,
    db,
    s3,
    user: async (email, role = 'student') => {
      const { user } = await ensureUserWithQuota(db, {
        email,
        name: email,
        role,
        group: 'ml-101',
        grantSeconds: 36_000,
        periodStart: new Date('2026-01-01'),
        periodEnd: new Date('2028-01-01'),
      });
      return { token: (await createUserToken(db, user.id, 't')).secret, userId: user.id };
    },
    call: (token, method, url, payload) =>
      app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${token}` },
        ...(payload === undefined ? {} : { payload: payload as object }),
      }),
    close: async () => {
      await app.close();
      await queue.queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
      redis.disconnect();
      await db.$disconnect();
      await s3.close();
      await tdb.drop();
    },
  };
}
