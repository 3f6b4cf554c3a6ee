import { GpulabError } from '@gpulab/core';
import {
  abortDatasetUpload,
  createDatasetUpload,
  type ManifestFile,
  mergeMultipartIds,
  nameTaken,
  type Principal,
  uploadedBlobsOf,
  uploadFiles,
  uploadMultipart,
} from '@gpulab/db';
import {
  abortMultipart,
  createMultipart,
  datasetKeys,
  deletePrefix,
  existingSizes,
  listUploadedParts,
  partSizes,
  presignPart,
  presignPut,
} from '@gpulab/storage';
import type { DatasetUpload } from '@prisma/client';
import type { ApiDeps } from '../deps';
import { checkManifest } from './dataset-manifest';
import { type DatasetSettings, datasetSettings } from './dataset-settings';

/**
 * Upload sessions: the client sends a manifest (path, size, sha256 per file), the API answers with presigned URLs
 * for the blobs it does not hold yet — a file whose bytes this user already stored is never sent again, and a file
 * listed twice is sent once. GET answers the same for what is still missing, with fresh URLs, so an interrupted
 * upload resumes where it stopped.
 */

export interface Blob {
  sha256: string;
  size: number;
  paths: string[];
}

/** Distinct blobs of a session's manifest, in manifest order. */
export function blobsOf(files: readonly ManifestFile[]): Blob[] {
  const by = new Map<string, Blob>();
  for (const f of files) {
    const b = by.get(f.sha256);
    if (b) b.paths.push(f.path);
    else by.set(f.sha256, { sha256: f.sha256, size: f.size, paths: [f.path] });
  }
  return [...by.values()];
}

export async function createUpload(deps: ApiDeps, who: Principal, body: unknown) {
  const settings = datasetSettings(deps);
  const m = checkManifest(body, settings);
  const existing = await deps.db.dataset.findUnique({ where: { userId_name: { userId: who.userId, name: m.name } } });
  if (existing && existing.sha256 !== m.sha256) throw nameTaken(m.name);
  const now = deps.clock();
  const session = await createDatasetUpload(deps.db, {
    userId: who.userId,
    name: m.name,
    files: m.files,
    manifestSha256: m.sha256,
    totalBytes: m.totalBytes,
    blobCount: m.blobs.size,
    blobBytes: m.blobBytes,
    multipart: {},
    expiresAt: new Date(now.getTime() + settings.sessionTtlSeconds * 1000),
    now,
  });
  return uploadView(deps, session);
}

/** The caller's session (admins see all); anything else is 404. */
export async function visibleUpload(deps: ApiDeps, who: Principal, id: string): Promise<DatasetUpload> {
  const s = await deps.db.datasetUpload.findUnique({ where: { id } });
  if (!s || (s.userId !== who.userId && who.role !== 'admin'))
    throw new GpulabError('NOT_FOUND', `upload session ${id} not found`);
  return s;
}

export function isExpired(deps: ApiDeps, s: DatasetUpload): boolean {
  return s.status === 'open' && s.expiresAt.getTime() <= deps.clock().getTime();
}

/**
 * Blobs of the session that are neither stored (blobs/<user>/…) nor waiting, complete, in the session's staging
 * area: what the client still has to send.
 */
export async function missingBlobs(deps: ApiDeps, s: DatasetUpload, settings: DatasetSettings): Promise<Blob[]> {
  const done = new Set(uploadedBlobsOf(s));
  const todo = blobsOf(uploadFiles(s)).filter((b) => !done.has(b.sha256));
  const stored = await existingSizes(
    deps.s3,
    deps.bucket,
    datasetKeys.blobPrefix(s.userId),
    todo.map((b) => b.sha256),
    settings.s3Concurrency,
  );
  const notStored = todo.filter((b) => stored.get(b.sha256) !== b.size);
  const staged = await existingSizes(
    deps.s3,
    deps.bucket,
    datasetKeys.stagingPrefix(s.userId, s.id),
    notStored.map((b) => b.sha256),
    settings.s3Concurrency,
  );
  return notStored.filter((b) => staged.get(b.sha256) !== b.size);
}

type UploadTarget =
  | { sha256: string; size: number; paths: string[]; method: 'PUT'; url: string }
  | {
      sha256: string;
      size: number;
      paths: string[];
      method: 'multipart';
      partSize: number;
      parts: { partNumber: number; size: number; url: string }[];
    };

