import { GpulabError } from '../errors';

/**
 * Fair share with decayed usage (Slurm's idea): a GPU-second used `Δt` ago counts `2^(-Δt / halfLife)` of a
 * GPU-second now, so old usage fades and a student who trained a lot last month is not punished forever. A user's
 * fair-share key is `decayedUsage / weight`; lower keys go first. The weight (share) lets a group give some members
 * (e.g. a thesis student) a larger share: with weight 2 a user can use twice as much as a weight-1 user before they
 * are ordered behind them.
 *
 * The scheduler keeps one number per user (the incremental form): `{ value, at }`, the decayed usage as of `at`.
 * Decaying is multiplicative, so the stored value is decayed on read and on every update, never re-summed — the
 * result equals the batch sum over all events (see `decayedUsageOf`).
 */

/** One piece of usage: `gpuSeconds` of GPU time charged at time `at`. */
export interface UsageEvent {
  gpuSeconds: number;
  at: Date;
}

/** Decayed usage in GPU-seconds, valid as of `at`; decay it to any later time with `readUsage`. */
export interface DecayedUsage {
  value: number;
  at: Date;
}

export const NO_USAGE: DecayedUsage = Object.freeze({ value: 0, at: new Date(0) });

function assertHalfLife(halfLifeSeconds: number): void {
  if (!(halfLifeSeconds > 0)) {
    throw new GpulabError(
      'VALIDATION',
      `fair-share half-life must be a positive number of seconds, not ${halfLifeSeconds}`,
    );
  }
}

/**
 * The weight `2^(-elapsed / halfLife)` of usage `elapsedMs` old. Usage from the future (clock skew) does not grow:
 * its factor is 1. An infinite half-life means no decay.
 */
export function decayFactor(elapsedMs: number, halfLifeSeconds: number): number {
  assertHalfLife(halfLifeSeconds);
  if (!(elapsedMs > 0)) return 1;
  return 2 ** (-elapsedMs / (halfLifeSeconds * 1000));
}

/** Batch form: the decayed sum of `events` as seen at `now`. */
export function decayedUsageOf(events: readonly UsageEvent[], now: Date, halfLifeSeconds: number): number {
  const t = now.getTime();
  let sum = 0;
  for (const e of events) sum += e.gpuSeconds * decayFactor(t - e.at.getTime(), halfLifeSeconds);
  return sum;
}

/** The stored value decayed to `now` (a read never changes the stored row). */
export function readUsage(u: DecayedUsage, now: Date, halfLifeSeconds: number): number {
  return u.value * decayFactor(now.getTime() - u.at.getTime(), halfLifeSeconds);
}

/**
 * Adds one usage event to the stored value. An event newer than the stored timestamp moves the timestamp forward
 * (decaying the old value first); an older one (a late ledger row) is decayed back to the stored timestamp, so the
 * order in which events arrive never changes the result.
 */
export function addUsage(u: DecayedUsage, e: UsageEvent, halfLifeSeconds: number): DecayedUsage {
  const ut = u.at.getTime();
  const et = e.at.getTime();
  if (et >= ut) return { value: readUsage(u, e.at, halfLifeSeconds) + e.gpuSeconds, at: e.at };
  return { value: u.value + e.gpuSeconds * decayFactor(ut - et, halfLifeSeconds), at: u.at };
}

/**
 * The ordering key: decayed usage per unit of share. A user without a positive, finite weight has no share and
 * sorts after everyone (key `Infinity`).
 */
export function fairShareKey(decayedUsage: number, weight: number): number {
  if (!(weight > 0) || !Number.isFinite(weight)) return Number.POSITIVE_INFINITY;
  return Math.max(0, decayedUsage) / weight;
}
