/** The OpenAPI 3.1 document is generated from the routes' own schemas and covers every route. */
import type { FastifyInstance } from 'fastify';
import { startTestApi, type TestApi } from '../helpers/app';

let t: TestApi;
let app: FastifyInstance;
const routes: { method: string; url: string }[] = [];

beforeAll(async () => {
  t = await startTestApi({
    name: 'openapi',
    beforeReady: (a) =>
      a.addHook('onRoute', (r) => {
        for (const m of [r.method].flat()) if (m !== 'HEAD') routes.push({ method: m.toLowerCase(), url: r.url });
      }),
  });
  app = t.app;
});
afterAll(() => t.close());

type Operation = { summary?: string; tags?: string[]; requestBody?: unknown; parameters?: { name: string }[] };

it('documents every /v1 and health route with a summary, a tag and its input schemas', async () => {
  const res = await app.inject({ method: 'GET', url: '/openapi.json' });
  expect(res.statusCode).toBe(200);
  const docJson = res.json() as { openapi: string; paths: Record<string, Record<string, Operation>> };
  expect(docJson.openapi).toBe('3.1.0');
  const api = routes.filter((r) => r.url.startsWith('/v1/') || r.url === '/healthz' || r.url === '/readyz');
  expect(api.length).toBeGreaterThan(25);
  for (const r of api) {
    const path = r.url.replace(/:([a-zA-Z]+)/g, '{$1}');
    const op = docJson.paths[path]?.[r.method];
    expect({ route: `${r.method} ${r.url}`, summary: op?.summary, tagged: (op?.tags?.length ?? 0) > 0 }).toEqual({
      route: `${r.method} ${r.url}`,
      summary: expect.any(String),
      tagged: true,
    });
  }
  const submit = docJson.paths['/v1/jobs']?.post as {
    requestBody: { content: Record<string, { schema: { properties: object } }> };
  };
  const props = Object.keys(submit.requestBody.content['application/json']!.schema.properties);
  expect(props).toEqual(expect.arrayContaining(['dataset', 'epochs', 'optimizer', 'freeze', 'resources', 'group']));
  const get = docJson.paths['/v1/jobs/{id}']?.get as Operation;
  expect(get.parameters?.map((p) => p.name)).toEqual(['id']);
});

it('serves a browsable UI at /docs', async () => {
  const res = await app.inject({ method: 'GET', url: '/docs/' });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toMatch(/text\/html/);
  expect(res.body).toMatch(/swagger/i);
});
