import { S3Client } from '@aws-sdk/client-s3';

export interface S3Config {
  endpoint?: string | undefined;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle: boolean;
  /** A connection not established within this is an error (retried). Default S3_TIMEOUTS.connectMs. */
  connectTimeoutMs?: number;
  /** A request whose socket sends and receives nothing for this long is an error (retried). Default S3_TIMEOUTS.idleMs. */
  idleTimeoutMs?: number;
}

/**
 * Without timeouts the SDK waits forever on an S3 that accepts connections but never answers (a hung server, a
 * partition that drops packets): a trainer would hold its GPU until its max runtime, an API request would never end.
 * The idle timeout is on inactivity, not on the whole request, so large uploads and downloads are not cut short.
 */
export const S3_TIMEOUTS = { connectMs: 10_000, idleMs: 60_000 } as const;

/**
 * Creates the S3 client used everywhere. Checksums are computed only when an operation requires them: s3rver (and
 * some S3-compatible stores) would otherwise store aws-chunked framing inside streamed uploads.
 */
export function createS3Client(cfg: S3Config): S3Client {
  return new S3Client({
    ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}),
    region: cfg.region,
    forcePathStyle: cfg.forcePathStyle,
    credentials: { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 4,
    requestHandler: {
      connectionTimeout: cfg.connectTimeoutMs ?? S3_TIMEOUTS.connectMs,
      socketTimeout: cfg.idleTimeoutMs ?? S3_TIMEOUTS.idleMs,
    },
  });
}
