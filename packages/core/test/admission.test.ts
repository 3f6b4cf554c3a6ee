import { admissionOrder, admit } from '../src/admission';
import {
  admittedIds,
  at,
  flavor,
  HOUR_S,
  job,
  member,
  NOW,
  POLICY,
  pendingOf,
  running,
  share,
  snap,
} from './admission-fixtures';

describe('admission order and fair share', () => {
  it("puts the light user's jobs first when two users of equal weight differ 10× in usage", () => {
    const s = snap({
      flavors: [flavor('a100', 2)],
      pending: [
        job({ id: 'heavy-1', userId: 'heavy', submittedAt: at(-5) }),
        job({ id: 'heavy-2', userId: 'heavy', submittedAt: at(-4) }),
        job({ id: 'light-1', userId: 'light', submittedAt: at(-2) }),
        job({ id: 'light-2', userId: 'light', submittedAt: at(-1) }),
      ],
      shares: [share('heavy', 100), share('light', 10)],
    });
    expect(admissionOrder(s, NOW).map((j) => j.id)).toEqual(['light-1', 'light-2', 'heavy-1', 'heavy-2']);
    const r = admit(s, NOW);
    expect(admittedIds(r)).toEqual(['light-1', 'light-2']);
    // As Slurm words it: the first job waits for GPUs (capacity), the ones behind it for the jobs ahead (fair-share).
    expect(pendingOf(r, 'heavy-1')).toMatchObject({ reason: 'capacity', position: 1, estimatedStart: at(1) });
    const h2 = pendingOf(r, 'heavy-2');
    expect(h2).toMatchObject({ reason: 'fair-share', position: 2, estimatedStart: at(1) });
    expect(h2.message).toBe(
      'waiting behind 1 job ahead of you in the a100 queue (higher priority or less recent usage); yours needs 1 GPU; ' +
        'estimated start in about 1.00 h (2026-11-28 13:00 UTC)',
    );
  });

  it('weighs usage by share: a weight-20 user with 10× the usage goes first', () => {
    const s = snap({
      flavors: [flavor('a100', 1)],
      pending: [job({ id: 'light', userId: 'light' }), job({ id: 'heavy', userId: 'heavy' })],
      shares: [share('heavy', 100, 20), share('light', 10, 1)],
    });
    expect(admittedIds(admit(s, NOW))).toEqual(['heavy']);
  });

  it('lets old usage decay: 10× the usage ten half-lives ago weighs less than recent usage', () => {
    const halfLifeH = POLICY.halfLifeSeconds / HOUR_S;
    const s = snap({
      flavors: [flavor('a100', 1)],
      pending: [job({ id: 'recent', userId: 'recent' }), job({ id: 'old', userId: 'old', submittedAt: at(-0.5) })],
      shares: [share('old', 100, 1, 10 * halfLifeH), share('recent', 10, 1, 0)],
    });
    expect(admittedIds(admit(s, NOW))).toEqual(['old']);
  });

  it('breaks ties by submit time, then id', () => {
    const s = snap({
      pending: [
        job({ id: 'b', userId: 'u1', submittedAt: at(-1) }),
        job({ id: 'c', userId: 'u2', submittedAt: at(-2) }),
        job({ id: 'a', userId: 'u3', submittedAt: at(-1) }),
      ],
    });
    expect(admissionOrder(s, NOW).map((j) => j.id)).toEqual(['c', 'a', 'b']);
  });

  it('priority beats fair share', () => {
    const s = snap({
      flavors: [flavor('a100', 1)],
      pending: [job({ id: 'light', userId: 'light' }), job({ id: 'heavy-urgent', userId: 'heavy', priority: 5 })],
      shares: [share('heavy', 1000), share('light', 0)],
    });
    const r = admit(s, NOW);
    expect(admittedIds(r)).toEqual(['heavy-urgent']);
    expect(pendingOf(r, 'light')).toMatchObject({ position: 1, estimatedStart: at(1) });
  });

  it('a user without a share row counts as weight 1 with no usage', () => {
    const s = snap({
      flavors: [flavor('a100', 1)],
      pending: [job({ id: 'known', userId: 'known', submittedAt: at(-9) }), job({ id: 'new', userId: 'new' })],
      shares: [share('known', 1)],
    });
    expect(admittedIds(admit(s, NOW))).toEqual(['new']);
  });
});

