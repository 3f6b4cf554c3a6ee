import fc from 'fast-check';
import { applyLedgerOp, applyLedgerOps, EMPTY_LEDGER, type LedgerOp, type QuotaLedger } from '../src/admission';

const JOBS = ['a', 'b', 'c'];
const amount = fc.integer({ min: 0, max: 20_000 });
const arbOp: fc.Arbitrary<LedgerOp> = fc.oneof(
  amount.map((seconds) => ({ op: 'grant' as const, seconds })),
  amount.map((seconds) => ({ op: 'revoke' as const, seconds })),
  fc.record({ op: fc.constant('hold' as const), jobId: fc.constantFrom(...JOBS), seconds: amount }),
  fc.record({ op: fc.constant('accrue' as const), jobId: fc.constantFrom(...JOBS), seconds: amount }),
  fc.record({ op: fc.constant('checkpoint' as const), jobId: fc.constantFrom(...JOBS) }),
  fc.record({ op: fc.constant('failure' as const), jobId: fc.constantFrom(...JOBS) }),
  fc.record({ op: fc.constant('release' as const), jobId: fc.constantFrom(...JOBS) }),
);

function expectInvariants(l: QuotaLedger): void {
  expect(l.granted).toBeGreaterThanOrEqual(0);
  expect(l.held).toBeGreaterThanOrEqual(0);
  expect(l.used).toBeGreaterThanOrEqual(0);
  expect(l.free).toBeGreaterThanOrEqual(0);
  expect(l.held + l.used + l.free).toBe(l.granted);
  let heldByJobs = 0;
  for (const h of l.holds.values()) {
    expect(h.charged).toBeGreaterThanOrEqual(0);
    expect(h.accrued).toBeGreaterThanOrEqual(0);
    expect(h.charged + h.accrued).toBeLessThanOrEqual(h.hold);
    heldByJobs += h.hold - h.charged;
  }
  expect(l.held).toBe(heldByJobs);
}

describe('quota ledger state machine', () => {
  it('keeps every balance ≥ 0 and held + used + free = granted for any sequence', () => {
    fc.assert(
      fc.property(fc.array(arbOp, { maxLength: 60 }), (ops) => {
        let l = EMPTY_LEDGER;
        let charged = 0;
        let granted = 0;
        for (const o of ops) {
          const before = l;
          const r = applyLedgerOp(l, o);
          if (!r.ok) {
            expect(r.ledger).toBe(before);
            continue;
          }
          l = r.ledger;
          if (o.op === 'grant') granted += o.seconds;
          if (o.op === 'revoke') granted -= o.seconds;
          if (o.op === 'checkpoint' || o.op === 'release') charged += before.holds.get(o.jobId)!.accrued;
          if (o.op === 'accrue') {
            const h = before.holds.get(o.jobId)!;
            expect(r.seconds).toBeLessThanOrEqual(o.seconds);
            expect(r.seconds).toBeLessThanOrEqual(h.hold - h.charged - h.accrued);
          }
          if (o.op === 'failure') expect(l.used).toBe(before.used);
          expectInvariants(l);
        }
        // Independent bookkeeping: used is exactly what was charged, granted what was granted minus revoked.
        expect(l.used).toBe(charged);
        expect(l.granted).toBe(granted);
      }),
      { numRuns: 500 },
    );
  });

  it('charges usage at checkpoints and returns what accrued since the last one on an infrastructure failure', () => {
    const { ledger, refused } = applyLedgerOps(EMPTY_LEDGER, [
      { op: 'grant', seconds: 10_000 },
      { op: 'hold', jobId: 'a', seconds: 7_200 },
      { op: 'accrue', jobId: 'a', seconds: 1_000 },
      { op: 'checkpoint', jobId: 'a' },
      { op: 'accrue', jobId: 'a', seconds: 500 },
      { op: 'failure', jobId: 'a' },
      { op: 'accrue', jobId: 'a', seconds: 300 },
      { op: 'release', jobId: 'a' },
    ]);
    expect(refused).toBe(0);
    expect(ledger).toMatchObject({ granted: 10_000, held: 0, used: 1_300, free: 8_700 });
    expect(ledger.holds.size).toBe(0);
  });

  it('caps an accrue at what is left of the hold', () => {
    let l = applyLedgerOps(EMPTY_LEDGER, [
      { op: 'grant', seconds: 100 },
      { op: 'hold', jobId: 'a', seconds: 60 },
      { op: 'accrue', jobId: 'a', seconds: 50 },
    ]).ledger;
    const r = applyLedgerOp(l, { op: 'accrue', jobId: 'a', seconds: 50 });
    expect(r).toMatchObject({ ok: true, seconds: 10 });
    l = r.ledger;
    expect(l.holds.get('a')).toEqual({ hold: 60, charged: 0, accrued: 60 });
  });

  it('refuses holds and revokes beyond the free balance, and unknown or duplicate jobs', () => {
    const l = applyLedgerOps(EMPTY_LEDGER, [
      { op: 'grant', seconds: 100 },
      { op: 'hold', jobId: 'a', seconds: 80 },
    ]).ledger;
    expect(applyLedgerOp(l, { op: 'hold', jobId: 'b', seconds: 21 })).toMatchObject({ ok: false });
    expect(applyLedgerOp(l, { op: 'revoke', seconds: 21 })).toMatchObject({ ok: false, error: /only 20s are free/ });
    expect(applyLedgerOp(l, { op: 'revoke', seconds: 20 })).toMatchObject({ ok: true });
    expect(applyLedgerOp(l, { op: 'hold', jobId: 'a', seconds: 1 })).toMatchObject({ ok: false });
    expect(applyLedgerOp(l, { op: 'accrue', jobId: 'zzz', seconds: 1 })).toMatchObject({ ok: false });
    expect(applyLedgerOp(l, { op: 'grant', seconds: -5 })).toMatchObject({ ok: false });
    expect(applyLedgerOp(l, { op: 'grant', seconds: 1.5 })).toMatchObject({ ok: false });
  });
});
