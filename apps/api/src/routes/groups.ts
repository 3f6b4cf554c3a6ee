import { GpulabError } from '@gpulab/core';
import {
  addMember,
  audit,
  createGroup,
  getGroupView,
  grantQuota,
  listGroupLedger,
  listGroupsFor,
  memberView,
  moveQuota,
  revokeQuota,
} from '@gpulab/db';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ApiDeps } from '../deps';
import { requireUser } from '../plugins/auth';
import { doc } from '../plugins/openapi';
import { hoursToSeconds, managedGroup, memberAndTotals, requireAdmin, resolveMember } from '../services/group-access';
import { IsoDate } from '../services/iso-date';
import { forgetMemberships } from '../services/membership';

/**
 * Groups and their quotas. Admins create groups; instructors of a group (and admins) add members and grant, revoke
 * and move GPU-hours inside its budget; everyone lists the groups they belong to with their own quota. Hours in,
 * integer GPU-seconds in the database (`Math.round(hours × 3600)`).
 */

const Params = z.object({ id: z.string().min(1).max(200) });
const Hours = (max: number) =>
  z.number({ invalid_type_error: 'must be a number of hours' }).finite().positive().max(max);
const Note = z.string().trim().max(500).optional();
const MemberRef = z.string().trim().min(1).max(320);

const CreateGroupBody = z
  .object({
    name: z.string().trim().min(1).max(200),
    budgetHours: Hours(500_000),
    periodStart: IsoDate,
    periodEnd: IsoDate,
    defaultMaxHours: z.number().finite().positive().max(720).optional(),
    maxRunningGpusPerUser: z.number().int().positive().max(10_000).nullable().optional(),
  })
  .strict();

const UpdateGroupBody = z
  .object({
    defaultMaxHours: z.number().finite().positive().max(720).optional(),
    maxRunningGpusPerUser: z.number().int().positive().max(10_000).nullable().optional(),
    budgetHours: Hours(500_000).optional(),
    periodStart: IsoDate.optional(),
    periodEnd: IsoDate.optional(),
  })
  .strict()
  .refine((b) => Object.keys(b).length > 0, { message: 'nothing to change' });

const MemberBody = z
  .object({
    email: z.string().trim().email().max(320),
    name: z.string().trim().min(1).max(200).optional(),
    role: z.enum(['student', 'instructor']).default('student'),
  })
  .strict();

/** A member named by `email` or `userId` (exactly one). */
const withMember = <T extends z.ZodRawShape>(shape: T) =>
  z
    .object({ email: MemberRef.optional(), userId: z.string().uuid().optional(), ...shape })
    .strict()
    .superRefine((b, ctx) => {
      if ((b.email === undefined) === (b.userId === undefined))
        ctx.addIssue({ code: 'custom', path: ['email'], message: 'give the member as email or userId (one of them)' });
    });

const GrantBody = withMember({ hours: Hours(100_000), note: Note });
const RevokeBody = withMember({ hours: Hours(100_000), note: Note, force: z.boolean().default(false) });
const MoveBody = z.object({ from: MemberRef, to: MemberRef, hours: Hours(100_000), note: Note }).strict();
const LedgerQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().min(1).max(200).optional(),
});

