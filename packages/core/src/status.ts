/**
 * The job lifecycle as one explicit table. Every status change in the system goes through `assertTransition`
 * (or `canTransition`) and is then written as a compare-and-set in Postgres.
 */
export const JOB_STATUSES = [
  'QUEUED',
  'ADMITTED',
  'LAUNCHING',
  'RUNNING',
  'RETRYING',
  'SUCCEEDED',
  'FAILED',
  'CANCELLED',
  'TIMED_OUT',
  'BUDGET_EXHAUSTED',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set([
  'SUCCEEDED',
  'FAILED',
  'CANCELLED',
  'TIMED_OUT',
  'BUDGET_EXHAUSTED',
]);

/** Statuses during which the job holds quota (taken at admission, released when it ends). */
export const HOLDING_STATUSES: ReadonlySet<JobStatus> = new Set(['ADMITTED', 'LAUNCHING', 'RUNNING', 'RETRYING']);

export const TRANSITIONS: Readonly<Record<JobStatus, readonly JobStatus[]>> = {
  QUEUED: ['ADMITTED', 'FAILED', 'CANCELLED'],
  ADMITTED: ['LAUNCHING', 'FAILED', 'CANCELLED'],
  LAUNCHING: ['RUNNING', 'RETRYING', 'FAILED', 'CANCELLED', 'SUCCEEDED'],
  RUNNING: ['SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT', 'BUDGET_EXHAUSTED', 'RETRYING'],
  RETRYING: ['LAUNCHING', 'FAILED', 'CANCELLED'],
  SUCCEEDED: [],
  FAILED: [],
  CANCELLED: [],
  TIMED_OUT: [],
  BUDGET_EXHAUSTED: [],
};

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}

export function canTransition(from: JobStatus, to: JobStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export function isJobStatus(value: string): value is JobStatus {
  return (JOB_STATUSES as readonly string[]).includes(value);
}

/** Machine-readable reasons recorded on transitions and shown on pending jobs. */
export const TRANSITION_REASONS = [
  'submitted',
  'admitted',
  'quota',
  'capacity',
  'launched',
  'started',
  'completed',
  'user_error',
  'infrastructure_error',
  'retry',
  'retries_exhausted',
  'cancelled',
  'timed_out',
  'budget_exhausted',
  'invalid_spec',
  'requeued',
] as const;
export type TransitionReason = (typeof TRANSITION_REASONS)[number];
