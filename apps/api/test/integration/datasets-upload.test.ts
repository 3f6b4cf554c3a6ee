/**
 * Dataset uploads over HTTP, against real Postgres and a real S3 protocol server (s3rver): files go from the client
 * straight to S3 through presigned URLs (plain fetch, as a browser), are verified and materialized by complete, and
 * are never sent twice.
 */
import { headObject, listObjects } from '@gpulab/storage';
import { loadDatasetIndex } from '@gpulab/trainer/src/data/dataset-index';
import {
  type DatasetTestEnv,
  imageFolder,
  type MissingEntry,
  manifestOf,
  png,
  sendMissing,
  startDatasetEnv,
} from '../helpers/datasets';

const MiB = 1024 * 1024;
let env: DatasetTestEnv;
let alice: { token: string; userId: string };
let bob: { token: string; userId: string };
const flowers = imageFolder(['daisy', 'rose', 'tulip'], { train: 3, val: 2 });

beforeAll(async () => {
  // Multipart from 5 MiB (S3's minimum part size) so that one test file takes two parts.
  env = await startDatasetEnv('datasets-upload', { multipartThreshold: 5 * MiB, partSize: 5 * MiB });
  alice = await env.user('alice@uni.edu');
  bob = await env.user('bob@uni.edu');
});
afterAll(() => env.close());

const startUpload = (token: string, name: string, files: Map<string, Uint8Array>) =>
  env.call(token, 'POST', '/v1/datasets/uploads', { name, files: manifestOf(files) });

