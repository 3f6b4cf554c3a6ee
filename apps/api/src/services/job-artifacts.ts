import { layout, listObjects, presignGet } from '@gpulab/storage';
import type { ApiDeps } from '../deps';
import { datasetSettings } from './dataset-settings';

const DOWNLOAD_TTL_SECONDS = 15 * 60;

/**
 * A job's downloadable outputs with presigned GET URLs (each for one object, valid 15 minutes), read from S3 itself
 * so the list is what is really stored: the model directory (weights.safetensors, tfjs/, labels.json,
 * preprocessing.json), the metrics file and each attempt's archived log. Checkpoints are listed without URLs
 * (they are for resuming, not for people).
 */
export async function jobArtifacts(deps: ApiDeps, jobId: string) {
  const presigner = datasetSettings(deps).presignS3 ?? deps.s3;
  const url = (key: string) =>
    presignGet(presigner, deps.bucket, key, DOWNLOAD_TTL_SECONDS, key.split('/').pop() ?? 'download');
  const [model, logs, metrics, checkpoints] = await Promise.all([
    listObjects(deps.s3, deps.bucket, layout.modelPrefix(jobId)),
    listObjects(deps.s3, deps.bucket, `jobs/${jobId}/logs/`),
    listObjects(deps.s3, deps.bucket, layout.metrics(jobId)),
    deps.db.artifact.findMany({ where: { jobId, kind: 'checkpoint' }, orderBy: { createdAt: 'asc' } }),
  ]);
  const files = async (objects: { key: string; size: number }[], prefix: string) =>
    Promise.all(
      objects.map(async (o) => ({
        path: o.key.slice(prefix.length),
        key: o.key,
        bytes: o.size,
        url: await url(o.key),
      })),
    );
  return {
    expiresInSeconds: DOWNLOAD_TTL_SECONDS,
    model: await files(model, layout.modelPrefix(jobId)),
    metrics: metrics[0] ? (await files(metrics, `jobs/${jobId}/`))[0]! : null,
    logs: await files(logs, `jobs/${jobId}/logs/`),
    checkpoints: checkpoints.map((c) => ({ key: c.key, at: c.createdAt.toISOString() })),
  };
}
