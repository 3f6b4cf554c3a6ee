/**
 * API traffic for the soak (bench/soak/run.ts), in a process of its own so the soak measures the service alone:
 * autocannon alternating GET /v1/jobs?limit=50 and GET /v1/jobs/:id (ids drawn in turn from a list) at a fixed overall
 * rate, for a fixed time. Config: one JSON argument {url, token, ids, rate, connections, seconds}. Prints one JSON
 * line with the figures when done.
 */
import autocannon from 'autocannon';

interface LoadConfig {
  url: string;
  token: string;
  ids: string[];
  rate: number;
  connections: number;
  seconds: number;
}

async function main() {
  const c = JSON.parse(process.argv[2] ?? '{}') as LoadConfig;
  let n = 0;
  const headers = { authorization: `Bearer ${c.token}` };
  const r = await autocannon({
    url: c.url,
    connections: c.connections,
    overallRate: c.rate,
    duration: c.seconds,
    requests: [
      { method: 'GET', path: '/v1/jobs?limit=50', headers },
      {
        method: 'GET',
        headers,
        setupRequest: (req) => ({ ...req, path: `/v1/jobs/${c.ids[n++ % c.ids.length]}` }),
      },
    ],
  });
  const status = r.statusCodeStats as unknown as Record<string, { count: number }> | undefined;
  process.stdout.write(
    `${JSON.stringify({
      requests: r.requests.total,
      requests_per_s: Math.round(r.requests.average * 10) / 10,
      p50_ms: r.latency.p50,
      p99_ms: r.latency.p99,
      max_ms: r.latency.max,
      non_2xx: r.non2xx,
      errors: r.errors,
      timeouts: r.timeouts,
      status: Object.fromEntries(Object.entries(status ?? {}).map(([k, v]) => [k, v.count])),
    })}\n`,
  );
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
