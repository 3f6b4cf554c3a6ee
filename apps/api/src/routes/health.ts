import { HeadBucketCommand } from '@aws-sdk/client-s3';
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../deps';
import { doc } from '../plugins/openapi';

export function healthRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get('/healthz', doc('health', 'Liveness', {}, { security: [] }), async () => ({ ok: true }));

  /** Ready only when Postgres, Redis and S3 all answer. */
  app.get(
    '/readyz',
    doc('health', 'Readiness: Postgres, Redis and S3 answer', {}, { security: [] }),
    async (_req, reply) => {
      const checks = await Promise.all([
        check('postgres', () => deps.db.$queryRaw`SELECT 1`),
        check('redis', () => deps.redis.ping()),
        check('s3', () => deps.s3.send(new HeadBucketCommand({ Bucket: deps.bucket }))),
      ]);
      const ok = checks.every((c) => c.ok);
      return reply.status(ok ? 200 : 503).send({ ok, checks });
    },
  );
}

async function check(name: string, fn: () => Promise<unknown>) {
  try {
    await fn();
    return { name, ok: true };
  } catch (e) {
    return { name, ok: false, error: (e as Error).message };
  }
}
