import { GpulabError } from '@gpulab/core';
import { type Dataset, type DatasetUpload, Prisma } from '@prisma/client';
import type { Db } from './client';

/**
 * Datasets and their upload sessions. A session moves open → completing → completed (or aborted); `completing` is a
 * lease held by one complete call at a time (taken with a conditional UPDATE, taken over when older than the lease),
 * so two completes never verify or promote the same uploads at once. A dataset's name is claimed by inserting its
 * row (unique per user) before any object is copied: two uploads of different content can never both materialize
 * into the same prefix.
 */

export interface ManifestFile {
  path: string;
  size: number;
  sha256: string;
}

export type UploadStatus = 'open' | 'completing' | 'completed' | 'aborted';

export interface CreateUploadInput {
  userId: string;
  name: string;
  files: ManifestFile[];
  manifestSha256: string;
  totalBytes: number;
  blobCount: number;
  blobBytes: number;
  multipart: Record<string, string>;
  expiresAt: Date;
  now: Date;
}

export function createDatasetUpload(db: Db, u: CreateUploadInput): Promise<DatasetUpload> {
  return db.datasetUpload.create({
    data: {
      userId: u.userId,
      name: u.name,
      files: u.files as unknown as Prisma.InputJsonValue,
      manifestSha256: u.manifestSha256,
      fileCount: u.files.length,
      totalBytes: BigInt(u.totalBytes),
      blobCount: u.blobCount,
      blobBytes: BigInt(u.blobBytes),
      multipart: u.multipart,
      expiresAt: u.expiresAt,
      createdAt: u.now,
      updatedAt: u.now,
    },
  });
}

export function uploadFiles(u: DatasetUpload): ManifestFile[] {
  return u.files as unknown as ManifestFile[];
}

export function uploadMultipart(u: DatasetUpload): Record<string, string> {
  return (u.multipart ?? {}) as Record<string, string>;
}

export function uploadedBlobsOf(u: DatasetUpload): string[] {
  return (u.uploadedBlobs ?? []) as string[];
}

/** Adds (or replaces) multipart upload ids without losing a concurrent writer's: a jsonb merge in one UPDATE. */
export async function mergeMultipartIds(db: Db, id: string, ids: Record<string, string>): Promise<void> {
  if (Object.keys(ids).length === 0) return;
  await db.$executeRaw`UPDATE dataset_uploads SET multipart = multipart || ${JSON.stringify(ids)}::jsonb,
    updated_at = now() WHERE id = ${id}::uuid`;
}

/** Forgets multipart upload ids (completed or abandoned uploads). */
export async function dropMultipartIds(db: Db, id: string, shas: string[]): Promise<void> {
  if (shas.length === 0) return;
  await db.$executeRaw`UPDATE dataset_uploads SET multipart = multipart - ${shas}::text[], updated_at = now()
    WHERE id = ${id}::uuid`;
}

/**
 * Takes the completion lease: open → completing, or a completing session whose lease is older than `leaseMs` (its
 * holder died). False when another complete holds it, or the session is completed or aborted.
 */
export async function claimDatasetUpload(db: Db, id: string, now: Date, leaseMs: number): Promise<boolean> {
  const res = await db.datasetUpload.updateMany({
    where: {
      id,
      OR: [{ status: 'open' }, { status: 'completing', claimedAt: { lt: new Date(now.getTime() - leaseMs) } }],
    },
    data: { status: 'completing', claimedAt: now },
  });
  return res.count === 1;
}

export interface UploadProgress {
  uploadedBlobs: string[];
  blobsUploaded: number;
  bytesUploaded: number;
  rejectedBytes: number;
  lastError: string | null;
}

/** Gives the lease back (the session is open again), keeping what this attempt verified and promoted. */
export async function releaseDatasetUpload(db: Db, id: string, p: UploadProgress): Promise<void> {
  await db.datasetUpload.updateMany({
    where: { id, status: 'completing' },
    data: {
      status: 'open',
      claimedAt: null,
      uploadedBlobs: p.uploadedBlobs,
      blobsUploaded: p.blobsUploaded,
      bytesUploaded: BigInt(p.bytesUploaded),
      bytesRejected: { increment: BigInt(p.rejectedBytes) },
      lastError: p.lastError,
    },
  });
}

