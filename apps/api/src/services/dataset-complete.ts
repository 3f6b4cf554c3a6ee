import { GpulabError } from '@gpulab/core';
import {
  claimDatasetName,
  claimDatasetUpload,
  dropMultipartIds,
  finishDatasetUpload,
  markDatasetReady,
  releaseDatasetUpload,
  type UploadProgress,
  uploadedBlobsOf,
  uploadFiles,
  uploadMultipart,
} from '@gpulab/db';
import {
  completeMultipart,
  copyObject,
  datasetKeys,
  deleteObject,
  deletePrefix,
  existingSizes,
  listUploadedParts,
  partSizes,
  putObject,
  sha256OfObject,
  toS3Uri,
  type UploadedPart,
} from '@gpulab/storage';
import { mapLimit } from '@gpulab/trainer/src/data/concurrency';
import type { DatasetUpload } from '@prisma/client';
import { z } from 'zod';
import type { ApiDeps } from '../deps';
import { checkManifest } from './dataset-manifest';
import { type DatasetSettings, datasetSettings } from './dataset-settings';
import { type Blob, blobsOf, isExpired, uploadView } from './dataset-upload';
import { datasetView } from './dataset-view';

/**
 * Completes an upload session: every blob of the manifest must be stored or staged with its size; each staged blob
 * is downloaded and hashed here (streamed), and only a matching one is promoted to blobs/<user>/sha256/<hex> — so a
 * blob key always holds the bytes its name says, and a wrong upload is refused by path. Then the dataset is
 * materialized by server-side copies into datasets/<user>/<name>/ with its manifest.json, and recorded. Idempotent:
 * a completed session answers with its result; a failed attempt keeps what it verified, and the next resumes.
 */

export const CompleteBody = z
  .object({
    parts: z
      .record(
        z.string().regex(/^[0-9a-f]{64}$/, 'keys are sha256 hex'),
        z.array(z.object({ partNumber: z.number().int().min(1).max(10_000), etag: z.string().min(1).max(200) })),
      )
      .optional()
      .describe('ETag of each part sent, by sha256: needed only where the store cannot list parts (s3rver)'),
  })
  .strict();

type Verdict = { kind: 'stored' } | { kind: 'staged' } | { kind: 'missing'; why: string };

