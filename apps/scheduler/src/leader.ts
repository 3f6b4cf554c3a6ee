import { Client } from 'pg';

/** A stable 64-bit key for the scheduler's advisory lock. */
const LOCK_KEY = 0x6770756c6162n; // "gpulab"

/**
 * Leader election on a Postgres session advisory lock: only the replica holding it schedules, so two schedulers
 * never both launch. The lock lives as long as the session; if the connection drops, `onLost` fires and the process
 * should exit and let its supervisor restart it.
 */
export async function acquireLeadership(
  databaseUrl: string,
  opts: { retryMs: number; onWaiting: () => void; onLost: (e: Error) => void; signal?: AbortSignal },
): Promise<{ release(): Promise<void> }> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  client.on('error', (e) => opts.onLost(e));
  let warned = false;
  for (;;) {
    const r = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [
      LOCK_KEY.toString(),
    ]);
    if (r.rows[0]?.ok) break;
    if (!warned) opts.onWaiting();
    warned = true;
    if (opts.signal?.aborted) {
      await client.end();
      throw new Error('aborted while waiting for leadership');
    }
    await new Promise((res) => setTimeout(res, opts.retryMs));
  }
  return {
    release: async () => {
      await client.query('SELECT pg_advisory_unlock($1::bigint)', [LOCK_KEY.toString()]).catch(() => undefined);
      await client.end().catch(() => undefined);
    },
  };
}
