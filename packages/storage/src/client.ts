import { S3Client } from '@aws-sdk/client-s3';

export interface S3Config {
  endpoint?: string | undefined;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle: boolean;
}

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
  });
}