export async function completeUpload(deps: ApiDeps, session: DatasetUpload, body: unknown) {
  const { parts } = CompleteBody.parse(body ?? {});
  const id = session.id;
  if (session.status === 'completed') return result(deps, session);
  if (session.status === 'aborted') throw new GpulabError('CONFLICT', `upload session ${id} was aborted`);
  if (isExpired(deps, session))
    throw new GpulabError('CONFLICT', `upload session ${id} expired; start a new one (stored files are reused)`);
  const settings = datasetSettings(deps);
  const claimed = await claimDatasetUpload(deps.db, id, deps.clock(), settings.completeLeaseMs);
  // Re-read under the lease: a previous attempt may have verified more since `session` was read.
  const s = await deps.db.datasetUpload.findUniqueOrThrow({ where: { id } });
  if (!claimed) {
    if (s.status === 'completed') return result(deps, s);
    if (s.status === 'aborted') throw new GpulabError('CONFLICT', `upload session ${id} was aborted`);
    throw new GpulabError('CONFLICT', `upload session ${id} is being completed by another request; retry shortly`);
  }

  const uploaded = new Set(uploadedBlobsOf(s));
  const progress = (rejectedBytes: number, lastError: string | null): UploadProgress => {
    const sizes = new Map(blobsOf(uploadFiles(s)).map((b) => [b.sha256, b.size]));
    let bytes = 0;
    for (const sha of uploaded) bytes += sizes.get(sha) ?? 0;
    return {
      uploadedBlobs: [...uploaded],
      blobsUploaded: uploaded.size,
      bytesUploaded: bytes,
      rejectedBytes,
      lastError,
    };
  };
  let rejectedBytes = 0;
  try {
    const blobs = blobsOf(uploadFiles(s)).filter((b) => !uploaded.has(b.sha256));
    const verdicts = await inspect(deps, s, blobs, parts ?? {}, settings);
    const rejected: { path: string; reason: string }[] = [];
    const toVerify = blobs.filter((b) => verdicts.get(b.sha256)?.kind === 'staged');
    await mapLimit(toVerify, settings.hashConcurrency, async (b) => {
      const staging = datasetKeys.staging(s.userId, s.id, b.sha256);
      const got = await sha256OfObject(deps.s3, deps.bucket, staging);
      if (got.sha256 !== b.sha256 || got.size !== b.size) {
        const reason =
          got.size !== b.size
            ? `${got.size} bytes were uploaded, the manifest says ${b.size}`
            : `the uploaded bytes have sha256 ${got.sha256}, the manifest says ${b.sha256}`;
        for (const path of b.paths) rejected.push({ path, reason });
        rejectedBytes += got.size;
        await deleteObject(deps.s3, deps.bucket, staging);
        return;
      }
      await copyObject(deps.s3, deps.bucket, staging, datasetKeys.blob(s.userId, b.sha256));
      await deleteObject(deps.s3, deps.bucket, staging);
      uploaded.add(b.sha256);
    });
    if (rejected.length) {
      rejected.sort((a, b) => (a.path < b.path ? -1 : 1));
      const list = rejected
        .slice(0, 10)
        .map((r) => `${r.path} (${r.reason})`)
        .join('; ');
      throw new GpulabError(
        'VALIDATION',
        `${rejected.length} file(s) do not match the manifest and were discarded: ${list}. Upload them again ` +
          `(GET /v1/datasets/uploads/${s.id} gives fresh URLs).`,
        { field: 'files', path: rejected[0]!.path, rejected: rejected.slice(0, 100) },
      );
    }
    const missing = blobs.filter((b) => verdicts.get(b.sha256)?.kind === 'missing');
    if (missing.length) {
      const paths = missing.flatMap((b) =>
        b.paths.map((p) => ({ path: p, why: (verdicts.get(b.sha256) as { why: string }).why })),
      );
      throw new GpulabError(
        'CONFLICT',
        `${paths.length} file(s) are not uploaded yet: ${paths
          .slice(0, 10)
          .map((p) => `${p.path} (${p.why})`)
          .join('; ')}`,
        {
          field: 'files',
          path: paths[0]!.path,
          missing: paths.slice(0, 100).map((p) => p.path),
          missingCount: paths.length,
        },
      );
    }

    const datasetId = await materialize(deps, s, settings);
    // Anything still staged was sent for a blob stored meanwhile (another session of this user): not needed.
    await deletePrefix(deps.s3, deps.bucket, datasetKeys.stagingPrefix(s.userId, s.id));
    const p = progress(rejectedBytes, null);
    const done = await finishDatasetUpload(deps.db, s.id, {
      ...p,
      blobsReused: s.blobCount - p.blobsUploaded,
      bytesReused: Number(s.blobBytes) - p.bytesUploaded,
      datasetId,
      at: deps.clock(),
    });
    return result(deps, done);
  } catch (e) {
    await releaseDatasetUpload(deps.db, s.id, progress(rejectedBytes, (e as Error).message.slice(0, 2000)));
    throw e;
  }
}

/** Where each blob stands: stored (a verified blob of this user), staged (sent, to verify), or missing (and why). */
async function inspect(
  deps: ApiDeps,
  s: DatasetUpload,
  blobs: Blob[],
  clientParts: Record<string, { partNumber: number; etag: string }[]>,
  settings: DatasetSettings,
): Promise<Map<string, Verdict>> {
  const out = new Map<string, Verdict>();
  const names = blobs.map((b) => b.sha256);
  const stored = await existingSizes(deps.s3, deps.bucket, datasetKeys.blobPrefix(s.userId), names);
  const staged = await existingSizes(deps.s3, deps.bucket, datasetKeys.stagingPrefix(s.userId, s.id), names);
  const multipart = uploadMultipart(s);
  for (const b of blobs) {
    if (stored.get(b.sha256) === b.size) out.set(b.sha256, { kind: 'stored' });
    else if (staged.has(b.sha256)) out.set(b.sha256, { kind: 'staged' });
    else if (multipart[b.sha256]) out.set(b.sha256, await assemble(deps, s, b, clientParts[b.sha256], settings));
    else out.set(b.sha256, { kind: 'missing', why: 'not uploaded' });
  }
  return out;
}

