import { JobSpecSchema } from '@gpulab/core';
import { addMember, createGroup, createJob, createUserToken, type Db, ensureFlavor } from '@gpulab/db';
import type { FastifyInstance } from 'fastify';
import { startTestApi, type TestApi } from '../helpers/app';

let t: TestApi;
let db: Db;
let app: FastifyInstance;

interface Who {
  token: string;
  userId: string;
}
let admin: Who;
let teacher: Who; // instructor of cs101 (and a student of bio202)
let ann: Who; // student of cs101 and bio202
let bob: Who; // student of cs101
let cat: Who; // student of bio202

/** Every ledger row written, to compute the expected sums independently of the SQL. */
const written: {
  user: string;
  group: string;
  flavor: string;
  month: string;
  seconds: number;
  micros: number;
  job: string;
}[] = [];

async function user(email: string, name: string, role: 'student' | 'admin' = 'student'): Promise<Who> {
  const u = await db.user.create({ data: { email, name, role } });
  return { token: (await createUserToken(db, u.id, 't')).secret, userId: u.id };
}

/** A job with ledger rows [hourStart, gpuSeconds][] at `rate` micros per GPU-hour. */
async function usage(
  who: Who,
  group: { id: string; name: string },
  flavor: string,
  hours: [string, number][],
  rate = 2_000_000,
) {
  const m = await db.membership.findUniqueOrThrow({
    where: { groupId_userId: { groupId: group.id, userId: who.userId } },
  });
  const spec = JobSpecSchema.parse({ dataset: { uri: 's3://gpulab-test/datasets/x' }, resources: { flavor } });
  const { id } = await createJob(db, {
    userId: who.userId,
    membershipId: m.id,
    groupId: group.id,
    spec,
    at: new Date('2026-11-01T00:00:00Z'),
    maxAttempts: 3,
    maxRuntimeSeconds: 3600,
  });
  for (const [hour, seconds] of hours) {
    const micros = Math.round((seconds * rate) / 3600);
    await db.costLedger.create({
      data: {
        jobId: id,
        hourStart: new Date(hour),
        gpuSeconds: seconds,
        rateMicros: BigInt(rate),
        amountMicros: BigInt(micros),
        closed: true,
      },
    });
    written.push({ user: who.userId, group: group.name, flavor, month: hour.slice(0, 7), seconds, micros, job: id });
  }
}

beforeAll(async () => {
  t = await startTestApi({ name: 'reports-api' });
  ({ db, app } = t);
  await ensureFlavor(db, { name: 'local', rateMicrosPerHour: 1_000_000, capacity: 4 });
  await ensureFlavor(db, { name: 'a100', rateMicrosPerHour: 3_000_000, capacity: 4 });
  admin = await user('root@uni.edu', 'Root', 'admin');
  teacher = await user('teacher@uni.edu', 'Teach');
  ann = await user('ann@uni.edu', 'Ann "the, first"\nLast');
  bob = await user('bob@uni.edu', '=HYPERLINK("http://evil")');
  cat = await user('cat@uni.edu', 'Cat');
  const period = { periodStart: new Date('2026-09-01T00:00:00Z'), periodEnd: new Date('2027-01-31T00:00:00Z') };
  const cs = await createGroup(db, { name: 'cs101', budgetSeconds: 1_000_000, ...period });
  const bio = await createGroup(db, { name: 'bio202', budgetSeconds: 1_000_000, ...period });
  await addMember(db, { groupId: cs.id, role: 'instructor', user: { userId: teacher.userId } });
  await addMember(db, { groupId: bio.id, role: 'student', user: { userId: teacher.userId } });
  for (const w of [ann, bob]) await addMember(db, { groupId: cs.id, role: 'student', user: { userId: w.userId } });
  for (const w of [ann, cat]) await addMember(db, { groupId: bio.id, role: 'student', user: { userId: w.userId } });
  // a job across the November/December boundary (UTC), jobs on two flavors, in both groups
  await usage(ann, cs, 'local', [
    ['2026-11-30T23:00:00Z', 1800],
    ['2026-12-01T00:00:00Z', 1200],
  ]);
  await usage(ann, cs, 'a100', [['2026-11-10T10:00:00Z', 3600]], 3_000_000);
  await usage(ann, bio, 'local', [['2026-11-11T10:00:00Z', 900]]);
  await usage(bob, cs, 'local', [
    ['2026-11-02T08:00:00Z', 3600],
    ['2026-11-02T09:00:00Z', 600],
  ]);
  await usage(cat, bio, 'a100', [['2026-12-05T12:00:00Z', 2400]], 3_000_000);
  await usage(teacher, bio, 'local', [['2026-12-06T12:00:00Z', 300]]);
});
afterAll(() => t.close());

