-- AlterEnum
ALTER TYPE "QuotaEntryKind" ADD VALUE 'transfer';

-- AlterTable
ALTER TABLE "users" ADD COLUMN     "share_weight" DOUBLE PRECISION NOT NULL DEFAULT 1;

-- AlterTable
ALTER TABLE "groups" ADD COLUMN     "max_running_gpus_per_user" INTEGER;

-- AlterTable
ALTER TABLE "quota_entries" ADD COLUMN     "reservation_id" UUID;

-- AlterTable
ALTER TABLE "jobs" ADD COLUMN     "estimated_start_at" TIMESTAMPTZ(3),
ADD COLUMN     "max_runtime_seconds" INTEGER NOT NULL DEFAULT 3600,
ADD COLUMN     "priority" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "queue_position" INTEGER,
ADD COLUMN     "reservation_id" UUID;

-- CreateTable
CREATE TABLE "reservations" (
    "id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "group_id" UUID NOT NULL,
    "membership_id" UUID NOT NULL,
    "flavor" TEXT NOT NULL,
    "gpus" INTEGER NOT NULL,
    "start_at" TIMESTAMPTZ(3) NOT NULL,
    "end_at" TIMESTAMPTZ(3) NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'booked',
    "booked_seconds" INTEGER NOT NULL,
    "held_seconds" INTEGER NOT NULL,
    "first_used_at" TIMESTAMPTZ(3),
    "note" TEXT,
    "idempotency_key" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "closed_at" TIMESTAMPTZ(3),
    "close_reason" TEXT,

    CONSTRAINT "reservations_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "reservations_flavor_end_at_idx" ON "reservations"("flavor", "end_at");

-- CreateIndex
CREATE INDEX "reservations_status_end_at_idx" ON "reservations"("status", "end_at");

-- CreateIndex
CREATE UNIQUE INDEX "reservations_user_id_idempotency_key_key" ON "reservations"("user_id", "idempotency_key");

-- CreateIndex
CREATE INDEX "jobs_reservation_id_idx" ON "jobs"("reservation_id");

-- AddForeignKey
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_reservation_id_fkey" FOREIGN KEY ("reservation_id") REFERENCES "reservations"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "reservations" ADD CONSTRAINT "reservations_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "reservations" ADD CONSTRAINT "reservations_membership_id_fkey" FOREIGN KEY ("membership_id") REFERENCES "memberships"("id") ON DELETE CASCADE ON UPDATE CASCADE;


-- A booking's own hold and release entries exist once each (jobs' transfers out of it also carry reservation_id).
CREATE UNIQUE INDEX "quota_entries_reservation_id_kind_key" ON "quota_entries"("reservation_id", "kind") WHERE "job_id" IS NULL;

-- Balances can never go negative, whatever code path writes them (the conditional UPDATEs are the first line).
ALTER TABLE "memberships" ADD CONSTRAINT "memberships_balances_nonnegative"
  CHECK ("granted_seconds" >= 0 AND "held_seconds" >= 0 AND "used_seconds" >= 0
         AND "held_seconds" + "used_seconds" <= "granted_seconds");
ALTER TABLE "reservations" ADD CONSTRAINT "reservations_sane"
  CHECK ("gpus" > 0 AND "end_at" > "start_at" AND "held_seconds" >= 0 AND "held_seconds" <= "booked_seconds");
