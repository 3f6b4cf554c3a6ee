/**
 * One API for a test file: its own database (copied from the migrated template), s3rver, Redis key prefix, dispatch
 * queue and log bus, and the app built from them — optionally listening on a loopback port. `close()` tears it all
 * down. `user()` makes a member of a group with granted hours and an API token.
 */
import type { AddressInfo } from 'node:net';
import { createDb, createUserToken, type Db, ensureFlavor, ensureUserWithQuota, setPassword } from '@gpulab/db';
import { createLogger, type Logger } from '@gpulab/logger';
import { createRedis, DispatchQueue, LogBus } from '@gpulab/queue';
import {
  createTestDatabase,
  startTestS3,
  TEST_POLICY,
  TEST_REDIS_URL,
  type TestDatabase,
  type TestS3,
  testRedisPrefix,
} from '@gpulab/testing';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { buildApp } from '../../src/app';
import type { ApiDeps } from '../../src/deps';

export interface TestApi {
  tdb: TestDatabase;
  db: Db;
  s3: TestS3;
  redis: Redis;
  queue: DispatchQueue;
  logs: LogBus;
  prefix: string;
  deps: ApiDeps;
  app: FastifyInstance;
  /** Base URL when started with `listen: true`. */
  url: string;
  user(email: string, o?: UserOptions): Promise<TestUser>;
  close(): Promise<void>;
}

export interface UserOptions {
  group?: string;
  hours?: number;
  role?: 'student' | 'instructor' | 'admin';
  password?: string;
}

export interface TestUser {
  userId: string;
  membershipId: string;
  groupId: string;
  token: string;
}

export async function startTestApi(o: {
  name: string;
  deps?: Partial<ApiDeps>;
  listen?: boolean;
  logger?: Logger;
  /** Called on the built app before it is ready (e.g. to add an onRoute hook that sees every route). */
  beforeReady?: (app: FastifyInstance) => void;
  /** Flavors to create (name, price per GPU-hour in micros, capacity); default one `local` GPU at 1.00/h. */
  flavors?: { name: string; rateMicrosPerHour: number; capacity: number }[];
}): Promise<TestApi> {
  const tdb = await createTestDatabase();
  const db = createDb(tdb.url);
  const s3 = await startTestS3();
  const redis = createRedis(TEST_REDIS_URL);
  const prefix = testRedisPrefix(o.name);
  const queue = new DispatchQueue(redis, prefix);
  const logs = new LogBus(redis, prefix);
  for (const f of o.flavors ?? [{ name: 'local', rateMicrosPerHour: 1_000_000, capacity: 1 }])
    await ensureFlavor(db, f);
  const deps: ApiDeps = {
    db,
    redis,
    queue,
    s3: s3.client,
    bucket: s3.bucket,
    clock: () => new Date(),
    maxAttempts: 3,
    policy: TEST_POLICY,
    logs,
    ...o.deps,
  };
  const app = buildApp(deps, o.logger ?? createLogger({ name: 'test', level: 'silent' }));
  o.beforeReady?.(app);
  let url = '';
  if (o.listen) {
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  } else {
    await app.ready();
  }
  return {
    tdb,
    db,
    s3,
    redis,
    queue,
    logs,
    prefix,
    deps,
    app,
    url,
    user: (email, u = {}) => testUser(db, email, u),
    close: async () => {
      await app.close();
      await queue.queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
      redis.disconnect();
      await s3.close();
      await db.$disconnect();
      await tdb.drop();
    },
  };
}

/** A member of `group` (default "course") with `hours` granted (default 10) and a personal API token. */
export async function testUser(db: Db, email: string, o: UserOptions = {}): Promise<TestUser> {
  const { user, membership } = await ensureUserWithQuota(db, {
    email,
    name: email,
    role: o.role ?? 'student',
    group: o.group ?? 'course',
    grantSeconds: Math.round((o.hours ?? 10) * 3600),
    periodStart: new Date('2026-09-01'),
    periodEnd: new Date('2027-02-01'),
  });
  if (o.password) await setPassword(db, user.id, o.password);
  const { secret } = await createUserToken(db, user.id, 'test');
  return { userId: user.id, membershipId: membership.id, groupId: membership.groupId, token: secret };
}
