import type { S3Settings } from '@gpulab/config';

/**
 * The environment every trainer attempt gets, whatever the launcher: where the API is and how to reach S3. The
 * job-specific variables (job id, attempt, spec, job token) are added per attempt in launch.ts.
 */
export function trainerEnv(t: {
  apiUrl: string;
  s3: Pick<S3Settings, 'endpoint' | 'region' | 'bucket' | 'accessKeyId' | 'secretAccessKey' | 'forcePathStyle'>;
  logLevel: string;
}): Record<string, string> {
  return {
    GPULAB_API_URL: t.apiUrl,
    GPULAB_S3_ENDPOINT: t.s3.endpoint ?? '',
    GPULAB_S3_REGION: t.s3.region,
    GPULAB_S3_BUCKET: t.s3.bucket,
    GPULAB_S3_ACCESS_KEY_ID: t.s3.accessKeyId,
    GPULAB_S3_SECRET_ACCESS_KEY: t.s3.secretAccessKey,
    GPULAB_S3_FORCE_PATH_STYLE: String(t.s3.forcePathStyle),
    GPULAB_LOG_LEVEL: t.logLevel,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}
