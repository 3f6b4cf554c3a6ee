import type { Prisma } from '@prisma/client';
import type { Db, Tx } from './client';

/**
 * Webhooks, as an outbox: an event is written as delivery rows in the same transaction as the change it announces
 * (a job's end, a balance falling low), so an announcement is never lost and never made for a change that rolled
 * back; the scheduler delivers due rows and retries with backoff. Deliveries are unique per webhook and event
 * occurrence, so announcing twice delivers once.
 */
export const WEBHOOK_EVENTS = [
  'job.succeeded',
  'job.failed',
  'job.cancelled',
  'job.timed_out',
  'job.budget_exhausted',
  'quota.low',
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number] | 'ping';

/** Attempts before a delivery is given up (failed); the backoff doubles from 10 s, at most an hour. */
export const MAX_DELIVERY_ATTEMPTS = 8;

export function backoffMs(attempts: number): number {
  return Math.min(3_600_000, 10_000 * 2 ** Math.max(0, attempts - 1));
}

/** Writes one delivery per matching active webhook of the user and of the group; returns how many were new. */
export async function announce(
  tx: Db | Tx,
  e: { event: WebhookEvent; eventKey: string; userId: string; groupId: string | null; payload: object; at: Date },
): Promise<number> {
  const hooks = await tx.webhook.findMany({
    where: {
      active: true,
      events: { has: e.event },
      OR: [{ ownerId: e.userId, groupId: null }, ...(e.groupId ? [{ groupId: e.groupId }] : [])],
    },
    select: { id: true },
  });
  if (hooks.length === 0) return 0;
  const res = await tx.webhookDelivery.createMany({
    data: hooks.map((h) => ({
      webhookId: h.id,
      event: e.event,
      eventKey: e.eventKey,
      payload: { event: e.event, at: e.at.toISOString(), data: e.payload } as Prisma.InputJsonValue,
      nextAttemptAt: e.at,
    })),
    skipDuplicates: true,
  });
  return res.count;
}

export interface DueDelivery {
  id: string;
  webhookId: string;
  url: string;
  secret: string;
  event: string;
  payload: unknown;
  attempts: number;
}

/**
 * Claims up to `limit` due deliveries for `leaseMs` (their next attempt is pushed past the lease, so a crashed
 * sender's rows come due again and two senders never take the same row: FOR UPDATE SKIP LOCKED).
 */
export async function claimDueDeliveries(db: Db, now: Date, limit: number, leaseMs: number): Promise<DueDelivery[]> {
  const lease = new Date(now.getTime() + leaseMs);
  return db.$queryRaw<DueDelivery[]>`
    WITH due AS (
      SELECT d.id FROM webhook_deliveries d
      WHERE d.status = 'pending' AND d.next_attempt_at <= ${now}
      ORDER BY d.next_attempt_at LIMIT ${limit} FOR UPDATE SKIP LOCKED)
    UPDATE webhook_deliveries d SET next_attempt_at = ${lease}
    FROM due, webhooks w
    WHERE d.id = due.id AND w.id = d.webhook_id
    RETURNING d.id, d.webhook_id AS "webhookId", w.url, w.secret, d.event, d.payload, d.attempts`;
}

export async function recordDeliveryAttempt(
  db: Db,
  r: { id: string; ok: boolean; statusCode: number | null; error: string | null; attempts: number; at: Date },
): Promise<void> {
  const attempts = r.attempts + 1;
  const status = r.ok ? 'delivered' : attempts >= MAX_DELIVERY_ATTEMPTS ? 'failed' : 'pending';
  await db.webhookDelivery.update({
    where: { id: r.id },
    data: {
      attempts,
      status,
      lastStatusCode: r.statusCode,
      lastError: r.error?.slice(0, 500) ?? null,
      ...(r.ok ? { deliveredAt: r.at } : { nextAttemptAt: new Date(r.at.getTime() + backoffMs(attempts)) }),
    },
  });
}
