/**
 * Dataset manifests that must be refused before anything is stored (400 naming the field and the path), and
 * POST /v1/datasets/:id/validate on stored files (real Postgres, real s3rver, real image decoding).
 */
import { putObject } from '@gpulab/storage';
import { type DatasetTestEnv, imageFolder, manifestOf, png, sendMissing, startDatasetEnv } from '../helpers/datasets';

let env: DatasetTestEnv;
let alice: { token: string; userId: string };
let admin: { token: string; userId: string };

beforeAll(async () => {
  env = await startDatasetEnv('datasets-validation', {
    maxFiles: 40,
    maxFileBytes: 100_000,
    maxTotalBytes: 1_000_000,
    maxUploadsPerResponse: 4,
  });
  alice = await env.user('alice@uni.edu');
  admin = await env.user('root@uni.edu', 'admin');
});
afterAll(() => env.close());

const good = () => manifestOf(imageFolder(['cat', 'dog'], { train: 2, val: 1 }));
const FAKE_SHA = 'a'.repeat(64);
const post = (body: unknown) => env.call(alice.token, 'POST', '/v1/datasets/uploads', body);

describe('POST /v1/datasets/uploads refuses bad manifests', () => {
  it('unsafe paths: traversal, absolute, backslash, NUL, bidi controls, overlong segments — by field and path', async () => {
    const cases: [string, RegExp][] = [
      ['train/../../etc/cat.png', /"\.\." segment/],
      ['/train/cat/x.png', /absolute/],
      ['train\\cat\\x.png', /backslash/],
      ['train/cat/x\u0000.png', /control character/],
      ['train/cat/x\u202egnp.exe.png', /bidirectional/],
      ['train/cat/x\u200b.png', /invisible/],
      [`train/cat/${'a'.repeat(300)}.png`, /longer than 200 bytes/],
      ['train/cat/.hidden.png', /hidden segment/],
      ['train//x.png', /empty segment/],
      ['C:/train/cat/x.png', /drive letter/],
    ];
    for (const [path, why] of cases) {
      const files = [...good(), { path, size: 10, sha256: FAKE_SHA }];
      const res = await post({ name: 'bad', files });
      expect({ path, status: res.statusCode }).toEqual({ path, status: 400 });
      expect(res.json()).toMatchObject({ code: 'VALIDATION', field: `files.${files.length - 1}.path`, path });
      expect(res.json().detail).toMatch(why);
    }
    expect(await env.db.datasetUpload.count()).toBe(0);
  });

  it('layout: missing val/, val classes not in train/ or missing from it, non-images, wrong depth, duplicates', async () => {
    const onlyTrain = good().filter((f) => f.path.startsWith('train/'));
    let res = await post({ name: 'x', files: onlyTrain });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'VALIDATION', field: 'files' });
    expect(res.json().detail).toMatch(/missing val\//);

    res = await post({ name: 'x', files: [...good(), { path: 'val/bird/0.png', size: 5, sha256: FAKE_SHA }] });
    expect(res.json().detail).toMatch(/val\/ has class folders not in train\/: bird/);

    res = await post({ name: 'x', files: good().filter((f) => !f.path.startsWith('val/dog/')) });
    expect(res.json()).toMatchObject({ field: 'files', path: 'val/dog/' });
    expect(res.json().detail).toMatch(/val\/ lacks class folder\(s\) of train\/: dog/);

    res = await post({ name: 'x', files: [...good(), { path: 'train/cat/notes.txt', size: 5, sha256: FAKE_SHA }] });
    expect(res.json()).toMatchObject({ field: 'files.6.path', path: 'train/cat/notes.txt' });
    expect(res.json().detail).toMatch(/not an image file/);

    res = await post({ name: 'x', files: [...good(), { path: 'train/cat/sub/x.png', size: 5, sha256: FAKE_SHA }] });
    expect(res.json().detail).toMatch(/is not train\/<class>\/<image>/);

    // NFC: a decomposed "é" is the same path as the precomposed one.
    const dup = [
      ...good(),
      { path: 'train/cat/caf\u00e9.png', size: 5, sha256: FAKE_SHA },
      { path: 'train/cat/cafe\u0301.png', size: 5, sha256: FAKE_SHA },
    ];
    res = await post({ name: 'x', files: dup });
    expect(res.json()).toMatchObject({ field: 'files.7.path', path: 'train/cat/caf\u00e9.png' });
    expect(res.json().detail).toMatch(/listed twice \(also files\.6\)/);
  });

  it('limits and fields: file size, total size, file count, empty files, sha256, name', async () => {
    let res = await post({
      name: 'x',
      files: [...good(), { path: 'train/cat/huge.png', size: 100_001, sha256: FAKE_SHA }],
    });
    expect(res.json()).toMatchObject({ field: 'files.6.size', path: 'train/cat/huge.png' });
    expect(res.json().detail).toMatch(/100001 bytes; a file may have at most 100000/);

    const many = Array.from({ length: 12 }, (_, i) => ({ path: `train/c/${i}.png`, size: 99_000, sha256: FAKE_SHA }));
    res = await post({ name: 'x', files: many });
    expect(res.json()).toMatchObject({ field: 'files' });
    expect(res.json().detail).toMatch(/add up to 1188000 bytes; a dataset may have at most 1000000/);

    const tooMany = Array.from({ length: 41 }, (_, i) => ({ path: `train/c/${i}.png`, size: 1, sha256: FAKE_SHA }));
    res = await post({ name: 'x', files: tooMany });
    expect(res.json().detail).toMatch(/41 files: a dataset has at most 40 files/);

    res = await post({ name: 'x', files: [...good(), { path: 'train/cat/empty.png', size: 0, sha256: FAKE_SHA }] });
    expect(res.json()).toMatchObject({ field: 'files.6.size', path: 'train/cat/empty.png' });

    res = await post({ name: 'x', files: [{ path: 'train/cat/a.png', size: 3, sha256: 'xyz' }] });
    expect(res.json()).toMatchObject({ code: 'VALIDATION', field: 'files.0.sha256' });

    res = await post({ name: '../etc', files: good() });
    expect(res.json()).toMatchObject({ code: 'VALIDATION', field: 'name' });
    expect(await env.db.datasetUpload.count()).toBe(0);
  });
});

