/** Shapes of the dataset upload protocol and of uploadDataset's options, progress and result (see datasets.ts). */

/** One file of a dataset; `body` is called when (and each time) its bytes are needed. */
export interface DatasetFile {
  /** Relative path, `train/<class>/<image>` or `val/<class>/<image>`, with "/" separators. */
  path: string;
  size: number;
  /** Lowercase hex SHA-256 of the bytes (see sha256Hex). */
  sha256: string;
  body: () => Promise<Blob | Uint8Array | ReadableStream<Uint8Array>>;
}

/** Where one missing blob goes: a single presigned PUT, or the parts of a multipart upload still missing. */
export interface UploadTarget {
  sha256: string;
  size: number;
  paths: string[];
  method: 'PUT' | 'multipart';
  url?: string;
  partSize?: number;
  parts?: { partNumber: number; size: number; url: string }[];
}

/** What a session sent versus reused (final once completed): the server's own counters. */
export interface UploadTransfer {
  blobsUploaded: number;
  bytesUploaded: number;
  blobsReused: number;
  bytesReused: number;
  bytesRejected: number;
}

export interface UploadSession {
  id: string;
  name: string;
  status: 'open' | 'completing' | 'completed' | 'aborted' | 'expired';
  createdAt: string;
  expiresAt: string;
  completedAt: string | null;
  datasetId: string | null;
  manifestSha256: string;
  files: number;
  bytes: number;
  blobs: number;
  blobBytes: number;
  transfer: UploadTransfer;
  lastError: string | null;
  /** Still to send (whole session, not only `missing`). */
  pending: { files: number; blobs: number; bytes: number };
  missing: UploadTarget[];
  /** More blobs are missing than `missing` lists: GET the session again once these are sent. */
  truncated: boolean;
  urlsExpireAt: string | null;
}

export interface Dataset {
  id: string;
  userId: string;
  name: string;
  /** s3://… of the ImageFolder tree: what a job spec's `dataset.uri` takes. */
  uri: string;
  sha256: string;
  status: 'materializing' | 'ready' | 'invalid';
  classes: string[];
  counts: Record<'train' | 'val', Record<string, number>> | null;
  files: number;
  bytes: number;
  uploadId: string | null;
  createdAt: string;
  updatedAt: string;
  validatedAt: string | null;
}

export interface UploadProgress {
  phase: 'starting' | 'uploading' | 'completing' | 'done';
  /** The session, once known. */
  session: string | null;
  /** The whole dataset. */
  files: number;
  bytes: number;
  /** What this run has to send (grows when the server lists the missing blobs page by page). */
  toSend: { blobs: number; bytes: number };
  sent: { blobs: number; bytes: number };
}

export interface UploadOptions {
  /** Dataset name: 1-64 letters, digits, ".", "_" or "-". Re-uploading the same files under the same name is fine. */
  name: string;
  files: DatasetFile[];
  /** A session id from an earlier, interrupted run: resumed when it is still open and has the same files. */
  resume?: string | null;
  /** Requests in flight at once (default 4). */
  concurrency?: number;
  /** Tries of each PUT on network errors and 5xx (default 3). */
  retries?: number;
  signal?: AbortSignal;
  /** Called once the session is known, before any byte is sent: keep `session.id` to resume later. */
  onSession?: (session: UploadSession, resumed: boolean) => void | Promise<void>;
  onProgress?: (p: UploadProgress) => void;
  /** fetch used for the presigned URLs (default: globalThis.fetch). */
  fetch?: typeof fetch;
}

export interface UploadResult {
  session: UploadSession;
  dataset: Dataset;
  /** Whether an earlier session was resumed. */
  resumed: boolean;
  /** What this run sent (the server's `session.transfer` counts the whole session). */
  sent: { blobs: number; bytes: number };
}

export type PartEtags = Record<string, { partNumber: number; etag: string }[]>;
