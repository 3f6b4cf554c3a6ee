import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { createS3Client, EMBEDDED_S3_CREDENTIALS, ensureBucket, startEmbeddedS3 } from '@gpulab/storage';

export interface TestS3 {
  endpoint: string;
  bucket: string;
  client: S3Client;
  directory: string;
  close(): Promise<void>;
}

/** A real S3-protocol server (s3rver) on a free loopback port, with a bucket, in a temp folder. */
export async function startTestS3(bucket = 'gpulab-test'): Promise<TestS3> {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'gpulab-s3-'));
  const server = await startEmbeddedS3({ directory, port: 0 });
  const client = createS3Client({
    endpoint: server.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    ...EMBEDDED_S3_CREDENTIALS,
  });
  await ensureBucket(client, bucket);
  return {
    endpoint: server.endpoint,
    bucket,
    client,
    directory,
    close: async () => {
      client.destroy();
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
