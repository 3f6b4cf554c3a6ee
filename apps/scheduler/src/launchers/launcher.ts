/**
 * How the scheduler starts trainers. One interface, two drivers: `local` (a child process per attempt, with a
 * fixed number of GPU slots) and `kubernetes` (a pod per attempt). Every operation is idempotent by the attempt's
 * deterministic name, `gpulab-<jobId>-<attempt>`.
 */
export interface LaunchRequest {
  jobId: string;
  attempt: number;
  name: string;
  flavor: string;
  gpus: number;
  env: Record<string, string>;
  /** The job's owner (a pod label in Kubernetes). */
  userId?: string;
  /** The job's max runtime: Kubernetes sets the pod's activeDeadlineSeconds from it, as a backstop. */
  maxRuntimeSeconds?: number;
}

export interface ExitInfo {
  name: string;
  jobId: string;
  attempt: number;
  code: number | null;
  signal: string | null;
  endedAt: Date;
  /** Last lines of output, for the job's status message. */
  tail: string;
}

export type ExitListener = (e: ExitInfo) => void | Promise<void>;

export interface OutputChunk {
  jobId: string;
  attempt: number;
  text: string;
}

export interface Launcher {
  readonly kind: 'local' | 'kubernetes';
  /** Total GPUs per flavor this launcher can run at once. */
  capacity(): Promise<Record<string, number>>;
  /** Starts the attempt unless one with this name already runs (then adopts it). Resolves when it is running. */
  launch(req: LaunchRequest): Promise<{ startedAt: Date; adopted: boolean }>;
  /** Asks the attempt to checkpoint and stop (SIGTERM), then kills it after `graceMs`. */
  stop(name: string, graceMs: number): Promise<void>;
  /** Names of attempts this launcher currently runs. */
  running(): Promise<string[]>;
  /**
   * Each attempt's end, reported once. A listener may return a promise that settles when the end is durably
   * recorded: a launcher whose attempts leave a record of their end (a finished pod) keeps that record until then,
   * so a scheduler that dies before recording finds the end again when it restarts.
   */
  onExit(listener: ExitListener): void;
  /**
   * Removes what an attempt that is not running (recorded as lost) may have left behind — with Kubernetes its
   * Secret, created before its pod. Idempotent; errors are logged, not thrown.
   */
  discard?(name: string): Promise<void>;
  /** Output of running attempts as it comes (stdout and stderr; a pod's log stream), for the live log bus. */
  onOutput?(listener: (o: OutputChunk) => void): void;
  close(): Promise<void>;
}

export function attemptName(jobId: string, attempt: number): string {
  return `gpulab-${jobId}-${attempt}`;
}
