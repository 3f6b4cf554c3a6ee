/**
 * The trainer's view of object storage: put and get by key. Checkpoints and artifacts go through this interface, so
 * the training loop is tested against memory and runs against S3 (or a local directory, for `cli predict`).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { type createS3Client, getObjectBytes, isNotFound, putObject } from '@gpulab/storage';

export type S3 = ReturnType<typeof createS3Client>;

export interface ObjectStore {
  /** Where keys live, for messages (e.g. `s3://bucket`). */
  readonly location: string;
  put(key: string, body: Uint8Array | string, contentType?: string): Promise<void>;
  /** The object's bytes, or null when it does not exist. */
  get(key: string): Promise<Uint8Array | null>;
}

export function s3Store(s3: S3, bucket: string): ObjectStore {
  return {
    location: `s3://${bucket}`,
    put: (key, body, contentType) => putObject(s3, bucket, key, body, contentType),
    async get(key) {
      try {
        return await getObjectBytes(s3, bucket, key);
      } catch (e) {
        if (isNotFound(e)) return null;
        throw e;
      }
    },
  };
}

/** A directory on the local disk; keys are relative paths inside it (no escaping it). */
export function dirStore(root: string): ObjectStore {
  const base = resolve(root);
  const path = (key: string) => {
    const p = resolve(join(base, key));
    if (p !== base && !p.startsWith(base + sep)) throw new Error(`key ${key} escapes ${base}`);
    return p;
  };
  return {
    location: base,
    async put(key, body) {
      const p = path(key);
      await mkdir(dirname(p), { recursive: true });
      await writeFile(p, body);
    },
    async get(key) {
      try {
        return new Uint8Array(await readFile(path(key)));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw e;
      }
    },
  };
}

export async function getJson<T>(store: ObjectStore, key: string): Promise<T | null> {
  const bytes = await store.get(key);
  return bytes ? (JSON.parse(Buffer.from(bytes).toString('utf8')) as T) : null;
}

export async function putJson(store: ObjectStore, key: string, value: unknown): Promise<number> {
  const body = JSON.stringify(value);
  await store.put(key, body, 'application/json');
  return Buffer.byteLength(body);
}
