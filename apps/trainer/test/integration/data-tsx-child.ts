/**
 * Run by data-s3.test.ts as `node --import tsx data-tsx-child.ts <endpoint> <datasetUri>`: indexes the dataset and
 * hashes one epoch of batches decoded on worker threads, printing {"mode", "threads", "hash"} as JSON. Shows that
 * the worker pool starts outside jest too, and that it produces the same bytes.
 */
import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import { createS3Client, EMBEDDED_S3_CREDENTIALS } from '@gpulab/storage';
import { batches, createDecodePool, type DatasetIndex, loadDatasetIndex } from '../../src/data';

export const EPOCH_SPEC = {
  imageSize: 32,
  batchSize: 48,
  augmentation: { randomResizedCrop: true, horizontalFlip: true, scale: [0.08, 1] as [number, number] },
  seed: 1234,
  epoch: 2,
};

/** sha256 over every batch's x and y bytes, train then val. */
export async function hashEpoch(
  s3: S3Client,
  index: DatasetIndex,
  opts: { workers?: number; pool?: Awaited<ReturnType<typeof createDecodePool>> },
): Promise<string> {
  const h = createHash('sha256');
  for (const split of ['train', 'val'] as const) {
    for await (const b of batches({ s3, index, split, ...EPOCH_SPEC, ...opts })) {
      h.update(new Uint8Array(b.x.buffer, b.x.byteOffset, b.x.byteLength));
      h.update(new Uint8Array(b.y.buffer, b.y.byteOffset, b.y.byteLength));
    }
  }
  return h.digest('hex');
}

async function main() {
  const [endpoint, uri] = process.argv.slice(2);
  if (!endpoint || !uri) throw new Error('usage: data-tsx-child.ts <endpoint> <datasetUri>');
  const s3 = createS3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, ...EMBEDDED_S3_CREDENTIALS });
  const index = await loadDatasetIndex(s3, uri);
  const pool = await createDecodePool({ workers: 2, maxPixels: 40_000_000 });
  try {
    const hash = await hashEpoch(s3, index, { pool });
    process.stdout.write(`${JSON.stringify({ mode: pool.mode, threads: pool.threads, hash })}\n`);
  } finally {
    await pool.close();
    s3.destroy();
  }
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
