import { createHash, randomBytes } from 'node:crypto';
import type { Db } from './client';

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

/** Resolves a bearer secret to its principal; null if unknown, revoked or expired. */
export async function verifyToken(db: Db, secret: string, now: Date): Promise<Principal | null> {
  const row = await db.apiToken.findUnique({ where: { tokenHash: hashToken(secret) }, include: { user: true } });
  if (!row || row.revokedAt || (row.expiresAt && row.expiresAt <= now)) return null;
  if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() > 60_000)
    await db.apiToken.update({ where: { id: row.id }, data: { lastUsedAt: now } });
  return {
    tokenId: row.id,
    userId: row.userId,
    role: row.user.role,
    scope: row.scope === 'job' ? 'job' : 'user',
    jobId: row.jobId,
  };
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
