import { GpulabApiError, toApiError } from './errors';
import {
  type Flavor,
  type Job,
  type JobArtifacts,
  type JobListItem,
  type Me,
  type Page,
  type QuoteResult,
  type Reservation,
  type SubmitRequest,
  TERMINAL_STATUSES,
} from './types';

export interface ClientOptions {
  /** e.g. http://127.0.0.1:8080 (no trailing /v1). */
  baseUrl: string;
  /** A personal API token (gpl_…); omit in a browser signed in with the session cookie. */
  token?: string;
  /** CSRF token of a cookie session (from login or GET /v1/auth/session), sent on unsafe requests. */
  csrfToken?: string;
  fetch?: typeof fetch;
  /** Retries of 429/502/503/504 and network errors for idempotent requests (GET, and POSTs with an idempotency key). */
  retries?: number;
}

export interface JobListQuery {
  status?: string | string[];
  user?: string;
  group?: string;
  flavor?: string;
  from?: string;
  to?: string;
  limit?: number;
  cursor?: string;
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** The typed client of the gpulab REST API v1. Every failure is a GpulabApiError carrying the API's code and field. */
export class GpulabClient {
  private readonly base: string;
  private readonly doFetch: typeof fetch;

  constructor(private readonly opts: ClientOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, '');
    this.doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** Sets the CSRF token after a dashboard sign-in. */
  setCsrfToken(token: string | undefined): void {
    this.opts.csrfToken = token;
  }

  async raw(method: Method, path: string, o: { body?: unknown; headers?: Record<string, string> } = {}) {
    const headers: Record<string, string> = { accept: 'application/json', ...o.headers };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    if (this.opts.csrfToken && method !== 'GET') headers['x-csrf-token'] = this.opts.csrfToken;
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    const retryable = method === 'GET' || headers['idempotency-key'] !== undefined;
    const attempts = retryable ? (this.opts.retries ?? 2) + 1 : 1;
    for (let i = 1; ; i++) {
      try {
        const res = await this.doFetch(`${this.base}${path}`, {
          method,
          headers,
          credentials: 'include',
          ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
        });
        if (res.ok) return res;
        const err = await toApiError(res);
        if (i < attempts && [429, 502, 503, 504].includes(res.status)) {
          await sleep(Math.min(30_000, (err.retryAfterSeconds ?? 2 ** i * 0.25) * 1000));
          continue;
        }
        throw err;
      } catch (e) {
        if (e instanceof GpulabApiError || i >= attempts) throw e;
        await sleep(2 ** i * 250);
      }
    }
  }

  async request<T>(method: Method, path: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
    const res = await this.raw(method, path, { body, ...(headers ? { headers } : {}) });
    return (await res.json()) as T;
  }

  me(): Promise<Me> {
    return this.request('GET', '/v1/me');
  }

  readonly jobs = {
    submit: (spec: SubmitRequest, o: { idempotencyKey?: string } = {}) =>
      this.request<Job>(
        'POST',
        '/v1/jobs',
        spec,
        o.idempotencyKey ? { 'idempotency-key': o.idempotencyKey } : undefined,
      ),
    get: (id: string) => this.request<Job>('GET', `/v1/jobs/${encodeURIComponent(id)}`),
    list: (q: JobListQuery = {}) => this.request<Page<JobListItem>>('GET', `/v1/jobs${query(q)}`),
    cancel: (id: string) => this.request<Job>('POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`),
    /** The model files, metrics and logs with presigned download URLs (valid 15 minutes). */
    artifacts: (id: string) => this.request<JobArtifacts>('GET', `/v1/jobs/${encodeURIComponent(id)}/artifacts`),
    retry: (id: string) => this.request<Job & { retryOf: string }>('POST', `/v1/jobs/${encodeURIComponent(id)}/retry`),
    logs: async (id: string, attempt?: number) =>
      (await this.raw('GET', `/v1/jobs/${encodeURIComponent(id)}/logs${query({ attempt })}`)).text(),
    /** Streams a job's output until it ends; returns its final status. */
    followLogs: (id: string, onText: (text: string) => void, signal?: AbortSignal) => this.follow(id, onText, signal),
    /** Polls until the job ends (or `timeoutMs`), calling `onChange` whenever its status or metrics change. */
    wait: (id: string, o: { intervalMs?: number; timeoutMs?: number; onChange?: (job: Job) => void } = {}) =>
      this.wait(id, o),
  };

  quote(spec: SubmitRequest): Promise<QuoteResult> {
    return this.request('POST', '/v1/quote', spec);
  }

  readonly reservations = {
    create: (r: { flavor: string; gpus: number; start: string; end: string; group?: string; note?: string }) =>
      this.request<Reservation>('POST', '/v1/reservations', r),
    list: () => this.request<{ items: Reservation[] }>('GET', '/v1/reservations'),
    cancel: (id: string) => this.request<Reservation>('DELETE', `/v1/reservations/${encodeURIComponent(id)}`),
  };

  flavors(): Promise<{ items: Flavor[] }> {
    return this.request('GET', '/v1/flavors');
  }

  readonly auth = {
    login: async (email: string, password: string) => {
      const r = await this.request<{ user: Me; csrfToken: string; expiresAt: string }>('POST', '/v1/auth/login', {
        email,
        password,
      });
      this.setCsrfToken(r.csrfToken);
      return r;
    },
    logout: () => this.request<{ signedOut: boolean }>('POST', '/v1/auth/logout'),
    session: () => this.request<{ user: Me; csrfToken: string | null }>('GET', '/v1/auth/session'),
    createToken: (name: string, expiresInDays: number | null = 90) =>
      this.request<{ id: string; name: string; token: string; expiresAt: string | null }>('POST', '/v1/me/tokens', {
        name,
        expiresInDays,
      }),
  };

  private async wait(id: string, o: { intervalMs?: number; timeoutMs?: number; onChange?: (job: Job) => void }) {
    const deadline = Date.now() + (o.timeoutMs ?? Number.POSITIVE_INFINITY);
    let last = '';
    for (;;) {
      const job = await this.jobs.get(id);
      const sig = `${job.status}|${job.metrics.length}|${job.pending?.message ?? ''}`;
      if (sig !== last) {
        last = sig;
        o.onChange?.(job);
      }
      if (TERMINAL_STATUSES.includes(job.status)) return job;
      if (Date.now() > deadline) throw new Error(`job ${id} still ${job.status} after ${o.timeoutMs} ms`);
      await sleep(o.intervalMs ?? 1000);
    }
  }

  private async follow(id: string, onText: (text: string) => void, signal?: AbortSignal): Promise<string | null> {
    const res = await this.doFetch(`${this.base}/v1/jobs/${encodeURIComponent(id)}/logs?follow=1`, {
      headers: this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {},
      credentials: 'include',
      ...(signal ? { signal } : {}),
    });
    if (!res.ok || !res.body) throw await toApiError(res);
    const decoder = new TextDecoder();
    let buf = '';
    let status: string | null = null;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        const event = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const lines = event.split('\n');
        const type = lines.find((l) => l.startsWith('event: '))?.slice(7);
        const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
        if (type === 'log') onText(`${data.join('\n')}\n`);
        if (type === 'end') status = (JSON.parse(data.join('\n') || '{}') as { status?: string }).status ?? null;
      }
    }
    return status;
  }
}

function query(q: object): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || v === null) continue;
    p.set(k, Array.isArray(v) ? v.join(',') : String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
