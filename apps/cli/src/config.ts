/**
 * Where the command line keeps things (XDG base directories) and its config file: the server URL and the API token,
 * in $XDG_CONFIG_HOME/gpulab/config.json (default ~/.config/gpulab), mode 0600 in a 0700 directory.
 * GPULAB_URL and GPULAB_TOKEN override what the file says.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

export type Env = Record<string, string | undefined>;

export const DEFAULT_URL = 'http://127.0.0.1:8080';

export interface Config {
  url?: string;
  token?: string;
  /** Who the token belongs to, for display. */
  email?: string;
  /** Id of a token this CLI created (login with a password): revoked on logout. */
  tokenId?: string;
}

export interface Settings {
  url: string;
  token: string | null;
  urlFrom: 'env' | 'config' | 'default';
  tokenFrom: 'env' | 'config' | null;
}

function xdg(env: Env, variable: string, fallback: string): string {
  const v = env[variable];
  const base = v && path.isAbsolute(v) ? v : path.join(env.HOME || homedir(), fallback);
  return path.join(base, 'gpulab');
}

export const configDir = (env: Env) => xdg(env, 'XDG_CONFIG_HOME', '.config');
export const stateDir = (env: Env) => xdg(env, 'XDG_STATE_HOME', path.join('.local', 'state'));
export const cacheDir = (env: Env) => xdg(env, 'XDG_CACHE_HOME', '.cache');
export const configPath = (env: Env) => path.join(configDir(env), 'config.json');

export function readConfig(env: Env): Config {
  const file = configPath(env);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return {};
  }
  try {
    const c = JSON.parse(text) as Config;
    return c && typeof c === 'object' ? c : {};
  } catch {
    throw new Error(`${file} is not valid JSON: fix or delete it, then run gpulab login`);
  }
}

export function writeConfig(env: Env, c: Config): string {
  const file = configPath(env);
  writePrivateJson(file, c);
  return file;
}

/** What to talk to and with which token: environment first, then the config file. */
export function resolveSettings(env: Env, c: Config = readConfig(env)): Settings {
  const url = (env.GPULAB_URL || c.url || DEFAULT_URL).replace(/\/+$/, '');
  const urlFrom = env.GPULAB_URL ? 'env' : c.url ? 'config' : 'default';
  const token = env.GPULAB_TOKEN || c.token || null;
  const tokenFrom = env.GPULAB_TOKEN ? 'env' : c.token ? 'config' : null;
  return { url, token, urlFrom, tokenFrom };
}

/** Writes JSON readable by its owner only (0600, directory 0700), atomically (temp file, then rename). */
export function writePrivateJson(file: string, value: unknown): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

export function readJsonOr<T>(file: string, fallback: T): T {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return fallback;
  }
}
