/**
 * Progress events to the API: POST `${apiUrl}/v1/internal/jobs/${jobId}/events` with the job-scoped bearer token
 * and a JSON body. Transient failures (network errors, 408, 429, 5xx) are retried with exponential backoff; an
 * event that still fails is logged and dropped: the API is told about progress, it is not in the training's path.
 */
import type { Logger } from './log';

export type TrainerEvent =
  | { type: 'started'; attempt: number; backend: string }
  | { type: 'dataset'; classes: string[]; trainCount: number; valCount: number; skipped: number }
  | {
      type: 'epoch';
      attempt: number;
      epoch: number;
      epochs: number;
      trainLoss: number;
      valLoss: number;
      valAcc: number;
      lr: number;
      perClassAcc: (number | null)[];
      confusion: number[][];
      seconds: number;
    }
  | { type: 'checkpoint'; attempt: number; epoch: number; key: string }
  | { type: 'artifact'; kind: 'model' | 'metrics' | 'checkpoint'; key: string; bytes: number }
  | { type: 'finished'; bestEpoch: number; bestValAcc: number }
  /** Why the trainer is about to exit with an error (shown as the job's status message). */
  | { type: 'failed'; kind: 'user_error' | 'infrastructure_error'; message: string };

export type EventSink = (event: TrainerEvent) => Promise<void>;

export const noEvents: EventSink = async () => {};

export interface HttpSinkOptions {
  apiUrl: string;
  token: string;
  jobId: string;
  log: Logger;
  fetchImpl?: typeof fetch;
  /** Attempts per event (default 4). */
  attempts?: number;
  /** First backoff delay in ms, doubled each retry (default 250). */
  baseDelayMs?: number;
  /** Per-request timeout in ms (default 10 s). */
  timeoutMs?: number;
}

function retryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export function httpEventSink(opts: HttpSinkOptions): EventSink {
  const url = `${opts.apiUrl.replace(/\/+$/, '')}/v1/internal/jobs/${encodeURIComponent(opts.jobId)}/events`;
  const doFetch = opts.fetchImpl ?? fetch;
  const attempts = opts.attempts ?? 4;
  const baseDelay = opts.baseDelayMs ?? 250;
  return async (event) => {
    let lastError = '';
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, baseDelay * 2 ** (i - 1)));
      try {
        const res = await doFetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${opts.token}` },
          body: JSON.stringify(event),
          signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
        });
        if (res.ok) {
          await res.body?.cancel();
          return;
        }
        lastError = `HTTP ${res.status}`;
        await res.body?.cancel();
        if (!retryable(res.status)) break;
      } catch (e) {
        lastError = (e as Error).message;
      }
    }
    opts.log.warn('event not delivered', { event: event.type, error: lastError });
  };
}
