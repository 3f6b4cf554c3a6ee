/**
 * Security: no API route makes the server fetch a URL a user supplied (SSRF).
 *
 * 1. The route table, from the OpenAPI document (generated from the routes' own zod schemas, so it is what the API
 *    accepts): every input that looks like a URL (by name, format or description) is listed, and the list must be
 *    exactly the known ones — a new URL-typed input fails this test until it is classified here:
 *      - `POST /v1/webhooks` `url`: stored, checked against private addresses (packages/core/src/webhook-url.ts);
 *        delivered by the scheduler (apps/scheduler/src/webhooks.ts), which checks every resolved address again;
 *      - `dataset.uri` and `model.pretrained` of `POST /v1/jobs` and `POST /v1/quote`: S3 URIs, refused unless in
 *        the deployment's own bucket; read by the trainer with the deployment's S3 client, never fetched as URLs.
 * 2. A canary HTTP server: every route is called (as an admin) with every string input set to the canary's URL, the
 *    webhook routes with a webhook pointing at the canary (private addresses allowed, so it is accepted) including
 *    its "send a test delivery" route; the canary must receive nothing from the API process.
 * 3. The API's source has no outbound HTTP client (fetch, http.request, undici, …): S3 and Postgres/Redis are its
 *    only peers, at configured addresses.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { buildApp } from '@gpulab/api/src/app';
import { createDb, createUserToken, type Db, ensureFlavor, ensureUserWithQuota } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import { createRedis, DispatchQueue } from '@gpulab/queue';
import {
  createTestDatabase,
  REPO_ROOT,
  startTestS3,
  TEST_POLICY,
  TEST_REDIS_URL,
  type TestDatabase,
  type TestS3,
  testRedisPrefix,
} from '@gpulab/testing';
import type { FastifyInstance, InjectOptions } from 'fastify';
import type { Redis } from 'ioredis';

/** URL-like inputs and why each is safe. */
const KNOWN: Record<string, string> = {
  'POST /v1/webhooks body.url': 'webhook: SSRF-checked at creation and delivery; delivered by the scheduler',
  'POST /v1/jobs body.dataset.uri': 'S3 URI in the deployment bucket',
  'POST /v1/jobs body.model.pretrained': 'S3 URI in the deployment bucket',
  'POST /v1/quote body.dataset.uri': 'S3 URI: priced only, never read',
  'POST /v1/quote body.model.pretrained': 'S3 URI: priced only, never read',
};
const URLISH_NAME = /(^|[._])(url|uri|urls|href|link|endpoint|callback|redirect|webhook|pretrained|origin|host|src)$/i;

let tdb: TestDatabase;
let db: Db;
let s3: TestS3;
let redis: Redis;
let queue: DispatchQueue;
let app: FastifyInstance;
let canary: Server;
let canaryUrl: string;
const hits: string[] = [];

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = createDb(tdb.url);
  s3 = await startTestS3();
  redis = createRedis(TEST_REDIS_URL);
  queue = new DispatchQueue(redis, testRedisPrefix('ssrf'));
  await ensureFlavor(db, { name: 'local', rateMicrosPerHour: 1_000_000, capacity: 1 });
  canary = createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    res.end('canary');
  });
  await new Promise<void>((r) => canary.listen(0, '127.0.0.1', () => r()));
  canaryUrl = `http://127.0.0.1:${(canary.address() as AddressInfo).port}/canary`;
  app = buildApp(
    {
      db,
      redis,
      queue,
      s3: s3.client,
      bucket: s3.bucket,
      clock: () => new Date(),
      maxAttempts: 3,
      policy: TEST_POLICY,
      webhooks: { allowPrivate: true }, // so that a webhook to the canary is accepted: the API still must not call it
    },
    createLogger({ name: 'test', level: 'silent' }),
  );
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  await new Promise((r) => canary?.close(r));
  await queue?.queue.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
  redis?.disconnect();
  await db?.$disconnect();
  await tdb?.drop();
  await s3?.close();
});

interface JsonSchema {
  type?: string | string[];
  format?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  additionalProperties?: boolean | JsonSchema;
  enum?: unknown[];
  const?: unknown;
}
interface Operation {
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
  parameters?: { in: string; name: string; schema?: JsonSchema }[];
}

const isString = (s: JsonSchema) => s.type === 'string' || (Array.isArray(s.type) && s.type.includes('string'));

/** String inputs of a schema, by path. */
function strings(s: JsonSchema | undefined, at: string, out: Map<string, JsonSchema>): Map<string, JsonSchema> {
  if (!s || typeof s !== 'object') return out;
  if (isString(s)) out.set(at, s);
  for (const [k, v] of Object.entries(s.properties ?? {})) strings(v, `${at}.${k}`, out);
  if (s.items) strings(s.items, `${at}[]`, out);
  for (const x of [...(s.anyOf ?? []), ...(s.oneOf ?? []), ...(s.allOf ?? [])]) strings(x, at, out);
  if (s.additionalProperties && typeof s.additionalProperties === 'object')
    strings(s.additionalProperties, `${at}.*`, out);
  return out;
}

/** A value for `s` with every free string set to `url` (enums keep a valid member). */
function fill(s: JsonSchema | undefined, url: string): unknown {
  if (!s) return undefined;
  if (s.const !== undefined) return s.const;
  if (s.enum) return s.enum[0];
  const alt = s.anyOf?.[0] ?? s.oneOf?.[0];
  if (alt && !s.type) return fill(alt, url);
  const t = Array.isArray(s.type) ? s.type.find((x) => x !== 'null') : s.type;
  if (t === 'string') return url;
  if (t === 'number' || t === 'integer') return 1;
  if (t === 'boolean') return true;
  if (t === 'array') return [fill(s.items, url)];
  if (t === 'object' || s.properties) {
    const o: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(s.properties ?? {})) o[k] = fill(v, url);
    return o;
  }
  return url;
}

