import { timingSafeEqual } from 'node:crypto';
import { GpulabError } from '@gpulab/core';
import { type Db, type Principal, type SessionPrincipal, verifySession } from '@gpulab/db';
import type { FastifyRequest } from 'fastify';
import { verifyBearer } from './bearer-cache';

export const SESSION_COOKIE = 'gpulab_session';
export const CSRF_HEADER = 'x-csrf-token';
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export type Clock = () => Date;

/**
 * Resolves `Authorization: Bearer <token>` (scripts, CLI, trainers) or the dashboard's session cookie to a
 * principal, or null when neither is present. Bad tokens are 401; a stale cookie is treated as absent. A request
 * authenticated by cookie that changes state must carry the session's CSRF token in `x-csrf-token` (another site can
 * make the browser send the cookie, but cannot read the token).
 */
export async function authenticate(
  db: Db,
  req: FastifyRequest,
  now: Date,
  sessionTtlMs: number,
): Promise<Principal | null> {
  const header = req.headers.authorization;
  if (!header) {
    const cookie = req.cookies?.[SESSION_COOKIE];
    if (!cookie) return null;
    const session = await verifySession(db, cookie, now, sessionTtlMs);
    if (session && UNSAFE.has(req.method)) checkCsrf(req, session);
    return session;
  }
  const m = /^Bearer\s+(\S+)$/i.exec(header);
  if (!m?.[1]) throw new GpulabError('UNAUTHENTICATED', 'Authorization header must be "Bearer <token>"');
  const p = await verifyBearer(db, m[1], now);
  if (!p) throw new GpulabError('UNAUTHENTICATED', 'token is unknown, revoked or expired');
  return p;
}

export function requireUser(req: FastifyRequest): Principal {
  const p = req.principal;
  if (!p) throw new GpulabError('UNAUTHENTICATED', 'this route needs an API token (Authorization: Bearer …)');
  if (p.scope !== 'user') throw new GpulabError('FORBIDDEN', 'a job token cannot call this route');
  return p;
}

export function requireJobToken(req: FastifyRequest, jobId: string): Principal {
  const p = req.principal;
  if (!p) throw new GpulabError('UNAUTHENTICATED', 'this route needs the job token');
  if (p.scope !== 'job' || p.jobId !== jobId) throw new GpulabError('FORBIDDEN', 'token is not scoped to this job');
  return p;
}

function checkCsrf(req: FastifyRequest, session: SessionPrincipal): void {
  const sent = req.headers[CSRF_HEADER];
  if (typeof sent !== 'string' || !timingSafeEqualStrings(sent, session.csrfToken))
    throw new GpulabError('FORBIDDEN', `a request signed in by cookie must send the session's ${CSRF_HEADER} header`, {
      field: CSRF_HEADER,
    });
}

function timingSafeEqualStrings(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
