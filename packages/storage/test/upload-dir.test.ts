import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../src/client';
import { EMBEDDED_S3_CREDENTIALS, type EmbeddedS3, startEmbeddedS3 } from '../src/embedded';
import { ensureBucket, getObjectBytes, listObjects } from '../src/objects';
import { listLocalFiles, uploadImageFolder } from '../src/upload-dir';

let root: string;
let server: EmbeddedS3;
let s3: S3Client;
let src: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'gpulab-upload-'));
  server = await startEmbeddedS3({ directory: join(root, 's3') });
  s3 = createS3Client({
    endpoint: server.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    ...EMBEDDED_S3_CREDENTIALS,
  });
  await ensureBucket(s3, 'upload');
  src = join(root, 'src');
  for (const d of ['train/cat', 'train/dog', 'val/cat', '.git', 'train/.ipynb_checkpoints']) {
    mkdirSync(join(src, d), { recursive: true });
  }
  writeFileSync(join(src, 'train/cat/a.png'), 'A');
  writeFileSync(join(src, 'train/dog/b c.jpg'), 'BB');
  writeFileSync(join(src, 'val/cat/d.JPG'), 'DDD');
  writeFileSync(join(src, 'README.md'), '# hi');
  writeFileSync(join(src, 'train/cat/.DS_Store'), 'x');
  writeFileSync(join(src, '.git/config'), 'x');
  writeFileSync(join(src, 'train/.ipynb_checkpoints/e.png'), 'x');
});

afterAll(async () => {
  s3?.destroy();
  await server?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('uploadImageFolder', () => {
  it('lists regular, non-hidden files as sorted POSIX paths', async () => {
    expect(await listLocalFiles(src)).toEqual(['README.md', 'train/cat/a.png', 'train/dog/b c.jpg', 'val/cat/d.JPG']);
  });

  it('puts every file under the prefix with its relative path, skipping hidden ones', async () => {
    const res = await uploadImageFolder(s3, 'upload', 'datasets/pets', src);
    expect(res).toEqual({
      keys: [
        'datasets/pets/README.md',
        'datasets/pets/train/cat/a.png',
        'datasets/pets/train/dog/b c.jpg',
        'datasets/pets/val/cat/d.JPG',
      ],
      bytes: 4 + 1 + 2 + 3,
    });
    const listed = await listObjects(s3, 'upload', 'datasets/pets/');
    expect(listed.map((o) => o.key).sort()).toEqual(res.keys);
    expect(Buffer.from(await getObjectBytes(s3, 'upload', 'datasets/pets/train/dog/b c.jpg')).toString()).toBe('BB');
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'upload', Key: 'datasets/pets/train/cat/a.png' }));
    expect(head.ContentType).toBe('image/png');
  });

  it('accepts a prefix with a trailing slash, or none', async () => {
    expect((await uploadImageFolder(s3, 'upload', 'p2/', join(src, 'val'))).keys).toEqual(['p2/cat/d.JPG']);
    expect((await uploadImageFolder(s3, 'upload', '', join(src, 'val'))).keys).toEqual(['cat/d.JPG']);
    expect(Buffer.from(await getObjectBytes(s3, 'upload', 'cat/d.JPG')).toString()).toBe('DDD');
  });
});
