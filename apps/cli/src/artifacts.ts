/**
 * A finished job's model files, downloaded through the API: GET /v1/jobs/:id/artifacts answers the job's model files
 * (and metrics.json) with presigned GET URLs, and each is fetched straight from S3 — the CLI never holds S3
 * credentials. Files land in DEST (weights.safetensors, model.json, labels.json, preprocessing.json, tfjs/…),
 * written to a temporary name and renamed once complete and of the size the API announced.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { GpulabApiError, type GpulabClient, type Job, TERMINAL_STATUSES } from '@gpulab/sdk';
import { CliError, EXIT } from './exit-codes';

/** One downloadable file of GET /v1/jobs/:id/artifacts: its path under the model folder (or jobs/<id>/). */
export interface ArtifactFile {
  path: string;
  key: string;
  bytes: number;
  url: string;
}

/** GET /v1/jobs/:id/artifacts (presigned URLs, valid expiresInSeconds). */
export interface JobArtifacts {
  expiresInSeconds: number;
  model: ArtifactFile[];
  metrics: ArtifactFile | null;
  logs: ArtifactFile[];
  checkpoints: { key: string; at: string }[];
}

export interface Downloaded {
  dir: string;
  files: { path: string; bytes: number }[];
}

export async function jobArtifacts(client: GpulabClient, jobId: string): Promise<JobArtifacts> {
  try {
    return await client.request<JobArtifacts>('GET', `/v1/jobs/${encodeURIComponent(jobId)}/artifacts`);
  } catch (e) {
    if (e instanceof GpulabApiError && e.status === 404 && /^no route /.test(e.message))
      throw new CliError(
        'this gpulab server cannot hand out model files (it has no GET /v1/jobs/:id/artifacts route)',
        EXIT.API,
        'ask its admin to upgrade the API',
      );
    throw e;
  }
}

/** A relative path the server gave, as safe path segments under DEST (never "..", absolute or empty). */
export function safeRelative(rel: string): string[] | null {
  const segs = rel.split('/');
  if (!rel || rel.includes('\\') || segs.some((s) => s === '' || s === '.' || s === '..')) return null;
  return segs;
}

export async function downloadModel(
  client: GpulabClient,
  job: Job,
  dest: string,
  o: { signal?: AbortSignal; onFile?: (path: string, bytes: number) => void } = {},
): Promise<Downloaded> {
  if (!job.artifacts.some((a) => a.kind === 'model')) {
    const ended = TERMINAL_STATUSES.includes(job.status);
    throw new CliError(
      `job ${job.id} has no model (${job.status}${job.statusMessage ? `: ${job.statusMessage}` : ''})`,
      EXIT.NOT_FOUND,
      ended
        ? `a model is written only when a job succeeds; see: gpulab logs ${job.id}`
        : `the model is written when the job succeeds; wait for it: gpulab status ${job.id} --follow`,
    );
  }
  const a = await jobArtifacts(client, job.id);
  if (a.model.length === 0) throw new CliError(`the API lists no model files for job ${job.id}`, EXIT.NOT_FOUND);
  const links = [...a.model, ...(a.metrics ? [a.metrics] : [])];
  const dir = path.resolve(dest);
  const files: Downloaded['files'] = [];
  for (const l of links) {
    const segs = safeRelative(l.path);
    if (!segs) throw new CliError(`the API named an unsafe file path ${JSON.stringify(l.path)}`, EXIT.API);
    const file = path.join(dir, ...segs);
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.part`;
    const res = await fetch(l.url, o.signal ? { signal: o.signal } : {});
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw new CliError(
        `download of ${l.path} failed: HTTP ${res.status}`,
        EXIT.API,
        `run it again: gpulab download ${job.id}`,
      );
    }
    try {
      await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), createWriteStream(tmp));
      const size = (await stat(tmp)).size;
      if (size !== l.bytes)
        throw new CliError(`${l.path}: got ${size} bytes, expected ${l.bytes}`, EXIT.API, 'run the download again');
      await rename(tmp, file);
      files.push({ path: l.path, bytes: size });
      o.onFile?.(l.path, size);
    } finally {
      await rm(tmp, { force: true });
    }
  }
  return { dir, files };
}
