import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { isSigV4, verifySigV4 } from './sigv4';

export interface EmbeddedS3 {
  endpoint: string;
  close(): Promise<void>;
}

/**
 * Starts an in-process S3-protocol server (s3rver) storing objects under `directory`. Used by local mode and tests;
 * credentials are s3rver's fixed pair (S3RVER / S3RVER).
 *
 * s3rver serves anonymous requests and does not check V4 signatures (only the old V2 ones), so a presigned URL for
 * one object would open any other. A middleware in front of its router therefore requires a valid V4 signature
 * (sigv4.ts) on every request but CORS preflights, as S3 does for a private bucket; s3rver still checks V2
 * signatures and the expiry of presigned URLs itself.
 */
export async function startEmbeddedS3(opts: { directory: string; port?: number; host?: string }): Promise<EmbeddedS3> {
  mkdirSync(opts.directory, { recursive: true });
  const { default: S3rver } = await import('s3rver');
  const server = new S3rver({
    port: opts.port ?? 0,
    address: opts.host ?? '127.0.0.1',
    directory: opts.directory,
    silent: true,
    allowMismatchedSignatures: false,
  });
  const { default: S3Error } = await import('s3rver/lib/models/error');
  const secrets = new Map<string, string>([
    [EMBEDDED_S3_CREDENTIALS.accessKeyId, EMBEDDED_S3_CREDENTIALS.secretAccessKey],
  ]);
  server.middleware.splice(server.middleware.length - 1, 0, async (ctx, next) => {
    const auth = ctx.req.headers['authorization'];
    const v2 = (typeof auth === 'string' && auth.startsWith('AWS ')) || /[?&]Signature=/.test(ctx.req.url ?? '');
    if (ctx.method !== 'OPTIONS' && !v2) {
      const req = { method: ctx.method, url: ctx.req.url ?? '/', headers: ctx.req.headers };
      if (!isSigV4(req)) throw new S3Error('AccessDenied', 'Access Denied (anonymous requests are not allowed)');
      const verdict = verifySigV4(req, (id) => secrets.get(id));
      if (!verdict.ok)
        throw new S3Error(
          'SignatureDoesNotMatch',
          `The request signature we calculated does not match the signature you provided (${verdict.reason}).`,
        );
    }
    await next();
  });
  const addr = await server.run();
  const http = (server as unknown as { httpServer?: Server }).httpServer;
  // s3rver's close() alone waits for every open connection to end: a client that keeps a response unread (or a
  // socket busy) would hold shutdown forever. Idle keep-alive sockets go at once, busy ones after a grace period.
  // Idempotent: a second close() waits for the first.
  let closing: Promise<void> | null = null;
  return {
    endpoint: `http://${opts.host ?? '127.0.0.1'}:${addr.port}`,
    close: () => {
      closing ??= (async () => {
        const closed = server.close();
        http?.closeIdleConnections();
        const force = setTimeout(() => http?.closeAllConnections(), CLOSE_GRACE_MS);
        try {
          await closed;
        } finally {
          clearTimeout(force);
        }
      })();
      return closing;
    },
  };
}

/** How long close() lets requests in progress finish before their connections are cut. */
const CLOSE_GRACE_MS = 1000;

export const EMBEDDED_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