export async function finishDatasetUpload(
  db: Db,
  id: string,
  p: UploadProgress & { blobsReused: number; bytesReused: number; datasetId: string; at: Date },
): Promise<DatasetUpload> {
  return db.datasetUpload.update({
    where: { id },
    data: {
      status: 'completed',
      claimedAt: null,
      uploadedBlobs: p.uploadedBlobs,
      blobsUploaded: p.blobsUploaded,
      bytesUploaded: BigInt(p.bytesUploaded),
      blobsReused: p.blobsReused,
      bytesReused: BigInt(p.bytesReused),
      bytesRejected: { increment: BigInt(p.rejectedBytes) },
      lastError: null,
      datasetId: p.datasetId,
      completedAt: p.at,
    },
  });
}

/** open → aborted; false when it is being completed or already finished. */
export async function abortDatasetUpload(db: Db, id: string): Promise<boolean> {
  const res = await db.datasetUpload.updateMany({ where: { id, status: 'open' }, data: { status: 'aborted' } });
  return res.count === 1;
}

export interface DatasetClaim {
  userId: string;
  name: string;
  uri: string;
  sha256: string;
  uploadId: string;
  classes: string[];
  counts: Record<string, Record<string, number>>;
  fileCount: number;
  bytes: number;
  now: Date;
}

/**
 * Claims the name for a dataset with this manifest: `created` (new row, status materializing), `resume` (a row with
 * the same manifest whose materialization did not finish) or `done` (already materialized with the same manifest).
 * A name in use by different content is 409.
 */
export async function claimDatasetName(
  db: Db,
  c: DatasetClaim,
): Promise<{ dataset: Dataset; state: 'created' | 'resume' | 'done' }> {
  for (let i = 0; i < 2; i++) {
    const existing = await db.dataset.findUnique({ where: { userId_name: { userId: c.userId, name: c.name } } });
    if (existing) {
      if (existing.sha256 !== c.sha256) throw nameTaken(c.name);
      return { dataset: existing, state: existing.status === 'materializing' ? 'resume' : 'done' };
    }
    try {
      const dataset = await db.dataset.create({
        data: {
          userId: c.userId,
          name: c.name,
          uri: c.uri,
          sha256: c.sha256,
          classes: c.classes,
          counts: c.counts,
          status: 'materializing',
          fileCount: c.fileCount,
          bytes: BigInt(c.bytes),
          uploadId: c.uploadId,
          createdAt: c.now,
          updatedAt: c.now,
        },
      });
      return { dataset, state: 'created' };
    } catch (e) {
      if (!(e instanceof Prisma.PrismaClientKnownRequestError && e.code === 'P2002')) throw e;
    }
  }
  throw nameTaken(c.name);
}

export function nameTaken(name: string): GpulabError {
  return new GpulabError(
    'CONFLICT',
    `a dataset named "${name}" already exists with different content: delete it or choose another name`,
    { field: 'name' },
  );
}

export function markDatasetReady(db: Db, id: string, at: Date): Promise<Dataset> {
  return db.dataset.update({ where: { id }, data: { status: 'ready', updatedAt: at } });
}

export function recordDatasetValidation(
  db: Db,
  id: string,
  v: { status: 'ready' | 'invalid'; report: object; at: Date },
): Promise<Dataset> {
  return db.dataset.update({
    where: { id },
    data: {
      status: v.status,
      validation: v.report as Prisma.InputJsonValue,
      validatedAt: v.at,
      updatedAt: v.at,
    },
  });
}

/** Live jobs whose spec reads this dataset URI (a dataset they need must not be deleted under them). */
export function liveJobsUsingDataset(db: Db, uri: string) {
  return db.job.findMany({
    where: {
      status: { in: ['QUEUED', 'ADMITTED', 'LAUNCHING', 'RUNNING', 'RETRYING'] },
      OR: [
        { spec: { path: ['dataset', 'uri'], equals: uri } },
        { spec: { path: ['dataset', 'uri'], equals: uri.replace(/\/$/, '') } },
      ],
    },
    select: { id: true, status: true },
    take: 5,
  });
}
