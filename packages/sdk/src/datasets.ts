/**
 * Dataset uploads, for Node and the browser (no Node module is imported here).
 *
 * The protocol (apps/api/src/routes/datasets.ts): POST /v1/datasets/uploads with a manifest — every file's relative
 * path, size and SHA-256 — answers with a session and presigned URLs for the blobs the server does not hold yet
 * (a file this user already uploaded, under any dataset, is never sent again); each is sent straight to S3 with one
 * PUT, or part by part for large files; GET /v1/datasets/uploads/:id answers the same for what is still missing
 * (fresh URLs), so an interrupted upload resumes; POST …/complete verifies and materializes the dataset.
 *
 * ```ts
 * // <input type="file" webkitdirectory>: paths start with the picked folder's name, which is not part of the dataset
 * const files = await Promise.all([...input.files].map(async (f) => ({
 *   path: f.webkitRelativePath.split('/').slice(1).join('/'), size: f.size, sha256: await sha256Hex(f), body: async () => f,
 * })));
 * const { dataset, session } = await uploadDataset(client, {
 *   name: 'flowers', files, resume: localStorage.getItem('upload'),
 *   onSession: (s) => localStorage.setItem('upload', s.id),
 *   onProgress: (p) => bar.update(p.sent.bytes / Math.max(1, p.toSend.bytes)),
 * });
 * // dataset.uri goes in a job spec: { dataset: { uri: dataset.uri }, … }
 * ```
 */
import type { GpulabClient } from './client';
import type {
  Dataset,
  DatasetFile,
  PartEtags,
  UploadOptions,
  UploadProgress,
  UploadResult,
  UploadSession,
} from './dataset-types';
import { GpulabApiError } from './errors';
import { Sender, sleep } from './upload-sender';

export * from './dataset-types';

// ---- the REST calls --------------------------------------------------------------------------------------------

const enc = encodeURIComponent;

export function startUpload(client: GpulabClient, name: string, files: readonly DatasetFile[]) {
  const manifest = files.map((f) => ({ path: f.path, size: f.size, sha256: f.sha256 }));
  return client.request<UploadSession>('POST', '/v1/datasets/uploads', { name, files: manifest });
}

export function getUpload(client: GpulabClient, id: string) {
  return client.request<UploadSession>('GET', `/v1/datasets/uploads/${enc(id)}`);
}

/** Idempotent. `parts`: ETags of the parts sent, needed only where S3 cannot list them (s3rver). */
export function completeUpload(client: GpulabClient, id: string, parts?: PartEtags) {
  return client.request<{ upload: UploadSession; dataset: Dataset | null }>(
    'POST',
    `/v1/datasets/uploads/${enc(id)}/complete`,
    parts && Object.keys(parts).length ? { parts } : {},
  );
}

export function abortUpload(client: GpulabClient, id: string) {
  return client.request<UploadSession>('DELETE', `/v1/datasets/uploads/${enc(id)}`);
}

export function listDatasets(client: GpulabClient) {
  return client.request<{ items: Dataset[] }>('GET', '/v1/datasets');
}

export function getDataset(client: GpulabClient, id: string) {
  return client.request<Dataset>('GET', `/v1/datasets/${enc(id)}`);
}

/** Lowercase hex SHA-256 of a file or bytes, with Web Crypto (browsers, Node 20+). Reads the whole file. */
export async function sha256Hex(data: Blob | Uint8Array): Promise<string> {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(await data.arrayBuffer());
  const digest = await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

// ---- the whole upload ------------------------------------------------------------------------------------------

/**
 * Uploads a dataset: starts (or resumes) a session, sends only what the server lacks, `concurrency` requests at a
 * time, completes it. Aborting `signal` stops it between requests; the session stays open, so passing its id as
 * `resume` later sends only what is still missing.
 */
export async function uploadDataset(client: GpulabClient, o: UploadOptions): Promise<UploadResult> {
  const bySha = new Map<string, DatasetFile>();
  let bytes = 0;
  for (const f of o.files) {
    if (!/^[0-9a-f]{64}$/.test(f.sha256)) throw new Error(`${f.path}: sha256 must be 64 lowercase hex digits`);
    if (!bySha.has(f.sha256)) bySha.set(f.sha256, f);
    bytes += f.size;
  }
  const progress: UploadProgress = {
    phase: 'starting',
    session: null,
    files: o.files.length,
    bytes,
    toSend: { blobs: 0, bytes: 0 },
    sent: { blobs: 0, bytes: 0 },
  };
  const report = () => o.onProgress?.({ ...progress, toSend: { ...progress.toSend }, sent: { ...progress.sent } });
  report();

  let resumed = false;
  let s: UploadSession | null = o.resume ? await resumable(client, o.resume, o.name, o.files.length, bytes) : null;
  if (s) resumed = true;
  else s = await startUpload(client, o.name, o.files);
  progress.session = s.id;
  await o.onSession?.(s, resumed);

  const sender = new Sender(bySha, o, progress, report, (id) => getUpload(client, id));
  if (s.status === 'open') {
    progress.phase = 'uploading';
    s = await sender.sendAllMissing(s);
  }
  progress.phase = 'completing';
  report();
  const done = await completeWithRetries(client, s, sender);
  if (!done.dataset) throw new Error(`upload ${s.id} completed without a dataset`);
  progress.phase = 'done';
  report();
  return { session: done.upload, dataset: done.dataset, resumed, sent: { ...progress.sent } };
}

/** The earlier session when it can be resumed (same name, same number of files and bytes, not aborted or expired). */
async function resumable(client: GpulabClient, id: string, name: string, files: number, bytes: number) {
  let s: UploadSession;
  try {
    s = await getUpload(client, id);
  } catch (e) {
    if (e instanceof GpulabApiError && (e.status === 404 || e.status === 400)) return null;
    throw e;
  }
  if (s.name !== name || s.files !== files || s.bytes !== bytes) return null;
  return s.status === 'aborted' || s.status === 'expired' ? null : s;
}

/**
 * Completes the session. "Not uploaded yet" (parts whose ETags this run lacks, pages not yet listed) sends what the
 * session then lists and tries again, as long as that makes progress; "being completed" by another request waits.
 */
async function completeWithRetries(client: GpulabClient, first: UploadSession, sender: Sender) {
  let s = first;
  let lastPending = Number.POSITIVE_INFINITY;
  let stalls = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      return await completeUpload(client, s.id, sender.etags);
    } catch (e) {
      if (!(e instanceof GpulabApiError) || e.status !== 409) throw e;
      if (/being completed/.test(e.message) && attempt < 30) {
        await sleep(Math.min(5000, 500 * attempt), sender.signal);
        continue;
      }
      if (!/not uploaded yet/.test(e.message)) throw e;
      s = await getUpload(client, s.id);
      if (s.pending.blobs >= lastPending && ++stalls > 2) throw e;
      lastPending = s.pending.blobs;
      s = await sender.sendAllMissing(s);
    }
  }
}
