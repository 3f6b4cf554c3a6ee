import { createHmac } from 'node:crypto';
import { claimDueDeliveries, type Db, type DueDelivery, recordDeliveryAttempt } from '@gpulab/db';
import type { Logger } from '@gpulab/logger';
import { postPinned, type Resolver, resolveWebhookUrl, systemResolver } from './webhook-post';

export interface WebhookSenderOptions {
  db: Db;
  log: Logger;
  clock: () => Date;
  /** Deliveries to private, loopback and link-local addresses (local mode, tests). */
  allowPrivate: boolean;
  timeoutMs?: number;
  concurrency?: number;
  intervalMs?: number;
  /** Resolves webhook host names (default: the system resolver). Its answer is checked and then connected to. */
  resolve?: Resolver;
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the webhook's secret>` — verify with the same. */
export function signature(secret: string, body: string, at: Date): string {
  const t = Math.floor(at.getTime() / 1000);
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

/**
 * Delivers the webhook outbox: claims due deliveries, POSTs each (JSON body, `gpulab-signature`, `gpulab-event`,
 * `gpulab-delivery` headers; 10 s timeout; redirects not followed), records the outcome and schedules a retry with
 * backoff for anything but a 2xx. The host is resolved once per delivery, every address checked (no private ones
 * unless allowed), and the request connects to those addresses only (webhook-post.ts): a second resolution, which
 * a rebinding DNS server could answer with a private address, never happens. Runs on the scheduler leader next to
 * its control loop, never inside it, so a slow receiver cannot hold up scheduling.
 */
export class WebhookSender {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;

  constructor(private readonly o: WebhookSenderOptions) {}

  start(): void {
    const loop = () => {
      this.running = this.runOnce().catch((e) => {
        this.o.log.warn({ err: e }, 'webhook delivery pass failed');
        return 0;
      });
      void this.running.finally(() => {
        if (this.timer) this.timer = setTimeout(loop, this.o.intervalMs ?? 2000);
      });
    };
    this.timer = setTimeout(loop, 0);
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One pass: delivers what is due now; returns how many were attempted. */
  async runOnce(): Promise<number> {
    const due = await claimDueDeliveries(this.o.db, this.o.clock(), this.o.concurrency ?? 8, 60_000);
    await Promise.all(due.map((d) => this.deliver(d)));
    return due.length;
  }

  private async deliver(d: DueDelivery): Promise<void> {
    const at = this.o.clock();
    const body = JSON.stringify({ id: d.id, ...(d.payload as object) });
    let statusCode: number | null = null;
    let error: string | null = null;
    try {
      const { url, addresses } = await resolveWebhookUrl(d.url, {
        allowPrivate: this.o.allowPrivate,
        resolve: this.o.resolve ?? systemResolver,
      });
      statusCode = await postPinned(url, addresses, {
        headers: {
          'content-type': 'application/json',
          'user-agent': 'gpulab-webhooks/1',
          'gpulab-event': d.event,
          'gpulab-delivery': d.id,
          'gpulab-signature': signature(d.secret, body, at),
        },
        body,
        timeoutMs: this.o.timeoutMs ?? 10_000,
      });
      if (statusCode < 200 || statusCode > 299) error = `HTTP ${statusCode}`;
    } catch (e) {
      error = (e as Error).message;
    }
    const ok = error === null;
    await recordDeliveryAttempt(this.o.db, {
      id: d.id,
      ok,
      statusCode,
      error,
      attempts: d.attempts,
      at: this.o.clock(),
    });
    this.o.log[ok ? 'info' : 'warn'](
      { deliveryId: d.id, webhookId: d.webhookId, event: d.event, statusCode, error },
      ok ? 'webhook delivered' : 'webhook delivery failed; will retry',
    );
  }
}
