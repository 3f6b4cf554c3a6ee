import { GpulabError } from '@gpulab/core';
import { closeReservation, createReservation } from '@gpulab/db';
import type { Reservation } from '@prisma/client';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ApiDeps } from '../deps';
import { requireUser } from '../plugins/auth';
import { doc } from '../plugins/openapi';
import { resolveMembership } from '../services/membership';

const CreateBody = z
  .object({
    flavor: z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'must be a lowercase flavor name'),
    gpus: z.number().int().min(1).max(1024),
    start: z.coerce.date({ message: 'must be an ISO 8601 date-time' }),
    end: z.coerce.date({ message: 'must be an ISO 8601 date-time' }),
    group: z.string().min(1).max(200).optional(),
    note: z.string().max(500).optional(),
  })
  .strict();
const IdParams = z.object({ id: z.string().uuid({ message: 'reservation id must be a UUID' }) });
const ListQuery = z.object({ all: z.enum(['true', 'false']).default('false') });

export function reservationView(r: Reservation) {
  return {
    id: r.id,
    userId: r.userId,
    groupId: r.groupId,
    flavor: r.flavor,
    gpus: r.gpus,
    start: r.startAt.toISOString(),
    end: r.endAt.toISOString(),
    status: r.status,
    bookedHours: r.bookedSeconds / 3600,
    heldHours: r.heldSeconds / 3600,
    firstUsedAt: r.firstUsedAt?.toISOString() ?? null,
    note: r.note,
    createdAt: r.createdAt.toISOString(),
    closedAt: r.closedAt?.toISOString() ?? null,
    closeReason: r.closeReason,
  };
}

/**
 * Bookings of GPUs for a time window: the hold (GPUs × hours) is taken from the quota at booking, a window that
 * would overbook the flavor is 409, and during the window the GPUs run only the owner's jobs.
 */
export function reservationRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.post(
    '/v1/reservations',
    doc('reservations', 'Book GPUs for a time window (409 when the flavor is booked out)', { body: CreateBody }),
    async (req, reply) => {
      const who = requireUser(req);
      const body = CreateBody.parse(req.body ?? {});
      const m = await resolveMembership(deps, who, body.group);
      const key = req.headers['idempotency-key'];
      const { reservation, created } = await createReservation(deps.db, {
        userId: who.userId,
        membershipId: m.id,
        groupId: m.groupId,
        flavor: body.flavor,
        gpus: body.gpus,
        start: body.start,
        end: body.end,
        note: body.note ?? null,
        idempotencyKey: typeof key === 'string' ? key : null,
        now: deps.clock(),
      });
      return reply.status(created ? 201 : 200).send(reservationView(reservation));
    },
  );

  app.get('/v1/reservations', doc('reservations', 'My reservations', { querystring: ListQuery }), async (req) => {
    const who = requireUser(req);
    const q = ListQuery.parse(req.query);
    const everyone = q.all === 'true' && who.role === 'admin';
    const rows = await deps.db.reservation.findMany({
      where: everyone ? {} : { userId: who.userId },
      orderBy: { startAt: 'desc' },
      take: 200,
    });
    return { items: rows.map(reservationView) };
  });

  app.get('/v1/reservations/:id', doc('reservations', 'A reservation', { params: IdParams }), async (req) =>
    reservationView(await visible(deps, req)),
  );

  /** Cancels a booking: what it still holds goes back to the quota; jobs already running in it keep running. */
  app.delete(
    '/v1/reservations/:id',
    doc('reservations', 'Cancel a reservation (what it still holds is released)', { params: IdParams }),
    async (req) => {
      const r = await visible(deps, req);
      if (r.status === 'booked')
        await closeReservation(deps.db, {
          id: r.id,
          status: 'cancelled',
          reason: 'cancelled by its owner',
          at: deps.clock(),
        });
      return reservationView(await deps.db.reservation.findUniqueOrThrow({ where: { id: r.id } }));
    },
  );
}

async function visible(deps: ApiDeps, req: FastifyRequest) {
  const who = requireUser(req);
  const { id } = IdParams.parse(req.params);
  const r = await deps.db.reservation.findUnique({ where: { id } });
  if (!r || (r.userId !== who.userId && who.role !== 'admin'))
    throw new GpulabError('NOT_FOUND', `reservation ${id} not found`);
  return r;
}
