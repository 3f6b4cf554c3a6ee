/** Pure formatting for people: epoch lines, tables, sizes, hours, money, times. */
import type { EpochMetric, Job } from '@gpulab/sdk';

/** Exactly `Epoch e/E | Train Loss: x.xxxx | Val Loss: x.xxxx | Val Acc: xx.xx%` (the seed recipe's line). */
export function epochLine(m: Pick<EpochMetric, 'epoch' | 'epochs' | 'trainLoss' | 'valLoss' | 'valAcc'>): string {
  return (
    `Epoch ${m.epoch}/${m.epochs} | Train Loss: ${m.trainLoss.toFixed(4)} | ` +
    `Val Loss: ${m.valLoss.toFixed(4)} | Val Acc: ${(m.valAcc * 100).toFixed(2)}%`
  );
}

export function bytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = -1;
  do {
    v /= 1000;
    i++;
  } while (v >= 1000 && i < units.length - 1);
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/** GPU-hours with enough digits to show a few seconds. */
export function hours(h: number): string {
  if (h === 0) return '0';
  return h >= 10 ? h.toFixed(1) : h >= 0.1 ? h.toFixed(2) : h.toFixed(4);
}

export function money(amount: number): string {
  return amount >= 1 ? amount.toFixed(2) : amount.toFixed(4);
}

export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** "in 3m 05s (14:05)" / "5m 00s ago (13:55)"; the clock time in the local zone. */
export function relative(iso: string, now: Date = new Date()): string {
  const t = new Date(iso);
  const d = (t.getTime() - now.getTime()) / 1000;
  const clock = t.toLocaleString(undefined, { hour: '2-digit', minute: '2-digit', month: 'short', day: 'numeric' });
  if (Math.abs(d) < 1) return `now (${clock})`;
  return d > 0 ? `in ${duration(d)} (${clock})` : `${duration(-d)} ago (${clock})`;
}

export function shortId(id: string): string {
  return id.slice(0, 8);
}

/** Left-aligned columns separated by two spaces; numbers stay as given. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** A text progress bar: `[#####.....]`. */
export function bar(fraction: number, width = 24): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const full = Math.round(f * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}]`;
}

/** The cost line of a job: GPU-hours and amount so far. */
export function costLine(job: Pick<Job, 'cost'>): string {
  const c = job.cost;
  return `${hours(c.gpuHours)} GPU-h (${c.gpuSeconds} GPU-s), ${money(c.amount)}`;
}

/** Why a queued job waits: reason, message, queue position and estimated start. */
export function pendingLine(p: NonNullable<Job['pending']>, now: Date = new Date()): string {
  const parts = [`waiting (${p.reason})${p.message ? `: ${p.message}` : ''}`];
  const extra: string[] = [];
  if (p.position !== null) extra.push(`position ${p.position} in the queue`);
  if (p.estimatedStartAt && !/estimated start/i.test(p.message ?? ''))
    extra.push(`estimated start ${relative(p.estimatedStartAt, now)}`);
  else if (p.reason === 'quota') extra.push('no start estimate until quota frees up (see: gpulab quota)');
  return extra.length ? `${parts[0]} — ${extra.join(', ')}` : parts[0]!;
}

/** The model's files in the job's artifacts: where, how many, how large. */
export function modelSummary(
  job: Pick<Job, 'id' | 'artifacts'>,
): { prefix: string; files: number; bytes: number } | null {
  const model = job.artifacts.filter((a) => a.kind === 'model');
  if (model.length === 0) return null;
  const prefix = `jobs/${job.id}/model/`;
  return { prefix, files: model.length, bytes: model.reduce((n, a) => n + (a.bytes ?? 0), 0) };
}
