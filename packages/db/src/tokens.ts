import { createHash, randomBytes } from 'node:crypto';
import { type Db, sqlPool } from './client';

export function hashToken(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Creates a token and returns its secret (shown once); only its SHA-256 is stored. */
export async function issueToken(
  db: Db,
  t: { userId: string; name: string; scope: 'user' | 'job'; jobId?: string; expiresAt?: Date | null },
): Promise<{ id: string; secret: string }> {
  const secret = `${t.scope === 'job' ? 'gpj' : 'gpl'}_${randomBytes(24).toString('base64url')}`;
  const row = await db.apiToken.create({
    data: {
      userId: t.userId,
      name: t.name,
      scope: t.scope,
      jobId: t.jobId ?? null,
      tokenHash: hashToken(secret),
      prefix: secret.slice(0, 8),
      expiresAt: t.expiresAt ?? null,
    },
  });
  return { id: row.id, secret };
}

export interface Principal {
  tokenId: string;
  userId: string;
  role: 'student' | 'instructor' | 'admin';
  scope: 'user' | 'job';
  jobId: string | null;
}

interface TokenRow {
  id: string;
  user_id: string;
  scope: string;
  job_id: string | null;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
  role: Principal['role'];
}

/**
 * Resolves a bearer secret to its principal; null if unknown, revoked or expired. Runs on every API request, so it
 * is one indexed SQL statement (a Prisma query costs about five times the CPU); `lastUsedAt` is written at most once
 * a minute.
 */
export async function verifyToken(db: Db, secret: string, now: Date): Promise<Principal | null> {
  return (await verifyTokenHash(db, hashToken(secret), now))?.principal ?? null;
}

/** `verifyToken` from the secret's hash, also saying when the token expires (for callers that cache the answer). */
export async function verifyTokenHash(
  db: Db,
  tokenHash: string,
  now: Date,
): Promise<{ principal: Principal; expiresAt: Date | null } | null> {
  const pool = sqlPool(db);
  const { rows } = await pool.query<TokenRow>(
    `SELECT t.id, t.user_id, t.scope, t.job_id, t.expires_at, t.revoked_at, t.last_used_at, u.role::text AS role
       FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1`,
    [tokenHash],
  );
  const row = rows[0];
  if (!row || row.revoked_at || (row.expires_at && row.expires_at <= now)) return null;
  if (!row.last_used_at || now.getTime() - row.last_used_at.getTime() > 60_000)
    await pool.query('UPDATE api_tokens SET last_used_at = $2 WHERE id = $1', [row.id, now]);
  const principal: Principal = {
    tokenId: row.id,
    userId: row.user_id,
    role: row.role,
    scope: row.scope === 'job' ? 'job' : 'user',
    jobId: row.job_id,
  };
  return { principal, expiresAt: row.expires_at };
}

/** Revokes every job-scoped token of a job (when the job ends), or every one but `except` (a new attempt's). */
export async function revokeJobTokens(db: Db, jobId: string, now: Date, except?: string): Promise<void> {
  await db.apiToken.updateMany({
    where: { jobId, scope: 'job', revokedAt: null, ...(except ? { id: { not: except } } : {}) },
    data: { revokedAt: now },
  });
}

/** Revokes one token by id. */
export async function revokeToken(db: Db, id: string, now: Date): Promise<void> {
  await db.apiToken.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: now } });
}
