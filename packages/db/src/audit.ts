import type { Prisma } from '@prisma/client';
import type { Db, Tx } from './client';

/** Actions recorded in the audit log (who did what to whom). */
export type AuditAction =
  | 'quota.grant'
  | 'quota.revoke'
  | 'quota.move'
  | 'group.update'
  | 'user.role'
  | 'user.password'
  | 'job.cancel_by_other'
  | 'flavor.price'
  | 'token.create'
  | 'token.revoke'
  | 'dataset.delete_by_other';

export async function audit(
  db: Db | Tx,
  e: { actorId: string | null; action: AuditAction; targetType: string; targetId: string; data?: object; at: Date },
): Promise<void> {
  await db.auditEntry.create({
    data: {
      actorId: e.actorId,
      action: e.action,
      targetType: e.targetType,
      targetId: e.targetId,
      data: (e.data ?? {}) as Prisma.InputJsonValue,
      at: e.at,
    },
  });
}