const get = (who: Who | null, qs: string) =>
  app.inject({
    method: 'GET',
    url: `/v1/reports/usage?${qs}`,
    headers: who ? { authorization: `Bearer ${who.token}` } : {},
  });

type Row = Record<string, string | number>;
const expected = (filter: (w: (typeof written)[number]) => boolean) => {
  const rows = written.filter(filter);
  return {
    gpuSeconds: rows.reduce((s, r) => s + r.seconds, 0),
    amountMicros: rows.reduce((s, r) => s + r.micros, 0),
    jobs: new Set(rows.map((r) => r.job)).size,
  };
};

/** RFC 4180 parser (quoted fields, doubled quotes, CRLF) — enough to read the report back. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    const next = text[i + 1];
    i += 1;
    if (quoted) {
      if (c === '"' && next === '"') {
        field += '"';
        i += 1;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && next === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i += 1;
    } else field += c;
  }
  if (field || row.length) rows.push([...row, field]);
  return rows;
}

describe('usage report', () => {
  it('needs a token', async () => {
    expect((await get(null, 'by=user')).statusCode).toBe(401);
  });

  it('gives admins every row, grouped in SQL, with totals', async () => {
    const res = await get(admin, 'by=group,user');
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.totals).toMatchObject({ ...expected(() => true), gpuHours: expected(() => true).gpuSeconds / 3600 });
    expect(body.rows).toHaveLength(5); // cs101: ann, bob; bio202: ann, cat, teacher
    expect(body.rows.map((r: Row) => `${r.groupName}/${r.userEmail}`)).toEqual([
      'bio202/ann@uni.edu',
      'bio202/cat@uni.edu',
      'bio202/teacher@uni.edu',
      'cs101/ann@uni.edu',
      'cs101/bob@uni.edu',
    ]);
    const annCs = body.rows.find((r: Row) => r.groupName === 'cs101' && r.userEmail === 'ann@uni.edu');
    expect(annCs).toMatchObject(expected((w) => w.user === ann.userId && w.group === 'cs101'));
    expect(annCs.jobs).toBe(2);
  });

  it('splits months at UTC midnight and filters hour_start by [from, to)', async () => {
    const months = (await get(admin, 'by=month')).json().rows;
    expect(months.map((r: Row) => [r.month, r.gpuSeconds])).toEqual([
      ['2026-11', expected((w) => w.month === '2026-11').gpuSeconds],
      ['2026-12', expected((w) => w.month === '2026-12').gpuSeconds],
    ]);
    // the boundary job counts in both months
    expect(months.reduce((s: number, r: Row) => s + (r.jobs as number), 0)).toBe(7);
    const dec = (await get(admin, 'by=flavor&from=2026-12-01&to=2027-01-01')).json();
    expect(dec.rows.map((r: Row) => [r.flavor, r.gpuSeconds])).toEqual([
      ['a100', 2400],
      ['local', 1500],
    ]);
    expect(dec.totals).toMatchObject({ gpuSeconds: 3900, jobs: 3 });
    const noon = (await get(admin, 'by=user&from=2026-11-02T09:00:00Z&to=2026-11-02T10:00:00%2B00:00')).json();
    expect(noon.totals).toMatchObject({ gpuSeconds: 600, jobs: 1 });
  });

  it('limits instructors to their groups (and their own jobs) and students to their own rows', async () => {
    const t = (await get(teacher, 'by=group,user')).json();
    expect(t.rows.map((r: Row) => `${r.groupName}/${r.userEmail}`)).toEqual([
      'bio202/teacher@uni.edu',
      'cs101/ann@uni.edu',
      'cs101/bob@uni.edu',
    ]);
    expect(t.totals).toMatchObject(expected((w) => w.group === 'cs101' || w.user === teacher.userId));
    const tBio = (await get(teacher, 'by=user&group=bio202')).json();
    expect(tBio.rows.map((r: Row) => r.userEmail)).toEqual(['teacher@uni.edu']);

    const a = (await get(ann, 'by=group,user')).json();
    expect(a.rows.map((r: Row) => `${r.groupName}/${r.userEmail}`)).toEqual([
      'bio202/ann@uni.edu',
      'cs101/ann@uni.edu',
    ]);
    expect(a.totals).toMatchObject(expected((w) => w.user === ann.userId));
    const aCs = (await get(ann, 'by=user&group=cs101')).json();
    expect(aCs.totals).toMatchObject(expected((w) => w.user === ann.userId && w.group === 'cs101'));

    const c = (await get(cat, 'by=user&group=cs101')).json();
    expect(c).toMatchObject({ code: 'NOT_FOUND', field: 'group' });
    expect((await get(admin, 'by=user&group=nope')).statusCode).toBe(404);
  });

  it('downloads CSV that parses back to the same rows and sums', async () => {
    const res = await get(admin, 'by=user,group&from=2026-11-01&to=2027-01-01&format=csv');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(res.headers['content-disposition']).toBe(
      'attachment; filename="gpulab-usage-user-group_2026-11-01_2027-01-01.csv"',
    );
    const [header, ...rows] = parseCsv(res.body);
    expect(header).toEqual(['user_email', 'user_name', 'group', 'gpu_seconds', 'gpu_hours', 'amount_micros', 'jobs']);
    expect(rows).toHaveLength(5);
    const col = (name: string) => header!.indexOf(name);
    const sum = (name: string) => rows.reduce((s, r) => s + Number(r[col(name)]), 0);
    expect(sum('gpu_seconds')).toBe(expected(() => true).gpuSeconds);
    expect(sum('amount_micros')).toBe(expected(() => true).amountMicros);
    const annRow = rows.find((r) => r[col('user_email')] === 'ann@uni.edu' && r[col('group')] === 'cs101')!;
    expect(annRow[col('user_name')]).toBe('Ann "the, first"\nLast');
    expect(Number(annRow[col('gpu_seconds')])).toBe(
      expected((w) => w.user === ann.userId && w.group === 'cs101').gpuSeconds,
    );
    // a name that a spreadsheet would run as a formula is defused
    expect(rows.find((r) => r[col('user_email')] === 'bob@uni.edu')![col('user_name')]).toBe(
      `'=HYPERLINK("http://evil")`,
    );
    // a student's CSV holds only their rows
    const mine = parseCsv((await get(bob, 'by=user&format=csv')).body);
    expect(mine.slice(1).map((r) => r[0])).toEqual(['bob@uni.edu']);
  });

  it.each([
    ['by=user,colour', 'by'],
    ['from=2026-13-01', 'from'],
    ['from=yesterday', 'from'],
    ['from=2026-12-01&to=2026-11-01', 'to'],
    ['format=xml', 'format'],
  ])('rejects %s with a 400 naming %s', async (qs, field) => {
    const res = await get(ann, qs);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'VALIDATION', field });
  });
});
