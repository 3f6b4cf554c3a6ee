import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ApiDeps } from '../deps';

/**
 * Prometheus metrics at /metrics: request latency by route and status, and — read from Postgres and Redis at
 * scrape time, so they are right whichever replica is scraped — jobs by status, GPUs held by flavor, the dispatch
 * queue's depth and the spend of the current clock hour.
 */
export function registerMetrics(app: FastifyInstance, deps: ApiDeps): void {
  const registry = new Registry();
  const latency = new Histogram({
    name: 'gpulab_http_request_duration_seconds',
    help: 'HTTP request latency by method, route and status code',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const requests = new Counter({
    name: 'gpulab_http_requests_total',
    help: 'HTTP requests by method, route and status code',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'gpulab_jobs',
    help: 'Jobs by status',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await deps.db.job.groupBy({ by: ['status'], _count: { _all: true } });
      for (const r of rows) this.set({ status: r.status }, r._count._all);
    },
  });
  new Gauge({
    name: 'gpulab_gpus_in_use',
    help: 'GPUs held by admitted, launching, running and retrying jobs, by flavor',
    labelNames: ['flavor'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await deps.db.job.groupBy({
        by: ['flavor'],
        where: { status: { in: ['ADMITTED', 'LAUNCHING', 'RUNNING', 'RETRYING'] } },
        _sum: { gpus: true },
      });
      for (const r of rows) this.set({ flavor: r.flavor }, r._sum.gpus ?? 0);
    },
  });
  new Gauge({
    name: 'gpulab_dispatch_queue_depth',
    help: 'Entries waiting in the dispatch queue (Redis)',
    registers: [registry],
    async collect() {
      this.set(await deps.queue.depth().catch(() => Number.NaN));
    },
  });
  new Gauge({
    name: 'gpulab_spend_current_hour',
    help: 'Money charged so far in the current clock hour, in the price table currency',
    registers: [registry],
    async collect() {
      const now = deps.clock();
      const hourStart = new Date(Math.floor(now.getTime() / 3_600_000) * 3_600_000);
      const agg = await deps.db.costLedger.aggregate({ where: { hourStart }, _sum: { amountMicros: true } });
      this.set(Number(agg._sum.amountMicros ?? 0n) / 1e6);
    },
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    if (route === '/metrics') return;
    const labels = { method: req.method, route, status: String(reply.statusCode) };
    latency.observe(labels, reply.elapsedTime / 1000);
    requests.inc(labels);
  });
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) =>
    reply.header('content-type', registry.contentType).send(await registry.metrics()),
  );
}
