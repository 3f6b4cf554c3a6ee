/**
 * Admission engine benchmark: one pass over 10,000 pending jobs from 1,000 users on 200 GPUs of 4 flavors.
 *
 *   node --import tsx bench/admission/run.ts [--passes 100] [--warmup 10]
 *
 * A "decision" is one pending job's outcome (admitted, or pending with reason, message, position and estimate).
 * `admit` decides every job in one call and returns them together, so a job's decision latency is the wall time of
 * the pass it is decided in: p50/p99 are over the timed passes. Throughput is decisions / total pass time. The
 * quote figures time `quote` (one extra job decided against the same snapshot, as the quote endpoint does). The
 * work of a pass is not separable per job (the sort and the start-time simulation are shared), so instead of
 * per-job timers the amortised cost per decision (pass time / jobs) is reported. The snapshot is generated from a
 * fixed seed, so runs are comparable. Results: docs/benchmarks.md.
 */
import os from 'node:os';
import {
  type AdmissionSnapshot,
  admit,
  type FlavorState,
  type MembershipBalance,
  type PendingJob,
  quote,
  type Reservation,
  type RunningJob,
  type UserShare,
} from '@gpulab/core';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const PASSES = arg('passes', 100);
const WARMUP = arg('warmup', 10);
const JOBS = 10_000;
const USERS = 1_000;
const GROUPS = 20;
const HOUR = 3_600_000;
const NOW = new Date('2026-11-28T12:00:00Z');

