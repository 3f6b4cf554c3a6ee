import { randomBytes } from 'node:crypto';
import { GpulabError, parseWebhookUrl } from '@gpulab/core';
import { WEBHOOK_EVENTS } from '@gpulab/db';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ApiDeps } from '../deps';
import { requireUser } from '../plugins/auth';
import { doc } from '../plugins/openapi';
import { managedGroup } from '../services/group-access';

const CreateBody = z
  .object({
    url: z.string().min(1).max(2000),
    events: z
      .array(z.enum(WEBHOOK_EVENTS))
      .min(1)
      .default([...WEBHOOK_EVENTS]),
    group: z.string().min(1).max(200).optional().describe("a group's webhook (its instructors): every member's events"),
  })
  .strict();
const IdParams = z.object({ id: z.string().uuid({ message: 'webhook id must be a UUID' }) });

const view = (w: {
  id: string;
  url: string;
  events: string[];
  groupId: string | null;
  active: boolean;
  createdAt: Date;
}) => ({
  id: w.id,
  url: w.url,
  events: w.events,
  groupId: w.groupId,
  active: w.active,
  createdAt: w.createdAt.toISOString(),
});

/**
 * Webhooks for job endings and low balances, per user or (instructors) per group. The signing secret is returned
 * once, at creation. Deliveries — with their attempts, status codes and errors — can be listed; `test` sends a ping.
 */
export function webhookRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const allowPrivate = deps.webhooks?.allowPrivate ?? false;

  app.post(
    '/v1/webhooks',
    doc('webhooks', 'Create a webhook (its secret is shown once)', { body: CreateBody }),
    async (req, reply) => {
      const who = requireUser(req);
      const b = CreateBody.parse(req.body ?? {});
      const url = parseWebhookUrl(b.url, { allowPrivate }).toString();
      const groupId = b.group ? (await managedGroup(deps.db, who, b.group)).id : null;
      const secret = `whsec_${randomBytes(24).toString('base64url')}`;
      const w = await deps.db.webhook.create({
        data: { ownerId: who.userId, groupId, url, secret, events: [...new Set(b.events)] },
      });
      return reply.status(201).send({ ...view(w), secret });
    },
  );

  app.get('/v1/webhooks', doc('webhooks', 'My webhooks'), async (req) => {
    const who = requireUser(req);
    const rows = await deps.db.webhook.findMany({ where: { ownerId: who.userId }, orderBy: { createdAt: 'desc' } });
    return { items: rows.map(view) };
  });

  app.delete('/v1/webhooks/:id', doc('webhooks', 'Delete a webhook', { params: IdParams }), async (req) => {
    const w = await own(deps, req);
    await deps.db.webhook.delete({ where: { id: w.id } });
    return { id: w.id, deleted: true };
  });

  app.get(
    '/v1/webhooks/:id/deliveries',
    doc('webhooks', "A webhook's deliveries, newest first", { params: IdParams }),
    async (req) => {
      const w = await own(deps, req);
      const rows = await deps.db.webhookDelivery.findMany({
        where: { webhookId: w.id },
        orderBy: { createdAt: 'desc' },
        take: 200,
      });
      return {
        items: rows.map((d) => ({
          id: d.id,
          event: d.event,
          status: d.status,
          attempts: d.attempts,
          lastStatusCode: d.lastStatusCode,
          lastError: d.lastError,
          nextAttemptAt: d.status === 'pending' ? d.nextAttemptAt.toISOString() : null,
          deliveredAt: d.deliveredAt?.toISOString() ?? null,
          createdAt: d.createdAt.toISOString(),
          payload: d.payload,
        })),
      };
    },
  );

  app.post(
    '/v1/webhooks/:id/test',
    doc('webhooks', 'Send a ping delivery', { params: IdParams }),
    async (req, reply) => {
      const w = await own(deps, req);
      const at = deps.clock();
      const ping = await deps.db.webhookDelivery.create({
        data: {
          webhookId: w.id,
          event: 'ping',
          eventKey: `ping:${at.getTime()}:${randomBytes(4).toString('hex')}`,
          payload: { event: 'ping', at: at.toISOString(), data: { webhookId: w.id } },
          nextAttemptAt: at,
        },
      });
      return reply.status(202).send({ deliveryId: ping.id });
    },
  );
}

async function own(deps: ApiDeps, req: FastifyRequest) {
  const who = requireUser(req);
  const { id } = IdParams.parse(req.params);
  const w = await deps.db.webhook.findUnique({ where: { id } });
  if (!w || (w.ownerId !== who.userId && who.role !== 'admin'))
    throw new GpulabError('NOT_FOUND', `webhook ${id} not found`);
  return w;
}
