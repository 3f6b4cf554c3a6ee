import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/** Paths never written to logs: credentials in headers, bodies and config. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'token',
  '*.token',
  'password',
  '*.password',
  'secretAccessKey',
  '*.secretAccessKey',
  'env.GPULAB_JOB_TOKEN',
  'env.GPULAB_S3_SECRET_ACCESS_KEY',
  'secret',
  '*.secret',
  'csrfToken',
  '*.csrfToken',
  'res.headers["set-cookie"]',
  'req.headers["x-csrf-token"]',
];

export function createLogger(opts: { name: string; level?: string; destination?: pino.DestinationStream }): Logger {
  return pino(
    {
      name: opts.name,
      level: opts.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { svc: opts.name },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination,
  );
}
