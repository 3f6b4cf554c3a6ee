/**
 * Security: presigned URLs are scoped to one object, one method and (for uploads) one size, and expire.
 *
 * Checked against the embedded S3 that local mode and every test use. s3rver itself verifies only V2 signatures and
 * serves anonymous requests, so the embedded server puts a V4 verifier in front of it (packages/storage/src/
 * sigv4.ts, embedded.ts) — as real S3 does for a private bucket. Expiry is checked by s3rver.
 *
 * Storage level: a URL for one key fetches that key only; changing its key, method, expiry or body size is refused,
 * as is an unsigned request. API level: the upload URLs a session hands out point only into that user's own
 * staging prefix, expire after the configured TTL (2 s here) and are replaced by fresh ones on GET; the artifact
 * download URLs of a job point at that job's objects only and live 15 minutes.
 */
import { layout, presignGet, presignPut, putObject } from '@gpulab/storage';
import {
  type DatasetTestEnv,
  imageFolder,
  manifestOf,
  sendMissing,
  startDatasetEnv,
} from '../../apps/api/test/helpers/datasets';

const TTL = 2;
let env: DatasetTestEnv;
let alice: { token: string; userId: string };
let bob: { token: string; userId: string };

beforeAll(async () => {
  env = await startDatasetEnv('security-presign', { urlTtlSeconds: TTL });
  alice = await env.user('alice@uni.edu');
  bob = await env.user('bob@uni.edu');
});
afterAll(() => env.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const withPath = (url: string, key: string) => {
  const u = new URL(url);
  u.pathname = `/${env.s3.bucket}/${key}`;
  return u.toString();
};
const withParam = (url: string, name: string, value: string) => {
  const u = new URL(url);
  u.searchParams.set(name, value);
  return u.toString();
};
async function status(url: string, init: RequestInit = {}) {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, code: /<Code>([^<]+)<\/Code>/.exec(text)?.[1] ?? null, text };
}

describe('storage: one object, one method, one size, a limited time', () => {
  it('a GET URL fetches its own object and nothing else', async () => {
    const { client, bucket, endpoint } = env.s3;
    await putObject(client, bucket, 'jobs/a/model/weights.safetensors', 'weights of job a');
    await putObject(client, bucket, 'jobs/b/model/weights.safetensors', 'weights of job b');
    await putObject(client, bucket, 'datasets/u/private/train/x/1.png', 'private image');
    const url = await presignGet(client, bucket, 'jobs/a/model/weights.safetensors', 60);
    const own = await fetch(url);
    expect({ status: own.status, body: await own.text() }).toEqual({ status: 200, body: 'weights of job a' });

    const tries: [string, string, RequestInit?][] = [
      ['another job’s object', withPath(url, 'jobs/b/model/weights.safetensors')],
      ['a dataset', withPath(url, 'datasets/u/private/train/x/1.png')],
      ['the bucket listing', withPath(url, '')],
      ['a PUT over it', url, { method: 'PUT', body: 'overwritten' }],
      ['a DELETE', url, { method: 'DELETE' }],
      ['a longer expiry', withParam(url, 'X-Amz-Expires', '604800')],
      ['another signature', withParam(url, 'X-Amz-Signature', 'f'.repeat(64))],
      ['no credentials', `${endpoint}/${bucket}/jobs/a/model/weights.safetensors`],
      ['an unsigned PUT', `${endpoint}/${bucket}/jobs/a/model/weights.safetensors`, { method: 'PUT', body: 'x' }],
      ['an unsigned listing', `${endpoint}/${bucket}?list-type=2`],
    ];
    for (const [what, u, init] of tries) {
      const r = await status(u, init);
      expect({ what, status: r.status }).toEqual({ what, status: 403 });
      expect(['SignatureDoesNotMatch', 'AccessDenied']).toContain(r.code);
    }
    const still = await fetch(url);
    expect(await still.text()).toBe('weights of job a');
    console.log(`presigned-urls: a GET URL refused for ${tries.map((t) => t[0]).join(', ')} (403 each)`);
  });

  it('a PUT URL writes its own key with its declared size only', async () => {
    const { client, bucket } = env.s3;
    const url = await presignPut(client, bucket, 'uploads/u/s/abc', 5, 60);
    for (const [what, u, init] of [
      ['another key', withPath(url, 'uploads/u/s/other'), { method: 'PUT', body: 'hello' }],
      ['a model', withPath(url, 'jobs/a/model/weights.safetensors'), { method: 'PUT', body: 'hello' }],
      ['a larger body', url, { method: 'PUT', body: 'hello, and much more' }],
      ['a smaller body', url, { method: 'PUT', body: 'hi' }],
      ['a GET', url, { method: 'GET' }],
    ] as const) {
      const r = await status(u, init);
      expect({ what, status: r.status }).toEqual({ what, status: 403 });
    }
    expect((await fetch(url, { method: 'PUT', body: 'hello' })).status).toBe(200);
  });

  it('an expired URL is refused', async () => {
    const { client, bucket } = env.s3;
    await putObject(client, bucket, 'jobs/c/metrics.json', '{}');
    const url = await presignGet(client, bucket, 'jobs/c/metrics.json', 1);
    expect((await fetch(url)).status).toBe(200);
    await sleep(2200);
    const r = await status(url);
    expect({ status: r.status, code: r.code }).toEqual({ status: 403, code: 'AccessDenied' });
    expect(r.text).toMatch(/Request has expired/);
  });
});

