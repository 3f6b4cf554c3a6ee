import { Prisma } from '@prisma/client';
import type { Db } from './client';

/**
 * Usage reports from the cost ledger (one row per job per clock hour): GPU-seconds, money and distinct jobs, grouped
 * in SQL by any of user, group, flavor and month (`YYYY-MM` of `hour_start` in UTC). `from`/`to` filter on
 * `hour_start` (from inclusive, to exclusive), so a month is `from=2026-11-01&to=2026-12-01`.
 */

export const USAGE_KEYS = ['user', 'group', 'flavor', 'month'] as const;
export type UsageKey = (typeof USAGE_KEYS)[number];

export interface UsageQuery {
  by: readonly UsageKey[];
  from?: Date | null;
  to?: Date | null;
  /** Only jobs of these groups. */
  groupIds?: readonly string[] | null;
  /** Only jobs of this user. */
  userId?: string | null;
  /** What a non-admin may see: jobs in the groups they manage, or their own jobs (null: everything). */
  visibleTo?: { userId: string; groupIds: readonly string[] } | null;
}

export interface UsageRow {
  userId?: string;
  userEmail?: string;
  userName?: string;
  groupId?: string;
  groupName?: string;
  flavor?: string;
  month?: string;
  gpuSeconds: number;
  gpuHours: number;
  amountMicros: number;
  /** Distinct jobs with usage in the row (a job spanning two months counts in both). */
  jobs: number;
}

const KEY_SQL: Record<UsageKey, { select: Prisma.Sql; group: Prisma.Sql; order: Prisma.Sql }> = {
  user: {
    select: Prisma.sql`u.id::text AS "userId", u.email AS "userEmail", u.name AS "userName"`,
    group: Prisma.sql`u.id, u.email, u.name`,
    order: Prisma.sql`u.email`,
  },
  group: {
    select: Prisma.sql`g.id::text AS "groupId", g.name AS "groupName"`,
    group: Prisma.sql`g.id, g.name`,
    order: Prisma.sql`g.name`,
  },
  flavor: { select: Prisma.sql`j.flavor AS flavor`, group: Prisma.sql`j.flavor`, order: Prisma.sql`j.flavor` },
  month: {
    select: Prisma.sql`to_char(cl.hour_start AT TIME ZONE 'UTC', 'YYYY-MM') AS month`,
    group: Prisma.sql`to_char(cl.hour_start AT TIME ZONE 'UTC', 'YYYY-MM')`,
    order: Prisma.sql`to_char(cl.hour_start AT TIME ZONE 'UTC', 'YYYY-MM')`,
  },
};

type RawRow = Record<string, unknown> & { gpu_seconds: bigint; amount_micros: bigint; jobs: bigint };

/** Usage rows grouped by `by` (in that order); with `by` empty, one row of totals. */
export async function usageReport(db: Db, q: UsageQuery): Promise<UsageRow[]> {
  const by = [...new Set(q.by)];
  const where: Prisma.Sql[] = [Prisma.sql`TRUE`];
  if (q.from) where.push(Prisma.sql`cl.hour_start >= ${q.from}`);
  if (q.to) where.push(Prisma.sql`cl.hour_start < ${q.to}`);
  if (q.groupIds) where.push(Prisma.sql`j.group_id::text = ANY(${[...q.groupIds]})`);
  if (q.userId) where.push(Prisma.sql`j.user_id = ${q.userId}::uuid`);
  if (q.visibleTo)
    where.push(
      Prisma.sql`(j.user_id = ${q.visibleTo.userId}::uuid OR j.group_id::text = ANY(${[...q.visibleTo.groupIds]}))`,
    );
  const keys = by.map((k) => KEY_SQL[k]);
  const select = keys.length ? Prisma.sql`${Prisma.join(keys.map((k) => k.select))},` : Prisma.empty;
  const groupBy = keys.length ? Prisma.sql`GROUP BY ${Prisma.join(keys.map((k) => k.group))}` : Prisma.empty;
  const orderBy = keys.length ? Prisma.sql`ORDER BY ${Prisma.join(keys.map((k) => k.order))}` : Prisma.empty;
  const rows = await db.$queryRaw<RawRow[]>`
    SELECT ${select}
      COALESCE(SUM(cl.gpu_seconds), 0)::bigint AS gpu_seconds,
      COALESCE(SUM(cl.amount_micros), 0)::bigint AS amount_micros,
      COUNT(DISTINCT cl.job_id)::bigint AS jobs
    FROM cost_ledger cl
    JOIN jobs j ON j.id = cl.job_id
    JOIN users u ON u.id = j.user_id
    JOIN groups g ON g.id = j.group_id
    WHERE ${Prisma.join(where, ' AND ')}
    ${groupBy}
    ${orderBy}`;
  return rows.map((r) => {
    const { gpu_seconds, amount_micros, jobs, ...keyValues } = r;
    const gpuSeconds = Number(gpu_seconds);
    return {
      ...(keyValues as Partial<UsageRow>),
      gpuSeconds,
      gpuHours: gpuSeconds / 3600,
      amountMicros: Number(amount_micros),
      jobs: Number(jobs),
    };
  });
}

export interface CsvColumn<T> {
  key: keyof T & string;
  header?: string;
}

/** The CSV columns of a usage report grouped by `by`: the keys people read (emails, names), then the measures. */
export function usageColumns(by: readonly UsageKey[]): CsvColumn<UsageRow>[] {
  const cols: CsvColumn<UsageRow>[] = [];
  for (const k of new Set(by)) {
    if (k === 'user') cols.push({ key: 'userEmail', header: 'user_email' }, { key: 'userName', header: 'user_name' });
    if (k === 'group') cols.push({ key: 'groupName', header: 'group' });
    if (k === 'flavor') cols.push({ key: 'flavor' });
    if (k === 'month') cols.push({ key: 'month' });
  }
  cols.push(
    { key: 'gpuSeconds', header: 'gpu_seconds' },
    { key: 'gpuHours', header: 'gpu_hours' },
    { key: 'amountMicros', header: 'amount_micros' },
    { key: 'jobs' },
  );
  return cols;
}

/** Leading characters that make a spreadsheet read a cell as a formula (CSV injection). */
const FORMULA_START = /^[=+\-@\t\r]/;

function csvCell(v: unknown, guardFormulas: boolean): string {
  if (v === null || v === undefined) return '';
  let s: string;
  if (v instanceof Date) s = v.toISOString();
  else if (typeof v === 'string') s = guardFormulas && FORMULA_START.test(v) ? `'${v}` : v;
  else s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * RFC 4180 CSV: a header row, CRLF line ends, fields with quotes, commas or line breaks quoted (quotes doubled).
 * With `guardFormulas`, text cells that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first)
 * are prefixed with `'` — numbers are never touched.
 */
export function toCsv<T extends object>(
  rows: readonly T[],
  columns: readonly (CsvColumn<T> | (keyof T & string))[],
  opts: { guardFormulas?: boolean } = {},
): string {
  const cols = columns.map((c) =>
    typeof c === 'string' ? { key: c, header: c } : { key: c.key, header: c.header ?? c.key },
  );
  const guard = opts.guardFormulas ?? false;
  const lines = [cols.map((c) => csvCell(c.header, false)).join(',')];
  for (const row of rows) lines.push(cols.map((c) => csvCell(row[c.key], guard)).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
