import { type Db, hashToken, type Principal, verifyTokenHash } from '@gpulab/db';
import { TtlCache } from '../services/ttl-cache';

/**
 * How long a verified bearer token is trusted without asking Postgres again: every API request carries one, and the
 * lookup cost a submission as much CPU as its insert (bench/api). The price: a token revoked, or a user's role
 * changed, by another process (the scheduler revoking a finished job's token, another API replica, a script) takes
 * effect in this process within this many seconds. Revocations and role changes made through this process take effect
 * at once (`forgetTokens`). Expiry is checked on every request. Unknown or refused tokens are never cached.
 */
export const TOKEN_CACHE_TTL_MS = 5_000;

interface CachedToken {
  principal: Readonly<Principal>;
  expiresAt: Date | null;
}

const tokenCaches = new WeakMap<Db, TtlCache<CachedToken>>();

function tokenCache(db: Db): TtlCache<CachedToken> {
  const known = tokenCaches.get(db);
  if (known) return known;
  const c = new TtlCache<CachedToken>(TOKEN_CACHE_TTL_MS);
  tokenCaches.set(db, c);
  return c;
}

/** Makes this process ask Postgres again for a token (revoked) or for every token of a user (role changed). */
export function forgetTokens(db: Db, which: { tokenId: string } | { userId: string }): void {
  tokenCache(db).deleteWhere(({ principal: p }) =>
    'tokenId' in which ? p.tokenId === which.tokenId : p.userId === which.userId,
  );
}

/** `verifyToken`, answered from the cache while the entry is fresh and the token has not expired. */
export async function verifyBearer(db: Db, secret: string, now: Date): Promise<Principal | null> {
  const cache = tokenCache(db);
  const key = hashToken(secret);
  const hit = cache.get(key);
  if (hit && !(hit.expiresAt && hit.expiresAt <= now)) return hit.principal;
  const found = await verifyTokenHash(db, key, now);
  if (!found) return null;
  cache.set(key, { principal: Object.freeze(found.principal), expiresAt: found.expiresAt });
  return found.principal;
}
