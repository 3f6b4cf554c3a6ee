/**
 * Metering and pricing maths. Quotas and usage are integer GPU-seconds; money is integer micro-units of the
 * price table's currency (1 unit = 1,000,000 micros), so sums are exact.
 */
export const HOUR_MS = 3_600_000;

export interface HourSlice {
  /** Start of the clock hour (UTC), ms since epoch. */
  hourStart: number;
  /** Milliseconds of the interval inside that hour. */
  ms: number;
}

/** Splits [startMs, endMs) at UTC clock-hour boundaries. */
export function splitByClockHour(startMs: number, endMs: number): HourSlice[] {
  const out: HourSlice[] = [];
  let t = startMs;
  while (t < endMs) {
    const hourStart = Math.floor(t / HOUR_MS) * HOUR_MS;
    const next = Math.min(endMs, hourStart + HOUR_MS);
    out.push({ hourStart, ms: next - t });
    t = next;
  }
  return out;
}

export interface Interval {
  startMs: number;
  endMs: number;
}

export interface LedgerRowDraft {
  hourStart: number;
  gpuSeconds: number;
  rateMicrosPerHour: number;
  amountMicros: number;
  /** The clock hour has ended (no more usage can land in it). */
  closed: boolean;
}

/**
 * The hourly cost rows of a job from its charged running intervals. Per-row GPU-seconds round the summed
 * milliseconds of that hour up to the whole second (a started second is a used second); the job's cost is by
 * definition the sum of its rows.
 */
export function hourlyLedger(intervals: Interval[], gpus: number, rateMicrosPerHour: number, nowMs: number) {
  const byHour = new Map<number, number>();
  for (const iv of intervals) {
    for (const s of splitByClockHour(iv.startMs, iv.endMs))
      byHour.set(s.hourStart, (byHour.get(s.hourStart) ?? 0) + s.ms);
  }
  const rows: LedgerRowDraft[] = [];
  for (const [hourStart, ms] of [...byHour.entries()].sort((a, b) => a[0] - b[0])) {
    const gpuSeconds = Math.ceil(ms / 1000) * gpus;
    rows.push({
      hourStart,
      gpuSeconds,
      rateMicrosPerHour,
      amountMicros: amountFor(gpuSeconds, rateMicrosPerHour),
      closed: hourStart + HOUR_MS <= nowMs,
    });
  }
  return rows;
}

export function amountFor(gpuSeconds: number, rateMicrosPerHour: number): number {
  return Math.round((gpuSeconds * rateMicrosPerHour) / 3600);
}

export const secondsToHours = (s: number): number => s / 3600;
export const hoursToSeconds = (h: number): number => Math.round(h * 3600);
export const microsToUnits = (m: number): number => m / 1_000_000;
