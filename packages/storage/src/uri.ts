import { GpulabError } from '@gpulab/core';

export interface S3Location {
  bucket: string;
  key: string;
}

/** Parses `s3://bucket/key/prefix`. Rejects empty buckets, `..` segments and NUL bytes. */
export function parseS3Uri(uri: string): S3Location {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!m?.[1]) throw new GpulabError('VALIDATION', `not an s3:// URI: ${JSON.stringify(uri)}`, { field: 'uri' });
  const key = m[2] ?? '';
  if (key.includes('\0') || key.split('/').includes('..'))
    throw new GpulabError('VALIDATION', `unsafe key in ${JSON.stringify(uri)}`, { field: 'uri' });
  return { bucket: m[1], key };
}

export function toS3Uri(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}

/** The object layout (see docs/architecture.md). */
export const layout = {
  attemptPrefix: (jobId: string, attempt: number) => `jobs/${jobId}/attempt-${attempt}/`,
  checkpointPrefix: (jobId: string, attempt: number, epoch: number) =>
    `jobs/${jobId}/attempt-${attempt}/checkpoints/epoch-${epoch}/`,
  /** Points at the newest complete checkpoint of any attempt; written last, so a torn checkpoint is never used. */
  latestCheckpoint: (jobId: string) => `jobs/${jobId}/checkpoints/latest.json`,
  modelPrefix: (jobId: string) => `jobs/${jobId}/model/`,
  metrics: (jobId: string) => `jobs/${jobId}/metrics.json`,
  logs: (jobId: string, attempt: number) => `jobs/${jobId}/logs/attempt-${attempt}.log`,
  datasetPrefix: (manifestSha: string) => `datasets/${manifestSha}/`,
};
