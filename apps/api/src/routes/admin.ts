import { GpulabError } from '@gpulab/core';
import { audit, setPassword } from '@gpulab/db';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ApiDeps } from '../deps';
import { requireUser } from '../plugins/auth';
import { forgetTokens } from '../plugins/bearer-cache';
import { doc } from '../plugins/openapi';
import { requireAdmin } from '../services/group-access';

const Role = z.enum(['student', 'instructor', 'admin']);
const UserParams = z.object({ id: z.string().uuid({ message: 'user id must be a UUID' }) });
const UsersQuery = z
  .object({
    q: z.string().trim().max(200).optional().describe('part of an email or name'),
    role: Role.optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
    cursor: z.string().email().optional().describe('the last email of the previous page'),
  })
  .strict();
const CreateUserBody = z
  .object({
    email: z.string().trim().toLowerCase().email().max(320),
    name: z.string().trim().min(1).max(200),
    role: Role.default('student'),
    password: z.string().min(1).max(1024).optional(),
  })
  .strict();
const UpdateUserBody = z
  .object({
    name: z.string().trim().min(1).max(200).optional(),
    role: Role.optional(),
    shareWeight: z.number().finite().positive().max(1000).optional().describe('fair-share weight (default 1)'),
    password: z.string().min(1).max(1024).optional(),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, { message: 'nothing to change' });

const view = (u: { id: string; email: string; name: string; role: string; shareWeight: number; createdAt: Date }) => ({
  id: u.id,
  email: u.email,
  name: u.name,
  role: u.role,
  shareWeight: u.shareWeight,
  createdAt: u.createdAt.toISOString(),
});

/** Administrators manage accounts: list, create, rename, change role, fair-share weight or password (audited). */
export function adminRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get('/v1/admin/users', doc('admin', 'List users (admins)', { querystring: UsersQuery }), async (req) => {
    requireAdmin(requireUser(req));
    const q = UsersQuery.parse(req.query);
    const rows = await deps.db.user.findMany({
      where: {
        ...(q.role ? { role: q.role } : {}),
        ...(q.q
          ? {
              OR: [{ email: { contains: q.q, mode: 'insensitive' } }, { name: { contains: q.q, mode: 'insensitive' } }],
            }
          : {}),
        ...(q.cursor ? { email: { gt: q.cursor } } : {}),
      },
      orderBy: { email: 'asc' },
      take: q.limit + 1,
    });
    const page = rows.slice(0, q.limit);
    return { items: page.map(view), nextCursor: rows.length > q.limit ? (page.at(-1)?.email ?? null) : null };
  });

  app.post('/v1/admin/users', doc('admin', 'Create a user (admins)', { body: CreateUserBody }), async (req, reply) => {
    const who = requireUser(req);
    requireAdmin(who);
    const b = CreateUserBody.parse(req.body ?? {});
    if (await deps.db.user.findUnique({ where: { email: b.email } }))
      throw new GpulabError('CONFLICT', `a user with email ${b.email} exists`, { field: 'email' });
    const user = await deps.db.user.create({ data: { email: b.email, name: b.name, role: b.role } });
    if (b.password) await setPassword(deps.db, user.id, b.password);
    await audit(deps.db, {
      actorId: who.userId,
      action: 'user.role',
      targetType: 'user',
      targetId: user.id,
      data: { created: true, role: b.role },
      at: deps.clock(),
    });
    return reply.status(201).send(view(user));
  });

  app.patch(
    '/v1/admin/users/:id',
    doc('admin', "Change a user's name, role, fair-share weight or password (admins)", {
      params: UserParams,
      body: UpdateUserBody,
    }),
    async (req) => {
      const who = requireUser(req);
      requireAdmin(who);
      const { id } = UserParams.parse(req.params);
      const b = UpdateUserBody.parse(req.body ?? {});
      const before = await deps.db.user.findUnique({ where: { id } });
      if (!before) throw new GpulabError('NOT_FOUND', `user ${id} not found`);
      if (b.role && b.role !== 'admin' && id === who.userId)
        throw new GpulabError('CONFLICT', 'you cannot take away your own admin role', { field: 'role' });
      const user = await deps.db.user.update({
        where: { id },
        data: {
          ...(b.name ? { name: b.name } : {}),
          ...(b.role ? { role: b.role } : {}),
          ...(b.shareWeight !== undefined ? { shareWeight: b.shareWeight } : {}),
        },
      });
      if (b.role) forgetTokens(deps.db, { userId: id }); // the role is read with the token (cached)
      if (b.password) await setPassword(deps.db, id, b.password);
      const at = deps.clock();
      if (b.role && b.role !== before.role)
        await audit(deps.db, {
          actorId: who.userId,
          action: 'user.role',
          targetType: 'user',
          targetId: id,
          data: { from: before.role, to: b.role },
          at,
        });
      if (b.password)
        await audit(deps.db, { actorId: who.userId, action: 'user.password', targetType: 'user', targetId: id, at });
      return view(user);
    },
  );

  app.get(
    '/v1/admin/audit',
    doc('admin', 'The audit log, newest first (admins)', {
      querystring: z.object({ limit: z.coerce.number().int().min(1).max(500).default(100) }).strict(),
    }),
    async (req) => {
      requireAdmin(requireUser(req));
      const { limit } = z.object({ limit: z.coerce.number().int().min(1).max(500).default(100) }).parse(req.query);
      const rows = await deps.db.auditEntry.findMany({ orderBy: { id: 'desc' }, take: limit });
      return {
        items: rows.map((r) => ({
          id: Number(r.id),
          actorId: r.actorId,
          action: r.action,
          targetType: r.targetType,
          targetId: r.targetId,
          data: r.data,
          at: r.at.toISOString(),
        })),
      };
    },
  );
}