describe('upload, complete, reuse', () => {
  let datasetId: string;

  it('uploads an ImageFolder through presigned URLs and materializes it where the trainer reads', async () => {
    const res = await startUpload(alice.token, 'flowers', flowers);
    expect(res.statusCode).toBe(201);
    const s = res.json();
    expect(s).toMatchObject({ status: 'open', files: 15, blobs: 15, pending: { files: 15, blobs: 15 } });
    expect(s.missing).toHaveLength(15);
    expect(s.missing.every((m: MissingEntry) => m.method === 'PUT')).toBe(true);
    const sent = await sendMissing(s.missing, flowers);

    const done = await env.call(alice.token, 'POST', `/v1/datasets/uploads/${s.id}/complete`, {});
    expect(done.statusCode).toBe(200);
    const { upload, dataset } = done.json();
    expect(upload).toMatchObject({ status: 'completed', pending: { files: 0, bytes: 0 } });
    expect(upload.transfer).toEqual({
      blobsUploaded: 15,
      bytesUploaded: sent.bytes,
      blobsReused: 0,
      bytesReused: 0,
      bytesRejected: 0,
    });
    const prefix = `datasets/${alice.userId}/flowers/`;
    expect(dataset).toMatchObject({
      name: 'flowers',
      status: 'ready',
      uri: `s3://${env.s3.bucket}/${prefix}`,
      classes: ['daisy', 'rose', 'tulip'],
      counts: { train: { daisy: 3, rose: 3, tulip: 3 }, val: { daisy: 2, rose: 2, tulip: 2 } },
      files: 15,
      bytes: sent.bytes,
    });
    expect(dataset.sha256).toMatch(/^[0-9a-f]{64}$/);
    datasetId = dataset.id;

    const keys = (await listObjects(env.s3.client, env.s3.bucket, prefix)).map((o) => o.key.slice(prefix.length));
    expect(keys.sort()).toEqual([...flowers.keys(), 'manifest.json'].sort());
    // The trainer indexes it as it is, with its own code.
    const index = await loadDatasetIndex(env.s3.client, dataset.uri, { cacheBytes: 0 });
    expect(index).toMatchObject({ classes: ['daisy', 'rose', 'tulip'], skipped: [] });
    expect([index.train.length, index.val.length]).toEqual([9, 6]);
    // Staged uploads were promoted: nothing is left under uploads/.
    expect(await listObjects(env.s3.client, env.s3.bucket, `uploads/${alice.userId}/`)).toEqual([]);

    const list = (await env.call(alice.token, 'GET', '/v1/datasets')).json();
    expect(list.items.map((d: { id: string }) => d.id)).toEqual([datasetId]);
    const again = await env.call(alice.token, 'POST', `/v1/datasets/uploads/${s.id}/complete`, {});
    expect(again.json().dataset.id).toBe(datasetId); // idempotent
    expect(again.json().upload.transfer.bytesUploaded).toBe(sent.bytes);
  });

  it('a second upload of the same folder transfers zero bytes, under the same name or another', async () => {
    for (const name of ['flowers', 'flowers-copy']) {
      const s = (await startUpload(alice.token, name, flowers)).json();
      expect(s.missing).toEqual([]);
      expect(s.pending).toEqual({ files: 0, blobs: 0, bytes: 0 });
      const done = (await env.call(alice.token, 'POST', `/v1/datasets/uploads/${s.id}/complete`, {})).json();
      expect(done.upload.transfer).toMatchObject({ blobsUploaded: 0, bytesUploaded: 0, blobsReused: 15 });
      expect(done.upload.transfer.bytesReused).toBe(done.upload.blobBytes);
      if (name === 'flowers') expect(done.dataset.id).toBe(datasetId);
    }
    const copy = `datasets/${alice.userId}/flowers-copy/`;
    expect(await headObject(env.s3.client, env.s3.bucket, `${copy}train/rose/002.png`)).toMatchObject({
      size: flowers.get('train/rose/002.png')!.byteLength,
    });
    // Different content under a taken name is refused before anything is sent.
    const other = imageFolder(['daisy', 'rose'], { train: 1, val: 1 }, 9);
    const clash = await startUpload(alice.token, 'flowers', other);
    expect(clash.statusCode).toBe(409);
    expect(clash.json()).toMatchObject({ code: 'CONFLICT', field: 'name' });
  });

  it('sends a file listed twice once; concurrent completes do the work once', async () => {
    const files = imageFolder(['a', 'b'], { train: 1, val: 1 }, 3);
    files.set('train/a/dup.png', files.get('train/a/000.png')!);
    const s = (await startUpload(bob.token, 'dups', files)).json();
    expect(s).toMatchObject({ files: 5, blobs: 4, pending: { files: 5, blobs: 4 } });
    expect(s.missing.find((m: MissingEntry) => m.paths.length === 2).paths.sort()).toEqual([
      'train/a/000.png',
      'train/a/dup.png',
    ]);
    await sendMissing(s.missing, files);
    // Two completes at once: one does the work, the other is told to retry (or sees it done).
    const url = `/v1/datasets/uploads/${s.id}/complete`;
    const both = await Promise.all([env.call(bob.token, 'POST', url, {}), env.call(bob.token, 'POST', url, {})]);
    expect(both.map((r) => r.statusCode).sort()).toEqual(expect.arrayContaining([200]));
    for (const r of both) expect([200, 409]).toContain(r.statusCode);
    const done = (await env.call(bob.token, 'POST', url, {})).json();
    expect(done.dataset.counts.train).toEqual({ a: 2, b: 1 });
    expect(done.upload.transfer).toMatchObject({ blobsUploaded: 4, blobsReused: 0 });
  });

  it('stores odd but safe names (spaces, #?%+, emoji, the longest segment) under their NFC keys', async () => {
    const files = imageFolder(['golden retriever', 'cafe\u0301'], { train: 1, val: 1 }, 4);
    const long = `${'x'.repeat(196)}.png`;
    files.set('train/golden retriever/a+b #1?%20🐶.png', png(901));
    files.set(`train/golden retriever/${long}`, png(902));
    const s = (await startUpload(bob.token, 'odd-names', files)).json();
    await sendMissing(s.missing, files);
    const done = (await env.call(bob.token, 'POST', `/v1/datasets/uploads/${s.id}/complete`, {})).json();
    expect(done.dataset.classes).toEqual(['caf\u00e9', 'golden retriever']);
    const prefix = `datasets/${bob.userId}/odd-names/`;
    const keys = (await listObjects(env.s3.client, env.s3.bucket, prefix)).map((o) => o.key.slice(prefix.length));
    expect(keys).toEqual(
      expect.arrayContaining([
        'train/caf\u00e9/000.png',
        'train/golden retriever/a+b #1?%20🐶.png',
        `train/golden retriever/${long}`,
      ]),
    );
  });
});

