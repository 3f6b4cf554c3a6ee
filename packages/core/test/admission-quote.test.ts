import { admit, QUOTE_JOB_ID, quote, quoteSpec } from '../src/admission';
import { JobSpecSchema } from '../src/job-spec';
import { at, booking, flavor, HOUR_S, job, member, NOW, running, snap } from './admission-fixtures';

const who = { userId: 'me', membershipId: 'm-me', groupId: 'g' };

describe('quote', () => {
  it('prices the hold and starts now when a pass would admit it', () => {
    const s = snap({ flavors: [flavor('a100', 4, 0, 2_500_000)], pending: [], memberships: [member('me', 10)] });
    expect(quote({ ...who, flavor: 'a100', gpus: 2, maxHours: 1.5 }, s, NOW)).toEqual({
      gpuHours: 3,
      holdSeconds: 3 * HOUR_S,
      rateMicrosPerGpuHour: 2_500_000,
      costMicros: 7_500_000,
      admitNow: true,
      usesReservation: false,
      estimatedStart: NOW,
      reason: null,
      message: null,
      position: null,
    });
  });

  it('estimates the start behind running jobs and the queue, without changing the snapshot', () => {
    const s = snap({
      flavors: [flavor('a100', 2)],
      running: [running({ id: 'r', userId: 'x', gpus: 2, endsInHours: 2 })],
      pending: [job({ id: 'ahead', userId: 'other', gpus: 2, maxRuntimeSeconds: 3 * HOUR_S })],
      memberships: [member('me', 10)],
    });
    const before = JSON.stringify(s);
    const q = quote({ ...who, flavor: 'a100', gpus: 1, maxHours: 1 }, s, NOW);
    expect(q).toMatchObject({ admitNow: false, reason: 'fair-share', position: 2, estimatedStart: at(5) });
    expect(q.message).toContain('estimated start in about 5.00 h');
    expect(JSON.stringify(s)).toBe(before);
    expect(admit(s, NOW).pending.map((p) => p.jobId)).not.toContain(QUOTE_JOB_ID);
  });

  it('reports a quota shortfall with no start', () => {
    const s = snap({ flavors: [flavor('a100', 4)], pending: [], memberships: [member('me', 1)] });
    const q = quote({ ...who, flavor: 'a100', gpus: 2, maxHours: 1 }, s, NOW);
    expect(q).toMatchObject({ admitNow: false, reason: 'quota', estimatedStart: null, costMicros: 4_000_000 });
    expect(q.message).toMatch(/^needs 2.00 GPU-h \(2 GPUs × 1.00 h\); 1.00 GPU-h free of 1.00 granted/);
  });

  it("uses the requester's booking", () => {
    const s = snap({
      pending: [],
      memberships: [member('me', 0)],
      reservations: [booking({ id: 'b', userId: 'me', gpus: 2, from: -1, to: 4 })],
    });
    expect(quote({ ...who, flavor: 'a100', gpus: 2, maxHours: 2 }, s, NOW)).toMatchObject({
      admitNow: true,
      usesReservation: true,
    });
  });

  it('has no price for an unknown flavor', () => {
    const q = quote({ ...who, flavor: 'tpu', gpus: 1, maxHours: 1 }, snap({ pending: [] }), NOW);
    expect(q).toMatchObject({ rateMicrosPerGpuHour: null, costMicros: null, reason: 'capacity', estimatedStart: null });
  });

  it('quotes a parsed job spec from its resources', () => {
    const spec = JobSpecSchema.parse({
      dataset: { uri: 's3://data/cats' },
      resources: { flavor: 'a100', gpus: 4, maxHours: 0.5 },
    });
    const s = snap({ flavors: [flavor('a100', 8, 0, 1_000_000)], pending: [], memberships: [member('me', 10)] });
    expect(quoteSpec(spec, { ...who, defaultMaxHours: 9 }, s, NOW)).toMatchObject({
      gpuHours: 2,
      costMicros: 2_000_000,
      admitNow: true,
    });
  });

  it("uses the group's default max runtime when the spec sets none", () => {
    const spec = JobSpecSchema.parse({ dataset: { uri: 's3://data/cats' }, resources: { flavor: 'a100', gpus: 2 } });
    const s = snap({ flavors: [flavor('a100', 8, 0, 1_000_000)], pending: [], memberships: [member('me', 10)] });
    expect(quoteSpec(spec, { ...who, defaultMaxHours: 1.5 }, s, NOW)).toMatchObject({
      gpuHours: 3,
      holdSeconds: 10800,
    });
  });
});
