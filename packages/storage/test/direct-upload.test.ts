/** Presigned uploads and the server-side operations that finish them, against a real S3 protocol server (s3rver). */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '../src/client';
import {
  abortMultipart,
  completeMultipart,
  copyObject,
  createMultipart,
  existingSizes,
  listUploadedParts,
  presignPart,
  presignPut,
  sha256OfObject,
} from '../src/direct-upload';
import { EMBEDDED_S3_CREDENTIALS, type EmbeddedS3, startEmbeddedS3 } from '../src/embedded';
import { ensureBucket, getObjectBytes, putObject } from '../src/objects';

const B = 'direct';
let root: string;
let server: EmbeddedS3;
let s3: S3Client;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'gpulab-direct-'));
  server = await startEmbeddedS3({ directory: join(root, 's3') });
  s3 = createS3Client({
    endpoint: server.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    ...EMBEDDED_S3_CREDENTIALS,
  });
  await ensureBucket(s3, B);
});
afterAll(async () => {
  s3.destroy();
  await server.close();
  rmSync(root, { recursive: true, force: true });
});

it('a presigned PUT stores the body; the object hashes to its sha256 and copies server-side', async () => {
  const body = Buffer.from('hello, presigned world');
  const url = await presignPut(s3, B, 'up/one', body.byteLength, 60);
  expect(url).toMatch(/X-Amz-SignedHeaders=content-length%3Bhost/);
  expect((await fetch(url, { method: 'PUT', body })).status).toBe(200);
  expect(await sha256OfObject(s3, B, 'up/one')).toEqual({
    sha256: createHash('sha256').update(body).digest('hex'),
    size: body.byteLength,
  });
  await copyObject(s3, B, 'up/one', 'copies/a b/é.png');
  expect(Buffer.from(await getObjectBytes(s3, B, 'copies/a b/é.png')).toString()).toBe('hello, presigned world');
});

it('multipart through presigned part URLs, completed with the ETags the client kept (s3rver cannot list parts)', async () => {
  const key = 'up/multi';
  const id = await createMultipart(s3, B, key);
  const data = Buffer.alloc(5 * 1024 * 1024 + 10, 7);
  const parts = [data.subarray(0, 5 * 1024 * 1024), data.subarray(5 * 1024 * 1024)];
  const etags = [];
  for (const [i, p] of parts.entries()) {
    const res = await fetch(await presignPart(s3, B, key, id, i + 1, p.byteLength, 60), { method: 'PUT', body: p });
    etags.push({ partNumber: i + 1, etag: res.headers.get('etag')! });
  }
  expect(await listUploadedParts(s3, B, key, id)).toBeNull(); // not implemented by s3rver
  await completeMultipart(s3, B, key, id, etags);
  expect((await sha256OfObject(s3, B, key)).size).toBe(data.byteLength);
  await abortMultipart(s3, B, key, 'gone-already'); // unsupported or unknown: not an error
});

it('existingSizes agrees whether it HEADs a few names or lists the prefix for many', async () => {
  const names = Array.from({ length: 70 }, (_, i) => `n${String(i).padStart(3, '0')}`);
  for (const n of names.slice(0, 35)) await putObject(s3, B, `blobs/${n}`, n.repeat(2));
  const listed = await existingSizes(s3, B, 'blobs/', names);
  const headed = await existingSizes(s3, B, 'blobs/', names.slice(30, 40));
  expect(listed.size).toBe(35);
  expect([...headed.keys()].sort()).toEqual(names.slice(30, 35));
  for (const [n, size] of headed) expect(listed.get(n)).toBe(size);
});
