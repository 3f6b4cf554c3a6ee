import type { JobStatus, TransitionReason } from './status';

/** The trainer's exit codes: the contract between the trainer process (or container) and the scheduler. */
export const TrainerExit = {
  SUCCESS: 0,
  /** The job cannot succeed as submitted (bad dataset, bad spec): fail at once, never retry, never charge. */
  USER_ERROR: 10,
  /** Storage, network or runtime trouble: retry from the last checkpoint. */
  INFRASTRUCTURE_ERROR: 11,
  /** Stopped on request (SIGTERM) after writing a checkpoint. */
  STOPPED: 12,
} as const;

export interface ExitOutcome {
  status: JobStatus;
  reason: TransitionReason;
  retryable: boolean;
  charge: boolean;
}

/**
 * Maps how a trainer ended to the job's next status. `stopReason` is why the scheduler asked it to stop, if it did.
 * Anything unexpected (a crash, a signal) is treated as infrastructure: retried from the last checkpoint.
 */
export function outcomeOfExit(
  code: number | null,
  signal: string | null,
  stopReason: 'cancelled' | 'timed_out' | 'budget_exhausted' | null,
): ExitOutcome {
  if (stopReason === 'cancelled') return { status: 'CANCELLED', reason: 'cancelled', retryable: false, charge: true };
  if (stopReason === 'timed_out') return { status: 'TIMED_OUT', reason: 'timed_out', retryable: false, charge: true };
  if (stopReason === 'budget_exhausted')
    return { status: 'BUDGET_EXHAUSTED', reason: 'budget_exhausted', retryable: false, charge: true };
  if (code === TrainerExit.SUCCESS && signal === null)
    return { status: 'SUCCEEDED', reason: 'completed', retryable: false, charge: true };
  if (code === TrainerExit.USER_ERROR)
    return { status: 'FAILED', reason: 'user_error', retryable: false, charge: false };
  return { status: 'RETRYING', reason: 'infrastructure_error', retryable: true, charge: false };
}
