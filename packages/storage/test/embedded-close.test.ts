/**
 * The embedded S3 server's close() ends even while a client holds a response unread (a download it never consumes):
 * idle keep-alive sockets are closed at once, busy ones after a short grace, so shutdown (and a test's afterAll)
 * cannot hang on a stuck client.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../src/client';
import { EMBEDDED_S3_CREDENTIALS, startEmbeddedS3 } from '../src/embedded';
import { ensureBucket } from '../src/objects';

it('closes with a download left unread, and the stuck reader sees its connection end', async () => {
  const root = mkdtempSync(join(tmpdir(), 'gpulab-s3-close-'));
  const server = await startEmbeddedS3({ directory: root });
  const s3 = createS3Client({
    endpoint: server.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    ...EMBEDDED_S3_CREDENTIALS,
  });
  try {
    await ensureBucket(s3, 'close-test');
    // larger than the socket buffers on both sides: the server's write stalls while nobody reads
    await s3.send(new PutObjectCommand({ Bucket: 'close-test', Key: 'big', Body: Buffer.alloc(32 * 2 ** 20, 7) }));
    const got = await s3.send(new GetObjectCommand({ Bucket: 'close-test', Key: 'big' }));
    const body = got.Body as NodeJS.ReadableStream;
    body.pause();
    const ended = new Promise<string>((resolve) => {
      body.on('error', (e: Error) => resolve(`error: ${e.message}`));
      body.on('end', () => resolve('end'));
      body.on('close', () => resolve('close'));
    });
    let closed = false;
    const closing = server.close().then(() => {
      closed = true;
    });
    // still serving the download during the grace period…
    await new Promise((r) => setTimeout(r, 200));
    expect(closed).toBe(false);
    // …then its connection is cut and close() resolves
    await closing;
    expect(closed).toBe(true);
    body.resume(); // what was buffered drains; the stream then ends early or errors — it does not hang
    expect(await ended).toMatch(/^(error: .+|end|close)$/);
  } finally {
    s3.destroy();
    await server.close(); // idempotent: after a passing run it waits for the first close
    rmSync(root, { recursive: true, force: true });
  }
}, 30_000);