describe('resuming and refusing', () => {
  it('an upload interrupted halfway (single files and a multipart file) resumes with fresh URLs and completes', async () => {
    const files = imageFolder(['cat', 'dog'], { train: 3, val: 2 }, 5);
    const big = png(77, 1400, 1300, 0); // ~5.5 MB: two 5 MiB parts
    files.set('train/cat/big.png', big);
    const s = (await startUpload(bob.token, 'pets', files)).json();
    const large = s.missing.find((m: MissingEntry) => m.method === 'multipart');
    expect(large).toMatchObject({ size: big.byteLength, partSize: 5 * MiB });
    expect(large.parts.map((p: { size: number }) => p.size)).toEqual([5 * MiB, big.byteLength - 5 * MiB]);

    // Half the small files and the first part, then the connection "drops".
    const small = s.missing.filter((m: MissingEntry) => m.method === 'PUT').slice(0, 5);
    await sendMissing(small, files);
    const first = await sendMissing([large], files, { parts: [1] });

    const early = await env.call(bob.token, 'POST', `/v1/datasets/uploads/${s.id}/complete`, { parts: first.etags });
    expect(early.statusCode).toBe(409);
    expect(early.json().detail).toMatch(/not uploaded yet/);
    expect(early.json().missing).toContain('train/cat/big.png');

    const resumed = (await env.call(bob.token, 'GET', `/v1/datasets/uploads/${s.id}`)).json();
    expect(resumed.status).toBe('open');
    expect(resumed.pending.blobs).toBe(s.pending.blobs - 5);
    const paths = resumed.missing.flatMap((m: MissingEntry) => m.paths);
    for (const m of small) expect(paths).not.toContain(m.paths[0]);
    // s3rver cannot list parts, so the multipart entry offers both again; part 1 is already there.
    const rest = await sendMissing(resumed.missing, files, { parts: [2] });
    const etags = { [large.sha256]: [...first.etags[large.sha256]!, ...rest.etags[large.sha256]!] };
    const done = await env.call(bob.token, 'POST', `/v1/datasets/uploads/${s.id}/complete`, { parts: etags });
    expect(done.statusCode).toBe(200);
    expect(done.json().upload.transfer.bytesUploaded).toBe(done.json().upload.blobBytes);
    const stored = await headObject(env.s3.client, env.s3.bucket, `datasets/${bob.userId}/pets/train/cat/big.png`);
    expect(stored?.size).toBe(big.byteLength);
  });

  it('refuses at complete a file whose bytes do not match its sha256, by path; a re-upload then completes', async () => {
    const files = imageFolder(['x', 'y'], { train: 2, val: 1 }, 7);
    const s = (await startUpload(alice.token, 'tampered', files)).json();
    const victim = 'train/y/001.png';
    await sendMissing(s.missing, files, {
      bytesOf: (m) => (m.paths.includes(victim) ? png(4242) : files.get(m.paths[0]!)!),
    });
    const res = await env.call(alice.token, 'POST', `/v1/datasets/uploads/${s.id}/complete`, {});
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'VALIDATION', field: 'files', path: victim });
    expect(res.json().detail).toMatch(/train\/y\/001\.png/);
    expect(await env.db.dataset.count({ where: { name: 'tampered' } })).toBe(0);

    const again = (await env.call(alice.token, 'GET', `/v1/datasets/uploads/${s.id}`)).json();
    expect(again.missing.map((m: MissingEntry) => m.paths)).toEqual([[victim]]);
    expect(again.transfer.bytesRejected).toBeGreaterThan(0);
    await sendMissing(again.missing, files);
    const done = await env.call(alice.token, 'POST', `/v1/datasets/uploads/${s.id}/complete`, {});
    expect(done.statusCode).toBe(200);
    expect(done.json().upload.transfer.blobsUploaded).toBe(6);
  });
  it('an aborted session deletes what it staged and cannot be completed', async () => {
    const files = imageFolder(['p', 'q'], { train: 1, val: 1 }, 8);
    const s = (await startUpload(bob.token, 'abandoned', files)).json();
    await sendMissing(s.missing.slice(0, 2), files);
    const staged = `uploads/${bob.userId}/${s.id}/`;
    expect(await listObjects(env.s3.client, env.s3.bucket, staged)).toHaveLength(2);
    const del = await env.call(bob.token, 'DELETE', `/v1/datasets/uploads/${s.id}`);
    expect(del.json()).toMatchObject({ status: 'aborted', missing: [] });
    expect(await listObjects(env.s3.client, env.s3.bucket, staged)).toEqual([]);
    const late = await env.call(bob.token, 'POST', `/v1/datasets/uploads/${s.id}/complete`, {});
    expect(late.statusCode).toBe(409);
  });
});

