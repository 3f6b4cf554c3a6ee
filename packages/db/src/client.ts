import { PrismaPg } from '@prisma/adapter-pg';
import { Prisma, PrismaClient } from '@prisma/client';
import pg from 'pg';

export { Prisma, PrismaClient };
export type Db = PrismaClient;
export type Tx = Prisma.TransactionClient;

/**
 * Connections per process. Job submissions share statements (at most a few in flight, see jobs.ts), so 50 concurrent
 * submitters need only a few connections: bench/api measured no difference between 10, 20 and 40.
 */
export const DEFAULT_POOL_MAX = 10;

const pools = new WeakMap<Db, pg.Pool>();

/**
 * One Prisma client per process, over the pg driver adapter (no native query engine). The pg pool is ours (handed
 * to the adapter, which ends it on `$disconnect`), so the few hot-path statements written in SQL (`sqlPool`) share
 * its connections instead of opening a second pool.
 */
export function createDb(databaseUrl: string, opts: { max?: number } = {}): Db {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: opts.max ?? DEFAULT_POOL_MAX });
  pool.on('error', () => undefined); // an idle connection that dies is dropped from the pool; the next query reconnects
  const db = new PrismaClient({ adapter: new PrismaPg(pool, { disposeExternalPool: true }) });
  pools.set(db, pool);
  return db;
}

/**
 * The pg pool under a client made by `createDb`. Prisma's query compiler and interpreter cost about 0.3 ms of CPU
 * per query, a plain pg query about 0.06 ms: the per-request statements of job submission and token checks use this
 * (in this package only, each with its own tests); everything else goes through Prisma.
 */
export function sqlPool(db: Db): pg.Pool {
  const pool = pools.get(db);
  if (!pool) throw new Error('sqlPool: this client was not made by createDb');
  return pool;
}
