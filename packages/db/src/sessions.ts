import { randomBytes } from 'node:crypto';
import { GpulabError } from '@gpulab/core';
import { hash, verify } from '@node-rs/argon2';
import type { Db } from './client';
import type { Principal } from './tokens';
import { hashToken } from './tokens';

/**
 * Passwords (argon2id) and dashboard sessions. A session cookie carries a random secret whose SHA-256 is stored; a
 * per-session CSRF token (readable by the page, not by other sites) must accompany every state-changing request made
 * with the cookie. Sessions expire after `ttlMs` without use and can be revoked (sign out).
 */

export const MIN_PASSWORD_LENGTH = 10;

export async function setPassword(db: Db, userId: string, password: string): Promise<void> {
  if (password.length < MIN_PASSWORD_LENGTH)
    throw new GpulabError('VALIDATION', `password must have at least ${MIN_PASSWORD_LENGTH} characters`, {
      field: 'password',
    });
  if (password.length > 1024)
    throw new GpulabError('VALIDATION', 'password must have at most 1024 characters', { field: 'password' });
  await db.user.update({ where: { id: userId }, data: { passwordHash: await hash(password) } });
}

/** The user whose email and password match, or null — in the same time whether or not the email exists. */
export async function checkPassword(db: Db, email: string, password: string) {
  const user = await db.user.findUnique({ where: { email: email.trim().toLowerCase() } });
  const stored = user?.passwordHash ?? DUMMY_HASH;
  const ok = await verify(stored, password).catch(() => false);
  return ok && user?.passwordHash ? user : null;
}

// a valid argon2id hash of a random string: verifying against it costs what a real check costs
const DUMMY_HASH = '$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$ZHVtbXlkdW1teWR1bW15ZHVtbXlkdW1teWR1bW15ZGE';

export async function createSession(
  db: Db,
  s: { userId: string; userAgent?: string | null; now: Date; ttlMs: number },
) {
  const secret = `gps_${randomBytes(32).toString('base64url')}`;
  const csrfToken = randomBytes(24).toString('base64url');
  const row = await db.session.create({
    data: {
      userId: s.userId,
      tokenHash: hashToken(secret),
      csrfToken,
      userAgent: s.userAgent?.slice(0, 300) ?? null,
      createdAt: s.now,
      lastSeenAt: s.now,
      expiresAt: new Date(s.now.getTime() + s.ttlMs),
    },
  });
  return { id: row.id, secret, csrfToken, expiresAt: row.expiresAt };
}

export interface SessionPrincipal extends Principal {
  sessionId: string;
  csrfToken: string;
}

/** The session's principal, sliding its expiry forward (at most once a minute); null when unknown or expired. */
export async function verifySession(
  db: Db,
  secret: string,
  now: Date,
  ttlMs: number,
): Promise<SessionPrincipal | null> {
  const row = await db.session.findUnique({ where: { tokenHash: hashToken(secret) }, include: { user: true } });
  if (!row || row.revokedAt || row.expiresAt <= now) return null;
  if (now.getTime() - row.lastSeenAt.getTime() > 60_000)
    await db.session.update({
      where: { id: row.id },
      data: { lastSeenAt: now, expiresAt: new Date(now.getTime() + ttlMs) },
    });
  return {
    tokenId: row.id,
    sessionId: row.id,
    csrfToken: row.csrfToken,
    userId: row.userId,
    role: row.user.role,
    scope: 'user',
    jobId: null,
  };
}

export async function revokeSession(db: Db, sessionId: string, now: Date): Promise<void> {
  await db.session.updateMany({ where: { id: sessionId, revokedAt: null }, data: { revokedAt: now } });
}
