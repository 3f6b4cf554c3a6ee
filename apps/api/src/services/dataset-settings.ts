import type { S3Client } from '@aws-sdk/client-s3';
import { DATA_DEFAULTS } from '@gpulab/trainer/src/data/limits';
import type { ApiDeps } from '../deps';

/** Limits and knobs of dataset uploads; every one can be overridden in ApiDeps.datasets. */
export interface DatasetSettings {
  /** Files in one dataset. */
  maxFiles: number;
  /** Bytes of one file: the trainer's own limit (it skips larger files), so nothing is uploaded in vain. */
  maxFileBytes: number;
  /** Bytes of one dataset (sum over its files). */
  maxTotalBytes: number;
  /** Files larger than this are uploaded in parts (multipart upload, one presigned URL per part). */
  multipartThreshold: number;
  /** Part size of multipart uploads; S3 needs at least 5 MiB for every part but the last. */
  partSize: number;
  /** Lifetime of each presigned URL. */
  urlTtlSeconds: number;
  /** Lifetime of an upload session (it can be resumed until then). */
  sessionTtlSeconds: number;
  /** Blobs given URLs in one response; the rest follow on GET /v1/datasets/uploads/:id once these are sent. */
  maxUploadsPerResponse: number;
  /** A complete that has held the session this long is presumed dead and may be taken over. */
  completeLeaseMs: number;
  /** S3 HEAD/copy requests in flight. */
  s3Concurrency: number;
  /** Objects downloaded and hashed at once by complete (each streamed). */
  hashConcurrency: number;
  /** Images downloaded and decoded at once by validate (each held in memory while probed). */
  validateConcurrency: number;
  /** Largest image (width × height) validate accepts: the trainer's decompression-bomb limit. */
  maxPixels: number;
  /**
   * Client used to presign URLs, when browsers reach S3 under another endpoint than the API does (an internal
   * service name); default: the API's own client.
   */
  presignS3?: S3Client;
}

const MiB = 1024 * 1024;

export const DATASET_DEFAULTS: DatasetSettings = {
  maxFiles: 100_000,
  maxFileBytes: DATA_DEFAULTS.maxFileBytes,
  maxTotalBytes: 20 * 1024 * MiB,
  multipartThreshold: 16 * MiB,
  partSize: 8 * MiB,
  urlTtlSeconds: 3600,
  sessionTtlSeconds: 7 * 24 * 3600,
  maxUploadsPerResponse: 1000,
  completeLeaseMs: 30 * 60_000,
  s3Concurrency: 16,
  hashConcurrency: 4,
  validateConcurrency: 4,
  maxPixels: DATA_DEFAULTS.maxPixels,
};

/** Manifest bodies are large (about 150 bytes a file): the route's own body limit. */
export const MANIFEST_BODY_LIMIT = 24 * MiB;

export function datasetSettings(deps: ApiDeps): DatasetSettings {
  const s = { ...DATASET_DEFAULTS, ...deps.datasets };
  if (s.partSize < 5 * MiB) throw new Error('datasets.partSize must be at least 5 MiB (the S3 minimum part size)');
  if (s.multipartThreshold < s.partSize) throw new Error('datasets.multipartThreshold must be at least partSize');
  return s;
}