async function openapi(): Promise<Record<string, Record<string, Operation>>> {
  return (await app.inject({ method: 'GET', url: '/openapi.json' })).json().paths;
}

it('the only URL-like inputs are the webhook URL and S3 URIs confined to the bucket', async () => {
  const found: string[] = [];
  for (const [route, ops] of Object.entries(await openapi()))
    for (const [method, op] of Object.entries(ops)) {
      const inputs = strings(op.requestBody?.content?.['application/json']?.schema, 'body', new Map());
      for (const p of op.parameters ?? []) strings(p.schema, `${p.in}.${p.name}`, inputs);
      for (const [at, s] of inputs) {
        const urlish =
          URLISH_NAME.test(at) ||
          ['uri', 'url', 'iri', 'uri-reference'].includes(s.format ?? '') ||
          /:\/\//.test(s.description ?? '');
        if (urlish) found.push(`${method.toUpperCase()} ${route} ${at}`);
      }
    }
  console.log(`no-server-fetch: URL-like inputs: ${found.map((f) => `${f} (${KNOWN[f] ?? 'UNKNOWN'})`).join('; ')}`);
  expect(found.sort()).toEqual(Object.keys(KNOWN).sort());
});

it('no route calls a URL it is given: a canary server hears nothing', async () => {
  const { user } = await ensureUserWithQuota(db, {
    email: 'root@uni.edu',
    name: 'Root',
    role: 'admin',
    group: 'ssrf',
    grantSeconds: 3600,
    periodStart: new Date('2026-01-01'),
    periodEnd: new Date('2027-12-31'),
  });
  const token = (await createUserToken(db, user.id, 't')).secret;
  const auth = { authorization: `Bearer ${token}` };

  // the S3 URIs: an http URL or another bucket is refused by submit before anything is read (quote reads nothing: it
  // only prices the spec, so it need not refuse; it must not fetch either — the canary below checks)
  for (const body of [
    { dataset: { uri: canaryUrl } },
    { dataset: { uri: 's3://another-bucket/datasets/x' } },
    { dataset: { uri: `s3://${s3.bucket}/datasets/x` }, model: { pretrained: canaryUrl } },
    { dataset: { uri: `s3://${s3.bucket}/datasets/x` }, model: { pretrained: 's3://another-bucket/w.safetensors' } },
  ]) {
    const res = await app.inject({ method: 'POST', url: '/v1/jobs', headers: auth, payload: body });
    expect({ body, status: res.statusCode }).toEqual({ body, status: 400 });
    const quote = await app.inject({ method: 'POST', url: '/v1/quote', headers: auth, payload: body });
    expect(quote.statusCode).toBeLessThan(500);
  }

  // a webhook at the canary is accepted (private addresses allowed here) and pinged: the API only queues it
  const hook = await app.inject({ method: 'POST', url: '/v1/webhooks', headers: auth, payload: { url: canaryUrl } });
  expect(hook.statusCode).toBe(201);
  const hookId = hook.json().id as string;
  const ping = await app.inject({ method: 'POST', url: `/v1/webhooks/${hookId}/test`, headers: auth });
  expect(ping.statusCode).toBe(202);
  expect(await db.webhookDelivery.count({ where: { webhookId: hookId, deliveredAt: null } })).toBe(1);

  // every route, every string input (body, query, path) set to the canary URL
  const ids: Record<string, string> = { id: hookId };
  let calls = 0;
  for (const [route, ops] of Object.entries(await openapi()))
    for (const [method, op] of Object.entries(ops)) {
      let url = route.replace(/\{(\w+)\}/g, (_, name: string) =>
        name === 'id' && route.startsWith('/v1/webhooks') ? ids.id! : encodeURIComponent(canaryUrl),
      );
      const query = new URLSearchParams();
      for (const p of op.parameters ?? [])
        if (p.in === 'query' && p.name !== 'follow' && p.schema && isString(p.schema)) query.set(p.name, canaryUrl);
      if (query.size) url += `?${query}`;
      const schema = op.requestBody?.content?.['application/json']?.schema;
      const res = await app.inject({
        method: method.toUpperCase() as InjectOptions['method'],
        url,
        headers: auth,
        ...(schema ? { payload: fill(schema, canaryUrl) as object } : {}),
      });
      calls++;
      expect({ route: `${method} ${route}`, serverError: res.statusCode >= 500 }).toEqual({
        route: `${method} ${route}`,
        serverError: false,
      });
    }
  await new Promise((r) => setTimeout(r, 1000)); // anything fired and forgotten would arrive by now
  console.log(
    `no-server-fetch: ${calls} routes called with every string input = ${canaryUrl}; canary heard ${hits.length}`,
  );
  expect(hits).toEqual([]);
});

it('the API source has no outbound HTTP client', () => {
  const dir = path.join(REPO_ROOT, 'apps', 'api', 'src');
  const files: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = path.join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(ts|js|mjs|cjs)$/.test(n)) files.push(p);
    }
  };
  walk(dir);
  const CLIENT =
    /\bfetch\s*\(|\bhttps?\.(request|get)\s*\(|from ['"](undici|axios|got|node-fetch|needle|superagent)['"]|new\s+(WebSocket|EventSource)\b/;
  const offenders = files.filter((f) => CLIENT.test(readFileSync(f, 'utf8'))).map((f) => path.relative(REPO_ROOT, f));
  expect(files.length).toBeGreaterThan(20);
  expect(offenders).toEqual([]);
});
