/**
 * The quota ledger of one membership as a pure state machine — the arithmetic the database's conditional UPDATEs
 * implement (packages/db quota.ts), in one place where it can be property-tested. All amounts are GPU-seconds.
 *
 * - grant: more granted seconds. revoke: fewer, never below held + used (only free seconds can be taken back).
 * - hold: at admission a job holds `maxHours × gpus` of the free seconds.
 * - accrue: usage lands inside the job's hold (never beyond it: the scheduler stops a job whose usage reaches it).
 * - checkpoint: the usage accrued so far is charged (moves from held to used).
 * - failure: an infrastructure failure; usage accrued since the last checkpoint is not charged — it goes back to
 *   the job's hold, which stays for the retry.
 * - release: the job ended; accrued usage is charged and the rest of the hold is freed.
 *
 * Invariants (kept by every operation; a refused operation changes nothing): all balances ≥ 0,
 * held + used + free = granted, held = Σ over live holds of (hold − charged), and per hold charged + accrued ≤ hold.
 */

export interface JobHold {
  /** Seconds held at admission. */
  hold: number;
  /** Usage already charged (moved to `used`). */
  charged: number;
  /** Usage since the last checkpoint, still inside the hold and not charged. */
  accrued: number;
}

export interface QuotaLedger {
  granted: number;
  held: number;
  used: number;
  free: number;
  holds: ReadonlyMap<string, JobHold>;
}

export type LedgerOp =
  | { op: 'grant'; seconds: number }
  | { op: 'revoke'; seconds: number }
  | { op: 'hold'; jobId: string; seconds: number }
  | { op: 'accrue'; jobId: string; seconds: number }
  | { op: 'checkpoint'; jobId: string }
  | { op: 'failure'; jobId: string }
  | { op: 'release'; jobId: string };

export type LedgerResult =
  | {
      ok: true;
      ledger: QuotaLedger;
      /** Seconds the operation moved: granted, revoked, held, accrued (after capping), charged, returned, freed. */
      seconds: number;
    }
  | { ok: false; ledger: QuotaLedger; error: string };

export const EMPTY_LEDGER: QuotaLedger = Object.freeze({
  granted: 0,
  held: 0,
  used: 0,
  free: 0,
  holds: new Map<string, JobHold>(),
});

const isAmount = (s: number): boolean => Number.isSafeInteger(s) && s >= 0;

function withHold(l: QuotaLedger, jobId: string, h: JobHold | null): ReadonlyMap<string, JobHold> {
  const holds = new Map(l.holds);
  if (h) holds.set(jobId, h);
  else holds.delete(jobId);
  return holds;
}

/** Applies one operation; refuses (and changes nothing) when it would break an invariant. */
export function applyLedgerOp(l: QuotaLedger, o: LedgerOp): LedgerResult {
  const refuse = (error: string): LedgerResult => ({ ok: false, ledger: l, error });
  if ('seconds' in o && !isAmount(o.seconds)) return refuse(`seconds must be a non-negative integer, not ${o.seconds}`);
  switch (o.op) {
    case 'grant':
      return {
        ok: true,
        seconds: o.seconds,
        ledger: { ...l, granted: l.granted + o.seconds, free: l.free + o.seconds },
      };
    case 'revoke':
      if (o.seconds > l.free) return refuse(`cannot revoke ${o.seconds}s: only ${l.free}s are free`);
      return {
        ok: true,
        seconds: o.seconds,
        ledger: { ...l, granted: l.granted - o.seconds, free: l.free - o.seconds },
      };
    case 'hold':
      if (l.holds.has(o.jobId)) return refuse(`job ${o.jobId} already holds quota`);
      if (o.seconds > l.free) return refuse(`needs ${o.seconds}s; only ${l.free}s are free`);
      return {
        ok: true,
        seconds: o.seconds,
        ledger: {
          ...l,
          held: l.held + o.seconds,
          free: l.free - o.seconds,
          holds: withHold(l, o.jobId, { hold: o.seconds, charged: 0, accrued: 0 }),
        },
      };
  }
  const h = l.holds.get(o.jobId);
  if (!h) return refuse(`job ${o.jobId} holds no quota`);
  switch (o.op) {
    case 'accrue': {
      const take = Math.min(o.seconds, h.hold - h.charged - h.accrued);
      return {
        ok: true,
        seconds: take,
        ledger: { ...l, holds: withHold(l, o.jobId, { ...h, accrued: h.accrued + take }) },
      };
    }
    case 'checkpoint':
      return {
        ok: true,
        seconds: h.accrued,
        ledger: {
          ...l,
          held: l.held - h.accrued,
          used: l.used + h.accrued,
          holds: withHold(l, o.jobId, { ...h, charged: h.charged + h.accrued, accrued: 0 }),
        },
      };
    case 'failure':
      return { ok: true, seconds: h.accrued, ledger: { ...l, holds: withHold(l, o.jobId, { ...h, accrued: 0 }) } };
    case 'release': {
      const rest = h.hold - h.charged - h.accrued;
      return {
        ok: true,
        seconds: rest,
        ledger: {
          ...l,
          held: l.held - (h.hold - h.charged),
          used: l.used + h.accrued,
          free: l.free + rest,
          holds: withHold(l, o.jobId, null),
        },
      };
    }
  }
}

/** Applies operations in order, skipping refused ones; returns the final ledger and how many were refused. */
export function applyLedgerOps(l: QuotaLedger, ops: readonly LedgerOp[]): { ledger: QuotaLedger; refused: number } {
  let ledger = l;
  let refused = 0;
  for (const o of ops) {
    const r = applyLedgerOp(ledger, o);
    if (!r.ok) refused++;
    ledger = r.ledger;
  }
  return { ledger, refused };
}