/** Presigned URLs for one missing blob: a single PUT, or the parts of a multipart upload not yet received. */
async function targetFor(
  deps: ApiDeps,
  s: DatasetUpload,
  b: Blob,
  settings: DatasetSettings,
  newIds: Record<string, string>,
): Promise<UploadTarget> {
  const signer = settings.presignS3 ?? deps.s3;
  const key = datasetKeys.staging(s.userId, s.id, b.sha256);
  const ttl = settings.urlTtlSeconds;
  if (b.size <= settings.multipartThreshold) {
    const url = await presignPut(signer, deps.bucket, key, b.size, ttl);
    return { sha256: b.sha256, size: b.size, paths: b.paths, method: 'PUT', url };
  }
  let uploadId = uploadMultipart(s)[b.sha256];
  let received = new Map<number, number>();
  if (uploadId) {
    const listed = await listUploadedParts(deps.s3, deps.bucket, key, uploadId);
    if (listed === 'gone') uploadId = undefined;
    else if (listed) received = new Map(listed.map((p) => [p.partNumber, p.size ?? -1]));
  }
  if (!uploadId) {
    uploadId = await createMultipart(deps.s3, deps.bucket, key);
    newIds[b.sha256] = uploadId;
  }
  const sizes = partSizes(b.size, settings.partSize);
  const parts: { partNumber: number; size: number; url: string }[] = [];
  for (const [i, size] of sizes.entries()) {
    if (received.get(i + 1) === size) continue;
    parts.push({
      partNumber: i + 1,
      size,
      url: await presignPart(signer, deps.bucket, key, uploadId, i + 1, size, ttl),
    });
  }
  return { sha256: b.sha256, size: b.size, paths: b.paths, method: 'multipart', partSize: settings.partSize, parts };
}

/** What the client sees: totals, transfer counters, and (while open) what is missing, with fresh URLs. */
export async function uploadView(deps: ApiDeps, s: DatasetUpload) {
  const settings = datasetSettings(deps);
  const expired = isExpired(deps, s);
  const base = {
    id: s.id,
    name: s.name,
    status: expired ? 'expired' : s.status,
    createdAt: s.createdAt.toISOString(),
    expiresAt: s.expiresAt.toISOString(),
    completedAt: s.completedAt?.toISOString() ?? null,
    datasetId: s.datasetId,
    manifestSha256: s.manifestSha256,
    files: s.fileCount,
    bytes: Number(s.totalBytes),
    blobs: s.blobCount,
    blobBytes: Number(s.blobBytes),
    transfer: transferOf(s),
    lastError: s.lastError,
  };
  if (s.status !== 'open' || expired)
    return { ...base, pending: { files: 0, blobs: 0, bytes: 0 }, missing: [], truncated: false, urlsExpireAt: null };
  const missing = await missingBlobs(deps, s, settings);
  const shown = missing.slice(0, settings.maxUploadsPerResponse);
  const newIds: Record<string, string> = {};
  const targets: UploadTarget[] = [];
  for (const b of shown) targets.push(await targetFor(deps, s, b, settings, newIds));
  await mergeMultipartIds(deps.db, s.id, newIds);
  return {
    ...base,
    pending: {
      files: missing.reduce((n, b) => n + b.paths.length, 0),
      blobs: missing.length,
      bytes: missing.reduce((n, b) => n + b.size, 0),
    },
    missing: targets,
    truncated: shown.length < missing.length,
    urlsExpireAt: new Date(Date.now() + settings.urlTtlSeconds * 1000).toISOString(),
  };
}

/** Bytes this session sent versus reused from blobs already stored (final once completed). */
export function transferOf(s: DatasetUpload) {
  return {
    blobsUploaded: s.blobsUploaded,
    bytesUploaded: Number(s.bytesUploaded),
    blobsReused: s.blobsReused,
    bytesReused: Number(s.bytesReused),
    bytesRejected: Number(s.bytesRejected),
  };
}

/** Abandons an open session: its staged objects and multipart uploads are deleted; stored blobs stay. */
export async function abortUpload(deps: ApiDeps, s: DatasetUpload) {
  if (s.status === 'completing')
    throw new GpulabError('CONFLICT', 'the upload is being completed; it cannot be aborted now');
  if (await abortDatasetUpload(deps.db, s.id)) {
    for (const [sha, uploadId] of Object.entries(uploadMultipart(s)))
      await abortMultipart(deps.s3, deps.bucket, datasetKeys.staging(s.userId, s.id, sha), uploadId);
    await deletePrefix(deps.s3, deps.bucket, datasetKeys.stagingPrefix(s.userId, s.id));
  }
  return uploadView(deps, await deps.db.datasetUpload.findUniqueOrThrow({ where: { id: s.id } }));
}