describe('POST /v1/datasets/:id/validate', () => {
  it('reports a corrupt image by path; a class left with no readable image makes the dataset invalid', async () => {
    const files = imageFolder(['cat', 'dog'], { train: 3, val: 1 }, 11);
    const corrupt = Buffer.concat([png(5).subarray(0, 30), Buffer.from('not the rest of a png')]);
    files.set('train/dog/broken.png', corrupt);
    const s = (await post({ name: 'pets', files: manifestOf(files) })).json();
    // 9 files, URLs for at most 4 a response: the client sends those and asks for more, as a CLI does.
    expect(s).toMatchObject({ truncated: true, pending: { blobs: 9 } });
    let view = s;
    let rounds = 0;
    while (view.missing.length > 0) {
      expect(view.missing.length).toBeLessThanOrEqual(4);
      await sendMissing(view.missing, files);
      view = (await env.call(alice.token, 'GET', `/v1/datasets/uploads/${s.id}`)).json();
      rounds++;
    }
    expect({ rounds, pending: view.pending }).toEqual({ rounds: 3, pending: { files: 0, blobs: 0, bytes: 0 } });
    const done = await env.call(alice.token, 'POST', `/v1/datasets/uploads/${s.id}/complete`, {});
    expect(done.statusCode).toBe(200);
    const id = done.json().dataset.id;

    const res = await env.call(alice.token, 'POST', `/v1/datasets/${id}/validate`, {});
    expect(res.statusCode).toBe(200);
    const { report, dataset } = res.json();
    expect(report).toMatchObject({
      ok: false,
      usable: true,
      classes: ['cat', 'dog'],
      counts: { train: { cat: 3, dog: 3 }, val: { cat: 1, dog: 1 } },
      images: 9,
      problems: [],
      manifest: { present: true, missing: [], unexpected: [], sizeMismatch: [] },
    });
    expect(report.corrupt).toEqual([{ path: 'train/dog/broken.png', reason: expect.stringMatching(/unreadable/) }]);
    expect(dataset).toMatchObject({ status: 'ready', validatedAt: expect.any(String) });
    expect((await env.call(alice.token, 'GET', `/v1/datasets/${id}`)).json().validation.corrupt).toHaveLength(1);

    // Someone overwrites val/cat's only image with garbage behind the API's back: the class has nothing readable.
    const prefix = `datasets/${alice.userId}/pets/`;
    const garbage = Buffer.from('garbage!');
    await putObject(env.s3.client, env.s3.bucket, `${prefix}val/cat/000.png`, garbage);
    await putObject(env.s3.client, env.s3.bucket, `${prefix}val/cat/extra.png`, garbage);
    const bad = (await env.call(admin.token, 'POST', `/v1/datasets/${id}/validate`, {})).json();
    expect(bad.report.usable).toBe(false);
    expect(bad.report.problems).toEqual(
      expect.arrayContaining([expect.stringMatching(/size/), 'val/cat/ has no readable images']),
    );
    expect(bad.report.manifest).toMatchObject({ sizeMismatch: ['val/cat/000.png'], unexpected: ['val/cat/extra.png'] });
    expect(bad.report.corrupt.map((c: { path: string }) => c.path)).toEqual([
      'train/dog/broken.png',
      'val/cat/000.png',
      'val/cat/extra.png',
    ]);
    expect(bad.dataset.status).toBe('invalid');
    const job = await env.call(alice.token, 'POST', '/v1/jobs', { dataset: { id }, epochs: 1 });
    expect(job.json()).toMatchObject({ code: 'VALIDATION', field: 'dataset.id' });
  });
});
