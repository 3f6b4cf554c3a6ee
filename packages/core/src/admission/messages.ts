import type { PendingReason } from './snapshot';

/** Why one job waits, with the numbers the message shows. */
export type BlockDetail =
  | { kind: 'no-membership' }
  | { kind: 'quota'; need: number; gpus: number; free: number; granted: number; held: number; used: number }
  | { kind: 'user-cap'; cap: number; running: number; gpus: number }
  | { kind: 'no-flavor'; flavor: string }
  | { kind: 'too-big'; flavor: string; gpus: number; capacity: number }
  | { kind: 'capacity'; flavor: string; gpus: number; free: number; capacity: number }
  | {
      kind: 'reservation';
      flavor: string;
      gpus: number;
      idle: number;
      booking: { gpus: number; start: number; end: number };
    }
  | { kind: 'behind'; flavor: string; gpus: number; ahead: number }
  | { kind: 'backfill-protected'; flavor: string; gpus: number; runtimeMs: number; headStart: number };

export function reasonOf(d: BlockDetail): PendingReason {
  switch (d.kind) {
    case 'no-membership':
    case 'quota':
      return 'quota';
    case 'user-cap':
      return 'user-cap';
    case 'no-flavor':
    case 'too-big':
    case 'capacity':
      return 'capacity';
    case 'reservation':
      return 'reservation';
    case 'behind':
    case 'backfill-protected':
      return 'fair-share';
  }
}

/** Blocks that no amount of waiting removes (the job can never start as submitted). */
export function isNever(d: BlockDetail): boolean {
  return d.kind === 'no-flavor' || d.kind === 'too-big' || (d.kind === 'user-cap' && d.gpus > d.cap);
}

/** GPU-seconds as "1.50 GPU-h". */
export const gpuHours = (seconds: number): string => `${(seconds / 3600).toFixed(2)} GPU-h`;
const hrs = (seconds: number): string => (seconds / 3600).toFixed(2);
const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;
/**
 * Memoised formatting: a pass formats the same few hundred instants (running jobs' ends, bookings) for thousands of
 * waiting jobs. Bounded, so a long-lived scheduler does not grow it without limit.
 */
function memo<K, V>(fn: (k: K) => V, max = 4096): (k: K) => V {
  const cache = new Map<K, V>();
  return (k) => {
    let v = cache.get(k);
    if (v === undefined) {
      if (cache.size >= max) cache.clear();
      v = fn(k);
      cache.set(k, v);
    }
    return v;
  };
}

/** A time as "2026-11-28 14:00 UTC". */
export const clockTime = memo(
  (ms: number): string => `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`,
);
const aboutHours = memo((d: number): string => `in about ${(d / 3_600_000).toFixed(2)} h`);
/** A delay as "in about 1.25 h" (or "any moment now" under a minute). */
export function fromNow(ms: number, now: number): string {
  const d = ms - now;
  return d < 60_000 ? 'any moment now' : aboutHours(d);
}

/** The sentence a student reads in `gpulab status`. */
export function describe(d: BlockDetail, estimatedStart: number | null, now: number): string {
  const body = sentence(d, now);
  if (isNever(d)) return body;
  if (estimatedStart === null) return body;
  return `${body}; estimated start ${fromNow(estimatedStart, now)} (${clockTime(estimatedStart)})`;
}

function sentence(d: BlockDetail, now: number): string {
  switch (d.kind) {
    case 'no-membership':
      return 'no quota: you are not a member of the group this job was submitted to';
    case 'quota':
      return (
        `needs ${gpuHours(d.need)} (${plural(d.gpus, 'GPU')} × ${hrs(d.need / Math.max(1, d.gpus))} h); ` +
        `${gpuHours(Math.max(0, d.free))} free of ${hrs(d.granted)} granted ` +
        `(${hrs(d.held)} held by active jobs, ${hrs(d.used)} used) — lower maxHours or ask for more hours`
      );
    case 'user-cap':
      if (d.gpus > d.cap) {
        return `needs ${plural(d.gpus, 'GPU')} but a student may run at most ${d.cap} at once in this group; ask for fewer GPUs`;
      }
      return (
        `you already run ${plural(d.running, 'GPU')} in this group and may run at most ${d.cap} at once; ` +
        `this job needs ${d.gpus} more, so it waits for one of your jobs to finish`
      );
    case 'no-flavor':
      return `there are no GPUs of flavor "${d.flavor}"`;
    case 'too-big':
      return `needs ${plural(d.gpus, `${d.flavor} GPU`)} but only ${d.capacity} exist; ask for fewer GPUs`;
    case 'capacity':
      return `waiting for ${plural(d.gpus, `free ${d.flavor} GPU`)}: ${Math.max(0, d.free)} of ${d.capacity} free now`;
    case 'reservation':
      return (
        `waiting for ${plural(d.gpus, `${d.flavor} GPU`)}: ${Math.max(0, d.idle)} idle, but kept for a booking of ` +
        `${d.booking.gpus} from ${clockTime(d.booking.start)} to ${clockTime(d.booking.end)} that your job's run would overlap`
      );
    case 'behind':
      return (
        `waiting behind ${plural(d.ahead, 'job')} ahead of you in the ${d.flavor} queue (higher priority or less ` +
        `recent usage); yours needs ${plural(d.gpus, 'GPU')}`
      );
    case 'backfill-protected':
      return (
        `the free ${d.flavor} GPUs are kept for a job ahead of you (higher priority or less recent usage) that starts ` +
        `${fromNow(d.headStart, now)}; your job's ${hrs(d.runtimeMs / 1000)} h max runtime would delay it`
      );
  }
}