describe('the API hands out URLs for the caller’s own objects only, for a limited time', () => {
  it('upload URLs point into the user’s own staging prefix, expire after the TTL, and are renewed on GET', async () => {
    const files = imageFolder(['cat', 'dog'], { train: 1, val: 1 }, 21);
    const a = (
      await env.call(alice.token, 'POST', '/v1/datasets/uploads', { name: 'pets', files: manifestOf(files) })
    ).json();
    const b = (
      await env.call(bob.token, 'POST', '/v1/datasets/uploads', { name: 'pets', files: manifestOf(files) })
    ).json();
    for (const [who, s] of [
      [alice, a],
      [bob, b],
    ] as const) {
      for (const m of s.missing as { url: string; sha256: string }[]) {
        const u = new URL(m.url);
        expect(decodeURIComponent(u.pathname)).toBe(`/${env.s3.bucket}/uploads/${who.userId}/${s.id}/${m.sha256}`);
        expect(u.searchParams.get('X-Amz-Expires')).toBe(String(TTL));
        expect(u.searchParams.get('X-Amz-SignedHeaders')).toBe('content-length;host');
      }
    }
    // Bob's URL cannot be pointed at Alice's staging key (same file, same size: only the key differs)
    const bobsUrl = (b.missing as { url: string; sha256: string }[])[0]!;
    const bytes = [...files.values()].find((f) => manifestOf(new Map([['x', f]]))[0]!.sha256 === bobsUrl.sha256)!;
    const stolen = await status(withPath(bobsUrl.url, `uploads/${alice.userId}/${a.id}/${bobsUrl.sha256}`), {
      method: 'PUT',
      body: bytes,
    });
    expect(stolen.status).toBe(403);

    // expired after the TTL; a GET of the session gives fresh URLs, and the upload completes with them
    await sleep((TTL + 1) * 1000);
    const late = await status((a.missing as { url: string }[])[0]!.url, { method: 'PUT', body: bytes });
    expect({ status: late.status, code: late.code }).toEqual({ status: 403, code: 'AccessDenied' });
    const fresh = (await env.call(alice.token, 'GET', `/v1/datasets/uploads/${a.id}`)).json();
    expect(fresh.missing).toHaveLength(4);
    await sendMissing(fresh.missing, files);
    const done = await env.call(alice.token, 'POST', `/v1/datasets/uploads/${a.id}/complete`, {});
    expect(done.statusCode).toBe(200);
    console.log('presigned-urls: upload URLs scoped to uploads/<user>/<session>/<sha256>, refused after 2 s, renewed');
  });

  it('artifact URLs point at the job’s own objects and live 15 minutes; other users get 404', async () => {
    const job = await env.call(alice.token, 'POST', '/v1/jobs', {
      dataset: { uri: `s3://${env.s3.bucket}/datasets/x` },
    });
    expect(job.statusCode).toBe(201);
    const id = job.json().id as string;
    await putObject(env.s3.client, env.s3.bucket, `${layout.modelPrefix(id)}weights.safetensors`, 'alice weights');
    await putObject(env.s3.client, env.s3.bucket, layout.metrics(id), '{"epochs":[]}');
    await putObject(env.s3.client, env.s3.bucket, 'jobs/00000000-0000-4000-8000-000000000000/metrics.json', 'other');
    const res = await env.call(alice.token, 'GET', `/v1/jobs/${id}/artifacts`);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.expiresInSeconds).toBe(900);
    const urls = [...body.model, body.metrics] as { key: string; url: string }[];
    expect(urls).toHaveLength(2);
    for (const f of urls) {
      const u = new URL(f.url);
      expect(decodeURIComponent(u.pathname)).toBe(`/${env.s3.bucket}/${f.key}`);
      expect(f.key.startsWith(`jobs/${id}/`)).toBe(true);
      expect(u.searchParams.get('X-Amz-Expires')).toBe('900');
      expect((await fetch(f.url)).status).toBe(200);
      const other = await status(withPath(f.url, 'jobs/00000000-0000-4000-8000-000000000000/metrics.json'));
      expect(other.status).toBe(403);
    }
    expect((await env.call(bob.token, 'GET', `/v1/jobs/${id}/artifacts`)).statusCode).toBe(404);
  });
});
