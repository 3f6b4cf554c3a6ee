/**
 * What a command runs with: its streams, environment, the Ctrl-C signal, --json, and the API client built from the
 * settings (environment over config file).
 */
import { GpulabClient } from '@gpulab/sdk';
import { type Env, resolveSettings, type Settings } from './config';
import { CliError, EXIT } from './exit-codes';

export interface Stream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface Io {
  stdout: Stream;
  stderr: Stream;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
}

export class Ctx {
  private cached: Settings | null = null;

  constructor(
    readonly io: Io,
    readonly env: Env,
    /** Aborted by Ctrl-C. */
    readonly signal: AbortSignal,
    readonly json: boolean,
  ) {}

  /** A line on stdout (the command's result). */
  out(line = ''): void {
    this.io.stdout.write(`${line}\n`);
  }

  /** A line on stderr (progress, notes, hints). Silent in --json mode unless `always`. */
  note(line = '', always = false): void {
    if (always || !this.json) this.io.stderr.write(`${line}\n`);
  }

  outJson(value: unknown): void {
    this.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** Progress bars and prompts only when a person watches stderr. */
  get tty(): boolean {
    return Boolean(this.io.stderr.isTTY) && !this.json;
  }

  get settings(): Settings {
    this.cached ??= resolveSettings(this.env);
    return this.cached;
  }

  /** How often a followed job is polled. */
  get pollMs(): number {
    const v = Number(this.env.GPULAB_POLL_INTERVAL_MS);
    return Number.isFinite(v) && v >= 50 ? v : 1500;
  }

  /** The API client with the configured token; not being logged in is an auth error that says how to log in. */
  client(): GpulabClient {
    const s = this.settings;
    if (!s.token)
      throw new CliError(
        `not logged in to ${s.url}`,
        EXIT.API,
        'run: gpulab login   (or set GPULAB_URL and GPULAB_TOKEN)',
      );
    return new GpulabClient({ baseUrl: s.url, token: s.token });
  }
}
