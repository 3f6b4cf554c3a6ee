/** The API serves the dashboard's build: files, cache headers, the single-page fallback, and API paths left alone. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { registerErrorHandler } from '../../apps/api/src/plugins/errors';
import { registerWeb } from '../../apps/api/src/plugins/web';

let root: string;
let app: FastifyInstance;

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'gpulab-web-'));
  app = Fastify();
  registerErrorHandler(app);
  registerWeb(app, path.join(root, 'dist'));
  app.get('/v1/ping', async () => ({ pong: true }));
  await app.ready();
});
afterAll(async () => {
  await app.close();
  rmSync(root, { recursive: true, force: true });
});

const get = (url: string) => app.inject({ method: 'GET', url });

describe('without a build', () => {
  it('explains how to build the dashboard at /', async () => {
    const res = await get('/');
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.body).toMatch(/npm run build:web/);
  });
});

describe('with a build', () => {
  beforeAll(() => {
    const dist = path.join(root, 'dist');
    mkdirSync(path.join(dist, 'assets'), { recursive: true });
    writeFileSync(path.join(dist, 'index.html'), '<!doctype html><title>gpulab</title><div id="root"></div>');
    writeFileSync(path.join(dist, 'assets', 'index-abc123.js'), 'console.log(1)');
    writeFileSync(path.join(dist, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    writeFileSync(path.join(root, 'secret.txt'), 'not served');
  });

  it('serves index.html at /, never cached', async () => {
    const res = await get('/');
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('<div id="root">');
    expect(res.headers['cache-control']).toBe('no-cache');
  });

  it('serves hashed assets as immutable for a year, other files revalidated', async () => {
    const js = await get('/assets/index-abc123.js');
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toMatch(/javascript/);
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const svg = await get('/favicon.svg');
    expect(svg.statusCode).toBe(200);
    expect(svg.headers['cache-control']).toBe('no-cache');
  });

  it('answers page paths with index.html (a reloaded /jobs/<id> opens the app)', async () => {
    for (const url of ['/jobs', '/jobs/5d0c1f3e-0000-4000-8000-000000000000', '/admin/usage?group=x']) {
      const res = await get(url);
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/text\/html/);
      expect(res.body).toContain('<div id="root">');
    }
  });

  it('leaves API paths and missing files to the problem+json 404', async () => {
    expect((await get('/v1/ping')).json()).toEqual({ pong: true });
    for (const url of ['/v1/nope', '/v1', '/assets/missing-123.js', '/missing.png']) {
      const res = await get(url);
      expect(res.statusCode).toBe(404);
      expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    }
  });

  it('never serves a file outside the build', async () => {
    for (const url of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/%2e%2e/%2e%2e/secret.txt']) {
      const res = await get(url);
      expect(res.body).not.toContain('not served');
    }
  });
});
