/**
 * Resumable uploads: the open upload session of each folder, in $XDG_STATE_HOME/gpulab/uploads.json, written as soon
 * as the session exists (before any byte is sent) and removed when the upload completes. A rerun of `gpulab submit`
 * on the same folder with the same contents and server resumes that session, sending only what is still missing.
 */
import path from 'node:path';
import { type Env, readJsonOr, stateDir, writePrivateJson } from '../config';

export interface UploadState {
  sessionId: string;
  server: string;
  name: string;
  /** contentDigest of the folder when the session was created. */
  digest: string;
  startedAt: string;
}

type StateFile = Record<string, UploadState>;

export const uploadStatePath = (env: Env) => path.join(stateDir(env), 'uploads.json');

/** The session to resume for this folder, if its contents and server are the same as when it started. */
export function loadUploadState(env: Env, root: string, digest: string, server: string): UploadState | null {
  const s = readJsonOr<StateFile>(uploadStatePath(env), {})[path.resolve(root)];
  return s && s.digest === digest && s.server === server ? s : null;
}

export function saveUploadState(env: Env, root: string, state: UploadState): void {
  const file = uploadStatePath(env);
  const all = readJsonOr<StateFile>(file, {});
  all[path.resolve(root)] = state;
  writePrivateJson(file, all);
}

export function clearUploadState(env: Env, root: string): void {
  const file = uploadStatePath(env);
  const all = readJsonOr<StateFile>(file, {});
  const key = path.resolve(root);
  if (!(key in all)) return;
  delete all[key];
  writePrivateJson(file, all);
}
