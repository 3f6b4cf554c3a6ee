import { canTransition, isTerminal, JOB_STATUSES, type JobStatus, TERMINAL_STATUSES, TRANSITIONS } from '../src/status';

const allowed: Array<[JobStatus, JobStatus]> = [
  ['QUEUED', 'ADMITTED'],
  ['QUEUED', 'FAILED'],
  ['QUEUED', 'CANCELLED'],
  ['ADMITTED', 'LAUNCHING'],
  ['ADMITTED', 'FAILED'],
  ['ADMITTED', 'CANCELLED'],
  ['LAUNCHING', 'RUNNING'],
  ['LAUNCHING', 'RETRYING'],
  ['LAUNCHING', 'FAILED'],
  ['LAUNCHING', 'CANCELLED'],
  ['LAUNCHING', 'SUCCEEDED'],
  ['RUNNING', 'SUCCEEDED'],
  ['RUNNING', 'FAILED'],
  ['RUNNING', 'CANCELLED'],
  ['RUNNING', 'TIMED_OUT'],
  ['RUNNING', 'BUDGET_EXHAUSTED'],
  ['RUNNING', 'RETRYING'],
  ['RETRYING', 'LAUNCHING'],
  ['RETRYING', 'FAILED'],
  ['RETRYING', 'CANCELLED'],
];
const key = (a: JobStatus, b: JobStatus) => `${a}->${b}`;
const allowedSet = new Set(allowed.map(([a, b]) => key(a, b)));

describe('job status transition table', () => {
  it.each(allowed)('allows %s -> %s', (from, to) => {
    expect(canTransition(from, to)).toBe(true);
  });

  const forbidden: Array<[JobStatus, JobStatus]> = [];
  for (const from of JOB_STATUSES)
    for (const to of JOB_STATUSES) if (!allowedSet.has(key(from, to))) forbidden.push([from, to]);

  it.each(forbidden)('forbids %s -> %s', (from, to) => {
    expect(canTransition(from, to)).toBe(false);
  });

  it('covers every status pair exactly once', () => {
    expect(allowed.length + forbidden.length).toBe(JOB_STATUSES.length ** 2);
    const tableCount = Object.values(TRANSITIONS).reduce((n, to) => n + to.length, 0);
    expect(tableCount).toBe(allowed.length);
  });

  it('has no way out of a terminal status', () => {
    for (const s of TERMINAL_STATUSES) {
      expect(TRANSITIONS[s]).toEqual([]);
      expect(isTerminal(s)).toBe(true);
    }
    expect(isTerminal('RUNNING')).toBe(false);
  });

  it('reaches every terminal status from QUEUED', () => {
    const seen = new Set<JobStatus>(['QUEUED']);
    const stack: JobStatus[] = ['QUEUED'];
    while (stack.length) for (const n of TRANSITIONS[stack.pop()!]) if (!seen.has(n)) seen.add(n) && stack.push(n);
    for (const s of TERMINAL_STATUSES) expect(seen.has(s)).toBe(true);
  });
});