describe('datasets over the API', () => {
  it("keeps other users' datasets and sessions private (404), lets jobs name a dataset, deletes it", async () => {
    const mine = (await env.call(alice.token, 'GET', '/v1/datasets')).json().items;
    const flowersDs = mine.find((d: { name: string }) => d.name === 'flowers');
    for (const [method, url] of [
      ['GET', `/v1/datasets/${flowersDs.id}`],
      ['DELETE', `/v1/datasets/${flowersDs.id}`],
      ['POST', `/v1/datasets/${flowersDs.id}/validate`],
      ['GET', `/v1/datasets/uploads/${flowersDs.uploadId}`],
      ['POST', `/v1/datasets/uploads/${flowersDs.uploadId}/complete`],
    ] as const) {
      const res = await env.call(bob.token, method, url, method === 'GET' ? undefined : {});
      expect({ url, status: res.statusCode }).toEqual({ url, status: 404 });
    }
    expect(
      (await env.call(bob.token, 'GET', '/v1/datasets')).json().items.map((d: { name: string }) => d.name),
    ).not.toContain('flowers');

    const job = { epochs: 1, imageSize: 32 };
    const byName = await env.call(alice.token, 'POST', '/v1/jobs', { ...job, dataset: { name: 'flowers' } });
    expect(byName.statusCode).toBe(201);
    expect(byName.json().spec.dataset).toEqual({ uri: flowersDs.uri });
    const byId = await env.call(alice.token, 'POST', '/v1/jobs', { ...job, dataset: { id: flowersDs.id } });
    expect(byId.json().spec.dataset).toEqual({ uri: flowersDs.uri });
    for (const dataset of [{ id: flowersDs.id }, { name: 'flowers' }, { uri: flowersDs.uri }]) {
      const res = await env.call(bob.token, 'POST', '/v1/jobs', { ...job, dataset });
      expect({ dataset, status: res.statusCode }).toEqual({ dataset, status: 404 });
    }

    const busy = await env.call(alice.token, 'DELETE', `/v1/datasets/${flowersDs.id}`);
    expect(busy.statusCode).toBe(409);
    for (const j of [byName.json(), byId.json()]) await env.call(alice.token, 'POST', `/v1/jobs/${j.id}/cancel`, {});
    const del = await env.call(alice.token, 'DELETE', `/v1/datasets/${flowersDs.id}`);
    expect(del.statusCode).toBe(200);
    expect(del.json()).toMatchObject({ deleted: true, objects: 16 });
    expect(await listObjects(env.s3.client, env.s3.bucket, `datasets/${alice.userId}/flowers/`)).toEqual([]);
    expect((await env.call(alice.token, 'GET', `/v1/datasets/${flowersDs.id}`)).statusCode).toBe(404);
    // The blobs stay: uploading the folder again sends nothing.
    const s = (await startUpload(alice.token, 'flowers', flowers)).json();
    expect(s.pending).toEqual({ files: 0, blobs: 0, bytes: 0 });
  });
});
