import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** apps/web/dist, where `npm run build:web` writes the dashboard. */
export const DEFAULT_WEB_ROOT = path.resolve(__dirname, '..', '..', '..', 'web', 'dist');

/** Paths the API itself answers: never the dashboard's, so an unknown one stays a problem+json 404. */
const API_PATH = /^\/(v1|docs|openapi\.json|healthz|readyz|metrics)(\/|$|\?)/;

const HASHED_ASSET = /^\/assets\//;
const IMMUTABLE = 'public, max-age=31536000, immutable';

/**
 * Serves the dashboard (a single-page app) at /: files from its build, hashed assets cached for a year (their names
 * change with their content), index.html never cached, and index.html for any other GET that is not an API path, so
 * a reloaded /jobs/<id> opens that page. The root is looked up per request, so a rebuild needs no restart; without a
 * build, / says how to make one. Registered in its own scope: its static-file decorator cannot clash with Swagger UI's.
 */
export function registerWeb(app: FastifyInstance, root: string = DEFAULT_WEB_ROOT): void {
  app.register(async (web) => {
    await web.register(fastifyStatic, { root, serve: false, decorateReply: true });
    web.get('/*', { schema: { hide: true } }, async (req, reply) => {
      const url = req.url.split('?')[0] ?? '/';
      if (API_PATH.test(url)) return reply.callNotFound();
      if (!existsSync(path.join(root, 'index.html'))) return notBuilt(reply, root);
      const file = staticFile(root, url);
      if (file) {
        void reply.header('cache-control', HASHED_ASSET.test(url) ? IMMUTABLE : 'no-cache');
        return reply.sendFile(file, root, { cacheControl: false });
      }
      // A path that names a file (has an extension) and is missing is a real 404, not a page of the app.
      if (path.extname(url)) return reply.callNotFound();
      void reply.header('cache-control', 'no-cache');
      return reply.type('text/html; charset=utf-8').sendFile('index.html', root, { cacheControl: false });
    });
  });
}

/** The file under root that a URL path names, or null; never anything outside root. */
function staticFile(root: string, url: string): string | null {
  let rel: string;
  try {
    rel = decodeURIComponent(url).replace(/^\/+/, '');
  } catch {
    return null;
  }
  if (!rel || rel.includes('\0')) return null;
  const full = path.resolve(root, rel);
  if (!full.startsWith(root + path.sep)) return null;
  try {
    return statSync(full).isFile() ? path.relative(root, full) : null;
  } catch {
    return null;
  }
}

function notBuilt(reply: FastifyReply, root: string): FastifyReply {
  // 200, not 503: nothing is broken, the page says what to do (and the API itself is up)
  return reply
    .header('cache-control', 'no-store')
    .type('text/html; charset=utf-8')
    .send(
      '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>gpulab: dashboard not built</title></head>' +
        '<body style="font-family:system-ui;max-width:40rem;margin:3rem auto;line-height:1.5">' +
        '<h1>The dashboard is not built</h1>' +
        `<p>No build was found in <code>${escapeHtml(root)}</code>. Build it once with</p>` +
        '<pre>npm run build:web</pre><p>and reload this page (no restart needed). For development with hot ' +
        'reload: <code>npm run dev -w @gpulab/web</code>. The REST API is at <a href="/docs">/docs</a>.</p>' +
        '</body></html>',
    );
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
