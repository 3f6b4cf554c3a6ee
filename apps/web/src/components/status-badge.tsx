import type { JobStatus } from '@gpulab/core';

const TONE: Record<JobStatus, string> = {
  QUEUED: 'wait',
  ADMITTED: 'run',
  LAUNCHING: 'run',
  RUNNING: 'run',
  RETRYING: 'wait',
  SUCCEEDED: 'ok',
  FAILED: 'bad',
  CANCELLED: 'off',
  TIMED_OUT: 'bad',
  BUDGET_EXHAUSTED: 'bad',
};

/** A job status as text in a coloured pill (the text carries the meaning; colour only helps). */
export function StatusBadge({ status }: { status: JobStatus }) {
  return <span className={`badge ${TONE[status] ?? 'off'}`}>{status.replace(/_/g, ' ').toLowerCase()}</span>;
}
