import { GpulabError } from '@gpulab/core';
import type { FastifyRequest } from 'fastify';
import type { ApiDeps } from '../deps';

export interface RateLimitSettings {
  /** Requests per minute per API token, session or (anonymous) client address. */
  perMinute: number;
  /** Redis key prefix. */
  prefix: string;
}

const EXEMPT = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * Fixed one-minute windows in Redis, per principal (token or session id) or, for anonymous requests, per client
 * address: every API replica counts in the same place. Over the limit: 429 with Retry-After. If Redis is down the
 * request goes through (the limiter protects the service; it must not take it down).
 */
export async function rateLimit(deps: ApiDeps, req: FastifyRequest, s: RateLimitSettings): Promise<void> {
  const path = req.url.split('?')[0] ?? '';
  if (EXEMPT.has(path)) return;
  const who = req.principal ? `t:${req.principal.tokenId}` : `ip:${req.ip}`;
  const now = deps.clock().getTime();
  const window = Math.floor(now / 60_000);
  const key = `${s.prefix}:rl:${who}:${window}`;
  let count: number;
  try {
    const res = await deps.redis.multi().incr(key).pexpire(key, 61_000).exec();
    count = Number(res?.[0]?.[1] ?? 0);
  } catch (e) {
    req.log.warn({ err: e }, 'rate limiter unavailable; letting the request through');
    return;
  }
  if (count > s.perMinute) {
    const retryAfterSeconds = Math.max(1, Math.ceil(((window + 1) * 60_000 - now) / 1000));
    throw new GpulabError(
      'RATE_LIMITED',
      `more than ${s.perMinute} requests in a minute; retry in ${retryAfterSeconds} s`,
      {
        retryAfterSeconds,
      },
    );
  }
}
