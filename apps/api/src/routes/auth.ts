import { GpulabError } from '@gpulab/core';
import { audit, checkPassword, createSession, issueToken, revokeSession, setPassword } from '@gpulab/db';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { type ApiDeps, sessionSettings } from '../deps';
import { requireUser, SESSION_COOKIE } from '../plugins/auth';
import { forgetTokens } from '../plugins/bearer-cache';
import { doc } from '../plugins/openapi';

const LoginBody = z
  .object({
    email: z.string().trim().toLowerCase().email('must be an email address').max(320),
    password: z.string().min(1).max(1024),
  })
  .strict();
const PasswordBody = z
  .object({ currentPassword: z.string().max(1024).optional(), newPassword: z.string().max(1024) })
  .strict();
const TokenBody = z
  .object({
    name: z.string().trim().min(1).max(100),
    expiresInDays: z.number().int().min(1).max(365).nullable().default(90),
  })
  .strict();
const TokenParams = z.object({ id: z.string().uuid({ message: 'token id must be a UUID' }) });

/**
 * Sign-in for the dashboard (cookie sessions with a CSRF token) and personal API tokens for scripts: shown once,
 * stored hashed, named, with an expiry, revocable.
 */
export function authRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const settings = sessionSettings(deps);
  const cookieOptions = {
    path: '/',
    httpOnly: true,
    sameSite: 'lax' as const,
    secure: settings.secureCookies,
  };

  app.post(
    '/v1/auth/login',
    doc('auth', 'Sign in; sets the session cookie and returns the CSRF token', { body: LoginBody }, { security: [] }),
    async (req, reply) => {
      const body = LoginBody.parse(req.body ?? {});
      const user = await checkPassword(deps.db, body.email, body.password);
      if (!user) throw new GpulabError('UNAUTHENTICATED', 'email or password is wrong');
      const s = await createSession(deps.db, {
        userId: user.id,
        userAgent: req.headers['user-agent'] ?? null,
        now: deps.clock(),
        ttlMs: settings.ttlMs,
      });
      void reply.setCookie(SESSION_COOKIE, s.secret, { ...cookieOptions, expires: s.expiresAt });
      return {
        user: { id: user.id, email: user.email, name: user.name, role: user.role },
        csrfToken: s.csrfToken,
        expiresAt: s.expiresAt.toISOString(),
      };
    },
  );

  app.post('/v1/auth/logout', doc('auth', 'Sign out (ends the session)'), async (req, reply) => {
    const who = req.principal;
    if (who && 'sessionId' in who) await revokeSession(deps.db, String(who.sessionId), deps.clock());
    void reply.clearCookie(SESSION_COOKIE, cookieOptions);
    return { signedOut: true };
  });

  /** The signed-in user and the CSRF token the page must send back (for a page reloaded with its cookie). */
  app.get('/v1/auth/session', doc('auth', 'The signed-in user and the CSRF token'), async (req) => {
    const who = requireUser(req);
    const user = await deps.db.user.findUniqueOrThrow({ where: { id: who.userId } });
    return {
      user: { id: user.id, email: user.email, name: user.name, role: user.role },
      csrfToken: 'csrfToken' in who ? who.csrfToken : null,
    };
  });

  app.post('/v1/me/password', doc('me', 'Set or change my password', { body: PasswordBody }), async (req) => {
    const who = requireUser(req);
    const body = PasswordBody.parse(req.body ?? {});
    const user = await deps.db.user.findUniqueOrThrow({ where: { id: who.userId } });
    if (user.passwordHash) {
      const ok = body.currentPassword && (await checkPassword(deps.db, user.email, body.currentPassword));
      if (!ok) throw new GpulabError('FORBIDDEN', 'currentPassword is wrong', { field: 'currentPassword' });
    }
    await setPassword(deps.db, who.userId, body.newPassword);
    await audit(deps.db, {
      actorId: who.userId,
      action: 'user.password',
      targetType: 'user',
      targetId: who.userId,
      at: deps.clock(),
    });
    return { changed: true };
  });

  app.get('/v1/me/tokens', doc('me', 'List my personal API tokens'), async (req) => {
    const who = requireUser(req);
    const rows = await deps.db.apiToken.findMany({
      where: { userId: who.userId, scope: 'user' },
      orderBy: { createdAt: 'desc' },
    });
    return {
      items: rows.map((t) => ({
        id: t.id,
        name: t.name,
        prefix: t.prefix,
        createdAt: t.createdAt.toISOString(),
        lastUsedAt: t.lastUsedAt?.toISOString() ?? null,
        expiresAt: t.expiresAt?.toISOString() ?? null,
        revokedAt: t.revokedAt?.toISOString() ?? null,
      })),
    };
  });

  /** Creates a personal API token; its secret is in this response only. */
  app.post(
    '/v1/me/tokens',
    doc('me', 'Create a personal API token (its secret is shown once)', { body: TokenBody }),
    async (req, reply) => {
      const who = requireUser(req);
      const body = TokenBody.parse(req.body ?? {});
      const now = deps.clock();
      const expiresAt = body.expiresInDays === null ? null : new Date(now.getTime() + body.expiresInDays * 86_400_000);
      const t = await issueToken(deps.db, { userId: who.userId, name: body.name, scope: 'user', expiresAt });
      await audit(deps.db, {
        actorId: who.userId,
        action: 'token.create',
        targetType: 'token',
        targetId: t.id,
        at: now,
      });
      return reply
        .status(201)
        .send({ id: t.id, name: body.name, token: t.secret, expiresAt: expiresAt?.toISOString() ?? null });
    },
  );

  app.delete('/v1/me/tokens/:id', doc('me', 'Revoke a personal API token', { params: TokenParams }), async (req) => {
    const who = requireUser(req);
    const { id } = TokenParams.parse(req.params);
    const now = deps.clock();
    const n = await deps.db.apiToken.updateMany({
      where: { id, userId: who.userId, scope: 'user', revokedAt: null },
      data: { revokedAt: now },
    });
    forgetTokens(deps.db, { tokenId: id });
    if (n.count === 0 && !(await deps.db.apiToken.findFirst({ where: { id, userId: who.userId, scope: 'user' } })))
      throw new GpulabError('NOT_FOUND', `token ${id} not found`);
    if (n.count)
      await audit(deps.db, { actorId: who.userId, action: 'token.revoke', targetType: 'token', targetId: id, at: now });
    return { id, revoked: true };
  });
}
