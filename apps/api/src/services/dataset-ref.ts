import { GpulabError } from '@gpulab/core';
import type { Principal } from '@gpulab/db';
import { parseS3Uri } from '@gpulab/storage';
import { z } from 'zod';
import type { ApiDeps } from '../deps';

/**
 * A job body may name its dataset by `{ id }` or `{ name }` (one of the caller's datasets) instead of `{ uri }`.
 * The reference is resolved here, before the spec is parsed, to the dataset's `s3://` URI: the stored spec, the
 * scheduler and the trainer only ever see `dataset.uri`, unchanged. A URI under another user's datasets/<userId>/
 * prefix is refused, so a URI cannot read what an id could not.
 */
export const DatasetRefDocSchema = z.union([
  z.object({ uri: z.string().describe('s3://bucket/prefix of an ImageFolder tree') }).strict(),
  z.object({ id: z.string().uuid().describe('one of your datasets, by id') }).strict(),
  z.object({ name: z.string().describe('one of your datasets, by name') }).strict(),
]);

const Ref = z.union([
  z.object({ id: z.string().uuid({ message: 'must be a dataset id (UUID)' }) }).strict(),
  z.object({ name: z.string().min(1).max(64) }).strict(),
]);

export async function resolveDatasetRef(deps: ApiDeps, who: Principal, body: unknown): Promise<unknown> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return body;
  const b = body as Record<string, unknown>;
  const ds = b.dataset;
  if (!ds || typeof ds !== 'object' || Array.isArray(ds)) return body;
  if ('uri' in ds) {
    checkUriOwner(who, (ds as { uri: unknown }).uri);
    return body;
  }
  const parsed = Ref.safeParse(ds);
  if (!parsed.success) return body; // JobSpecSchema reports it, naming dataset.uri
  const ref = parsed.data;
  const field = 'id' in ref ? 'dataset.id' : 'dataset.name';
  const d =
    'id' in ref
      ? await deps.db.dataset.findUnique({ where: { id: ref.id } })
      : await deps.db.dataset.findUnique({ where: { userId_name: { userId: who.userId, name: ref.name } } });
  const label = 'id' in ref ? ref.id : JSON.stringify(ref.name);
  if (!d || (d.userId !== who.userId && who.role !== 'admin'))
    throw new GpulabError('NOT_FOUND', `dataset ${label} not found`, { field });
  if (d.status !== 'ready')
    throw new GpulabError('VALIDATION', `dataset ${d.name} is ${d.status}, not ready`, { field });
  return { ...b, dataset: { uri: d.uri } };
}

/** datasets/<uuid>/… belongs to that user: others (but admins) may not train on it by URI. */
function checkUriOwner(who: Principal, uri: unknown): void {
  if (typeof uri !== 'string' || who.role === 'admin') return;
  let key: string;
  try {
    key = parseS3Uri(uri).key;
  } catch {
    return; // JobSpecSchema reports it
  }
  const m = /^\/*datasets\/([0-9a-f-]{36})(\/|$)/i.exec(key);
  if (m && m[1]!.toLowerCase() !== who.userId.toLowerCase())
    throw new GpulabError('NOT_FOUND', `dataset ${uri} not found`, { field: 'dataset.uri' });
}
