/**
 * The load generator of the API benchmark (bench/api/run.ts), in a process of its own so that it does not share the
 * servers' event loop — as a real client would not. Config: one JSON argument {connections, runs: [{url, body,
 * headers, seconds}]}. For each run in turn it tells the parent it is ready (IPC `{ready: i}`), waits for `go` (so
 * the parent can read its CPU counters right at the start), then autocannon POSTs the run's body with its headers over
 * `connections` keep-alive connections as fast as the server answers, for `seconds`, and sends back the figures,
 * including this process's own CPU time per request (`client_cpu_us_per_req`).
 */
import autocannon from 'autocannon';

interface Run {
  url: string;
  body: string;
  headers: Record<string, string>;
  seconds: number;
}

interface LoadConfig {
  connections: number;
  runs: Run[];
}

const send = (m: unknown) => new Promise<void>((resolve) => process.send!(m, () => resolve()));
const go = () => new Promise<void>((resolve) => process.once('message', () => resolve()));

async function main() {
  const c = JSON.parse(process.argv[2] ?? '{}') as LoadConfig;
  if (!process.send) throw new Error('bench/api/load.ts runs as a child of bench/api/run.ts (IPC)');
  for (const [i, run] of c.runs.entries()) {
    const started = go();
    await send({ ready: i });
    await started;
    const cpu = process.cpuUsage();
    const r = await autocannon({
      url: run.url,
      method: 'POST',
      body: run.body,
      headers: { 'content-type': 'application/json', ...run.headers },
      connections: c.connections,
      duration: run.seconds,
    });
    const used = process.cpuUsage(cpu);
    await send({
      result: i,
      figures: {
        requests_per_s: Math.round(r.requests.average * 10) / 10,
        p50_ms: r.latency.p50,
        p99_ms: r.latency.p99,
        requests: r.requests.total,
        seconds: r.duration,
        non_2xx: r.non2xx,
        errors: r.errors,
        timeouts: r.timeouts,
        client_cpu_us_per_req: Math.round((used.user + used.system) / Math.max(1, r.requests.total)),
      },
    });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
