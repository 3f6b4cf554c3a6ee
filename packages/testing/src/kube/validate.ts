import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { StatusCause } from './objects';

export interface SchemaResult {
  ok: boolean;
  message?: string;
  causes: StatusCause[];
}

interface Pending {
  resolve(r: SchemaResult): void;
  reject(e: Error): void;
}

let worker: Worker | null = null;
let nextId = 1;
const pending = new Map<number, Pending>();

/**
 * The schema validator: a worker thread running `validate-worker.mjs`, which loads kubernetes-models (ESM-only)
 * through Node's own loader. One per process, started on first use and unref'd so it never keeps a test alive.
 */
function validator(): Worker {
  if (worker) return worker;
  const w = new Worker(path.join(__dirname, 'validate-worker.mjs'));
  w.unref();
  w.on('message', (m: { id: number; ok: boolean; message?: string; errors?: StatusCause[] }) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    p.resolve({ ok: m.ok, message: m.message, causes: m.errors ?? [] });
  });
  const fail = (e: Error) => {
    for (const p of pending.values()) p.reject(e);
    pending.clear();
    worker = null;
  };
  w.on('error', fail);
  w.on('exit', (code) => fail(new Error(`kubernetes-models validator exited with code ${code}`)));
  worker = w;
  return w;
}

/** Stops the validator thread (the next validation starts a new one). */
export async function stopValidator(): Promise<void> {
  const w = worker;
  worker = null;
  if (w) {
    w.removeAllListeners('exit');
    await w.terminate();
  }
}

/**
 * Validates a document against the Kubernetes OpenAPI schema of its apiVersion and kind with kubernetes-models
 * (`new Pod(obj).validate()`). Resolves with the schema errors instead of throwing.
 */
export function validateSchema(obj: { apiVersion?: unknown; kind?: unknown }): Promise<SchemaResult> {
  const id = nextId++;
  const w = validator();
  return new Promise<SchemaResult>((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.postMessage({ id, apiVersion: obj.apiVersion, kind: obj.kind, object: obj });
  });
}

/** Throws with every schema error when a manifest (any kind kubernetes-models knows) is invalid. */
export async function assertValidManifest(obj: { apiVersion?: unknown; kind?: unknown; metadata?: unknown }) {
  const r = await validateSchema(obj);
  if (!r.ok) {
    const name = (obj.metadata as { name?: string } | undefined)?.name ?? '?';
    const what = r.causes.length ? r.causes.map((c) => `${c.field}: ${c.message}`).join('; ') : r.message;
    throw new Error(`${String(obj.kind)} "${name}" (${String(obj.apiVersion)}) is invalid: ${what}`);
  }
}