/** Completes a blob's multipart upload once every part is there: parts listed by S3, else the ETags the client sent. */
async function assemble(
  deps: ApiDeps,
  s: DatasetUpload,
  b: Blob,
  fromClient: { partNumber: number; etag: string }[] | undefined,
  settings: DatasetSettings,
): Promise<Verdict> {
  const key = datasetKeys.staging(s.userId, s.id, b.sha256);
  const uploadId = uploadMultipart(s)[b.sha256]!;
  const sizes = partSizes(b.size, settings.partSize);
  const listed = await listUploadedParts(deps.s3, deps.bucket, key, uploadId);
  if (listed === 'gone') return { kind: 'missing', why: 'its multipart upload expired; GET the session for new URLs' };
  let parts: UploadedPart[];
  if (listed) {
    const have = new Map(listed.map((p) => [p.partNumber, p]));
    const lacking = sizes.map((size, i) => (have.get(i + 1)?.size === size ? 0 : i + 1)).filter((n) => n > 0);
    if (lacking.length)
      return { kind: 'missing', why: `part(s) ${lacking.join(', ')} of ${sizes.length} not received` };
    parts = sizes.map((_, i) => have.get(i + 1)!);
  } else {
    // The store cannot list parts: the client's ETags name them (S3 checks each one at completion).
    const given = new Map((fromClient ?? []).map((p) => [p.partNumber, p.etag]));
    const lacking = sizes.map((_, i) => (given.has(i + 1) ? 0 : i + 1)).filter((n) => n > 0);
    if (lacking.length)
      return { kind: 'missing', why: `send the ETag of part(s) ${lacking.join(', ')} of ${sizes.length} in "parts"` };
    parts = sizes.map((_, i) => ({ partNumber: i + 1, etag: given.get(i + 1)! }));
  }
  await completeMultipart(deps.s3, deps.bucket, key, uploadId, parts);
  // That upload id is spent: should verification refuse the bytes, GET starts a new multipart upload.
  await dropMultipartIds(deps.db, s.id, [b.sha256]);
  return { kind: 'staged' };
}

/** Claims the name, copies each blob to its path (server-side), writes manifest.json, marks the dataset ready. */
async function materialize(deps: ApiDeps, s: DatasetUpload, settings: DatasetSettings): Promise<string> {
  const files = uploadFiles(s);
  // The same function that checked the manifest at creation rebuilds it (limits lifted: they were checked then).
  const m = checkManifest(
    { name: s.name, files },
    {
      ...settings,
      maxFiles: Number.POSITIVE_INFINITY,
      maxFileBytes: Number.POSITIVE_INFINITY,
      maxTotalBytes: Number.POSITIVE_INFINITY,
    },
  );
  if (m.sha256 !== s.manifestSha256) throw new Error(`manifest of upload ${s.id} does not rebuild to its sha256`);
  const { dataset, state } = await claimDatasetName(deps.db, {
    userId: s.userId,
    name: s.name,
    uri: toS3Uri(deps.bucket, datasetKeys.datasetPrefix(s.userId, s.name)),
    sha256: s.manifestSha256,
    uploadId: s.id,
    classes: m.classes,
    counts: m.counts,
    fileCount: s.fileCount,
    bytes: Number(s.totalBytes),
    now: deps.clock(),
  });
  if (state === 'done') return dataset.id;
  await mapLimit(files, settings.s3Concurrency, (f) =>
    copyObject(
      deps.s3,
      deps.bucket,
      datasetKeys.blob(s.userId, f.sha256),
      datasetKeys.datasetFile(s.userId, s.name, f.path),
    ),
  );
  await putObject(deps.s3, deps.bucket, datasetKeys.manifest(s.userId, s.name), m.json, 'application/json');
  await markDatasetReady(deps.db, dataset.id, deps.clock());
  return dataset.id;
}

async function result(deps: ApiDeps, s: DatasetUpload) {
  const dataset = s.datasetId ? await deps.db.dataset.findUnique({ where: { id: s.datasetId } }) : null;
  return { upload: await uploadView(deps, s), dataset: dataset ? datasetView(dataset) : null };
}