/** mulberry32: a small seeded PRNG. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
const rand = rng(20261128);
const pick = <T>(items: readonly (readonly [T, number])[]): T => {
  let x = rand();
  for (const [v, w] of items) {
    x -= w;
    if (x < 0) return v;
  }
  return items[items.length - 1]![0];
};
const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
const uuidish = (p: string, i: number): string => `${p}-${i.toString(16).padStart(8, '0')}`;

function snapshot(): AdmissionSnapshot {
  const flavors: FlavorState[] = [
    { name: 'a10g', capacity: 80, inUse: 0, rateMicrosPerGpuHour: 1_100_000 },
    { name: 'v100', capacity: 48, inUse: 0, rateMicrosPerGpuHour: 2_500_000 },
    { name: 'a100', capacity: 48, inUse: 0, rateMicrosPerGpuHour: 4_000_000 },
    { name: 'h100', capacity: 24, inUse: 0, rateMicrosPerGpuHour: 8_000_000 },
  ];
  const flavorMix = [
    ['a10g', 0.4],
    ['v100', 0.2],
    ['a100', 0.25],
    ['h100', 0.15],
  ] as const;
  const gpuMix = [
    [1, 0.55],
    [2, 0.25],
    [4, 0.13],
    [8, 0.07],
  ] as const;
  const users = Array.from({ length: USERS }, (_, i) => ({
    id: uuidish('user', i),
    group: uuidish('group', i % GROUPS),
  }));
  const memberships: MembershipBalance[] = users.map((_, i) => {
    const granted = int(20, 200) * 3600;
    const held = Math.floor(granted * rand() * 0.3);
    const used = Math.floor((granted - held) * rand() * (i % 10 === 0 ? 1 : 0.6)); // 1 in 10 nearly out of quota
    return { id: uuidish('member', i), grantedSeconds: granted, heldSeconds: held, usedSeconds: used };
  });
  const shares: UserShare[] = users.map((u) => ({
    userId: u.id,
    weight: pick([
      [1, 0.9],
      [2, 0.08],
      [4, 0.02],
    ]),
    usage: {
      value: Math.floor(-Math.log(1 - rand()) * 60 * 3600),
      at: new Date(NOW.getTime() - rand() * 14 * 24 * HOUR),
    },
  }));
  const running: RunningJob[] = [];
  for (const f of flavors) {
    let busy = 0;
    while (busy < f.capacity * 0.8) {
      const gpus = Math.min(pick(gpuMix), f.capacity - busy);
      const u = users[int(0, USERS - 1)]!;
      running.push({
        id: uuidish(`run-${f.name}`, running.length),
        userId: u.id,
        groupId: u.group,
        flavor: f.name,
        gpus,
        expectedEnd: new Date(NOW.getTime() + rand() * 12 * HOUR),
        reservationId: null,
      });
      busy += gpus;
    }
    f.inUse = busy;
  }
  const reservations: Reservation[] = Array.from({ length: 12 }, (_, i) => {
    const f = flavors[i % 4]!;
    const start = NOW.getTime() + (i < 4 ? -2 * HOUR : int(1, 24) * HOUR);
    return {
      id: uuidish('resv', i),
      userId: users[int(0, USERS - 1)]!.id,
      flavor: f.name,
      gpus: Math.min(int(1, 8), Math.floor(f.capacity / 8)),
      start: new Date(start),
      end: new Date(start + int(2, 8) * HOUR),
    };
  });
  const pending: PendingJob[] = Array.from({ length: JOBS }, (_, i) => {
    // Every user submits at least one job; after that a few heavy submitters (5% of the users) send a third.
    const ui = i < USERS ? i : rand() < 0.33 ? int(0, USERS / 20 - 1) : int(0, USERS - 1);
    const u = users[ui]!;
    const gpus = pick(gpuMix);
    const maxHours = pick([
      [0.5, 0.2],
      [1, 0.3],
      [2, 0.2],
      [4, 0.15],
      [8, 0.1],
      [12, 0.05],
    ]);
    return {
      id: uuidish('job', i),
      userId: u.id,
      membershipId: uuidish('member', ui),
      groupId: u.group,
      flavor: pick(flavorMix),
      gpus,
      holdSeconds: Math.round(maxHours * gpus * 3600),
      priority: pick([
        [0, 0.85],
        [1, 0.12],
        [2, 0.03],
      ]),
      submittedAt: new Date(NOW.getTime() - rand() * 48 * HOUR),
      maxRuntimeSeconds: maxHours * 3600,
    };
  });
  // Give some reservation owners queued work that fits their booking.
  for (const r of reservations.slice(0, 4)) {
    const ui = users.findIndex((u) => u.id === r.userId);
    pending[int(0, JOBS - 1)] = {
      id: uuidish('job-resv', ui),
      userId: r.userId,
      membershipId: uuidish('member', ui),
      groupId: users[ui]!.group,
      flavor: r.flavor,
      gpus: 1,
      holdSeconds: 3600,
      priority: 0,
      submittedAt: new Date(NOW.getTime() - HOUR),
      maxRuntimeSeconds: 3600,
    };
  }
  return {
    pending,
    memberships,
    flavors,
    running,
    reservations,
    shares,
    policy: {
      halfLifeSeconds: 7 * 24 * 3600,
      defaultMaxRunningGpusPerUser: 8,
      maxRunningGpusPerUserByGroup: { [uuidish('group', 0)]: 16 },
    },
  };
}

const pct = (sorted: readonly number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const ms = (ns: bigint): number => Number(ns) / 1e6;

const snap = snapshot();
const gpus = snap.flavors.reduce((s, f) => s + f.capacity, 0);
const users = new Set(snap.pending.map((j) => j.userId)).size;

for (let i = 0; i < WARMUP; i++) admit(snap, NOW);
const times: number[] = [];
let last = admit(snap, NOW);
for (let i = 0; i < PASSES; i++) {
  const t0 = process.hrtime.bigint();
  last = admit(snap, NOW);
  times.push(ms(process.hrtime.bigint() - t0));
}
const decisions = last.admitted.length + last.pending.length;
if (decisions !== JOBS) throw new Error(`expected ${JOBS} decisions, got ${decisions}`);
const total = times.reduce((a, b) => a + b, 0);
const sorted = times.slice().sort((a, b) => a - b);

const quoteTimes: number[] = [];
const req = {
  userId: snap.pending[0]!.userId,
  membershipId: snap.pending[0]!.membershipId,
  groupId: snap.pending[0]!.groupId,
};
for (let i = 0; i < Math.max(10, Math.floor(PASSES / 2)); i++) {
  const t0 = process.hrtime.bigint();
  quote({ ...req, flavor: 'a100', gpus: 2, maxHours: 4 }, snap, NOW);
  quoteTimes.push(ms(process.hrtime.bigint() - t0));
}
quoteTimes.sort((a, b) => a - b);

const reasons = new Map<string, number>();
for (const p of last.pending) reasons.set(p.reason, (reasons.get(p.reason) ?? 0) + 1);
const figures = {
  bench: 'admission',
  jobs: JOBS,
  users,
  gpus,
  flavors: snap.flavors.length,
  reservations: snap.reservations.length,
  passes: PASSES,
  decisions_per_s: Math.round((decisions * PASSES) / (total / 1000)),
  p50_ms: +pct(sorted, 50).toFixed(2),
  p99_ms: +pct(sorted, 99).toFixed(2),
  us_per_decision: +((total / PASSES / decisions) * 1000).toFixed(3),
  quote_p50_ms: +pct(quoteTimes, 50).toFixed(2),
  quote_p99_ms: +pct(quoteTimes, 99).toFixed(2),
  admitted: last.admitted.length,
  node: process.version,
  cpus: os.cpus().length,
};
console.log(
  `admission bench: ${JOBS} pending jobs, ${users} users, ${gpus} GPUs (${snap.flavors.map((f) => `${f.name} ${f.capacity}`).join(', ')}), ${snap.running.length} running, ${snap.reservations.length} reservations`,
);
console.log(`warm-up ${WARMUP} passes, timed ${PASSES} passes; a decision's latency = its pass's wall time`);
console.log(
  `pass: p50 ${figures.p50_ms} ms, p99 ${figures.p99_ms} ms, min ${sorted[0]!.toFixed(2)} ms, max ${sorted[sorted.length - 1]!.toFixed(2)} ms`,
);
console.log(
  `throughput: ${figures.decisions_per_s.toLocaleString('en-US')} decisions/s (${figures.us_per_decision} µs per decision, amortised)`,
);
console.log(
  `quote (one job against the same snapshot): p50 ${figures.quote_p50_ms} ms, p99 ${figures.quote_p99_ms} ms`,
);
console.log(
  `outcome: ${last.admitted.length} admitted (${last.admitted.filter((d) => d.backfilled).length} backfilled, ${last.admitted.filter((d) => d.usesReservation).length} in reservations); pending by reason: ${[...reasons].map(([r, n]) => `${r} ${n}`).join(', ')}`,
);
console.log(JSON.stringify(figures));
