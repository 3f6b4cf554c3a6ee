import { GpulabError, isGpulabError } from '@gpulab/core';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ZodError } from 'zod';

/**
 * The one place where errors become HTTP: RFC 9457 problem+json with a stable `code` and, when one input is to
 * blame, the `field` that names it.
 */
export function toProblem(err: unknown): { status: number; body: Record<string, unknown> } {
  if (err instanceof ZodError) {
    const first = err.issues[0];
    const field = first?.path.join('.') || undefined;
    const detail = err.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
    return problem(new GpulabError('VALIDATION', detail, { field, issues: err.issues.map(simplifyIssue) }));
  }
  if (isGpulabError(err)) return problem(err);
  if (isUnavailable(err))
    return problem(
      new GpulabError('UNAVAILABLE', 'the database is unavailable; nothing was changed — retry shortly', {
        retryAfterSeconds: 5,
      }),
    );
  const fe = err as FastifyError;
  if (fe.validation) return problem(new GpulabError('VALIDATION', fe.message));
  if (fe.statusCode === 413 || fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return problem(new GpulabError('PAYLOAD_TOO_LARGE', 'request body too large'));
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500)
    return problem(new GpulabError('VALIDATION', fe.message));
  return problem(new GpulabError('INTERNAL', 'internal error'));
}

const UNREACHABLE_PRISMA = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);
const UNREACHABLE_MESSAGE =
  /Can't reach database server|Connection terminated|terminating connection due to administrator command|the database system is (starting up|shutting down)|ECONNREFUSED|ECONNRESET|Connection is closed/;

/**
 * Postgres (or Redis) cannot be reached or went away mid-request: a 503 with Retry-After, not a 500 — the request
 * changed nothing (writes are transactions) and will work once the service is back.
 */
export function isUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; meta?: { driverAdapterError?: { cause?: { kind?: string } } } };
  if (typeof e?.code === 'string' && UNREACHABLE_PRISMA.has(e.code)) return true;
  const kind = e?.meta?.driverAdapterError?.cause?.kind;
  if (kind === 'DatabaseNotReachable' || kind === 'ConnectionClosed') return true;
  return typeof e?.message === 'string' && UNREACHABLE_MESSAGE.test(e.message);
}

function simplifyIssue(i: ZodError['issues'][number]) {
  return { path: i.path.join('.'), message: i.message };
}

function problem(e: GpulabError) {
  const status = e.httpStatus;
  return {
    status,
    body: {
      type: `https://gpulab.dev/problems/${e.code.toLowerCase().replace(/_/g, '-')}`,
      title: e.code,
      status,
      code: e.code,
      detail: e.message,
      ...e.details,
    },
  };
}

/**
 * Errors Fastify raises before routing (a malformed URL, a path parameter over the router's length limit): as
 * problem+json like every other error. Passed as the `frameworkErrors` option of the Fastify constructor.
 */
export function frameworkErrors(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const e =
    err.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? new GpulabError('VALIDATION', 'a path parameter is longer than 100 characters')
      : err.code === 'FST_ERR_BAD_URL'
        ? new GpulabError('VALIDATION', 'the URL is not valid (bad percent-encoding)')
        : err;
  const { status, body } = toProblem(e);
  void reply
    .status(status)
    .type('application/problem+json')
    .send({ ...body, instance: req.url });
}

export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err, req, reply) => {
    const { status, body } = toProblem(err);
    if (status >= 500) req.log.error({ err }, 'request failed');
    else req.log.info({ code: body.code, detail: body.detail }, 'request rejected');
    if (typeof body.retryAfterSeconds === 'number') void reply.header('retry-after', String(body.retryAfterSeconds));
    void reply
      .status(status)
      .type('application/problem+json')
      .send({ ...body, instance: req.url });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply
      .status(404)
      .type('application/problem+json')
      .send({
        type: 'https://gpulab.dev/problems/not-found',
        title: 'NOT_FOUND',
        status: 404,
        code: 'NOT_FOUND',
        detail: `no route ${req.method} ${req.url.split('?')[0]}`,
        instance: req.url,
      });
  });
}
