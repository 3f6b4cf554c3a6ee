import { GpulabError } from '@gpulab/core';
import { audit, liveJobsUsingDataset } from '@gpulab/db';
import { deletePrefix, parseS3Uri } from '@gpulab/storage';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ApiDeps } from '../deps';
import { requireUser } from '../plugins/auth';
import { doc } from '../plugins/openapi';
import { CompleteBody, completeUpload } from '../services/dataset-complete';
import { ManifestBody } from '../services/dataset-manifest';
import { MANIFEST_BODY_LIMIT } from '../services/dataset-settings';
import { abortUpload, createUpload, uploadView, visibleUpload } from '../services/dataset-upload';
import { validateDataset } from '../services/dataset-validate';
import { datasetView, visibleDataset } from '../services/dataset-view';

const IdParams = z.object({ id: z.string().uuid({ message: 'dataset id must be a UUID' }) });
const UploadParams = z.object({ id: z.string().uuid({ message: 'upload session id must be a UUID' }) });
const ListQuery = z.object({ all: z.enum(['true', 'false']).default('false') });

/**
 * Datasets: uploaded straight to S3 through presigned URLs (files already stored by this user are not sent again),
 * completed into an ImageFolder tree the trainer reads, listed, validated, deleted. Only the owner (or an admin)
 * sees a dataset or an upload session; to anyone else it does not exist (404).
 */
export function datasetRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.post(
    '/v1/datasets/uploads',
    {
      ...doc('datasets', 'Start an upload: a manifest in, presigned URLs for the files not stored yet out', {
        body: ManifestBody,
      }),
      bodyLimit: MANIFEST_BODY_LIMIT,
    },
    async (req, reply) => {
      const who = requireUser(req);
      return reply.status(201).send(await createUpload(deps, who, req.body));
    },
  );

  app.get(
    '/v1/datasets/uploads/:id',
    doc('datasets', 'An upload session: what is still missing, with fresh URLs', { params: UploadParams }),
    async (req) => {
      const { id } = UploadParams.parse(req.params);
      return uploadView(deps, await visibleUpload(deps, requireUser(req), id));
    },
  );

  app.post(
    '/v1/datasets/uploads/:id/complete',
    doc('datasets', 'Verify the uploaded files and materialize the dataset (idempotent)', {
      params: UploadParams,
      body: CompleteBody,
    }),
    async (req) => {
      const { id } = UploadParams.parse(req.params);
      return completeUpload(deps, await visibleUpload(deps, requireUser(req), id), req.body);
    },
  );

  app.delete(
    '/v1/datasets/uploads/:id',
    doc('datasets', 'Abort an upload session (its unverified uploads are deleted)', { params: UploadParams }),
    async (req) => {
      const { id } = UploadParams.parse(req.params);
      return abortUpload(deps, await visibleUpload(deps, requireUser(req), id));
    },
  );

  app.get('/v1/datasets', doc('datasets', 'My datasets', { querystring: ListQuery }), async (req) => {
    const who = requireUser(req);
    const q = ListQuery.parse(req.query);
    const everyone = q.all === 'true' && who.role === 'admin';
    const rows = await deps.db.dataset.findMany({
      where: everyone ? {} : { userId: who.userId },
      orderBy: { createdAt: 'desc' },
      take: 500,
    });
    return { items: rows.map((d) => datasetView(d)) };
  });

  app.get(
    '/v1/datasets/:id',
    doc('datasets', 'A dataset, with its last validation report', { params: IdParams }),
    async (req) => {
      const { id } = IdParams.parse(req.params);
      return datasetView(await visibleDataset(deps, requireUser(req), id), { validation: true });
    },
  );

  app.post(
    '/v1/datasets/:id/validate',
    doc('datasets', 'Re-validate the stored files: layout, classes, counts, corrupt images by path', {
      params: IdParams,
    }),
    async (req) => {
      const { id } = IdParams.parse(req.params);
      const d = await visibleDataset(deps, requireUser(req), id);
      const report = await validateDataset(deps, d);
      return { dataset: datasetView(await deps.db.dataset.findUniqueOrThrow({ where: { id } })), report };
    },
  );

  /** Deletes the materialized tree and the row; the blobs stay, so uploading the same files again sends nothing. */
  app.delete(
    '/v1/datasets/:id',
    doc('datasets', 'Delete a dataset (409 while a live job uses it)', { params: IdParams }),
    async (req) => {
      const who = requireUser(req);
      const { id } = IdParams.parse(req.params);
      const d = await visibleDataset(deps, who, id);
      if (d.status === 'materializing' && d.uploadId) {
        const u = await deps.db.datasetUpload.findUnique({ where: { id: d.uploadId } });
        if (u?.status === 'completing')
          throw new GpulabError('CONFLICT', `dataset ${d.name} is being materialized by its upload; retry shortly`);
      }
      const jobs = await liveJobsUsingDataset(deps.db, d.uri);
      if (jobs.length)
        throw new GpulabError(
          'CONFLICT',
          `dataset ${d.name} is used by live job(s) ${jobs.map((j) => `${j.id} (${j.status})`).join(', ')}`,
          { jobs: jobs.map((j) => j.id) },
        );
      const loc = parseS3Uri(d.uri);
      let objects = 0;
      if (d.uploadId) {
        const prefix = loc.key.endsWith('/') ? loc.key : `${loc.key}/`;
        objects = await deletePrefix(deps.s3, loc.bucket, prefix);
      }
      await deps.db.dataset.delete({ where: { id } });
      if (d.userId !== who.userId)
        await audit(deps.db, {
          actorId: who.userId,
          action: 'dataset.delete_by_other',
          targetType: 'dataset',
          targetId: d.id,
          data: { owner: d.userId, name: d.name, uri: d.uri },
          at: deps.clock(),
        });
      return { deleted: true, id, objects };
    },
  );
}
