import { GpulabError } from '@gpulab/core';
import type { Principal } from '@gpulab/db';
import type { Dataset } from '@prisma/client';
import type { ApiDeps } from '../deps';

/** A dataset as the API shows it; `validation` (the last report) only on request, it can be long. */
export function datasetView(d: Dataset, opts: { validation?: boolean } = {}) {
  return {
    id: d.id,
    userId: d.userId,
    name: d.name,
    uri: d.uri,
    sha256: d.sha256,
    status: d.status,
    classes: (d.classes ?? []) as string[],
    counts: d.counts ?? null,
    files: d.fileCount,
    bytes: Number(d.bytes),
    uploadId: d.uploadId,
    createdAt: d.createdAt.toISOString(),
    updatedAt: d.updatedAt.toISOString(),
    validatedAt: d.validatedAt?.toISOString() ?? null,
    ...(opts.validation ? { validation: d.validation ?? null } : {}),
  };
}

/** The caller's dataset (admins see all); anything else is 404, so ids of others' datasets reveal nothing. */
export async function visibleDataset(deps: ApiDeps, who: Principal, id: string): Promise<Dataset> {
  const d = await deps.db.dataset.findUnique({ where: { id } });
  if (!d || (d.userId !== who.userId && who.role !== 'admin'))
    throw new GpulabError('NOT_FOUND', `dataset ${id} not found`);
  return d;
}