describe('quota', () => {
  it("blocks only that user's job, with the numbers in the message", () => {
    const s = snap({
      flavors: [flavor('a100', 4)],
      pending: [
        job({ id: 'poor', userId: 'poor', gpus: 2, holdSeconds: 2 * HOUR_S }),
        job({ id: 'rich', userId: 'rich', gpus: 2 }),
      ],
      memberships: [member('poor', 4, 1.5, 2)],
      shares: [share('poor', 0), share('rich', 50)],
    });
    const r = admit(s, NOW);
    expect(admittedIds(r)).toEqual(['rich']);
    const p = pendingOf(r, 'poor');
    expect(p.reason).toBe('quota');
    expect(p.message).toBe(
      'needs 2.00 GPU-h (2 GPUs × 1.00 h); 0.50 GPU-h free of 4.00 granted (1.50 held by active jobs, 2.00 used) — ' +
        'lower maxHours or ask for more hours',
    );
    expect(p.estimatedStart).toBeNull();
    expect(p.position).toBe(1);
  });

  it('is decremented as jobs are admitted, so one pass never overspends it', () => {
    const s = snap({
      flavors: [flavor('a100', 8)],
      pending: [1, 2, 3, 4].map((i) => job({ id: `j${i}`, userId: 'u', submittedAt: at(-10 + i) })),
      memberships: [member('u', 3)],
    });
    const r = admit(s, NOW);
    expect(admittedIds(r)).toEqual(['j1', 'j2', 'j3']);
    expect(r.admitted.reduce((sum, d) => sum + d.holdSeconds, 0)).toBe(3 * HOUR_S);
    expect(pendingOf(r, 'j4').message).toContain('0.00 GPU-h free of 3.00 granted (3.00 held');
  });

  it('says so when the membership is gone', () => {
    const s = snap({ pending: [job({ id: 'j', userId: 'u', membershipId: 'gone' })] });
    const r = admit({ ...s, memberships: [] }, NOW);
    expect(pendingOf(r, 'j')).toMatchObject({ reason: 'quota', estimatedStart: null });
    expect(pendingOf(r, 'j').message).toMatch(/not a member/);
  });
});

describe('per-user cap on running GPUs', () => {
  const policy = { ...POLICY, defaultMaxRunningGpusPerUser: 2, maxRunningGpusPerUserByGroup: { thesis: 8 } };

  it('holds back a user at the cap until their own job ends, while others run', () => {
    const s = snap({
      flavors: [flavor('a100', 8)],
      running: [running({ id: 'r', userId: 'busy', endsInHours: 2 })],
      pending: [job({ id: 'capped', userId: 'busy', gpus: 2 }), job({ id: 'other', userId: 'other', gpus: 2 })],
      shares: [share('busy', 0), share('other', 10)],
      policy,
    });
    const r = admit(s, NOW);
    expect(admittedIds(r)).toEqual(['other']);
    const p = pendingOf(r, 'capped');
    expect(p.reason).toBe('user-cap');
    expect(p.message).toBe(
      'you already run 1 GPU in this group and may run at most 2 at once; this job needs 2 more, so it waits for ' +
        'one of your jobs to finish; estimated start in about 2.00 h (2026-11-28 14:00 UTC)',
    );
    expect(p.estimatedStart).toEqual(at(2));
  });

  it('counts jobs admitted in the same pass', () => {
    const s = snap({
      flavors: [flavor('a100', 8)],
      pending: [1, 2, 3].map((i) => job({ id: `j${i}`, userId: 'u', submittedAt: at(-10 + i) })),
      policy,
    });
    const r = admit(s, NOW);
    expect(admittedIds(r)).toEqual(['j1', 'j2']);
    expect(pendingOf(r, 'j3')).toMatchObject({ reason: 'user-cap', estimatedStart: at(1) });
  });

  it('applies the per-group override', () => {
    const s = snap({
      flavors: [flavor('a100', 8)],
      pending: [job({ id: 'big', userId: 'u', gpus: 6, groupId: 'thesis' })],
      policy,
    });
    expect(admittedIds(admit(s, NOW))).toEqual(['big']);
  });

  it('a job larger than the cap can never start', () => {
    const s = snap({ flavors: [flavor('a100', 8)], pending: [job({ id: 'big', userId: 'u', gpus: 4 })], policy });
    const p = pendingOf(admit(s, NOW), 'big');
    expect(p).toMatchObject({ reason: 'user-cap', estimatedStart: null });
    expect(p.message).toBe('needs 4 GPUs but a student may run at most 2 at once in this group; ask for fewer GPUs');
  });
});

