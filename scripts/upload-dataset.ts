/**
 * Uploads a local ImageFolder tree to S3, every file under the prefix with its relative path (hidden files skipped).
 *
 *   npx tsx scripts/upload-dataset.ts <localDir> s3://bucket/prefix
 *
 * S3 settings come from the same variables as the services: GPULAB_S3_ENDPOINT (absent: the embedded s3rver on
 * 127.0.0.1:GPULAB_S3_EMBEDDED_PORT, default 9100), GPULAB_S3_REGION, GPULAB_S3_ACCESS_KEY_ID,
 * GPULAB_S3_SECRET_ACCESS_KEY, GPULAB_S3_FORCE_PATH_STYLE. The bucket is created if missing.
 * The reusable function lives in @gpulab/storage (upload-dir.ts).
 */
import { resolve } from 'node:path';
import { createS3Client, EMBEDDED_S3_CREDENTIALS, ensureBucket, parseS3Uri, uploadImageFolder } from '@gpulab/storage';

export { uploadImageFolder };

async function main() {
  const [localDir, uri] = process.argv.slice(2);
  if (!localDir || !uri) throw new Error('usage: upload-dataset.ts <localDir> s3://bucket/prefix');
  const { bucket, key } = parseS3Uri(uri);
  const env = process.env;
  const embedded = !env.GPULAB_S3_ENDPOINT;
  const s3 = createS3Client({
    endpoint: env.GPULAB_S3_ENDPOINT ?? `http://127.0.0.1:${env.GPULAB_S3_EMBEDDED_PORT ?? '9100'}`,
    region: env.GPULAB_S3_REGION ?? 'us-east-1',
    accessKeyId: env.GPULAB_S3_ACCESS_KEY_ID ?? (embedded ? EMBEDDED_S3_CREDENTIALS.accessKeyId : ''),
    secretAccessKey: env.GPULAB_S3_SECRET_ACCESS_KEY ?? (embedded ? EMBEDDED_S3_CREDENTIALS.secretAccessKey : ''),
    forcePathStyle: (env.GPULAB_S3_FORCE_PATH_STYLE ?? 'true') !== 'false',
  });
  await ensureBucket(s3, bucket);
  const { keys, bytes } = await uploadImageFolder(s3, bucket, key, resolve(localDir));
  console.log(`uploaded ${keys.length} files (${bytes} bytes) to s3://${bucket}/${key}`);
  s3.destroy();
}

if (require.main === module) {
  main().catch((e) => {
    console.error((e as Error).message);
    process.exit(1);
  });
}