export function groupRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { db } = deps;

  app.post(
    '/v1/groups',
    doc('groups', 'Create a group with a GPU-hour budget (admins)', { body: CreateGroupBody }),
    async (req, reply) => {
      const who = requireUser(req);
      requireAdmin(who);
      const b = CreateGroupBody.parse(req.body ?? {});
      const group = await createGroup(db, {
        name: b.name,
        budgetSeconds: hoursToSeconds(b.budgetHours, 'budgetHours'),
        periodStart: b.periodStart,
        periodEnd: b.periodEnd,
        defaultMaxHours: b.defaultMaxHours,
        maxRunningGpusPerUser: b.maxRunningGpusPerUser ?? null,
      });
      return reply.status(201).send(await getGroupView(db, group.id));
    },
  );

  app.get('/v1/groups', doc('groups', 'Groups I belong to, with my quota'), async (req) => {
    const who = requireUser(req);
    return { items: await listGroupsFor(db, { userId: who.userId, isAdmin: who.role === 'admin' }) };
  });

  app.get(
    '/v1/groups/:id',
    doc('groups', 'A group with its members and balances (instructors, admins)', { params: Params }),
    async (req) => {
      const group = await managedGroup(db, requireUser(req), Params.parse(req.params).id);
      return getGroupView(db, group.id);
    },
  );

  app.patch(
    '/v1/groups/:id',
    doc(
      'groups',
      "Change a group's default max runtime and per-member GPU cap (instructors); budget, period (admins)",
      {
        params: Params,
        body: UpdateGroupBody,
      },
    ),
    async (req) => {
      const who = requireUser(req);
      const group = await managedGroup(db, who, Params.parse(req.params).id);
      const b = UpdateGroupBody.parse(req.body ?? {});
      if ((b.budgetHours !== undefined || b.periodStart || b.periodEnd) && who.role !== 'admin')
        throw new GpulabError('FORBIDDEN', "only an administrator changes a group's budget or period", {
          field: b.budgetHours !== undefined ? 'budgetHours' : 'periodStart',
        });
      await db.$transaction(async (tx) => {
        await tx.$queryRaw`SELECT id FROM groups WHERE id = ${group.id}::uuid FOR UPDATE`;
        if (b.budgetHours !== undefined) {
          const budget = hoursToSeconds(b.budgetHours, 'budgetHours');
          const granted = await tx.membership.aggregate({
            where: { groupId: group.id },
            _sum: { grantedSeconds: true },
          });
          const sum = granted._sum.grantedSeconds ?? 0;
          if (budget < sum)
            throw new GpulabError(
              'CONFLICT',
              `members hold grants of ${(sum / 3600).toFixed(2)} GPU-h; the budget cannot go below that`,
              { field: 'budgetHours', grantedSeconds: sum },
            );
        }
        await tx.group.update({
          where: { id: group.id },
          data: {
            ...(b.defaultMaxHours !== undefined ? { defaultMaxHours: b.defaultMaxHours } : {}),
            ...(b.maxRunningGpusPerUser !== undefined ? { maxRunningGpusPerUser: b.maxRunningGpusPerUser } : {}),
            ...(b.budgetHours !== undefined ? { budgetSeconds: hoursToSeconds(b.budgetHours, 'budgetHours') } : {}),
            ...(b.periodStart ? { periodStart: b.periodStart } : {}),
            ...(b.periodEnd ? { periodEnd: b.periodEnd } : {}),
          },
        });
      });
      forgetMemberships(db); // a group's default max hours is cached with its members' memberships
      await audit(db, {
        actorId: who.userId,
        action: 'group.update',
        targetType: 'group',
        targetId: group.id,
        data: b,
        at: deps.clock(),
      });
      return getGroupView(db, group.id);
    },
  );

  app.post(
    '/v1/groups/:id/members',
    doc('groups', 'Add a member (creates the user if unknown)', { params: Params, body: MemberBody }),
    async (req, reply) => {
      const group = await managedGroup(db, requireUser(req), Params.parse(req.params).id);
      const b = MemberBody.parse(req.body ?? {});
      const { membership, user, created } = await addMember(db, {
        groupId: group.id,
        role: b.role,
        user: { email: b.email, name: b.name ?? null },
      });
      forgetMemberships(db, user.id); // the role may have changed
      return reply.status(created ? 201 : 200).send(memberView({ ...membership, user }));
    },
  );

  app.post(
    '/v1/groups/:id/grants',
    doc('groups', 'Grant GPU-hours to a member, within the budget', { params: Params, body: GrantBody }),
    async (req) => {
      const who = requireUser(req);
      const group = await managedGroup(db, who, Params.parse(req.params).id);
      const b = GrantBody.parse(req.body ?? {});
      const m = await resolveMember(db, group, b.userId ?? b.email!, b.userId ? 'userId' : 'email');
      const seconds = hoursToSeconds(b.hours, 'hours');
      const r = await grantQuota(db, { membershipId: m.id, seconds, actorId: who.userId, note: b.note ?? null });
      await audit(db, {
        actorId: who.userId,
        action: 'quota.grant',
        targetType: 'membership',
        targetId: m.id,
        data: { seconds, note: b.note ?? null },
        at: deps.clock(),
      });
      return { grantedSeconds: r.grantedSeconds, ...(await memberAndTotals(db, group, m.id)) };
    },
  );

  app.post(
    '/v1/groups/:id/revokes',
    doc('groups', 'Take back GPU-hours (force: shrink running holds)', { params: Params, body: RevokeBody }),
    async (req) => {
      const who = requireUser(req);
      const group = await managedGroup(db, who, Params.parse(req.params).id);
      const b = RevokeBody.parse(req.body ?? {});
      const m = await resolveMember(db, group, b.userId ?? b.email!, b.userId ? 'userId' : 'email');
      const seconds = hoursToSeconds(b.hours, 'hours');
      const r = await revokeQuota(db, {
        membershipId: m.id,
        seconds,
        actorId: who.userId,
        note: b.note ?? null,
        force: b.force,
      });
      await audit(db, {
        actorId: who.userId,
        action: 'quota.revoke',
        targetType: 'membership',
        targetId: m.id,
        data: { seconds: r.revokedSeconds, force: b.force, note: b.note ?? null },
        at: deps.clock(),
      });
      return {
        revokedSeconds: r.revokedSeconds,
        shrunkHolds: r.shrunk,
        ...(await memberAndTotals(db, group, m.id)),
      };
    },
  );

  app.post(
    '/v1/groups/:id/moves',
    doc('groups', 'Move free GPU-hours between two members', { params: Params, body: MoveBody }),
    async (req) => {
      const who = requireUser(req);
      const group = await managedGroup(db, who, Params.parse(req.params).id);
      const b = MoveBody.parse(req.body ?? {});
      const from = await resolveMember(db, group, b.from, 'from');
      const to = await resolveMember(db, group, b.to, 'to');
      if (from.id === to.id) throw new GpulabError('VALIDATION', 'from and to are the same member', { field: 'to' });
      const seconds = hoursToSeconds(b.hours, 'hours');
      await moveQuota(db, {
        fromMembershipId: from.id,
        toMembershipId: to.id,
        seconds,
        actorId: who.userId,
        note: b.note ?? null,
      });
      await audit(db, {
        actorId: who.userId,
        action: 'quota.move',
        targetType: 'membership',
        targetId: to.id,
        data: { from: from.id, seconds, note: b.note ?? null },
        at: deps.clock(),
      });
      const [a, c] = await Promise.all([memberAndTotals(db, group, from.id), memberAndTotals(db, group, to.id)]);
      return { movedSeconds: seconds, from: a.member, to: c.member, totals: c.totals };
    },
  );

  app.get(
    '/v1/groups/:id/ledger',
    doc('groups', 'The quota ledger of a group, newest first', { params: Params, querystring: LedgerQuery }),
    async (req) => {
      const group = await managedGroup(db, requireUser(req), Params.parse(req.params).id);
      const q = LedgerQuery.parse(req.query);
      return listGroupLedger(db, { groupId: group.id, limit: q.limit, cursor: q.cursor ?? null });
    },
  );
}