describe('backfill', () => {
  // a100: 4 GPUs; 2 busy until +2 h, 1 busy until +10 h, 1 free. The head needs 3 GPUs: it can start at +2 h.
  const busy = [
    running({ id: 'r2', userId: 'x', gpus: 2, endsInHours: 2 }),
    running({ id: 'r1', userId: 'y', gpus: 1, endsInHours: 10 }),
  ];
  const head = job({ id: 'head', userId: 'h', gpus: 3, maxRuntimeSeconds: 5 * HOUR_S, priority: 1 });

  it('admits a later small job that ends before the head can start', () => {
    const r = admit(snap({ running: busy, pending: [head, job({ id: 'short', userId: 's' })] }), NOW);
    expect(r.admitted).toEqual([expect.objectContaining({ jobId: 'short', backfilled: true, holdSeconds: HOUR_S })]);
    expect(pendingOf(r, 'head')).toMatchObject({ reason: 'capacity', position: 1, estimatedStart: at(2) });
    expect(pendingOf(r, 'head').message).toBe(
      'waiting for 3 free a100 GPUs: 1 of 4 free now; estimated start in about 2.00 h (2026-11-28 14:00 UTC)',
    );
  });

  it("never admits one that would still run when the head's GPUs free up", () => {
    const long = job({ id: 'long', userId: 's', maxRuntimeSeconds: 3 * HOUR_S });
    const r = admit(snap({ running: busy, pending: [head, long] }), NOW);
    expect(admittedIds(r)).toEqual([]);
    expect(pendingOf(r, 'head').estimatedStart).toEqual(at(2));
    const p = pendingOf(r, 'long');
    expect(p.reason).toBe('fair-share');
    expect(p.position).toBe(2);
    expect(p.message).toContain('kept for a job ahead of you');
    expect(p.message).toContain('3.00 h max runtime would delay it');
    // Behind the head (3 GPUs until +7 h) and r1 (until +10 h): its GPU frees at +7 h.
    expect(p.estimatedStart).toEqual(at(7));
  });

  it('admits a long job onto GPUs the head cannot use anyway, but no more', () => {
    // With 5 GPUs, 2 are free now and 4 at +2 h: the head leaves 1 spare for the whole of its run.
    const s = snap({
      flavors: [flavor('a100', 5)],
      running: busy,
      pending: [
        head,
        job({ id: 'long-1', userId: 's', maxRuntimeSeconds: 8 * HOUR_S }),
        job({ id: 'long-2', userId: 't', maxRuntimeSeconds: 8 * HOUR_S }),
      ],
      shares: [share('s', 0), share('t', 1)],
    });
    const r = admit(s, NOW);
    expect(r.admitted).toEqual([expect.objectContaining({ jobId: 'long-1', backfilled: true })]);
    expect(pendingOf(r, 'long-2').reason).toBe('fair-share');
    expect(pendingOf(r, 'head').estimatedStart).toEqual(at(2));
  });
});
