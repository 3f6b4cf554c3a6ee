import { GpulabError } from '@gpulab/core';
import { type Db, type Principal, verifyToken } from '@gpulab/db';
import type { FastifyRequest } from 'fastify';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export type Clock = () => Date;

/** Resolves `Authorization: Bearer <token>` to a principal, or null when absent. Bad tokens are 401. */
export async function authenticate(db: Db, req: FastifyRequest, now: Date): Promise<Principal | null> {
  const header = req.headers.authorization;
  if (!header) return null;
  const m = /^Bearer\s+(\S+)$/i.exec(header);
  if (!m?.[1]) throw new GpulabError('UNAUTHENTICATED', 'Authorization header must be "Bearer <token>"');
  const p = await verifyToken(db, m[1], now);
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
