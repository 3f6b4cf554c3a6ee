/**
 * Exit codes of `gpulab` (documented in `gpulab --help`), and the one place where any failure becomes a message
 * that says what to do next.
 */
import { GpulabApiError } from '@gpulab/sdk';

export const EXIT = {
  OK: 0,
  /** The job ended but did not succeed (FAILED, CANCELLED, TIMED_OUT, BUDGET_EXHAUSTED). */
  JOB_FAILED: 1,
  /** Bad command line. */
  USAGE: 2,
  /** The API could not be reached, refused the credentials, or failed. */
  API: 3,
  /** The job, reservation or file does not exist (or is not yours). */
  NOT_FOUND: 4,
  /** The server refused the request: invalid spec, quota, conflict. */
  REFUSED: 5,
  /** The local dataset folder is not a valid ImageFolder. */
  DATASET: 6,
  /** Ctrl-C: the upload stopped (resumable) or the command detached from the job (which keeps running). */
  INTERRUPTED: 130,
} as const;

export const EXIT_CODES_HELP = `Exit codes:
  0    ok
  1    the job ended without succeeding (FAILED, CANCELLED, TIMED_OUT, BUDGET_EXHAUSTED)
  2    usage error (unknown option, missing argument, bad value)
  3    API or authentication error (server unreachable, token refused, server error)
  4    not found (job, reservation, file)
  5    refused by the server (invalid spec, not enough quota, conflict)
  6    the dataset folder is not a valid ImageFolder (train/<class>/<image>, val/<class>/<image>)
  130  interrupted (Ctrl-C): uploads resume when rerun; a followed job keeps running`;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exit: number,
    /** What to do next. */
    readonly hint?: string,
    /** The API's error code, when it came from the API. */
    readonly code?: string,
  ) {
    super(message);
  }
}

/** Any error as a CliError; `url` is the API the command talked to. */
export function toCliError(e: unknown, url: string): CliError {
  if (e instanceof CliError) return e;
  if (e instanceof GpulabApiError) return fromApiError(e, url);
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err?.name === 'AbortError') return new CliError('interrupted', EXIT.INTERRUPTED);
  if (err instanceof TypeError && /fetch failed/.test(err.message)) {
    const why = err.cause?.code ?? err.cause?.message ?? 'network error';
    return new CliError(
      `cannot reach the gpulab API at ${url} (${why})`,
      EXIT.API,
      'is the server running? Check GPULAB_URL, or run: gpulab login --url URL',
    );
  }
  return new CliError(err?.message ?? String(e), EXIT.API);
}

function fromApiError(e: GpulabApiError, url: string): CliError {
  const field = e.field ? ` (field ${e.field})` : '';
  const msg = `${e.message}${field}`;
  switch (true) {
    case e.status === 401:
      return new CliError(
        `not signed in to ${url}: ${e.message}`,
        EXIT.API,
        'run: gpulab login (or set GPULAB_TOKEN to a valid API token)',
        e.code,
      );
    case e.status === 403:
      return new CliError(msg, EXIT.API, 'your account may not do this; ask an instructor or admin', e.code);
    case e.status === 404 && /^no route /.test(e.message):
      return new CliError(
        `${url} does not offer this (${e.message})`,
        EXIT.API,
        'the server may be older than this command line; ask its admin to upgrade it',
        e.code,
      );
    case e.status === 404:
      return new CliError(msg, EXIT.NOT_FOUND, 'list what you have with: gpulab jobs (or gpulab reservations)', e.code);
    case e.code === 'QUOTA_EXCEEDED':
      return new CliError(msg, EXIT.REFUSED, 'see your quota with: gpulab quota', e.code);
    case e.status === 429:
      return new CliError(
        msg,
        EXIT.API,
        `too many requests; retry in ${e.retryAfterSeconds ?? 'a few'} seconds`,
        e.code,
      );
    case e.status >= 500:
      return new CliError(
        `the server failed: ${msg}`,
        EXIT.API,
        'retry in a moment; if it persists, tell its admin',
        e.code,
      );
    default:
      return new CliError(msg, EXIT.REFUSED, refusedHint(e), e.code);
  }
}

function refusedHint(e: GpulabApiError): string | undefined {
  if (e.code === 'VALIDATION' && e.field) return `fix ${e.field} and run the command again`;
  if (e.code === 'CONFLICT' && e.field === 'name')
    return 'choose another name with --dataset, or leave --dataset out to name the dataset by its content';
  if (e.code === 'CONFLICT') return 'the state changed under you; check it with gpulab status / gpulab reservations';
  return undefined;
}
