import { client } from './client';
import type { ArtifactFile, GroupSummary, GroupView, JobArtifacts, Member, UsageReport } from './types';

/** Calls the SDK has no method for yet, made through its `request` (same auth, CSRF, errors and retries). */

const enc = encodeURIComponent;

export function qs(q: Record<string, string | number | undefined | null>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

export const groups = {
  list: () => client.request<{ items: GroupSummary[] }>('GET', '/v1/groups'),
  get: (id: string) => client.request<GroupView>('GET', `/v1/groups/${enc(id)}`),
  grant: (id: string, b: { email: string; hours: number; note?: string }) =>
    client.request<{ member: Member }>('POST', `/v1/groups/${enc(id)}/grants`, b),
  addMember: (id: string, b: { email: string; name?: string; role: 'student' | 'instructor' }) =>
    client.request<Member>('POST', `/v1/groups/${enc(id)}/members`, b),
};

export interface UsageQuery {
  by: string;
  group?: string;
  from?: string;
  to?: string;
}

export const reports = {
  usage: (q: UsageQuery) => client.request<UsageReport>('GET', `/v1/reports/usage${qs({ ...q })}`),
  /** The same report as CSV; a same-origin link, so the browser downloads it with the session cookie. */
  usageCsvHref: (q: UsageQuery) => `/v1/reports/usage${qs({ ...q, format: 'csv' })}`,
};

export const flavors = {
  setPrice: (name: string, pricePerGpuHour: number) =>
    client.request<{ name: string; pricePerGpuHour: number }>('PUT', `/v1/flavors/${enc(name)}`, { pricePerGpuHour }),
};

export const artifacts = {
  get: (jobId: string) => client.request<JobArtifacts>('GET', `/v1/jobs/${enc(jobId)}/artifacts`),
};

export type { ArtifactFile };

export const WEBHOOK_EVENTS = [
  'job.succeeded',
  'job.failed',
  'job.cancelled',
  'job.timed_out',
  'job.budget_exhausted',
  'quota.low',
] as const;

export interface Webhook {
  id: string;
  url: string;
  events: string[];
  groupId: string | null;
  active: boolean;
  createdAt: string;
}

export interface WebhookDelivery {
  id: string;
  event: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  nextAttemptAt: string | null;
  deliveredAt: string | null;
  createdAt: string;
}

export const webhooks = {
  list: () => client.request<{ items: Webhook[] }>('GET', '/v1/webhooks'),
  create: (b: { url: string; events: string[]; group?: string }) =>
    client.request<Webhook & { secret: string }>('POST', '/v1/webhooks', b),
  remove: (id: string) => client.request<{ deleted: boolean }>('DELETE', `/v1/webhooks/${enc(id)}`),
  deliveries: (id: string) => client.request<{ items: WebhookDelivery[] }>('GET', `/v1/webhooks/${enc(id)}/deliveries`),
  test: (id: string) => client.request<{ deliveryId: string }>('POST', `/v1/webhooks/${enc(id)}/test`),
};
